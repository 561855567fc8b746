"""lstm_cell / lstm forward and backward on the GPU (cupy in, cupy out): against the float64
reference and the CPU backend, every output and gradient, float64 / float32 / float16.

Marked `cuda`: on a GPU with real cupy and deepkern._cuda, or in CI on the SIMT simulator with
the cupy stand-in (DEEPKERN_CUDA_SIM=1); skipped where neither is present (conftest.py).
Outputs and workspaces are NaN-poisoned before the kernels run (DEEPKERN_POISON=1).
"""

import os
import subprocess
import sys

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, assert_rel_norm
from reference import lstm_backward_ref, lstm_cell_backward_ref, lstm_cell_ref, lstm_ref
from test_lstm import GRAD_NAMES, _upstream, _weights

pytestmark = pytest.mark.cuda

# (T, B, I, H, bias, state given, which upstream grads): T = 1, B = 1, odd B and H, I != H, H not a
# multiple of the 16-wide step tile, B over one 16-row tile, 4H*H not a multiple of the 32-wide K tile.
CASES = [
    (1, 1, 1, 1, "both", True, "all"),
    (1, 3, 5, 7, "none", True, "y"),
    (4, 1, 3, 2, "both", False, "all"),
    (3, 2, 4, 1, "ih", True, "state"),
    (5, 5, 3, 11, "hh", True, "all"),
    (2, 17, 33, 19, "both", True, "y_h"),
    (3, 3, 8, 8, "none", False, "state"),
    (2, 6, 12, 37, "both", True, "all"),
]

# A few small cases tools/gpu_check.sh also runs under compute-sanitizer on a GPU.
SANITIZE = {1, 5}
CASES = [pytest.param(c, marks=pytest.mark.sanitize) if i in SANITIZE else c for i, c in enumerate(CASES)]

TOL = {np.float64: None, np.float32: None, np.float16: 1e-2}


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _dev(cp, a):
    return None if a is None else cp.asarray(a)


def _check(name, got, want, dtype, cp):
    if want is None:
        assert got is None, f"{name}: expected None"
        return
    assert isinstance(got, cp.ndarray), f"{name}: expected a cupy array, got {type(got).__name__}"
    assert got.dtype == dtype, f"{name}: dtype {got.dtype} != {np.dtype(dtype)}"
    if dtype == np.float16:
        assert_rel_norm(got, want, TOL[np.float16], what=name)
    else:
        assert_close(got, want, dtype, what=name)


def _inputs(rng, case, dtype):
    T, B, I, H, bias, with_state, which = case
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    w = _weights(rng, I, H, bias, dtype)
    return x, h0, c0, w, _upstream(rng, T, B, H, which, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_gpu_lstm_matches_reference_and_cpu(cp, case, dtype, rng):
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh), (dy, dhT, dcT) = _inputs(rng, case, dtype)
    y_r, hT_r, cT_r, cache = lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    grads_r = lstm_backward_ref(cache, dy, dhT, dcT)
    dev = [_dev(cp, a) for a in (x, h0, c0, w_ih, w_hh, b_ih, b_hh)]
    kept = [None if a is None else a.copy() for a in dev]

    (y, hT, cT), ctx = dk.lstm(*dev, return_ctx=True)
    for name, got, want in (("y", y, y_r), ("hT", hT, hT_r), ("cT", cT, cT_r)):
        _check(name, got, want, dtype, cp)
    # inference (no context: the cell state ping-pongs in a workspace) gives the same numbers
    y_inf, hT_inf, cT_inf = dk.lstm(*dev)
    for name, got, want in (
        ("y (inference)", y_inf, y),
        ("hT (inference)", hT_inf, hT),
        ("cT (inference)", cT_inf, cT),
    ):
        np.testing.assert_array_equal(got.get(), want.get(), err_msg=name)

    grads = dk.lstm_backward(ctx, _dev(cp, dy), _dev(cp, dhT), _dev(cp, dcT))
    for name, got, want in zip(GRAD_NAMES, grads, grads_r):
        _check(name, got, want, dtype, cp)
    for a, b in zip(dev, kept):
        if a is not None:
            np.testing.assert_array_equal(a.get(), b.get(), err_msg="an input was modified")

    if dtype != np.float16:  # the CPU backend runs float32/float64 (float16 computes in float32 there)
        (yc, hTc, cTc), ctx_c = dk.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
        grads_c = dk.lstm_backward(ctx_c, dy, dhT, dcT)
        for name, got, want in zip(("y", "hT", "cT") + GRAD_NAMES, (y, hT, cT) + grads, (yc, hTc, cTc) + grads_c):
            if want is not None:
                assert_close(got, want, dtype, what=f"{name} vs CPU")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", [(1, 1, 1, "both", True), (5, 3, 7, "none", False), (17, 9, 20, "ih", True)])
def test_gpu_lstm_cell_matches_reference(cp, case, dtype, rng):
    B, I, H, bias, with_state = case
    x = rng.standard_normal((B, I)).astype(dtype)
    h = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    w_ih, w_hh, b_ih, b_hh = _weights(rng, I, H, bias, dtype)
    dh1, dc1 = rng.standard_normal((B, H)).astype(dtype), rng.standard_normal((B, H)).astype(dtype)
    h1_r, c1_r, cache = lstm_cell_ref(x, h, c, w_ih, w_hh, b_ih, b_hh)
    grads_r = lstm_cell_backward_ref(cache, dh1, dc1)
    (h1, c1), ctx = dk.lstm_cell(*[_dev(cp, a) for a in (x, h, c, w_ih, w_hh, b_ih, b_hh)], return_ctx=True)
    _check("h1", h1, h1_r, dtype, cp)
    _check("c1", c1, c1_r, dtype, cp)
    grads = dk.lstm_cell_backward(ctx, cp.asarray(dh1), cp.asarray(dc1))
    names = ("dx", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh")
    for name, got, want in zip(names, grads, grads_r):
        _check(name, got, want, dtype, cp)


def test_gpu_lstm_saturates_without_nan_and_nan_propagates(cp, rng):
    T, B, I, H = 3, 2, 4, 5
    x = (rng.standard_normal((T, B, I)) * 1e4).astype(np.float32)
    w_ih, w_hh, b_ih, b_hh = _weights(rng, I, H, "both", np.float32)
    y, _, _ = dk.lstm(cp.asarray(x), None, None, *[cp.asarray(a) for a in (w_ih, w_hh, b_ih, b_hh)])
    assert not bool(cp.isnan(y).any())
    y_r = lstm_ref(x, None, None, w_ih, w_hh, b_ih, b_hh)[0]
    assert_close(y, y_r, np.float32, what="y saturated")
    x[1, 0, 2] = np.nan
    y, _, _ = dk.lstm(cp.asarray(x), None, None, *[cp.asarray(a) for a in (w_ih, w_hh, b_ih, b_hh)])
    yh = y.get()
    assert not np.isnan(yh[0]).any() and np.isnan(yh[1, 0]).all() and not np.isnan(yh[1, 1]).any()


def test_gpu_lstm_backward_is_repeatable(cp, rng):
    x, h0, c0, w, (dy, dhT, dcT) = _inputs(rng, (4, 5, 6, 7, "both", True, "all"), np.float32)
    dev = [cp.asarray(a) for a in (x, h0, c0, *w)]
    _, ctx = dk.lstm(*dev, return_ctx=True)
    g1 = dk.lstm_backward(ctx, cp.asarray(dy), cp.asarray(dhT), cp.asarray(dcT))
    g2 = dk.lstm_backward(ctx, cp.asarray(dy), cp.asarray(dhT), cp.asarray(dcT))
    for name, a, b in zip(GRAD_NAMES, g1, g2):
        np.testing.assert_array_equal(a.get(), b.get(), err_msg=name)  # no atomics: bitwise equal


def test_gpu_lstm_argument_errors(cp, rng):
    x = cp.asarray(rng.standard_normal((2, 3, 4)).astype(np.float32))
    w_ih, w_hh, _, _ = _weights(rng, 4, 5, "none", np.float32)
    with pytest.raises(TypeError, match="'w_ih'.*CPU"):
        dk.lstm(x, None, None, w_ih, cp.asarray(w_hh))
    _, ctx = dk.lstm(x, None, None, cp.asarray(w_ih), cp.asarray(w_hh), return_ctx=True)
    with pytest.raises(TypeError, match="'dy'.*GPU"):
        dk.lstm_backward(ctx, np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match="'dy' has shape"):
        dk.lstm_backward(ctx, cp.zeros((2, 3, 4), np.float32))


_ORDER_SCRIPT = r"""
import numpy as np, cupy as cp, deepkern as dk
from reference import lstm_ref, lstm_backward_ref
from helpers import assert_close
rng = np.random.default_rng(7)
T, B, I, H = 3, 17, 5, 19
x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
w_ih, w_hh, b = rng.standard_normal((4*H, I)) * .3, rng.standard_normal((4*H, H)) * .3, rng.standard_normal(4*H) * .1
dy = rng.standard_normal((T, B, H))
y_r, hT_r, cT_r, cache = lstm_ref(x, h0, c0, w_ih, w_hh, b, None)
gr = lstm_backward_ref(cache, dy)
(y, hT, cT), ctx = dk.lstm(*[cp.asarray(a.astype(np.float32)) for a in (x, h0, c0, w_ih, w_hh, b)], return_ctx=True)
g = dk.lstm_backward(ctx, cp.asarray(dy.astype(np.float32)))
for n, a, e in zip("y hT cT dx dh0 dc0 dw_ih dw_hh db".split(), (y, hT, cT) + g[:6], (y_r, hT_r, cT_r) + gr[:6]):
    assert_close(a, e, np.float32, what=n)
print("ok")
"""


@pytest.mark.parametrize("order", ["reversed", "random:3"])
def test_gpu_lstm_in_other_thread_orders(order):
    """The simulator's other thread orders (a missing barrier shows in at least one)."""
    if os.environ.get("DEEPKERN_CUDA_SIM") != "1":
        pytest.skip("thread orders are a simulator setting (DEEPKERN_CUDA_SIM=1)")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, DEEPKERN_SIM_ORDER=order)
    inherited = [os.path.abspath(d) for d in env.get("PYTHONPATH", "").split(os.pathsep) if d]
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "cupy_standin"), here] + inherited)
    r = subprocess.run(
        [sys.executable, "-c", _ORDER_SCRIPT], env=env, cwd=here, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_gpu_lstm_finite_differences(cp, rng):
    """float64 on the device: the analytic dW_hh and dx against central differences of the GPU forward."""
    from helpers import numeric_grad

    x, h0, c0, (w_ih, w_hh, b_ih, b_hh), (dy, _, _) = _inputs(rng, (3, 2, 3, 2, "both", True, "y"), np.float64)
    dev = lambda a: cp.asarray(a)  # noqa: E731

    def f_w(w):
        return dk.lstm(dev(x), dev(h0), dev(c0), dev(w_ih), dev(w), dev(b_ih), dev(b_hh))[0].get()

    def f_x(xx):
        return dk.lstm(dev(xx), dev(h0), dev(c0), dev(w_ih), dev(w_hh), dev(b_ih), dev(b_hh))[0].get()

    _, ctx = dk.lstm(dev(x), dev(h0), dev(c0), dev(w_ih), dev(w_hh), dev(b_ih), dev(b_hh), return_ctx=True)
    dx, _, _, _, dw_hh, _, _ = dk.lstm_backward(ctx, dev(dy))
    assert_close(dw_hh, numeric_grad(f_w, w_hh, dy), np.float64, rtol=1e-6, atol=1e-8, what="dw_hh")
    assert_close(dx, numeric_grad(f_x, x, dy), np.float64, rtol=1e-6, atol=1e-8, what="dx")
