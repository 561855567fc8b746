"""conv2d's im2col of whole small images through zero-padded planes (csrc/cpu/conv2d/conv2d_plane.h):
forward, dx and dw against the float64 reference and torch on odd shapes (N = 1, C = 1, H, W 1..9,
padding 0..2, stride 1..2, dilation, rectangular kernels), NaN/Inf propagation, input cells no
window reaches, and thread-count independence. Which lowering runs is the C++'s own answer
(_cpu.conv2d_plan), so each test asserts that its shapes take the plane path."""

import itertools

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close
from reference import conv2d_backward_ref, conv2d_ref


def _plan(xs, ws, s, p, d, dt, threads=1):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)


def _out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _cases():
    """Odd small shapes: every H, W in 1..9 once, padding 0..2, stride 1..2, kernels 1..3 (rectangular
    too), dilation 1..2, N and C of 1 among them; only geometries with a valid output."""
    rng = np.random.default_rng(1234)
    out = []
    for H, W in itertools.product(range(1, 10), repeat=2):
        if (H * 9 + W) % 4:  # a quarter of the 81 sizes, every H and every W among them
            continue
        for _ in range(2):
            kh, kw = (int(v) for v in rng.integers(1, 4, 2))
            s = tuple(int(v) for v in rng.integers(1, 3, 2))
            p = tuple(int(v) for v in rng.integers(0, 3, 2))
            d = tuple(int(v) for v in rng.integers(1, 3, 2)) if rng.random() < 0.3 else (1, 1)
            if _out(H, kh, s[0], p[0], d[0]) < 1 or _out(W, kw, s[1], p[1], d[1]) < 1:
                continue
            N, C, K = int(rng.choice([1, 3, 5])), int(rng.choice([1, 2, 7])), int(rng.choice([1, 4, 9]))
            out.append(((N, C, H, W), (K, C, kh, kw), s, p, d))
    return out


CASES = _cases()


def _torch_grads(x, w, b, dy, s, p, d):
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
    ty.backward(torch.tensor(dy))
    return ty, tx.grad, tw.grad, None if b is None else tb.grad


def _check(x, w, b, s, p, d, dy=None, rng=None, skip_torch=()):
    dt = x.dtype
    what = f"x{x.shape} w{w.shape} s{s} p{p} d{d} {dt.name}"
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    if dy is None:
        dy = rng.standard_normal(y.shape).astype(dt)
    grads = dk.conv2d_backward(ctx, dy)
    ref = (conv2d_ref(x, w, b, s, p, d), *conv2d_backward_ref(x, w, dy, b is not None, s, p, d))
    theirs = _torch_grads(x, w, b, dy, s, p, d)
    for name, g, r, t in zip(("y", "dx", "dw", "db"), (y, *grads), ref, theirs):
        if r is None:
            assert g is None
            continue
        assert_close(g, r, dtype=dt, what=f"{name} {what}")
        if name not in skip_torch:
            assert_close(g, t, dtype=dt, what=f"torch {name} {what}")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_planes_odd_shapes(rng, dt):
    taken = 0
    for xs, ws, s, p, d in CASES:
        plan = _plan(xs, ws, s, p, d, dt)
        taken += plan["dw"] == "im2col_planes"
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[0]).astype(dt) if sum(xs) % 2 else None
        _check(x, w, b, s, p, d, rng=rng)
    assert taken >= len(CASES) * 3 // 4, (taken, len(CASES))


def test_main_job_shapes_take_planes():
    """The digits CNN's second convolution (4x4 images) and LeNet-like 5x5 planes take the plane path."""
    for dt in (np.float32, np.float64):
        for xs, ws in [((32, 16, 4, 4), (32, 16, 3, 3)), ((3, 6, 5, 5), (16, 6, 3, 3)), ((1, 1, 3, 7), (2, 1, 3, 3))]:
            plan = _plan(xs, ws, (1, 1), (1, 1), (1, 1), dt)
            assert plan["dx"] == "im2col_planes" and plan["dw"] == "im2col_planes", (xs, ws, plan)
    # the first convolution (C = 1, 8x8): dx by planes rather than the phase scatter; wider images keep
    # the scatter
    for dt in (np.float32, np.float64):
        assert _plan((32, 1, 8, 8), (16, 1, 3, 3), (1, 1), (1, 1), (1, 1), dt)["dx"] == "im2col_planes"
        assert _plan((2, 3, 20, 20), (8, 3, 3, 3), (1, 1), (1, 1), (1, 1), dt)["dx"] == "shifted_scatter"
    # wide outputs keep the row-wise lowering (stride 9: im2col)
    plan = _plan((1, 2, 200, 200), (3, 2, 3, 3), (9, 9), (1, 1), (1, 1), np.float32)
    assert plan["dw"] == "im2col", plan


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_planes_main_job_shapes(rng, dt):
    for xs, ws in [((32, 16, 4, 4), (32, 16, 3, 3)), ((32, 1, 8, 8), (16, 1, 3, 3))]:
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[0]).astype(dt)
        _check(x, w, b, (1, 1), (1, 1), (1, 1), rng=rng)


def test_planes_unreached_input_cells_get_zero(rng):
    """Stride 2 with a 1-wide kernel leaves every other input row and column out of all windows:
    their dx must be 0 (the output is poisoned before the kernel runs)."""
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    assert _plan(x.shape, w.shape, (2, 2), (0, 0), (1, 1), np.float32)["dx"] == "im2col_planes"
    _check(x, w, None, (2, 2), (0, 0), (1, 1), rng=rng)
    y, ctx = dk.conv2d(x, w, None, 2, 0, return_ctx=True)
    dx, _, _ = dk.conv2d_backward(ctx, np.ones_like(y))
    assert np.all(dx[:, :, 1::2, :] == 0) and np.all(dx[:, :, :, 1::2] == 0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["x", "w", "dy"])
def test_planes_nonfinite_propagate(rng, dt, where):
    """NaN and Inf in x, w or dy land where torch puts them, through the plane path (a 4x4 image) and
    through im2col's fallback for non-finite inputs on an 8x8 image."""
    for xs, ws in [((3, 5, 4, 4), (6, 5, 3, 3)), ((2, 4, 8, 8), (5, 4, 3, 3))]:
        x = rng.standard_normal(xs).astype(dt)
        w = rng.standard_normal(ws).astype(dt)
        b = rng.standard_normal(ws[0]).astype(dt)
        y_shape = (xs[0], ws[0], xs[2], xs[3])
        dy = rng.standard_normal(y_shape).astype(dt)
        arr = {"x": x, "w": w, "dy": dy}[where]
        arr.reshape(-1)[3] = np.inf
        arr.reshape(-1)[arr.size // 2] = np.nan
        arr.reshape(-1)[-1] = -np.inf
        # torch's own float32 kernels spread NaN beyond the true sums' (y from a non-finite w, dw from
        # a non-finite dy: products with padding zeros); the reference decides there
        skip = {"w": ("y",), "dy": ("dw",)}.get(where, ()) if dt == np.float32 else ()
        _check(x, w, b, (1, 1), (1, 1), (1, 1), dy=dy, skip_torch=skip)


def test_planes_thread_count_independent(rng):
    """y, dx and db bitwise the same at 1 and 2 threads; dw (summed per thread slot) matches the
    reference at both and repeats bitwise at 2."""
    x = rng.standard_normal((32, 16, 4, 4)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    dy = rng.standard_normal((32, 32, 4, 4)).astype(np.float32)
    ref_dw = conv2d_backward_ref(x, w, dy, True, (1, 1), (1, 1), (1, 1))[1]
    old = dk.get_num_threads()
    results = []
    try:
        for t in (1, 2, 2):
            dk.set_num_threads(t)
            assert _plan(x.shape, w.shape, (1, 1), (1, 1), (1, 1), np.float32, t)["dw"] == "im2col_planes"
            y, ctx = dk.conv2d(x, w, b, 1, 1, return_ctx=True)
            results.append((y, *dk.conv2d_backward(ctx, dy)))
            assert_close(results[-1][2], ref_dw, dtype=np.float32, what=f"dw at {t} threads")
    finally:
        dk.set_num_threads(old)
    for i in (0, 1, 3):
        assert np.array_equal(results[0][i], results[1][i])
    for a, c in zip(results[1], results[2]):
        assert np.array_equal(a, c)
