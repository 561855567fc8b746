"""lstm_cell / lstm forward and backward on the CPU: float64 reference, PyTorch, finite differences."""

import os
import subprocess
import sys

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from helpers import assert_close, numeric_grad, run_with_isa
from reference import lstm_backward_ref, lstm_cell_backward_ref, lstm_cell_ref, lstm_ref

GRAD_NAMES = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")

# (T, B, I, H, bias, state given, which upstream grads): T=1, B=1, H=1, I != H, odd sizes,
# H large enough that a step's columns are split between threads (with a ragged last chunk).
SEQ_CASES = [
    (1, 1, 1, 1, "both", True, "all"),
    (1, 3, 5, 7, "none", True, "y"),
    (4, 1, 3, 2, "both", False, "all"),
    (3, 2, 4, 1, "ih", True, "state"),
    (7, 5, 3, 11, "hh", True, "all"),
    (2, 4, 17, 16, "both", True, "y"),
    (5, 3, 8, 8, "none", False, "state"),
    (6, 2, 1, 5, "both", True, "all"),
    (3, 7, 33, 19, "both", True, "y_h"),
    (9, 1, 2, 3, "ih", False, "y"),
    (2, 6, 12, 37, "both", True, "all"),
    (2, 1, 3, 130, "both", True, "all"),
    (3, 33, 5, 131, "hh", True, "all"),
]


def _weights(rng, I, H, bias, dtype):
    k = 1.0 / np.sqrt(H)
    u = lambda *s: rng.uniform(-k, k, s).astype(dtype)  # noqa: E731
    w_ih, w_hh = u(4 * H, I), u(4 * H, H)
    b_ih = u(4 * H) if bias in ("both", "ih") else None
    b_hh = u(4 * H) if bias in ("both", "hh") else None
    return w_ih, w_hh, b_ih, b_hh


def _upstream(rng, T, B, H, which, dtype):
    g = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    dy = g(T, B, H) if which in ("all", "y", "y_h") else None
    dhT = g(B, H) if which in ("all", "state", "y_h") else None
    dcT = g(B, H) if which in ("all", "state") else None
    return dy, dhT, dcT


def _torch_lstm(cls, I, H, w_ih, w_hh, b_ih, b_hh, dtype):
    """torch.nn.LSTM / LSTMCell with our weights copied in (an absent bias is a zero one)."""
    has_bias = b_ih is not None or b_hh is not None
    m = cls(I, H, bias=has_bias).to(torch.float64 if dtype == np.float64 else torch.float32)
    sfx = "_l0" if cls is torch.nn.LSTM else ""
    with torch.no_grad():
        getattr(m, "weight_ih" + sfx).copy_(torch.from_numpy(w_ih))
        getattr(m, "weight_hh" + sfx).copy_(torch.from_numpy(w_hh))
        if has_bias:
            for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
                getattr(m, name + sfx).copy_(torch.from_numpy(b) if b is not None else torch.zeros(4 * H))
    params = [getattr(m, n + sfx) for n in ("weight_ih", "weight_hh")]
    biases = [getattr(m, n + sfx) if has_bias else None for n in ("bias_ih", "bias_hh")]
    return m, params, biases


def _leaf(a):
    return None if a is None else torch.tensor(a, requires_grad=True)


def _grad(t):
    return None if t is None else t.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SEQ_CASES)
def test_lstm_matches_reference_and_torch(case, dtype, rng):
    T, B, I, H, bias, with_state, which = case
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    w_ih, w_hh, b_ih, b_hh = _weights(rng, I, H, bias, dtype)
    dy, dhT, dcT = _upstream(rng, T, B, H, which, dtype)

    (y, hT, cT), ctx = dk.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
    grads = dk.lstm_backward(ctx, dy, dhT, dcT)
    assert y.dtype == dtype and y.shape == (T, B, H) and hT.shape == cT.shape == (B, H)

    # float64 reference
    ry, rh, rc, cache = lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    rgrads = lstm_backward_ref(cache, dy, dhT, dcT)
    for name, a, e in zip(("y", "hT", "cT"), (y, hT, cT), (ry, rh, rc)):
        assert_close(a, e, dtype, what=f"{case} {name} vs reference")
    for name, g, r in zip(GRAD_NAMES, grads, rgrads):
        if r is None:
            assert g is None, f"{name} must be None where its input was None"
            continue
        assert g.dtype == dtype
        assert_close(g, r, dtype, what=f"{case} {name} vs reference")

    # PyTorch, every gradient through autograd
    m, (tw_ih, tw_hh), (tb_ih, tb_hh) = _torch_lstm(torch.nn.LSTM, I, H, w_ih, w_hh, b_ih, b_hh, dtype)
    tx, th0, tc0 = _leaf(x), _leaf(h0), _leaf(c0)
    ty, (thT, tcT) = m(tx, None if h0 is None else (th0[None], tc0[None]))
    outs, ups = [], []
    for o, g in ((ty, dy), (thT[0], dhT), (tcT[0], dcT)):
        if g is not None:
            outs.append(o)
            ups.append(torch.from_numpy(g))
    torch.autograd.backward(outs, ups)
    assert_close(y, ty, dtype, what=f"{case} y vs torch")
    assert_close(hT, thT[0], dtype, what=f"{case} hT vs torch")
    assert_close(cT, tcT[0], dtype, what=f"{case} cT vs torch")
    tgrads = [_grad(t) for t in (tx, th0, tc0, tw_ih, tw_hh, tb_ih, tb_hh)]
    for name, g, t in zip(GRAD_NAMES, grads, tgrads):
        if g is not None:
            assert_close(g, t, dtype, what=f"{case} {name} vs torch")


CELL_CASES = [
    (1, 1, 1, "both"),
    (3, 5, 7, "none"),
    (4, 2, 9, "both"),
    (2, 16, 3, "ih"),
    (6, 11, 29, "both"),
    (1, 3, 150, "hh"),
    (40, 7, 130, "both"),
    (2, 3, 400, "both"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CELL_CASES)
def test_lstm_cell_matches_reference_and_torch(case, dtype, rng):
    B, I, H, bias = case
    x = rng.standard_normal((B, I)).astype(dtype)
    h = rng.standard_normal((B, H)).astype(dtype)
    c = rng.standard_normal((B, H)).astype(dtype)
    w_ih, w_hh, b_ih, b_hh = _weights(rng, I, H, bias, dtype)
    dh1 = rng.standard_normal((B, H)).astype(dtype)
    dc1 = rng.standard_normal((B, H)).astype(dtype)

    (h1, c1), ctx = dk.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
    assert dk.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)[0].shape == (B, H)
    grads = dk.lstm_cell_backward(ctx, dh1, dc1)
    rh, rc, cache = lstm_cell_ref(x, h, c, w_ih, w_hh, b_ih, b_hh)
    assert_close(h1, rh, dtype, what="h1 vs reference")
    assert_close(c1, rc, dtype, what="c1 vs reference")
    for name, g, r in zip(GRAD_NAMES, grads, lstm_cell_backward_ref(cache, dh1, dc1)):
        if r is None:
            assert g is None
        else:
            assert_close(g, r, dtype, what=f"cell {name} vs reference")
    assert grads[0].shape == (B, I)

    m, (tw_ih, tw_hh), (tb_ih, tb_hh) = _torch_lstm(torch.nn.LSTMCell, I, H, w_ih, w_hh, b_ih, b_hh, dtype)
    tx, th, tc = _leaf(x), _leaf(h), _leaf(c)
    th1, tc1 = m(tx, (th, tc))
    torch.autograd.backward([th1, tc1], [torch.from_numpy(dh1), torch.from_numpy(dc1)])
    assert_close(h1, th1, dtype, what="h1 vs torch")
    assert_close(c1, tc1, dtype, what="c1 vs torch")
    tgrads = [_grad(t) for t in (tx, th, tc, tw_ih, tw_hh, tb_ih, tb_hh)]
    for name, g, t in zip(GRAD_NAMES, grads, tgrads):
        if g is not None:
            assert_close(g, t, dtype, what=f"cell {name} vs torch")


def test_lstm_cell_backward_optional_grads_and_zero_state(rng):
    B, I, H = 3, 4, 5
    x = rng.standard_normal((B, I))
    w_ih, w_hh, b_ih, b_hh = _weights(rng, I, H, "both", np.float64)
    z = np.zeros((B, H))
    (h1, c1), ctx = dk.lstm_cell(x, None, None, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
    (h1z, c1z), ctxz = dk.lstm_cell(x, z, z, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
    assert_close(h1, h1z, np.float64)
    assert_close(c1, c1z, np.float64)
    dh1 = rng.standard_normal((B, H))
    g = dk.lstm_cell_backward(ctx, dh1, None)
    gz = dk.lstm_cell_backward(ctxz, dh1, np.zeros((B, H)))
    assert g[1] is None and g[2] is None
    for a, b in zip(g, gz):
        if a is not None:
            assert_close(a, b, np.float64)
    g0 = dk.lstm_cell_backward(ctxz, None, None)
    for a in g0:
        np.testing.assert_array_equal(a, 0.0)


def _pack(outs):
    return np.concatenate([np.asarray(o, np.float64).ravel() for o in outs])


def test_lstm_finite_differences(rng):
    T, B, I, H = 3, 2, 3, 2
    args = [
        rng.standard_normal((T, B, I)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
        *(a * 1.5 for a in _weights(rng, I, H, "both", np.float64)),
    ]
    dy, dhT, dcT = _upstream(rng, T, B, H, "all", np.float64)
    (_, ctx) = dk.lstm(*args, return_ctx=True)
    grads = dk.lstm_backward(ctx, dy, dhT, dcT)
    up = _pack([dy, dhT, dcT])
    for k, name in enumerate(GRAD_NAMES):

        def f(v, k=k):
            a = list(args)
            a[k] = v
            return _pack(dk.lstm(*a))

        num = numeric_grad(f, args[k], up, eps=1e-5)
        assert_close(grads[k], num, np.float64, rtol=1e-7, atol=1e-8, what=f"{name} finite differences")


def test_lstm_cell_finite_differences(rng):
    B, I, H = 2, 3, 4
    args = [
        rng.standard_normal((B, I)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
        *(a * 1.5 for a in _weights(rng, I, H, "both", np.float64)),
    ]
    dh1, dc1 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    (_, ctx) = dk.lstm_cell(*args, return_ctx=True)
    grads = dk.lstm_cell_backward(ctx, dh1, dc1)
    up = _pack([dh1, dc1])
    for k, name in enumerate(GRAD_NAMES):

        def f(v, k=k):
            a = list(args)
            a[k] = v
            return _pack(dk.lstm_cell(*a))

        num = numeric_grad(f, args[k], up, eps=1e-5)
        assert_close(grads[k], num, np.float64, rtol=1e-7, atol=1e-8, what=f"cell {name} finite differences")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_windows_chain_like_the_full_sequence(dtype, rng):
    """A window's (hT, cT) feeds the next window's (h0, c0); feeding the second window's
    (dh0, dc0) back as the first one's (dhT, dcT) reproduces full BPTT."""
    T, B, I, H, cut = 9, 3, 4, 6, 4
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0, c0 = rng.standard_normal((B, H)).astype(dtype), rng.standard_normal((B, H)).astype(dtype)
    w = _weights(rng, I, H, "both", dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    (y, hT, cT), ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
    full = dk.lstm_backward(ctx, dy)
    (y1, h1, c1), ctx1 = dk.lstm(x[:cut], h0, c0, *w, return_ctx=True)
    (y2, h2, c2), ctx2 = dk.lstm(x[cut:], h1, c1, *w, return_ctx=True)
    assert_close(np.concatenate([y1, y2]), y, dtype)
    assert_close(h2, hT, dtype)
    assert_close(c2, cT, dtype)
    g2 = dk.lstm_backward(ctx2, dy[cut:])
    g1 = dk.lstm_backward(ctx1, dy[:cut], g2[1], g2[2])
    assert_close(np.concatenate([g1[0], g2[0]]), full[0], dtype, what="dx")
    for k in (1, 2):
        assert_close(g1[k], full[k], dtype, what=GRAD_NAMES[k])
    for k in (3, 4, 5, 6):
        assert_close(g1[k] + g2[k], full[k], dtype, what=GRAD_NAMES[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_accurate_over_the_whole_range(dtype):
    """Pre-activations fed straight through (w_ih = identity): saturated gates give no NaN/inf
    and c1 = sigmoid(i) tanh(g) keeps its relative precision for tiny and huge inputs."""
    H = 256
    v = np.concatenate([np.linspace(-120, 120, 100), np.geomspace(1e-8, 3, 78), -np.geomspace(1e-8, 3, 78)])
    gates = np.stack([np.roll(v, k) for k in range(4)]).reshape(1, 4 * H).astype(dtype)
    w_ih = np.eye(4 * H, dtype=dtype)
    w_hh = np.zeros((4 * H, H), dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-6
    # c = 0: c1 = sigmoid(i) tanh(g) and h1 = sigmoid(o) tanh(c1) are products, so nothing but
    # the activations' own error shows: it must stay relative, also for tiny arguments.
    h1, c1 = dk.lstm_cell(gates, None, None, w_ih, w_hh)
    rh, rc, _ = lstm_cell_ref(gates, None, None, w_ih, w_hh)
    assert_close(c1, rc, dtype, rtol=tol, atol=1e-30, what="c1")
    assert_close(h1, rh, dtype, rtol=tol, atol=1e-30, what="h1")
    # c = 1 adds a sum that can cancel: the usual tolerance, and never NaN / inf.
    c = np.ones((1, H), dtype)
    h1, c1 = dk.lstm_cell(gates, None, c, w_ih, w_hh)
    rh, rc, _ = lstm_cell_ref(gates, None, c, w_ih, w_hh)
    assert np.isfinite(h1).all() and np.isfinite(c1).all()
    assert_close(h1, rh, dtype, what="h1 with c = 1")
    assert_close(c1, rc, dtype, what="c1 with c = 1")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_pre_activations_saturate_and_nan_propagates(dtype, rng):
    """+-inf reaching a gate (here through the bias) saturates it exactly as the reference
    does (sigmoid -> 0 or 1, tanh -> -1 or 1, gradient 0); NaN stays NaN, only where it belongs."""
    B, I, H = 3, 4, 16
    x = rng.standard_normal((B, I)).astype(dtype)
    c = rng.standard_normal((B, H)).astype(dtype)
    w_ih, w_hh, _, _ = _weights(rng, I, H, "none", dtype)
    b_ih = rng.choice(np.array([np.inf, -np.inf, 0.5, -3.0]), 4 * H).astype(dtype)
    b_hh = np.zeros(4 * H, dtype)
    b_hh[[5, 2 * H + 7]] = np.nan
    dh1 = rng.standard_normal((B, H)).astype(dtype)
    (h1, c1), ctx = dk.lstm_cell(x, None, c, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
    rh, rc, cache = lstm_cell_ref(x, None, c, w_ih, w_hh, b_ih, b_hh)
    assert_close(h1, rh, dtype, what="h1")
    assert_close(c1, rc, dtype, what="c1")
    assert np.isnan(h1).any() and not np.isnan(h1[:, [0, 1, 3]]).any()
    (dx, _, dc, dw_ih, dw_hh, db_ih, _) = dk.lstm_cell_backward(ctx, dh1, None)
    r = lstm_cell_backward_ref(cache, dh1, None)
    for name, a, e in (("dc", dc, r[2]), ("db_ih", db_ih, r[5]), ("dw_ih", dw_ih, r[3])):
        assert_close(a, e, dtype, what=name)


def test_large_inputs_saturate_without_nan(rng):
    T, B, I, H = 4, 3, 5, 6
    x = rng.standard_normal((T, B, I)) * 1e3
    w = _weights(rng, I, H, "both", np.float64)
    dy = rng.standard_normal((T, B, H))
    for dtype in (np.float32, np.float64):
        args = [x.astype(dtype), None, None, *(a.astype(dtype) for a in w)]
        (y, hT, cT), ctx = dk.lstm(*args, return_ctx=True)
        grads = dk.lstm_backward(ctx, dy.astype(dtype))
        ry, _, rc, cache = lstm_ref(*args)
        assert_close(y, ry, dtype)
        assert_close(cT, rc, dtype)
        rgrads = lstm_backward_ref(cache, dy.astype(dtype))
        for g, r in zip(grads, rgrads):
            assert (g is None) == (r is None)
            assert g is None or np.isfinite(g).all()
        if dtype == np.float64:
            # (float32 cannot: a saturated sigmoid rounds to 1, so s(1-s) is 0 where float64
            # still has ~1e-8, which x ~ 1e3 then lifts to ~1e-5 in dw_ih; torch does the same.)
            for g, r in zip(grads, rgrads):
                if r is not None:
                    assert_close(g, r, dtype)


def test_dtype_promotion_and_inputs_untouched(rng):
    T, B, I, H = 3, 2, 4, 5
    x32 = rng.standard_normal((T, B, I)).astype(np.float32)
    w = _weights(rng, I, H, "both", np.float64)
    saved = [x32.copy()] + [a.copy() for a in w]
    (y, hT, cT), ctx = dk.lstm(x32, None, None, *w, return_ctx=True)  # float32 + float64 -> float64
    assert y.dtype == hT.dtype == cT.dtype == np.float64
    grads = dk.lstm_backward(ctx, np.ones((T, B, H), np.float32))
    assert all(g.dtype == np.float64 for g in grads if g is not None)
    for a, b in zip([x32, *w], saved):
        np.testing.assert_array_equal(a, b)
    ry = lstm_ref(x32, None, None, *w)[0]
    assert_close(y, ry, np.float64)
    # integers promote to float64; lists work
    xi = rng.integers(-2, 3, (T, B, I))
    wi = [rng.integers(-1, 2, a.shape) for a in w[:2]]
    y_int = dk.lstm(xi.tolist(), None, None, *wi)[0]
    assert y_int.dtype == np.float64
    assert_close(y_int, lstm_ref(xi, None, None, *wi)[0], np.float64)
    # float16 computes in float32 and comes back as float16
    y16 = dk.lstm(x32.astype(np.float16), None, None, *(a.astype(np.float16) for a in w))[0]
    assert y16.dtype == np.float16
    # non-contiguous inputs
    xt = np.asfortranarray(x32.astype(np.float64))
    assert_close(dk.lstm(xt, None, None, *w)[0], lstm_ref(xt, None, None, *w)[0], np.float64)


def test_backward_is_repeatable_and_thread_count_independent(rng):
    T, B, I, H = 5, 17, 7, 70  # large enough that the time loop runs on all threads
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w = _weights(rng, I, H, "both", np.float64)
    dy = rng.standard_normal((T, B, H))
    (y, _, _), ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
    g1 = dk.lstm_backward(ctx, dy)
    g2 = dk.lstm_backward(ctx, dy)
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)
    n = dk.get_num_threads()
    try:
        dk.set_num_threads(1)
        (y1, _, _), ctx1 = dk.lstm(x, h0, c0, *w, return_ctx=True)
        g3 = dk.lstm_backward(ctx1, dy)
    finally:
        dk.set_num_threads(n)
    assert_close(y1, y, np.float64)
    for a, b in zip(g3, g1):
        assert_close(a, b, np.float64)


# (T, B, I, H, state given, which upstream grads): batches whose recurrent-GEMM row panels split
# evenly between 2 threads, so that each thread carries its rows through every step alone
# (split_by_rows in csrc/cpu/lstm/lstm.cpp): 2 panels of the AVX2 tile's 6 rows (B = 11, 12;
# ragged at 11), 4-row panels where those split better (panel_rows in lstm_gemm.cpp: B = 5, 8, 16,
# 32 with either tile), T = 1, odd I and H; each step's work is above the time loop's threshold for
# threads (step_threads). B = 17 (3 or 5 panels) and B = 64 with long steps keep the per-step
# split by columns.
ROW_SPLIT_CASES = [
    (8, 12, 9, 70, True, "all"),
    (5, 32, 20, 67, False, "y"),
    (5, 16, 3, 80, True, "state"),
    (5, 11, 6, 96, True, "all"),
    (1, 12, 5, 300, True, "all"),
    (4, 8, 9, 127, True, "all"),
    (3, 5, 6, 127, False, "y_h"),
    (4, 17, 5, 67, True, "all"),
    (1, 64, 5, 256, True, "all"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ROW_SPLIT_CASES)
def test_rows_split_between_threads_match_reference_and_one_thread(case, dtype, rng):
    T, B, I, H, with_state, which = case
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    w = _weights(rng, I, H, "both", dtype)
    up = _upstream(rng, T, B, H, which, dtype)

    def run(threads):
        dk.set_num_threads(threads)
        out, ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
        return list(out) + list(dk.lstm(x, h0, c0, *w)) + list(dk.lstm_backward(ctx, *up))

    n, mode = dk.get_num_threads(), _cpu._contention()["mode"]
    try:
        _cpu._set_contention("off")  # full teams even on a loaded machine
        two, one = run(2), run(1)
    finally:
        dk.set_num_threads(n)
        _cpu._set_contention(mode)
    ry, rh, rc, cache = lstm_ref(x, h0, c0, *w)
    want = [ry, rh, rc, ry, rh, rc, *lstm_backward_ref(cache, *up)]
    names = ["y", "hT", "cT", "y (inference)", "hT (inference)", "cT (inference)", *GRAD_NAMES]
    for name, a, b, r in zip(names, two, one, want):
        assert (a is None) == (r is None), name
        if a is not None:
            assert_close(a, r, dtype, what=f"{case} {name} vs reference")
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{case} {name}: bits differ at 1 thread"


# (T, B, I, H, bias, state given): the weight-gradient GEMM's blocks (lstm_weight_grad in
# csrc/cpu/lstm/lstm_gemm.cpp): T*B over more than one K block (384 rows), 4H over several row
# blocks and not a multiple of 8 (a short last row panel), I + H over more than one column block
# (512), micro-tiles straddling the dw_ih | dw_hh boundary (I not a multiple of the tile width).
WEIGHT_GRAD_CASES = [
    (13, 31, 300, 70, "both", True),
    (9, 45, 500, 45, "ih", False),
    (5, 80, 40, 33, "none", True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WEIGHT_GRAD_CASES)
def test_weight_grads_over_many_blocks_match_reference_at_any_thread_count(case, dtype, rng):
    T, B, I, H, bias, with_state = case
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    w = _weights(rng, I, H, bias, dtype)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    _, ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
    grads = dk.lstm_backward(ctx, dy)
    _, _, _, cache = lstm_ref(x, h0, c0, *w)
    for name, g, r in zip(GRAD_NAMES, grads, lstm_backward_ref(cache, dy)):
        assert (g is None) == (r is None), name
        if g is not None:
            assert_close(g, r, dtype, what=f"{case} {name} vs reference")
    n = dk.get_num_threads()
    try:
        dk.set_num_threads(1)
        _, ctx1 = dk.lstm(x, h0, c0, *w, return_ctx=True)
        grads1 = dk.lstm_backward(ctx1, dy)
    finally:
        dk.set_num_threads(n)
    for name, a, b in zip(GRAD_NAMES, grads, grads1):
        if a is not None:
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{case} {name}: bits differ at 1 thread"


# Every ISA's copy of the time loops with the batch rows split between 2 threads, 4-row panels
# included (generic: always; AVX2: B = 5, 8, 16, 32), against 1 thread bit for bit and the float64
# reference, with NaN in one batch row at a panel boundary: it must reach that row's outputs and
# gradients and no other row's dx, dh0, dc0 or y.
_ROWS_ISA_SCRIPT = """
import os, sys
os.environ["DEEPKERN_POISON"] = "1"
import numpy as np, deepkern as dk
sys.path.insert(0, {tests!r})
from helpers import assert_close
from reference import lstm_ref, lstm_backward_ref
dk._cpu._set_contention("off")
rng = np.random.default_rng(7)
for T, B, I, H in ((3, 5, 6, 127), (4, 8, 9, 127), (5, 16, 3, 80), (3, 17, 4, 67), (3, 32, 7, 45)):
    for dt in (np.float32, np.float64):
        k = 1 / np.sqrt(H)
        w = [rng.uniform(-k, k, s).astype(dt) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
        x = rng.standard_normal((T, B, I)).astype(dt)
        h0, c0 = (rng.standard_normal((B, H)).astype(dt) for _ in range(2))
        dy, dhT, dcT = rng.standard_normal((T, B, H)).astype(dt), *(rng.standard_normal((B, H)).astype(dt) for _ in range(2))
        for nan_row in (None, 4):
            xs = x.copy()
            if nan_row is not None:
                xs[1, nan_row, 2] = np.nan
            res = []
            for nt in (2, 1):
                dk.set_num_threads(nt)
                out, ctx = dk.lstm(xs, h0, c0, *w, return_ctx=True)
                res.append(list(out) + list(dk.lstm(xs, h0, c0, *w)) + list(dk.lstm_backward(ctx, dy, dhT, dcT)))
            for a, b in zip(*res):
                assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (T, B, dt, nan_row)
            y, _, _, _, _, _, dx, dh0, dc0 = res[0][:9]
            if nan_row is None:
                ry, rh, rc, cache = lstm_ref(xs, h0, c0, *w)
                want = [ry, rh, rc, ry, rh, rc, *lstm_backward_ref(cache, dy, dhT, dcT)]
                for a, r in zip(res[0], want):
                    assert_close(a, r, dt, what=str((T, B, I, H, dt)))
            else:
                rest = [b for b in range(B) if b != nan_row]
                assert np.isnan(y[1:, nan_row]).all() and np.isfinite(y[:, rest]).all()
                for g in (dx, dh0, dc0):
                    assert np.isnan(g[..., nan_row, :]).any() and np.isfinite(g[..., rest, :]).all()
print(dk._cpu.isa())
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_rows_split_between_threads_on_every_isa(isa):
    r = run_with_isa(isa, _ROWS_ISA_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in (isa, "generic")


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_float32_kernels_of_every_isa(isa, tmp_path):
    """The float32 pointwise kernels are compiled per ISA; run the narrower ones in a child
    process (the ISA is chosen once per process) against the float64 reference. The second
    shape spans several blocks of the weight-gradient GEMM, whose packing follows each ISA's tile;
    the last two split the batch's row panels between threads for one tile height or the other."""
    script = tmp_path / "check.py"
    script.write_text(
        "import numpy as np, deepkern as dk, sys\n"
        "sys.path.insert(0, %r)\n"
        "from helpers import assert_close\n"
        "from reference import lstm_ref, lstm_backward_ref\n"
        "rng = np.random.default_rng(5)\n"
        "for T, B, I, H in ((4, 3, 5, 37), (9, 45, 40, 37), (8, 12, 7, 70), (8, 16, 7, 70)):\n"
        "    x = rng.standard_normal((T, B, I)).astype(np.float32) * 3\n"
        "    w = [rng.uniform(-1, 1, s).astype(np.float32) for s in ((4*H, I), (4*H, H), (4*H,), (4*H,))]\n"
        "    h0 = rng.standard_normal((B, H)).astype(np.float32)\n"
        "    dy = rng.standard_normal((T, B, H)).astype(np.float32)\n"
        "    (y, hT, cT), ctx = dk.lstm(x, h0, None, *w, return_ctx=True)\n"
        "    g = dk.lstm_backward(ctx, dy)\n"
        "    ry, rh, rc, cache = lstm_ref(x, h0, None, *w)\n"
        "    assert_close(y, ry, np.float32); assert_close(cT, rc, np.float32)\n"
        "    for a, r in zip(g, lstm_backward_ref(cache, dy)):\n"
        "        assert (a is None) == (r is None)\n"
        "        if a is not None: assert_close(a, r, np.float32)\n"
        "print(dk._cpu.isa())\n" % os.path.dirname(os.path.abspath(__file__))
    )
    env = dict(os.environ, DEEPKERN_CPU_ISA=isa, DEEPKERN_POISON="1", DEEPKERN_CONTENTION="off")
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in (isa, "generic")


def test_wrong_ctx_and_backward_argument_errors(rng):
    x = rng.standard_normal((3, 2, 4))
    w = _weights(rng, 4, 5, "both", np.float64)
    _, ctx = dk.lstm(x, None, None, *w, return_ctx=True)
    _, cctx = dk.lstm_cell(x[0], None, None, *w, return_ctx=True)
    with pytest.raises(TypeError, match="'ctx' must come from lstm"):
        dk.lstm_backward(cctx, np.zeros((3, 2, 5)))
    with pytest.raises(TypeError, match="'ctx' must come from lstm_cell"):
        dk.lstm_cell_backward(ctx, None, None)
    with pytest.raises(ValueError, match="'dy' has shape"):
        dk.lstm_backward(ctx, np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match="'dhT' has shape"):
        dk.lstm_backward(ctx, None, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="'dcT' has shape"):
        dk.lstm_backward(ctx, None, None, np.zeros((5,)))
    with pytest.raises(ValueError, match="'dh1' has shape"):
        dk.lstm_cell_backward(cctx, np.zeros((2, 6)), None)
    with pytest.raises(TypeError, match="'dc1' has dtype"):
        dk.lstm_cell_backward(cctx, None, np.zeros((2, 5), complex))


def _bad(**over):
    T, B, I, H = 3, 2, 4, 5
    a = dict(
        x=np.zeros((T, B, I)),
        h0=np.zeros((B, H)),
        c0=np.zeros((B, H)),
        w_ih=np.zeros((4 * H, I)),
        w_hh=np.zeros((4 * H, H)),
        b_ih=np.zeros(4 * H),
        b_hh=np.zeros(4 * H),
    )
    a.update(over)
    return a


BAD = [
    (dk.lstm, _bad(x=np.zeros(4)), ValueError, "'x' must be a 3-D"),
    (dk.lstm, _bad(x=np.zeros((2, 4))), ValueError, "'h0' has shape .*unbatched"),
    (
        dk.lstm_cell,
        dict(x=np.zeros(4), h=np.zeros((1, 5)), c=None, w_ih=np.zeros((20, 4)), w_hh=np.zeros((20, 5))),
        ValueError,
        "'h' has shape .*unbatched",
    ),
    (dk.lstm, _bad(x=np.zeros((0, 2, 4))), ValueError, "'x' has shape"),
    (dk.lstm, _bad(w_ih=np.zeros((20, 3))), ValueError, "'w_ih' has shape .*columns must match"),
    (dk.lstm, _bad(w_ih=np.zeros((18, 4))), ValueError, "'w_ih' .*multiple of 4"),
    (dk.lstm, _bad(w_ih=np.zeros(20)), ValueError, "'w_ih' must be a 2-D"),
    (dk.lstm, _bad(w_hh=np.zeros((20, 4))), ValueError, "'w_hh' has shape"),
    (dk.lstm, _bad(h0=np.zeros((2, 4))), ValueError, "'h0' has shape"),
    (dk.lstm, _bad(c0=np.zeros((3, 5))), ValueError, "'c0' has shape"),
    (dk.lstm, _bad(b_ih=np.zeros(5)), ValueError, "'b_ih' has shape"),
    (dk.lstm, _bad(b_hh=np.zeros((4, 5))), ValueError, "'b_hh' has shape"),
    (dk.lstm, _bad(x=np.zeros((3, 2, 4), complex)), TypeError, "'x' has dtype"),
    (dk.lstm, _bad(w_hh="abc"), TypeError, "'w_hh' has dtype"),
    (
        dk.lstm_cell,
        dict(x=np.zeros((3, 2, 4)), h=None, c=None, w_ih=np.zeros((20, 4)), w_hh=np.zeros((20, 5))),
        ValueError,
        "'x' must be a 2-D",
    ),
    (
        dk.lstm_cell,
        dict(x=np.zeros((2, 4)), h=np.zeros((2, 6)), c=None, w_ih=np.zeros((20, 4)), w_hh=np.zeros((20, 5))),
        ValueError,
        "'h' has shape",
    ),
    (
        dk.lstm_cell,
        dict(x=np.zeros((2, 4)), h=None, c=None, w_ih=np.zeros((20, 4)), w_hh=np.zeros((20, 6))),
        ValueError,
        "'w_hh' has shape",
    ),
]


@pytest.mark.parametrize("fn, kwargs, exc, match", BAD)
def test_bad_input_raises_clear_errors(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(**kwargs)


def test_mixing_numpy_with_a_list_is_fine_and_gpu_mixing_is_checked(rng):
    x = rng.standard_normal((2, 1, 3)).tolist()
    w = _weights(rng, 3, 2, "none", np.float32)
    y, hT, cT = dk.lstm(x, None, None, *w[:2])
    assert y.dtype == np.float64  # a list becomes float64, as numpy would make it
