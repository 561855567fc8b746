"""Depthwise 3x3 stride-2 convolution in column phases (forward with any channel multiplier; dx and dw
together for one output per channel): odd and even sizes, outputs narrower and wider than one vector
block and not a multiple of it, padding 0, 1, 2 (also different per axis), one sample, both dtypes,
against the float64 reference and torch; Inf / NaN in x (also in columns no output reads), dy and w
as torch has them; dx or dw alone; each ISA copy."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deepkern import _cpu
from deepkern.functional.conv import _conv2d_backward
from helpers import assert_close, assert_grads_at_random_points, run_with_isa
from reference import conv2d_backward_ref, conv2d_ref

# (x shape, padding (ph, pw), channel multiplier)
CASES = [
    ((2, 3, 56, 56), (1, 1), 1),
    ((1, 4, 9, 33), (1, 1), 1),
    ((3, 2, 7, 5), (0, 0), 1),
    ((2, 3, 12, 35), (0, 1), 1),
    ((1, 2, 11, 64), (2, 2), 1),
    ((2, 5, 13, 66), (1, 0), 1),
    ((1, 3, 3, 3), (0, 0), 1),
    ((2, 2, 4, 31), (2, 1), 1),
    ((1, 3, 16, 97), (1, 2), 1),
    ((2, 3, 10, 34), (1, 1), 2),
    ((1, 2, 9, 17), (0, 2), 3),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_depthwise_s2_phases_match_reference_and_torch(case, dt, rng):
    xs, p, m = case
    C = xs[1]
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal((C * m, 1, 3, 3)).astype(dt)
    b = rng.standard_normal(C * m).astype(dt)
    y, ctx = dk.conv2d(x, w, b, 2, p, 1, C, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    assert_close(y, conv2d_ref(x, w, b, (2, 2), p, (1, 1), C), dt, what="y vs reference")
    rdx, rdw, _ = conv2d_backward_ref(x, w, dy, True, (2, 2), p, (1, 1), C)
    assert_close(dx, rdx, dt, what="dx vs reference")
    assert_close(dw, rdw, dt, what="dw vs reference")
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = F.conv2d(xt, wt, torch.tensor(b), 2, p, 1, C)
    yt.backward(torch.tensor(dy))
    assert_close(y, yt.detach(), dt, what="y vs torch")
    assert_close(dx, xt.grad, dt, what="dx vs torch")
    assert_close(dw, wt.grad, dt, what="dw vs torch")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_depthwise_s2_dx_or_dw_alone(dt, rng):
    x = rng.standard_normal((2, 3, 15, 37)).astype(dt)
    w = rng.standard_normal((3, 1, 3, 3)).astype(dt)
    y, ctx = dk.conv2d(x, w, None, 2, 1, 1, 3, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    rdx, rdw, _ = conv2d_backward_ref(x, w, dy, False, (2, 2), (1, 1), (1, 1), 3)
    dx, dw, _ = _conv2d_backward(ctx, dy, input_grad=False)
    assert dx is None
    assert_close(dw, rdw, dt, what="dw alone")
    dx = np.full_like(x, np.nan)
    _cpu.conv2d_backward(ctx.params, x, w, dy, dx, None, None)
    assert_close(dx, rdx, dt, what="dx alone")


def test_depthwise_s2_gradient_by_finite_differences(rng):
    x = rng.standard_normal((1, 2, 7, 9))
    w = rng.standard_normal((2, 1, 3, 3))
    y, ctx = dk.conv2d(x, w, None, 2, 1, 1, 2, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    assert_grads_at_random_points(lambda: dk.conv2d(x, w, None, 2, 1, 1, 2), ((x, dx), (w, dw)), dy, rng)


# where the non-finite value goes: (array, index, value)
NONFINITE = [
    ("x", (1, 2, 4, 17), np.inf),
    ("x", (0, 1, 8, 36), np.nan),  # last column: read by the last output (padding 1, W = 37)
    ("x", (0, 0, 3, 0), -np.inf),
    ("dy", (0, 1, 2, 0), -np.inf),
    ("dy", (1, 3, 3, 17), np.nan),
    ("dy", (0, 0, 0, 5), np.inf),
    ("w", (3, 0, 1, 2), np.inf),
    ("w", (0, 0, 0, 0), np.nan),
]


@pytest.mark.parametrize("where", NONFINITE)
@pytest.mark.parametrize("pad", [0, 1])
def test_depthwise_s2_nonfinite_as_torch(where, pad, rng):
    name, idx, val = where
    x = rng.standard_normal((2, 4, 9, 37)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    if name == "x":
        x[idx] = val
    if name == "w":
        w[idx] = val
    y, ctx = dk.conv2d(x, w, None, 2, pad, 1, 4, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    if name == "dy":
        dy[idx] = val
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = F.conv2d(xt, wt, None, 2, pad, 1, 4)
    yt.backward(torch.tensor(dy))
    checks = [("dx", dx, xt.grad.numpy()), ("dw", dw, wt.grad.numpy())]
    if name != "w":  # the forward adds a non-finite w times padding zeros (NaN); torch's kernels differ there
        checks.append(("y", y, yt.detach().numpy()))
    for what, got, want in checks:
        assert np.array_equal(np.isnan(got), np.isnan(want)), what
        assert np.array_equal(np.isinf(got), np.isinf(want)), what
        fin = np.isfinite(want)
        assert_close(np.where(fin, got, 0), np.where(fin, want, 0), np.float32, what=what)


def test_depthwise_s2_unread_nonfinite_column_is_ignored(rng):
    """Padding 0, even width: the last column feeds no output, so an Inf there changes nothing."""
    x = rng.standard_normal((1, 2, 9, 36)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    y0, ctx0 = dk.conv2d(x, w, None, 2, 0, 1, 2, return_ctx=True)
    dy = rng.standard_normal(y0.shape).astype(np.float32)
    dx0, dw0, _ = dk.conv2d_backward(ctx0, dy)
    x[0, 1, 4, 35] = np.inf
    y1, ctx1 = dk.conv2d(x, w, None, 2, 0, 1, 2, return_ctx=True)
    dx1, dw1, _ = dk.conv2d_backward(ctx1, dy)
    assert np.array_equal(y0, y1) and np.array_equal(dx0, dx1) and np.array_equal(dw0, dw1)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
sys.path.insert(0, {tests!r})
from reference import conv2d_ref, conv2d_backward_ref
rng = np.random.default_rng(3)
# widths around every copy's vector (4 / 8 / 16 floats, 2 / 4 / 8 doubles), paddings 0-2, a multiplier
cases = [((2, 3, 11, 9), (1, 1), 1), ((1, 2, 8, 33), (0, 1), 1), ((2, 2, 13, 70), (2, 1), 1),
         ((1, 2, 9, 17), (1, 2), 2), ((2, 4, 20, 56), (1, 1), 1)]
for dt in (np.float32, np.float64):
    tol = 2e-5 if dt == np.float32 else 1e-12
    for xs, p, m in cases:
        C = xs[1]
        x, w, b = (rng.standard_normal(s).astype(dt) for s in (xs, (C * m, 1, 3, 3), (C * m,)))
        y, ctx = dk.conv2d(x, w, b, 2, p, 1, C, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(dt)
        got = [y, *dk.conv2d_backward(ctx, dy)]
        want = [conv2d_ref(x, w, b, (2, 2), p, (1, 1), C), *conv2d_backward_ref(x, w, dy, True, (2, 2), p, (1, 1), C)]
        for g, r in zip(got, want):
            err = np.abs(g - r).max() / max(1.0, np.abs(r).max())
            assert err < tol, (dt, xs, p, m, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_depthwise_s2_each_isa(isa):
    """Each ISA copy in its own process (DEEPKERN_CPU_ISA caps the copy; a CPU without it runs a lower one)."""
    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
