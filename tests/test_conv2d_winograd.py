"""conv2d's Winograd F(4x4, 3x3) path (forward and the stride-1 dx): shapes that take it (asserted
through _cpu.conv2d_plan) with tile remainders (Ho, Wo not multiples of 4), N = 1, channel counts
that are not multiples of the vector width, padding 0..2, both dtypes, several thread counts,
against the float64 reference and torch, finite differences, and non-finite inputs (which leave
the Winograd path: its transforms would smear one Inf into NaN over a tile)."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close
from reference import conv2d_backward_ref, conv2d_ref


def _plan(xs, ws, p, dt, threads=None):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, 1, p, 1)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)


def _check(rng, xs, ws, p, dt, bias=True, vs_torch=False):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y, ctx = dk.conv2d(x, w, b, 1, p, 1, return_ctx=True)
    what = f"x{xs} w{ws} p{p} {np.dtype(dt).name}"
    assert_close(y, conv2d_ref(x, w, b, (1, 1), (p, p), (1, 1)), dtype=dt, what="y " + what)
    dy = rng.standard_normal(y.shape).astype(dt)
    grads = dk.conv2d_backward(ctx, dy)
    for name, g, r in zip(("dx", "dw", "db"), grads, conv2d_backward_ref(x, w, dy, bias, (1, 1), (p, p), (1, 1))):
        if r is None:
            assert g is None
        else:
            assert_close(g, r, dtype=dt, what=f"{name} {what}")
    if vs_torch:
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b) if bias else None
        ty = torch.nn.functional.conv2d(tx, tw, tb, padding=p)
        ty.backward(torch.tensor(dy))
        assert_close(y, ty, dtype=dt, what="torch y " + what)
        assert_close(grads[0], tx.grad, dtype=dt, what="torch dx " + what)


# (x shape, w shape, padding): every one takes Winograd forward in float64, and in float32 where
# it sums at most 64 channels (more would round too much: conv2d_winograd.h)
SHAPES = [
    ((2, 64, 16, 16), (64, 64, 3, 3), 1),  # whole tiles
    ((1, 64, 14, 15), (72, 64, 3, 3), 1),  # N = 1; Ho % 4 = 2, Wo % 4 = 3
    ((3, 40, 21, 17), (47, 40, 3, 3), 1),  # C, K not multiples of 16; Ho % 4 = 1
    ((2, 64, 19, 22), (40, 64, 3, 3), 0),  # no padding: Ho = 17, Wo = 20
    ((2, 32, 21, 18), (48, 32, 3, 3), 2),  # padding 2: border outputs see only padding and one row
    ((1, 100, 11, 9), (128, 100, 3, 3), 1),  # odd channel counts, few tiles
    ((2, 128, 8, 8), (96, 128, 3, 3), 1),  # float64 only
]


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_winograd_shapes(rng, case, dt):
    xs, ws, p = case
    takes = _plan(xs, ws, p, dt)["forward"] == "winograd"
    assert takes == (dt == np.float64 or xs[1] <= 64), (xs, ws, p)
    _check(rng, xs, ws, p, dt, bias=True, vs_torch=dt == np.float32)


def test_winograd_dx_and_the_choice():
    """dx of a stride-1 3x3 (a convolution of dy with the flipped weights) takes Winograd when its
    own shape pays; too few channels, strides, dilation, other kernels and float32 with more than
    64 channels summed do not."""
    assert _plan((2, 64, 16, 16), (64, 64, 3, 3), 1, np.float32)["dx"] == "winograd"
    assert _plan((2, 64, 14, 15), (40, 64, 3, 3), 0, np.float64)["dx"] == "winograd"
    assert _plan((2, 4, 16, 16), (16, 4, 3, 3), 1, np.float32)["forward"] != "winograd"
    assert _plan((2, 256, 8, 8), (64, 256, 3, 3), 1, np.float32)["forward"] != "winograd"
    assert _plan((2, 72, 16, 16), (64, 72, 3, 3), 1, np.float32)["forward"] != "winograd"
    assert _plan((2, 64, 16, 16), (72, 64, 3, 3), 1, np.float32)["dx"] != "winograd"
    assert _plan((2, 256, 8, 8), (64, 256, 3, 3), 1, np.float64)["forward"] == "winograd"
    assert _plan((2, 64, 8, 8), (256, 64, 3, 3), 1, np.float32)["dx"] != "winograd"  # sums 256 channels
    assert _plan((2, 64, 16, 16), (64, 64, 5, 5), 2, np.float32)["forward"] != "winograd"
    params, _ = _conv_params("conv2d", np.empty((2, 64, 16, 16)), np.empty((64, 64, 3, 3)), None, 2, 1, 1)
    assert _cpu.conv2d_plan(params, "float64")["forward"] != "winograd"
    params, _ = _conv_params("conv2d", np.empty((2, 64, 16, 16)), np.empty((64, 64, 3, 3)), None, 1, 2, 2)
    assert _cpu.conv2d_plan(params, "float64")["forward"] != "winograd"
    with pytest.raises(ValueError, match="dtype"):
        _cpu.conv2d_plan(params, "float16")


def test_winograd_random_shapes(rng):
    taken = 0
    for _ in range(12):
        N, H, W = int(rng.integers(1, 4)), int(rng.integers(6, 24)), int(rng.integers(6, 24))
        C, K, p = int(rng.integers(24, 65)), int(rng.integers(24, 65)), int(rng.integers(0, 3))
        dt = np.float64 if rng.integers(0, 2) else np.float32
        taken += _plan((N, C, H, W), (K, C, 3, 3), p, dt)["forward"] == "winograd"
        _check(rng, (N, C, H, W), (K, C, 3, 3), p, dt, bias=bool(rng.integers(0, 2)))
    assert taken >= 4


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 3])
def test_winograd_threads(rng, threads, N):
    """N = 1: the threads split the sample's bands of tile rows; N = 3: whole samples."""
    xs, ws = (N, 48, 30, 26), (40, 48, 3, 3)
    assert _plan(xs, ws, 1, np.float32, threads)["forward"] == "winograd"
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        _check(rng, xs, ws, 1, np.float32)
        _check(rng, xs, ws, 0, np.float64, bias=False)
    finally:
        dk.set_num_threads(old)


def test_winograd_finite_differences(rng):
    xs, ws = (1, 32, 12, 13), (40, 32, 3, 3)
    assert _plan(xs, ws, 1, np.float64)["forward"] == "winograd"
    assert _plan(xs, ws, 1, np.float64)["dx"] == "winograd"
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y, ctx = dk.conv2d(x, w, b, 1, 1, 1, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    for _ in range(12):  # central differences at a sample of dx's and dw's entries
        for name, a, g in (("dx", x, dx), ("dw", w, dw)):
            i = tuple(int(rng.integers(0, n)) for n in a.shape)
            e = np.zeros_like(a)
            e[i] = 1e-6
            f = (lambda v: dk.conv2d(v, w, b, 1, 1, 1)) if name == "dx" else (lambda v: dk.conv2d(x, v, b, 1, 1, 1))
            num = float(np.sum((f(a + e) - f(a - e)) * dy)) / 2e-6
            assert_close(np.array([g[i]]), np.array([num]), rtol=1e-6, atol=1e-8, what=f"{name}{i}")


@pytest.mark.parametrize("where", ["x", "w", "dy"])
def test_winograd_nonfinite_matches_torch(rng, where):
    """An Inf in x, w or dy: NaN / Inf exactly where torch has them (the passes leave Winograd)."""
    xs, ws = (2, 32, 12, 12), (32, 32, 3, 3)
    assert _plan(xs, ws, 1, np.float64)["forward"] == "winograd"
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    if where == "x":
        x[1, 5, 3, 7] = np.inf
    if where == "w":
        w[3, 2, 1, 1] = -np.inf
    y, ctx = dk.conv2d(x, w, None, 1, 1, 1, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    if where == "dy":
        dy[0, 4, 6, 6] = np.inf
    dx, _, _ = dk.conv2d_backward(ctx, dy)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w)
    ty = torch.nn.functional.conv2d(tx, tw, padding=1)
    ty.backward(torch.tensor(dy))
    for name, got, want in (("y", y, ty.detach().numpy()), ("dx", dx, tx.grad.numpy())):
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), fin) and np.array_equal(np.isnan(got), np.isnan(want)), name
        assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), what=name)
