"""dk.bptt: full BPTT == truncated with k >= T; truncation leaves the forward untouched and cuts
exactly the gradient paths longer than k steps (checked by finite differences of the loss terms
that remain, and by hand on a linear RNN); the state carries across calls."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close
from seq_checks import FD_ATOL, FD_RTOL, one_thread

F64 = np.float64


@pytest.fixture(autouse=True)
def _one_thread():
    # hundreds of tiny step-kernel calls: one thread avoids OpenMP fork/join waits on a loaded machine
    with one_thread():
        yield


def _model(kind):
    return {
        "rnn": lambda: dk.nn.SimpleRNN(2, 3, seed=0, dtype=F64),
        "lstm": lambda: dk.nn.LSTM(2, 3, seed=0, dtype=F64),
        "lstm2": lambda: dk.nn.LSTM(2, 3, num_layers=2, seed=0, dtype=F64),
    }[kind]()


def _grads(m):
    return [p.grad.copy() for p in m.parameters()]


def _run(m, x, dy, **kw):
    m.zero_grad()
    r = dk.bptt(m, x, dy=dy, **kw)
    return r, _grads(m)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "lstm2"])
def test_truncate_ge_T_is_full_bptt(rng, kind):
    m = _model(kind)
    T = 6
    x, dy = rng.standard_normal((2, T, 2)), rng.standard_normal((2, T, 3))
    s0 = tuple(rng.standard_normal(s.shape) for s in m.zero_state(2))
    ref, gref = _run(m, x, dy, initial_state=s0)  # fused whole-sequence path (the kernel for LSTM)
    for kw in [
        dict(fused=False),
        dict(truncate=T, fused=False),
        dict(truncate=T + 3),
        dict(truncate=T, mode="chunk"),
        dict(truncate=100, mode="chunk", fused=False),
    ]:
        r, g = _run(m, x, dy, initial_state=s0, **kw)
        assert_close(r.outputs, ref.outputs, F64, what=f"outputs {kw}")
        assert_close(r.dx, ref.dx, F64, what=f"dx {kw}")
        for a, b in zip(g, gref):
            assert_close(a, b, F64, what=f"param grad {kw}")
        for a, b in zip(r.state_grad, ref.state_grad):
            assert_close(a, b, F64, what=f"state grad {kw}")


@pytest.mark.parametrize("kind", ["rnn", "lstm2"])
@pytest.mark.parametrize("mode", ["window", "chunk"])
def test_truncation_leaves_forward_unchanged(rng, kind, mode):
    m = _model(kind)
    x, dy = rng.standard_normal((3, 7, 2)), rng.standard_normal((3, 7, 3))
    full, gfull = _run(m, x, dy)
    for k in (1, 2, 3, 6):
        r, g = _run(m, x, dy, truncate=k, mode=mode)
        np.testing.assert_allclose(r.outputs, full.outputs, rtol=1e-13, atol=1e-14)
        for a, b in zip(r.state, full.state):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
        # ...while the gradients do change (k < T cuts real paths)
        assert not np.allclose(r.dx, full.dx)


def _fd_dx_windowed(m, x, R, window):
    """dx[:, s] = d/dx[:, s] of sum over t in window(s) of Y_t . R_t, by central differences."""
    B, T, F = x.shape
    g = np.zeros_like(x)
    eps = 1e-6

    def partial(s):
        Y, _ = m.forward_sequence(x, training=False)
        ts = list(window(s))
        return float(np.sum(Y[:, ts] * R[:, ts]))

    with one_thread():
        for s in range(T):
            for b in range(B):
                for f in range(F):
                    old = x[b, s, f]
                    x[b, s, f] = old + eps
                    fp = partial(s)
                    x[b, s, f] = old - eps
                    fm = partial(s)
                    x[b, s, f] = old
                    g[b, s, f] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("kind", ["rnn", "lstm", "lstm2"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_window_truncation_matches_finite_differences(rng, kind, k):
    """The loss at step t reaches back to steps t-k+1..t: d/dx_s keeps exactly the terms t in [s, s+k-1]."""
    m = _model(kind)
    T = 6
    x, R = rng.standard_normal((2, T, 2)), rng.standard_normal((2, T, 3))
    r, _ = _run(m, x, R, truncate=k)
    expect = _fd_dx_windowed(m, x, R, lambda s: range(s, min(s + k, T)))
    assert_close(r.dx, expect, F64, rtol=FD_RTOL, atol=FD_ATOL, what="windowed dx")


@pytest.mark.parametrize("kind", ["rnn", "lstm2"])
@pytest.mark.parametrize("k", [2, 4])
def test_chunk_truncation_matches_finite_differences(rng, kind, k):
    """Chunks [0, k), [k, 2k), ...: d/dx_s keeps the terms t >= s in s's own chunk."""
    m = _model(kind)
    T = 7
    x, R = rng.standard_normal((2, T, 2)), rng.standard_normal((2, T, 3))
    r, _ = _run(m, x, R, truncate=k, mode="chunk")
    expect = _fd_dx_windowed(m, x, R, lambda s: range(s, min((s // k + 1) * k, T)))
    assert_close(r.dx, expect, F64, rtol=FD_RTOL, atol=FD_ATOL, what="chunked dx")


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_window_truncation_param_grads_by_hand(rng, k):
    """A linear RNN (relu in its positive region, one unit): h_t = w h_{t-1} + u x_t + b, L = sum_t r_t h_t.
    Truncated to k steps: dL/dw = sum_t r_t sum_{j<k, j<=t} w^j h_{t-j-1}, likewise u (x_{t-j}) and b (1)."""
    w, u, b = 0.7, 0.5, 0.1
    m = dk.nn.SimpleRNN(1, 1, activation="relu", dtype=F64)
    m.weight_hh.value[:] = w
    m.weight_ih.value[:] = u
    m.bias.value[:] = b
    T = 6
    x = rng.uniform(0.1, 1.0, (1, T, 1))
    h0 = np.array([[0.3]])
    r_ = rng.standard_normal((1, T, 1))
    res, (gu, gw, gb) = _run(m, x, r_, truncate=k, initial_state=(h0,))
    h = np.r_[h0[0, 0], res.outputs[0, :, 0]]  # h[t+1] = h_t, h[0] = h_{-1} = h0
    assert np.all(h > 0)  # stayed in relu's linear region
    ew = eu = eb = 0.0
    for t in range(T):
        for j in range(min(k, t + 1)):
            ew += r_[0, t, 0] * w**j * h[t - j]
            eu += r_[0, t, 0] * w**j * x[0, t - j, 0]
            eb += r_[0, t, 0] * w**j
    assert_close(gw, np.array([[ew]]), F64, what="dL/dw")
    assert_close(gu, np.array([[eu]]), F64, what="dL/du")
    assert_close(gb, np.array([eb]), F64, what="dL/db")


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("k", [1, 3])
def test_no_gradient_beyond_k_steps(rng, kind, k):
    """Loss at the last step only: inputs more than k-1 steps before it get exactly zero gradient."""
    m = _model(kind)
    T = 7
    x = rng.standard_normal((2, T, 2))
    dy = np.zeros((2, T, 3))
    dy[:, -1] = rng.standard_normal((2, 3))
    r, _ = _run(m, x, dy, truncate=k)
    assert np.all(r.dx[:, : T - k] == 0)
    assert np.all(np.abs(r.dx[:, T - k :]).sum(axis=(0, 2)) > 0)
    assert r.state_grad is None  # step 0 is out of reach
    full, _ = _run(m, x, dy)
    assert np.all(np.abs(full.dx).sum(axis=(0, 2)) > 0)  # whereas full BPTT reaches every step


def test_state_carries_across_calls(rng):
    """Streaming a long sequence in segments: passing res.state on gives the same forward as one pass."""
    m = dk.nn.LSTM(2, 3, seed=1, dtype=F64)
    x = rng.standard_normal((2, 9, 2))
    full, _ = m.forward_sequence(x, training=False)
    state, outs = None, []
    for s in range(0, 9, 4):
        r = dk.bptt(m, x[:, s : s + 4], dy=np.ones((2, x[:, s : s + 4].shape[1], 3)), truncate=2, initial_state=state)
        state = dk.bptt.detach_state(r.state)
        outs.append(r.outputs)
    assert_close(np.concatenate(outs, axis=1), full, F64)


def test_loss_fn_with_head(rng):
    """loss_fn(Y) -> (loss, dY) wraps a Dense head and a loss; both get their gradients."""
    m = dk.nn.SimpleRNN(2, 4, seed=0, dtype=F64)
    head = dk.nn.Dense(4, 1, seed=0, dtype=F64)
    mse = dk.nn.MSE()
    x, y = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 5, 1))

    def loss_fn(Y):
        loss = mse.forward(head.forward(Y), y)
        return loss, head.backward(mse.backward())

    r = dk.bptt(m, x, loss_fn, truncate=3)
    assert np.isfinite(r.loss) and r.loss > 0
    assert head.weight.grad is not None and m.weight_hh.grad is not None


BAD = [
    (lambda m, x: dk.bptt(m, x, dy=np.zeros((2, 5, 3)), truncate=0), ValueError, "truncate"),
    (lambda m, x: dk.bptt(m, x, dy=np.zeros((2, 5, 3)), truncate=2.5), ValueError, "truncate"),
    (lambda m, x: dk.bptt(m, x, dy=np.zeros((2, 5, 3)), truncate=2, mode="sliding"), ValueError, "mode"),
    (lambda m, x: dk.bptt(m, x), TypeError, "loss_fn"),
    (lambda m, x: dk.bptt(m, x, dy=np.zeros((2, 4, 3))), ValueError, "gradient"),
    (lambda m, x: dk.bptt(dk.nn.Dense(2, 3), x, dy=np.zeros((2, 5, 3))), TypeError, "step API"),
    (lambda m, x: dk.bptt(m, x[0], dy=np.zeros((2, 5, 3))), ValueError, "'x'"),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_inputs(rng, fn, exc, match):
    with pytest.raises(exc, match=match):
        fn(dk.nn.SimpleRNN(2, 3, dtype=F64), rng.standard_normal((2, 5, 2)))


def test_loss_object_and_positional_dy(rng):
    """dk.bptt(rnn, x, MSE(), target=y) and dk.bptt(rnn, x, dy) are the same as a loss_fn."""
    m = dk.nn.SimpleRNN(2, 3, seed=0, dtype=F64)
    x, y = rng.standard_normal((2, 5, 2)), rng.standard_normal((2, 5, 3))
    mse = dk.nn.MSE()
    m.zero_grad()
    r1 = dk.bptt(m, x, mse, target=y, truncate=2)
    g1 = _grads(m)
    m.zero_grad()
    r2 = dk.bptt(m, x, lambda Y: (mse.forward(Y, y), mse.backward()), truncate=2)
    assert r1.loss == r2.loss
    for a, b in zip(g1, _grads(m)):
        np.testing.assert_array_equal(a, b)
    m.zero_grad()
    r3 = dk.bptt(m, x, 2 * (r1.outputs - y) / y.size, truncate=2)
    assert_close(r3.dx, r1.dx, F64)


def test_sequential_model_with_head(rng):
    """dk.bptt on Sequential([rnn, Dense]) with a Loss: the head gets its gradients; full BPTT through
    bptt equals Sequential's own forward/backward."""
    model = dk.nn.Sequential(
        [dk.nn.LSTM(2, 4, return_sequences=True, seed=0, dtype=F64), dk.nn.Dense(4, 3, seed=1, dtype=F64)]
    )
    x, y = rng.standard_normal((2, 6, 2)), rng.integers(0, 3, (2, 6))
    ce = dk.nn.SoftmaxCrossEntropy()
    model.zero_grad()
    r = dk.bptt(model, x, ce, target=y)
    g = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss = ce.forward(model.forward(x), y)
    model.backward(ce.backward())
    assert_close(np.array(r.loss), np.array(loss), F64)
    for a, p in zip(g, model.parameters()):
        assert_close(a, p.grad, F64, what=p.name)
    model.zero_grad()
    dk.bptt(model, x, ce, target=y, truncate=2)
    assert all(p.grad is not None for p in model.parameters())
