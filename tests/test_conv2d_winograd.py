"""conv2d's Winograd F(4x4, 3x3) and F(2x2, 5x5) paths (forward and the stride-1 dx): shapes that take it (asserted
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


# float32 sums over at most this many channels on the Winograd path (conv2d_winograd.cpp)
F32_CHANNELS = {3: 64, 5: 128}

# (x shape, w shape, padding): every one takes Winograd forward in float64, and in float32 where
# it sums at most F32_CHANNELS channels (more would round too much). Sizes are large enough that
# Winograd pays on every ISA's micro-kernel (the chooser prices its register tile).
SHAPES = [
    ((2, 64, 16, 16), (64, 64, 3, 3), 1),  # whole tiles
    ((1, 64, 30, 29), (72, 64, 3, 3), 1),  # N = 1; Ho % 4 = 2, Wo % 4 = 1
    ((6, 40, 21, 17), (47, 40, 3, 3), 1),  # C, K not multiples of 16; Ho % 4 = 1
    ((6, 64, 19, 22), (40, 64, 3, 3), 0),  # no padding: Ho = 17, Wo = 20
    ((4, 32, 21, 18), (48, 32, 3, 3), 2),  # padding 2: border outputs see only padding and one row
    ((2, 100, 21, 19), (128, 100, 3, 3), 1),  # odd channel counts; float64 only
    ((2, 128, 16, 16), (96, 128, 3, 3), 1),  # float64 only
    # F(2x2, 5x5)
    ((8, 32, 28, 28), (32, 32, 5, 5), 2),  # the benchmarks' resnet 5x5: whole tiles
    ((1, 48, 30, 26), (40, 48, 5, 5), 2),  # N = 1
    ((2, 57, 22, 19), (93, 57, 5, 5), 2),  # C, K not multiples of 16; Wo odd (a last tile half outside)
    ((3, 72, 21, 23), (66, 72, 5, 5), 0),  # no padding: Ho = 17, Wo = 19
    ((2, 61, 22, 19), (64, 61, 5, 5), 1),  # padding 1: Ho = 20, Wo = 17
    ((2, 90, 15, 17), (75, 90, 5, 5), 2),  # odd H and W
    ((2, 144, 12, 12), (64, 144, 5, 5), 2),  # float64 only (dx, summing 64, in float32 too)
]


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_winograd_shapes(rng, case, dt):
    xs, ws, p = case
    takes = _plan(xs, ws, p, dt)["forward"] == "winograd"
    assert takes == (dt == np.float64 or xs[1] <= F32_CHANNELS[ws[2]]), (xs, ws, p)
    _check(rng, xs, ws, p, dt, bias=True, vs_torch=dt == np.float32)


def test_winograd_dx_and_the_choice():
    """dx of a stride-1 3x3 or 5x5 (a convolution of dy with the flipped weights) takes Winograd when
    its own shape pays; too few channels, strides, dilation, other kernels and float32 with more than
    64 (3x3) or 128 (5x5) channels summed do not."""
    assert _plan((2, 64, 16, 16), (64, 64, 3, 3), 1, np.float32)["dx"] == "winograd"
    assert _plan((6, 64, 14, 15), (40, 64, 3, 3), 0, np.float64)["dx"] == "winograd"
    assert _plan((2, 4, 16, 16), (16, 4, 3, 3), 1, np.float32)["forward"] != "winograd"
    assert _plan((2, 256, 8, 8), (64, 256, 3, 3), 1, np.float32)["forward"] != "winograd"
    assert _plan((2, 72, 16, 16), (64, 72, 3, 3), 1, np.float32)["forward"] != "winograd"
    assert _plan((2, 64, 16, 16), (72, 64, 3, 3), 1, np.float32)["dx"] != "winograd"
    assert _plan((4, 256, 16, 16), (64, 256, 3, 3), 1, np.float64)["forward"] == "winograd"
    assert _plan((2, 64, 8, 8), (256, 64, 3, 3), 1, np.float32)["dx"] != "winograd"  # sums 256 channels
    assert _plan((2, 144, 12, 12), (64, 144, 5, 5), 2, np.float32)["dx"] == "winograd"  # sums 64
    assert _plan((2, 64, 12, 12), (144, 64, 5, 5), 2, np.float32)["forward"] == "winograd"
    assert _plan((2, 64, 12, 12), (144, 64, 5, 5), 2, np.float32)["dx"] != "winograd"  # sums 144
    assert _plan((2, 64, 12, 12), (144, 64, 5, 5), 2, np.float64)["dx"] == "winograd"
    assert _plan((2, 64, 16, 16), (64, 64, 7, 7), 3, np.float64)["forward"] != "winograd"
    assert _plan((2, 64, 16, 16), (64, 64, 5, 3), 2, np.float64)["forward"] != "winograd"
    for k in (3, 5):
        params, _ = _conv_params("conv2d", np.empty((4, 64, 32, 32)), np.empty((64, 64, k, k)), None, 2, 1, 1)
        assert _cpu.conv2d_plan(params, "float64")["forward"] != "winograd"  # stride 2
        params, _ = _conv_params("conv2d", np.empty((4, 64, 32, 32)), np.empty((64, 64, k, k)), None, 1, 2, 2)
        assert _cpu.conv2d_plan(params, "float64")["forward"] != "winograd"  # dilation 2
    with pytest.raises(ValueError, match="dtype"):
        _cpu.conv2d_plan(params, "float16")


@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_where_it_pays(threads):
    """The benchmarks' resnet 5x5 and main 3x3 run forward and dx on Winograd; LeNet's 5x5 layers
    (few channels, small images: the transforms would cost more than they save) and small images
    whose per-call weight transform is not paid back stay direct."""
    for xs, ws, p in (((8, 32, 28, 28), (32, 32, 5, 5), 2), ((8, 64, 32, 32), (64, 64, 3, 3), 1)):
        plan = _plan(xs, ws, p, np.float32, threads)
        assert plan["forward"] == "winograd" and plan["dx"] == "winograd", (xs, ws, plan)
    for xs, ws in (
        ((64, 1, 32, 32), (6, 1, 5, 5)),
        ((64, 6, 14, 14), (16, 6, 5, 5)),
        ((64, 16, 5, 5), (120, 16, 5, 5)),
    ):
        plan = _plan(xs, ws, 0, np.float32, threads)
        assert plan["forward"] != "winograd" and plan["dx"] != "winograd", (xs, ws, plan)
    assert _plan((8, 64, 7, 7), (64, 64, 3, 3), 1, np.float32, threads)["forward"] != "winograd"
    assert _plan((1, 64, 7, 7), (64, 64, 3, 3), 1, np.float64, threads)["forward"] != "winograd"


def test_winograd_dw_choice(rng):
    """The weight gradient takes Winograd (F(3x3, 4x4) on the forward's tiles; 5x5 as four shifted 3x3
    blocks) where it pays; it is checked against the reference on shapes that take it."""
    for dt in (np.float32, np.float64):
        assert _plan((8, 64, 32, 32), (64, 64, 3, 3), 1, dt)["dw"] == "winograd"
        assert _plan((8, 32, 28, 28), (32, 32, 5, 5), 2, dt)["dw"] == "winograd"
    for xs, ws in (
        ((64, 1, 32, 32), (6, 1, 5, 5)),
        ((64, 6, 14, 14), (16, 6, 5, 5)),
        ((8, 16, 32, 32), (16, 16, 3, 3)),
    ):
        assert _plan(xs, ws, 0, np.float64)["dw"] != "winograd", (xs, ws)
    for xs, ws, p, dt in (
        ((6, 64, 19, 22), (40, 64, 3, 3), 0, np.float32),  # Ho = 17: a last tile row mostly outside
        ((6, 64, 19, 22), (40, 64, 3, 3), 0, np.float64),
        ((2, 32, 21, 18), (48, 32, 3, 3), 2, np.float32),
        ((4, 57, 22, 19), (93, 57, 5, 5), 2, np.float32),  # odd C, K, Wo
        ((4, 57, 22, 19), (93, 57, 5, 5), 2, np.float64),
        ((8, 64, 15, 17), (48, 64, 5, 5), 1, np.float32),  # padding 1: the shifted blocks read past it
        ((4, 64, 21, 23), (48, 64, 5, 5), 0, np.float32),  # no padding: Ho = 17, Wo = 19
        ((4, 64, 21, 23), (48, 64, 5, 5), 0, np.float64),
    ):
        assert _plan(xs, ws, p, dt)["dw"] == "winograd", (xs, ws, p)
        _check(rng, xs, ws, p, dt, bias=False, vs_torch=dt == np.float32)


@pytest.mark.parametrize("k", [3, 5])
def test_winograd_random_shapes(rng, k):
    taken = 0
    for _ in range(12):
        if k == 3:
            N, H, W = int(rng.integers(1, 5)), int(rng.integers(8, 32)), int(rng.integers(8, 32))
            C, K = int(rng.integers(32, 65)), int(rng.integers(32, 65))
        else:
            N, H, W = int(rng.integers(1, 4)), int(rng.integers(10, 30)), int(rng.integers(10, 30))
            C, K = int(rng.integers(40, 101)), int(rng.integers(40, 101))
        p = int(rng.integers(0, k // 2 + 1))
        dt = np.float64 if rng.integers(0, 2) else np.float32
        taken += _plan((N, C, H, W), (K, C, k, k), p, dt)["forward"] == "winograd"
        _check(rng, (N, C, H, W), (K, C, k, k), p, dt, bias=bool(rng.integers(0, 2)))
    assert taken >= 3


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 3])
@pytest.mark.parametrize("k", [3, 5])
def test_winograd_threads(rng, threads, N, k):
    """N = 1: the threads split the sample's bands of tile rows; N = 3: whole samples."""
    xs, ws = (N, 48, 30, 26), (40, 48, k, k)
    assert _plan(xs, ws, k // 2, np.float32, threads)["forward"] == "winograd"
    if k == 3:  # the threads sum their parts of dw
        assert _plan(xs, ws, 0, np.float64, threads)["dw"] == "winograd"
    if N == 3:
        assert _plan(xs, ws, k // 2, np.float32, threads)["dw"] == "winograd"
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        _check(rng, xs, ws, k // 2, np.float32)
        _check(rng, xs, ws, 0, np.float64, bias=False)
    finally:
        dk.set_num_threads(old)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [((40, 16, 32, 32), (16, 16, 3, 3), 1), ((48, 32, 28, 28), (32, 16, 3, 3), 2)])
def test_winograd_dw_long_sums(rng, threads, case):
    """More than 1024 tiles per slot and group: float32 dw sums in runs added in float64
    (conv2d_winograd_dw_impl.h), ungrouped and grouped, at 1 and 2 threads."""
    xs, ws, G = case
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    params, _ = _conv_params("conv2d", x, w, None, 1, 1, 1, G)
    assert _cpu.conv2d_plan(params, "float32", threads)["dw"] == "winograd"
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        y, ctx = dk.conv2d(x, w, None, 1, 1, 1, G, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        _, dw, _ = dk.conv2d_backward(ctx, dy)
    finally:
        dk.set_num_threads(old)
    want = conv2d_backward_ref(x, w, dy, False, (1, 1), (1, 1), (1, 1), G)[1]
    assert_close(dw, want, dtype=np.float32, what=f"dw x{xs} w{ws} g{G} threads {threads}")


# (x shape, w shape, padding) that take Winograd forward and dx in float64
FD_SHAPES = [((1, 48, 30, 26), (40, 48, 3, 3), 1), ((1, 64, 17, 16), (64, 64, 5, 5), 2)]


@pytest.mark.parametrize("case", FD_SHAPES)
def test_winograd_finite_differences(rng, case):
    xs, ws, p = case
    assert _plan(xs, ws, p, np.float64)["forward"] == "winograd"
    assert _plan(xs, ws, p, np.float64)["dx"] == "winograd"
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y, ctx = dk.conv2d(x, w, b, 1, p, 1, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    for _ in range(12):  # central differences at a sample of dx's and dw's entries
        for name, a, g in (("dx", x, dx), ("dw", w, dw)):
            i = tuple(int(rng.integers(0, n)) for n in a.shape)
            e = np.zeros_like(a)
            e[i] = 1e-6
            f = (lambda v: dk.conv2d(v, w, b, 1, p, 1)) if name == "dx" else (lambda v: dk.conv2d(x, v, b, 1, p, 1))
            num = float(np.sum((f(a + e) - f(a - e)) * dy)) / 2e-6
            assert_close(np.array([g[i]]), np.array([num]), rtol=1e-6, atol=1e-8, what=f"{name}{i}")


# (x shape, w shape, padding) that take Winograd forward, dx and dw in float64
NONFINITE_SHAPES = [((3, 48, 30, 26), (40, 48, 3, 3), 1), ((4, 57, 22, 19), (93, 57, 5, 5), 2)]


@pytest.mark.parametrize("case", NONFINITE_SHAPES)
@pytest.mark.parametrize("where", ["x", "w", "dy", "x nan", "w nan"])
def test_winograd_nonfinite_matches_torch(rng, case, where):
    """An Inf or NaN in x, w or dy: NaN / Inf exactly where torch has them (the passes leave Winograd)."""
    xs, ws, p = case
    assert _plan(xs, ws, p, np.float64)["forward"] == "winograd"
    assert _plan(xs, ws, p, np.float64)["dw"] == "winograd"
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    bad = np.nan if "nan" in where else np.inf
    if where.startswith("x"):
        x[0, 5, 3, 7] = bad
    if where.startswith("w"):
        w[3, 2, 1, 1] = -bad
    y, ctx = dk.conv2d(x, w, None, 1, p, 1, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    if where == "dy":
        dy[0, 4, 6, 6] = np.inf
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=p)
    ty.backward(torch.tensor(dy))
    want_all = (ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())
    assert not all(np.isfinite(a).all() for a in want_all)  # the bad value reaches some output
    for name, got, want in zip(("y", "dx", "dw"), (y, dx, dw), want_all):
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), fin) and np.array_equal(np.isnan(got), np.isnan(want)), name
        assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), what=name)
