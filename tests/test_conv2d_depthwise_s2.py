"""Depthwise dx for column stride 2 (gathered per column phase, not scattered): odd and even
widths, widths below and above one vector block, strides (1..3, 2), dilations, paddings, kernel
sizes 1..5, both dtypes, against the float64 reference and torch; NaN / Inf in x, dy and w (an
Inf weight takes the scatter, whose sums never see padding zeros)."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from reference import conv2d_backward_ref


def _cases(seed, count):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        k = int(rng.integers(1, 6))
        s = (int(rng.integers(1, 4)), 2)
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        p = (int(rng.integers(0, k)), int(rng.integers(0, k)))
        H = int(rng.integers(1, 16))
        W = int(rng.choice([int(rng.integers(1, 20)), int(rng.integers(30, 90))]))
        if H + 2 * p[0] < d[0] * (k - 1) + 1 or W + 2 * p[1] < d[1] * (k - 1) + 1:
            continue
        out.append(((int(rng.integers(1, 3)), int(rng.integers(1, 5)), H, W), k, s, p, d))
    return out


CASES = _cases(7, 24) + [((2, 8, 56, 56), 3, (2, 2), (1, 1), (1, 1)), ((1, 3, 9, 33), 3, (2, 2), (1, 1), (1, 1))]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_depthwise_stride2_dx(case, dt, rng):
    xs, k, s, p, d = case
    C = xs[1]
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal((C, 1, k, k)).astype(dt)
    y, ctx = dk.conv2d(x, w, None, s, p, d, C, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    rdx, rdw, _ = conv2d_backward_ref(x, w, dy, False, s, p, d, C)
    assert_close(dx, rdx, dt, what="dx vs reference")
    assert_close(dw, rdw, dt, what="dw vs reference")
    xt = torch.tensor(x, requires_grad=True)
    F.conv2d(xt, torch.tensor(w), None, s, p, d, C).backward(torch.tensor(dy))
    assert_close(dx, xt.grad, dt, what="dx vs torch")


@pytest.mark.parametrize("where", ["x", "dy", "w", "nan_dy"])
def test_depthwise_stride2_nonfinite_as_torch(where, rng):
    x = rng.standard_normal((2, 4, 9, 37)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    if where == "x":
        x[1, 2, 4, 17] = np.inf
    if where == "w":
        w[3, 0, 1, 2] = np.inf
    y, ctx = dk.conv2d(x, w, None, 2, 1, 1, 4, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    if where == "dy":
        dy[0, 1, 2, 0] = -np.inf
    if where == "nan_dy":
        dy[1, 3, 4, 18] = np.nan
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    F.conv2d(xt, wt, None, 2, 1, 1, 4).backward(torch.tensor(dy))
    for name, got, want in (("dx", dx, xt.grad.numpy()), ("dw", dw, wt.grad.numpy())):
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        assert np.array_equal(np.isinf(got), np.isinf(want)), name
        fin = np.isfinite(want)
        assert_close(np.where(fin, got, 0), np.where(fin, want, 0), np.float32, what=name)
