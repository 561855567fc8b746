"""SimpleRNN and LSTM layers: against torch.nn.RNN / nn.LSTM with copied weights, finite-difference
gradients (float64), parameter counts, initialisation options, the step API, bad inputs."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close
from seq_checks import gradcheck

torch = pytest.importorskip("torch")

F64 = np.float64


def _torch_state(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def _torch_rnn(kind, I, H, L, seed):
    torch.manual_seed(seed)
    if kind == "rnn":
        return torch.nn.RNN(I, H, L, batch_first=True).double()
    return torch.nn.LSTM(I, H, L, batch_first=True).double()


# (B, T, I, H, num_layers) -- odd sizes, T=1, B=1
SHAPES = [(1, 1, 1, 1, 1), (3, 5, 4, 6, 1), (2, 7, 3, 5, 2), (4, 2, 6, 3, 3), (5, 9, 2, 8, 1)]


@pytest.mark.parametrize("B,T,I,H,L", SHAPES)
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_torch(rng, B, T, I, H, L, with_state):
    tm = _torch_rnn("lstm", I, H, L, seed=B * 100 + T)
    m = dk.nn.LSTM(I, H, num_layers=L, return_sequences=True, return_state=True, dtype=F64)
    m.load_torch_state("", _torch_state(tm))
    x = rng.standard_normal((B, T, I))
    sshape = (B, H) if L == 1 else (L, B, H)
    h0, c0 = rng.standard_normal(sshape), rng.standard_normal(sshape)
    y, h, c = m.forward(x, (h0, c0) if with_state else None)
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0.reshape(L, B, H), requires_grad=True)
    c0t = torch.tensor(c0.reshape(L, B, H), requires_grad=True)
    yt, (ht, ct) = tm(xt, (h0t, c0t)) if with_state else tm(xt)
    assert_close(y, yt, F64, what="y")
    assert_close(h, ht.reshape(sshape), F64, what="h")
    assert_close(c, ct.reshape(sshape), F64, what="c")
    dy, dh, dc = (rng.standard_normal(a.shape) for a in (y, h, c))
    loss = (
        (yt * torch.tensor(dy)).sum()
        + (ht * torch.tensor(dh.reshape(L, B, H))).sum()
        + (ct * torch.tensor(dc.reshape(L, B, H))).sum()
    )
    loss.backward()
    dx = m.backward((dy, dh, dc))
    assert_close(dx, xt.grad, F64, what="dx")
    if with_state:
        assert_close(m.state_grad[0], h0t.grad.reshape(sshape), F64, what="dh0")
        assert_close(m.state_grad[1], c0t.grad.reshape(sshape), F64, what="dc0")
    for layer in range(L):
        assert_close(getattr(m, f"weight_ih_l{layer}").grad, getattr(tm, f"weight_ih_l{layer}").grad, F64)
        assert_close(getattr(m, f"weight_hh_l{layer}").grad, getattr(tm, f"weight_hh_l{layer}").grad, F64)
        # one bias per gate: its gradient is that of either of PyTorch's two biases
        assert_close(getattr(m, f"bias_l{layer}").grad, getattr(tm, f"bias_ih_l{layer}").grad, F64)


@pytest.mark.parametrize("B,T,I,H", [(1, 1, 1, 1), (3, 5, 4, 6), (2, 8, 3, 2)])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_simple_rnn_matches_torch(rng, B, T, I, H, return_sequences):
    tm = _torch_rnn("rnn", I, H, 1, seed=T)
    m = dk.nn.SimpleRNN(I, H, return_sequences=return_sequences, return_state=True, dtype=F64)
    m.load_torch_state("rnn", {"rnn." + k: v for k, v in _torch_state(tm).items()})
    x, h0 = rng.standard_normal((B, T, I)), rng.standard_normal((B, H))
    out, h = m.forward(x, h0)
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    yt, ht = tm(xt, h0t)
    assert_close(out, yt if return_sequences else yt[:, -1], F64, what="out")
    assert_close(h, ht[0], F64, what="h")
    dout = rng.standard_normal(out.shape)
    (yt if return_sequences else yt[:, -1]).mul(torch.tensor(dout)).sum().backward()
    dx = m.backward((dout, None))
    assert_close(dx, xt.grad, F64, what="dx")
    assert_close(m.state_grad[0], h0t.grad[0], F64, what="dh0")
    assert_close(m.weight_hh.grad, tm.weight_hh_l0.grad, F64)
    assert_close(m.bias.grad, tm.bias_hh_l0.grad, F64)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, False), (True, True), (False, True)])
def test_simple_rnn_gradcheck(rng, activation, return_sequences, return_state):
    m = dk.nn.SimpleRNN(
        3, 4, return_sequences=return_sequences, return_state=return_state, activation=activation, seed=1, dtype=F64
    )
    x, h0 = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4))
    gradcheck(
        lambda x, h0: m.forward(x, h0),
        m.backward,
        [x, h0],
        m.parameters(),
        rng,
        what=f"SimpleRNN {activation}",
        input_grads={1: lambda: m.state_grad[0]},
    )


@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("return_sequences,return_state", [(False, False), (True, True), (False, True)])
def test_lstm_gradcheck(rng, L, return_sequences, return_state):
    m = dk.nn.LSTM(3, 4, num_layers=L, return_sequences=return_sequences, return_state=return_state, seed=2, dtype=F64)
    x = rng.standard_normal((2, 3, 3))
    s = (2, 4) if L == 1 else (L, 2, 4)
    h0, c0 = rng.standard_normal(s), rng.standard_normal(s)
    gradcheck(
        lambda x, h0, c0: m.forward(x, (h0, c0)),
        m.backward,
        [x, h0, c0],
        m.parameters(),
        rng,
        what=f"LSTM L={L}",
        input_grads={1: lambda: m.state_grad[0], 2: lambda: m.state_grad[1]},
    )


def test_parameter_counts():
    for I, H in [(3, 5), (10, 20), (1, 1)]:
        assert dk.nn.SimpleRNN(I, H).num_params() == H * (I + H) + H
        assert dk.nn.LSTM(I, H).num_params() == 4 * (H * (I + H) + H)
        # stacked: layers above the first take H inputs
        assert dk.nn.LSTM(I, H, num_layers=3).num_params() == 4 * (H * (I + H) + H) + 2 * 4 * (H * 2 * H + H)


def test_identity_init_and_forget_bias():
    r = dk.nn.SimpleRNN(3, 5, recurrent_init="identity", dtype=F64)
    np.testing.assert_array_equal(r.weight_hh.value, np.eye(5))
    r = dk.nn.SimpleRNN(3, 5, activation="relu", recurrent_init="identity", identity_scale=0.5, dtype=F64)
    np.testing.assert_array_equal(r.weight_hh.value, 0.5 * np.eye(5))
    m = dk.nn.LSTM(2, 3, num_layers=2, recurrent_init="identity", dtype=F64)
    for layer in range(2):
        np.testing.assert_array_equal(getattr(m, f"weight_hh_l{layer}").value, np.tile(np.eye(3), (4, 1)))
        b = getattr(m, f"bias_l{layer}").value
        np.testing.assert_array_equal(b, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    # orthogonal default: W_hh^T W_hh = I per gate block
    r = dk.nn.SimpleRNN(3, 6, dtype=F64, seed=0)
    assert_close(r.weight_hh.value.T @ r.weight_hh.value, np.eye(6), F64)


def test_identity_rnn_with_zero_input_keeps_state():
    """The point of the identity init: with zero input and bias, h_t = h_0 for every t (relu, h0 >= 0)."""
    r = dk.nn.SimpleRNN(2, 4, activation="relu", recurrent_init="identity", return_sequences=True, dtype=F64)
    h0 = np.array([[0.5, 1.0, 0.0, 2.0]])
    y = r.forward(np.zeros((1, 6, 2)), h0)
    np.testing.assert_array_equal(y, np.repeat(h0[:, None], 6, axis=1))


@pytest.mark.parametrize("layer", ["rnn", "lstm1", "lstm2"])
def test_step_api_matches_sequence(rng, layer):
    m = {
        "rnn": lambda: dk.nn.SimpleRNN(3, 4, return_sequences=True, dtype=F64),
        "lstm1": lambda: dk.nn.LSTM(3, 4, return_sequences=True, dtype=F64),
        "lstm2": lambda: dk.nn.LSTM(3, 4, num_layers=2, return_sequences=True, dtype=F64),
    }[layer]()
    x = rng.standard_normal((2, 5, 3))
    dy = rng.standard_normal((2, 5, 4))
    y = m.forward(x)
    dx = m.backward(dy)
    grads = [p.grad.copy() for p in m.parameters()]
    m.zero_grad()
    state, caches, ys = m.zero_state(2), [], []
    for t in range(5):
        yt, state, cache = m.step(x[:, t], state)
        ys.append(yt)
        caches.append(cache)
    assert_close(np.stack(ys, 1), y, F64, what="step outputs")
    dstate, dxs = None, []
    for t in range(4, -1, -1):
        dxt, dstate = m.step_backward(caches[t], dy[:, t], dstate)
        dxs.append(dxt)
    assert_close(np.stack(dxs[::-1], 1), dx, F64, what="step dx")
    for p, g in zip(m.parameters(), grads):
        assert_close(p.grad, g, F64, what=p.name)


def test_float32_runs_and_keeps_dtype(rng):
    m = dk.nn.LSTM(3, 4, num_layers=2, return_sequences=True)
    x = rng.standard_normal((2, 5, 3))
    y = m.forward(x)
    assert y.dtype == np.float32 and y.shape == (2, 5, 4)
    dx = m.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert all(p.grad.dtype == np.float32 for p in m.parameters())


def test_inference_keeps_no_cache(rng):
    m = dk.nn.LSTM(3, 4)
    m.forward(rng.standard_normal((2, 5, 3)), training=False)
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(np.zeros((2, 4)))


def test_sequential_summary_and_fit_shapes(rng):
    model = dk.nn.Sequential([dk.nn.LSTM(3, 8, return_sequences=True), dk.nn.SimpleRNN(8, 5), dk.nn.Dense(5, 2)])
    y = model.forward(rng.standard_normal((4, 6, 3)))
    assert y.shape == (4, 2)
    assert model.backward(np.ones((4, 2))).shape == (4, 6, 3)
    assert model.num_params() == 4 * (8 * 11 + 8) + 5 * 13 + 5 + 12


BAD = [
    (lambda: dk.nn.LSTM(0, 4), ValueError, "input_size"),
    (lambda: dk.nn.LSTM(3, 4, num_layers=0), ValueError, "num_layers"),
    (lambda: dk.nn.SimpleRNN(3, 4, activation="gelu"), ValueError, "activation"),
    (lambda: dk.nn.SimpleRNN(3, 4, recurrent_init="eye"), ValueError, "recurrent_init"),
    (lambda: dk.nn.LSTM(3, 4).forward(np.zeros((2, 5, 2))), ValueError, "'x'"),
    (lambda: dk.nn.LSTM(3, 4).forward(np.zeros(3)), ValueError, "'x'"),  # (5, 3) is unbatched (T, I)
    (lambda: dk.nn.LSTM(3, 4).forward(np.zeros((2, 5, 3)), np.zeros((2, 4))), ValueError, "initial_state"),
    (lambda: dk.nn.LSTM(3, 4).forward(np.zeros((2, 5, 3)), (np.zeros((2, 4)), np.zeros((3, 4)))), ValueError, "'c'"),
    (lambda: dk.nn.SimpleRNN(3, 4).forward(np.zeros((2, 5, 3)), np.zeros((2, 5))), ValueError, "'h'"),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_inputs(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_backward_bad_dy(rng):
    m = dk.nn.LSTM(3, 4, return_state=True)
    m.forward(rng.standard_normal((2, 5, 3)))
    with pytest.raises(ValueError, match="dy"):
        m.backward((np.zeros((2, 4)), None))  # needs (dout, dh, dc)
    with pytest.raises(ValueError, match="dy"):
        m.backward((np.zeros((2, 3)), None, None))


def test_return_state_backward_with_bare_dout(rng):
    """backward(dout) on a return_state layer == backward((dout, None, None))."""
    m = dk.nn.LSTM(3, 4, return_state=True, dtype=F64)
    x = rng.standard_normal((2, 5, 3))
    dout = rng.standard_normal((2, 4))
    m.forward(x)
    a = m.backward(dout)
    m.forward(x)
    np.testing.assert_array_equal(a, m.backward((dout, None, None)))


def test_call_passes_initial_state_and_torch_state_shape(rng):
    """layer(x, state) is forward(x, state); a one-layer state may come as PyTorch's (1, B, H)."""
    m = dk.nn.LSTM(3, 4, return_sequences=True, dtype=F64)
    x = rng.standard_normal((2, 5, 3))
    h0, c0 = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    ref = m.forward(x, (h0, c0))
    np.testing.assert_array_equal(m(x, (h0, c0)), ref)
    np.testing.assert_array_equal(m(x, (h0[None], c0[None])), ref)
    r = dk.nn.SimpleRNN(3, 4, dtype=F64)
    np.testing.assert_array_equal(r(x, h0), r.forward(x, h0))
