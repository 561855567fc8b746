"""Depthwise 3x3 stride-1 backward with dx, dw and db in one pass per plane (K = C, dilation 1,
padding <= 2): odd and even sizes, rows narrower and wider than one vector block and not a multiple of
it, padding 0, 1, 2 (also different per axis), one sample, both dtypes, against the float64 reference
and torch with NaN-filled outputs; dx, dw, db alone and in pairs; Inf / NaN in x, dy and w as torch
has them; finite differences; the same dw and db bits at 1 and 2 threads; each ISA copy."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close, assert_grads_at_random_points, run_with_isa
from reference import conv2d_backward_ref

# (x shape, padding (ph, pw))
CASES = [
    ((2, 3, 56, 56), (1, 1)),
    ((1, 4, 9, 33), (1, 1)),
    ((3, 2, 7, 5), (0, 0)),
    ((2, 3, 12, 35), (0, 1)),
    ((1, 2, 11, 64), (2, 2)),
    ((2, 5, 13, 17), (1, 0)),
    ((1, 3, 3, 3), (0, 0)),
    ((2, 2, 4, 31), (2, 1)),
    ((1, 3, 16, 97), (1, 2)),
    ((1, 2, 1, 1), (1, 1)),
]


def _inputs(rng, xs, dt, p):
    C = xs[1]
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal((C, 1, 3, 3)).astype(dt)
    params, _ = _conv_params("conv2d", x, w, None, 1, p, 1, C)
    dy = rng.standard_normal((xs[0], C, params["Ho"], params["Wo"])).astype(dt)
    return x, w, dy, params


def _torch_grads(x, w, dy, p):
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.zeros(w.shape[0], dtype=xt.dtype, requires_grad=True)
    F.conv2d(xt, wt, bt, 1, p, 1, x.shape[1]).backward(torch.tensor(dy))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_depthwise_s1_backward_matches_reference_and_torch(case, dt, rng):
    xs, p = case
    x, w, dy, params = _inputs(rng, xs, dt, p)
    dx, dw, db = np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(xs[1], np.nan, dt)
    _cpu.conv2d_backward(params, x, w, dy, dx, dw, db)
    rdx, rdw, _ = conv2d_backward_ref(x, w, dy, True, (1, 1), p, (1, 1), xs[1])
    rdb = dy.astype(np.float64).sum(axis=(0, 2, 3))
    for what, got, want in (("dx", dx, rdx), ("dw", dw, rdw), ("db", db, rdb)):
        assert_close(got, want, dt, what=f"{what} vs reference")
    for what, got, want in zip(("dx", "dw", "db"), (dx, dw, db), _torch_grads(x, w, dy, p)):
        assert_close(got, want, dt, what=f"{what} vs torch")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("wanted", ["dx", "dw", "db", "dx dw", "dx db", "dw db"])
def test_depthwise_s1_each_gradient_alone_or_in_pairs(dt, wanted, rng):
    xs, p = (2, 3, 15, 37), (1, 2)
    x, w, dy, params = _inputs(rng, xs, dt, p)
    outs = {"dx": np.full_like(x, np.nan), "dw": np.full_like(w, np.nan), "db": np.full(3, np.nan, dt)}
    args = [outs[n] if n in wanted.split() else None for n in ("dx", "dw", "db")]
    _cpu.conv2d_backward(params, x, w, dy, *args)
    rdx, rdw, _ = conv2d_backward_ref(x, w, dy, True, (1, 1), p, (1, 1), 3)
    want = {"dx": rdx, "dw": rdw, "db": dy.astype(np.float64).sum(axis=(0, 2, 3))}
    for n in wanted.split():
        assert_close(outs[n], want[n], dt, what=n)
    for n in set(outs) - set(wanted.split()):
        assert np.isnan(outs[n]).all(), f"{n} was not asked for but written"


def test_depthwise_s1_gradient_by_finite_differences(rng):
    x = rng.standard_normal((1, 2, 7, 9))
    w = rng.standard_normal((2, 1, 3, 3))
    b = rng.standard_normal(2)
    y, ctx = dk.conv2d(x, w, b, 1, 1, 1, 2, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    assert_grads_at_random_points(lambda: dk.conv2d(x, w, b, 1, 1, 1, 2), ((x, dx), (w, dw), (b, db)), dy, rng)


# where the non-finite value goes: (array, index, value)
NONFINITE = [
    ("x", (1, 2, 4, 17), np.inf),
    ("x", (0, 1, 8, 36), np.nan),  # last column
    ("x", (0, 0, 0, 0), -np.inf),  # a corner: next to the padding
    ("dy", (0, 1, 0, 0), -np.inf),
    ("dy", (1, 3, 3, 17), np.nan),
    ("w", (3, 0, 1, 2), np.inf),
    ("w", (0, 0, 0, 0), np.nan),
]


def _live_tap_dw(x, dy, pad):
    """dw of a depthwise 3x3 stride-1 convolution from the taps inside the image only, in float64."""
    N, C, H, W = x.shape
    Ho, Wo = dy.shape[2:]
    dw = np.zeros((C, 1, 3, 3))
    for i in range(3):
        for j in range(3):
            for oh in range(Ho):
                ih = oh - pad + i
                if not 0 <= ih < H:
                    continue
                for ow in range(Wo):
                    iw = ow - pad + j
                    if 0 <= iw < W:
                        dw[:, 0, i, j] += (dy[:, :, oh, ow].astype(np.float64) * x[:, :, ih, iw]).sum(axis=0)
    return dw


@pytest.mark.parametrize("where", NONFINITE)
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_depthwise_s1_nonfinite_as_torch(where, pad, rng):
    name, idx, val = where
    x, w, dy, params = _inputs(rng, (2, 4, 9, 37), np.float32, pad)
    {"x": x, "w": w, "dy": dy}[name][idx] = val
    dx, dw, db = np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(4, np.nan, np.float32)
    _cpu.conv2d_backward(params, x, w, dy, dx, dw, db)
    want_dx, want_dw, want_db = _torch_grads(x, w, dy, pad)
    if name == "dy" and pad == 2 and idx[2:] == (0, 0):
        # torch's dw here multiplies padding zeros by the Inf (NaN) while at padding 1 it does not; ours
        # sums the live taps only, at every padding: that sum, in float64, is what dw must be
        want_dw = _live_tap_dw(x, dy, pad)
        assert np.isnan(_torch_grads(x, w, dy, pad)[1]).any() and not np.isnan(want_dw).all()
    for what, got, want in zip(("dx", "dw", "db"), (dx, dw, db), (want_dx, want_dw, want_db)):
        assert np.array_equal(np.isnan(got), np.isnan(want)), what
        assert np.array_equal(np.isinf(got), np.isinf(want)), what
        fin = np.isfinite(want)
        assert_close(np.where(fin, got, 0), np.where(fin, want, 0), np.float32, what=what)


def test_depthwise_s1_same_bits_at_any_thread_count(rng):
    x, w, dy, params = _inputs(rng, (5, 7, 23, 41), np.float32, 1)
    got, before = [], dk.get_num_threads()
    try:
        for nt in (1, 2, 3):
            dk.set_num_threads(nt)
            outs = [np.full_like(x, np.nan), np.full_like(w, np.nan), np.full(7, np.nan, np.float32)]
            _cpu.conv2d_backward(params, x, w, dy, *outs)
            got.append(outs)
    finally:
        dk.set_num_threads(before)
    for outs in got[1:]:
        for a, b in zip(got[0], outs):
            assert np.array_equal(a, b)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
sys.path.insert(0, {tests!r})
from reference import conv2d_backward_ref
rng = np.random.default_rng(3)
# widths around every copy's vector (4 / 8 / 16 floats, 2 / 4 / 8 doubles), paddings 0-2
cases = [((2, 3, 11, 9), (1, 1)), ((1, 2, 8, 33), (0, 1)), ((2, 2, 13, 70), (2, 1)), ((1, 2, 9, 17), (1, 2)),
         ((2, 4, 20, 56), (1, 1)), ((1, 2, 5, 3), (2, 0))]
for dt in (np.float32, np.float64):
    tol = 2e-5 if dt == np.float32 else 1e-12
    for xs, p in cases:
        C = xs[1]
        x, w, b = (rng.standard_normal(s).astype(dt) for s in (xs, (C, 1, 3, 3), (C,)))
        y, ctx = dk.conv2d(x, w, b, 1, p, 1, C, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(dt)
        got = dk.conv2d_backward(ctx, dy)
        want = [*conv2d_backward_ref(x, w, dy, True, (1, 1), p, (1, 1), C)[:2], dy.sum(axis=(0, 2, 3))]
        for g, r in zip(got, want):
            err = np.abs(g - r).max() / max(1.0, np.abs(r).max())
            assert err < tol, (dt, xs, p, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_depthwise_s1_each_isa(isa):
    """Each ISA copy in its own process (DEEPKERN_CPU_ISA caps the copy; a CPU without it runs a lower one)."""
    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
