"""conv2d's grouped paths (1 < groups < C): the grouped Winograd F(4x4, 3x3) forward and stride-1
dx (each group's channels read in place, all groups in one loop) and the weight gradient on the
shifted GEMM over group views. Shapes that take them (asserted through _cpu.conv2d_plan) with tile
remainders, groups 2, 3 and 8, channel counts per group that are not multiples of the vector
width, padding 0..2, both dtypes, several thread counts; against the float64 reference and torch,
finite differences, non-finite inputs (which leave Winograd), and bitwise repeatable results."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close, run_with_isa
from reference import conv2d_backward_ref, conv2d_ref


def _plan(xs, ws, p, G, dt, threads=None, s=1, d=1):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d, G)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)


def _check(rng, xs, ws, p, G, dt, bias=True, vs_torch=True, s=1, d=1):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y, ctx = dk.conv2d(x, w, b, s, p, d, G, return_ctx=True)
    pp = p if isinstance(p, tuple) else (p, p)
    what = f"x{xs} w{ws} p{p} s{s} d{d} g{G} {np.dtype(dt).name}"
    assert_close(y, conv2d_ref(x, w, b, (s, s), pp, (d, d), G), dtype=dt, what="y " + what)
    dy = rng.standard_normal(y.shape).astype(dt)
    grads = dk.conv2d_backward(ctx, dy)
    for name, g, r in zip(("dx", "dw", "db"), grads, conv2d_backward_ref(x, w, dy, bias, (s, s), pp, (d, d), G)):
        if r is None:
            assert g is None
        else:
            assert_close(g, r, dtype=dt, what=f"{name} {what}")
    if vs_torch:
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b) if bias else None
        ty = torch.nn.functional.conv2d(tx, tw, tb, s, pp, d, G)
        ty.backward(torch.tensor(dy))
        assert_close(y, ty, dtype=dt, what="torch y " + what)
        assert_close(grads[0], tx.grad, dtype=dt, what="torch dx " + what)
        assert_close(grads[1], tw.grad, dtype=dt, what="torch dw " + what)
    return x, w, b, dy, y, grads


# (x shape, w shape, padding, groups): every one takes the grouped Winograd forward and dx
SHAPES = [
    ((8, 128, 28, 28), (128, 16, 3, 3), 1, 8),  # ResNeXt-like: 16 channels per group, whole tiles
    ((2, 32, 12, 13), (32, 16, 3, 3), 1, 2),  # Ho % 4 = 0, Wo % 4 = 1
    ((1, 48, 21, 22), (48, 16, 3, 3), 1, 3),  # groups 3, N = 1, Ho % 4 = 1, Wo % 4 = 2
    ((2, 96, 19, 18), (48, 32, 3, 3), 0, 3),  # no padding, K/G = 16 < C/G = 32
    ((2, 64, 21, 23), (96, 32, 3, 3), 2, 2),  # padding 2: K/G = 48 (a full and a half panel)
    ((3, 48, 18, 16), (80, 24, 3, 3), 1, 2),  # 24 in, 40 out per group: rounded to 32, 48 with zeros
    ((2, 84, 16, 20), (84, 28, 3, 3), (2, 0), 3),  # 28 per group; rectangular padding
    ((1, 256, 14, 14), (256, 32, 3, 3), 1, 8),  # groups 8 of 32
]


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_grouped_winograd_shapes(rng, case, dt):
    xs, ws, p, G = case
    plan = _plan(xs, ws, p, G, dt)
    assert plan["forward"] == "winograd" and plan["dx"] == "winograd", (case, plan)
    _check(rng, xs, ws, p, G, dt, bias=True)
    _check(rng, xs, ws, p, G, dt, bias=False, vs_torch=False)


def test_grouped_winograd_choice():
    """Too few channels per group, strides, dilation, other kernels, depthwise and float32 groups of
    more than 64 channels stay direct; dx needs padding <= 2."""
    assert _plan((8, 64, 28, 28), (64, 8, 3, 3), 1, 8, np.float32)["forward"] != "winograd"  # 8 per group
    assert _plan((2, 32, 16, 16), (32, 1, 3, 3), 1, 32, np.float32)["forward"] == "depthwise"
    assert _plan((2, 64, 16, 16), (64, 32, 3, 3), 1, 2, np.float32, s=2)["forward"] != "winograd"
    assert _plan((2, 64, 16, 16), (64, 32, 3, 3), 2, 2, np.float32, d=2)["forward"] != "winograd"
    # 5x5 groups are not the grouped kernel's (3x3 only): each group runs on its own, where 32
    # channels per group take the F(2x2, 5x5) path of an ordinary convolution
    assert _plan((2, 32, 16, 16), (32, 32, 5, 5), 2, 1, np.float32)["forward"] == "winograd"  # one group alone
    assert _plan((2, 64, 16, 16), (64, 32, 5, 5), 2, 2, np.float32)["forward"] == "winograd"
    assert _plan((2, 160, 16, 16), (64, 80, 3, 3), 1, 2, np.float32)["forward"] != "winograd"
    assert _plan((2, 160, 16, 16), (64, 80, 3, 3), 1, 2, np.float64)["forward"] == "winograd"
    plan = _plan((2, 64, 16, 16), (64, 32, 3, 3), 3, 2, np.float64)
    assert plan["forward"] == "winograd" and plan["dx"] != "winograd"  # padding 3: dx is no stride-1 conv


def test_grouped_direct_paths(rng):
    """Groups that stay direct (stride 2, dilation, few channels, 5x5): dw over group views, dx and
    the forward over gathered groups."""
    _check(rng, (2, 64, 17, 15), (64, 8, 3, 3), 1, 8, np.float32)
    _check(rng, (2, 24, 15, 18), (36, 8, 3, 3), 1, 3, np.float64, s=2)
    _check(rng, (1, 32, 14, 13), (32, 16, 3, 3), 2, 2, np.float32, d=2)
    _check(rng, (2, 12, 11, 9), (6, 4, 5, 5), 2, 3, np.float64)


def test_grouped_winograd_random_shapes(rng):
    taken = 0
    for _ in range(10):
        G = int(rng.choice([2, 3, 4, 8]))
        cg, kg = int(rng.choice([16, 24, 31, 48])), int(rng.choice([13, 16, 32, 40]))
        N, H, W, p = (
            int(rng.integers(1, 4)),
            int(rng.integers(12, 30)),
            int(rng.integers(12, 30)),
            int(rng.integers(0, 3)),
        )
        dt = np.float64 if rng.integers(0, 2) else np.float32
        xs, ws = (N, G * cg, H, W), (G * kg, cg, 3, 3)
        taken += _plan(xs, ws, p, G, dt)["forward"] == "winograd"
        _check(rng, xs, ws, p, G, dt, bias=bool(rng.integers(0, 2)), vs_torch=False)
    assert taken >= 3


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_grouped_threads_and_repeatable(rng, threads):
    """Each thread count agrees with the reference, and a second run is bitwise the same (dw sums
    per thread in a fixed sample order)."""
    xs, ws, G = (3, 64, 22, 18), (64, 16, 3, 3), 4
    assert _plan(xs, ws, 1, G, np.float32, threads)["forward"] == "winograd"
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        x, w, b, dy, y, grads = _check(rng, xs, ws, 1, G, np.float32, vs_torch=False)
        y2, ctx = dk.conv2d(x, w, b, 1, 1, 1, G, return_ctx=True)
        grads2 = dk.conv2d_backward(ctx, dy)
        np.testing.assert_array_equal(y, y2)
        for g, g2 in zip(grads, grads2):
            np.testing.assert_array_equal(g, g2)
    finally:
        dk.set_num_threads(old)


def test_grouped_winograd_finite_differences(rng):
    xs, ws, G = (1, 32, 12, 11), (32, 16, 3, 3), 2
    plan = _plan(xs, ws, 1, G, np.float64)
    assert plan["forward"] == "winograd" and plan["dx"] == "winograd"
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y, ctx = dk.conv2d(x, w, b, 1, 1, 1, G, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    for _ in range(12):  # central differences at a sample of dx's and dw's entries
        for name, a, g in (("dx", x, dx), ("dw", w, dw)):
            i = tuple(int(rng.integers(0, n)) for n in a.shape)
            e = np.zeros_like(a)
            e[i] = 1e-6
            if name == "dx":
                f = lambda v: dk.conv2d(v, w, b, 1, 1, 1, G)  # noqa: E731
            else:
                f = lambda v: dk.conv2d(x, v, b, 1, 1, 1, G)  # noqa: E731
            num = float(np.sum((f(a + e) - f(a - e)) * dy)) / 2e-6
            assert_close(np.array([g[i]]), np.array([num]), rtol=1e-6, atol=1e-8, what=f"{name}{i}")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["x", "w", "dy", "nan_x"])
def test_grouped_nonfinite_matches_torch(rng, where, dt):
    """An Inf or NaN in x, w or dy: NaN / Inf exactly where torch has them (the passes leave Winograd)."""
    xs, ws, G = (2, 48, 12, 12), (48, 16, 3, 3), 3
    assert _plan(xs, ws, 1, G, dt)["forward"] == "winograd"
    x, w = rng.standard_normal(xs).astype(dt), rng.standard_normal(ws).astype(dt)
    if where == "x":
        x[1, 21, 3, 7] = np.inf
    if where == "nan_x":
        x[0, 40, 11, 0] = np.nan
    if where == "w":
        w[19, 2, 1, 1] = -np.inf
    y, ctx = dk.conv2d(x, w, None, 1, 1, 1, G, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    if where == "dy":
        dy[0, 30, 6, 6] = np.inf
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, None, 1, 1, 1, G)
    ty.backward(torch.tensor(dy))
    for name, got, want in (("y", y, ty.detach().numpy()), ("dx", dx, tx.grad.numpy()), ("dw", dw, tw.grad.numpy())):
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), fin) and np.array_equal(np.isnan(got), np.isnan(want)), name
        assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), dtype=dt, what=name)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
sys.path.insert(0, {tests!r})
from reference import conv2d_ref, conv2d_backward_ref
rng = np.random.default_rng(5)
# (x, w, padding, groups, stride): 16 and 32 channels per group (one or two B panels, a half panel on
# AVX-512 float), 35 and 30 tiles (remainders of 2-5 tiles for MR = 4, 6, 8); and a depthwise stride-2 case
cases = [((1, 64, 20, 28), (96, 32, 3, 3), 1, 2, 1), ((2, 32, 18, 27), (64, 16, 3, 3), 1, 2, 1),
         ((1, 48, 21, 17), (48, 16, 3, 3), 1, 3, 1), ((2, 6, 11, 37), (6, 1, 3, 3), 1, 6, 2)]
for dt in (np.float32, np.float64):
    tol = 2e-4 if dt == np.float32 else 1e-10
    for xs, ws, p, g, s in cases:
        x, w, b = rng.standard_normal(xs).astype(dt), rng.standard_normal(ws).astype(dt), rng.standard_normal(ws[0])
        y, ctx = dk.conv2d(x, w, b.astype(dt), s, p, 1, g, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(dt)
        got = [y, *dk.conv2d_backward(ctx, dy)]
        pp, ss = (p, p), (s, s)
        want = [conv2d_ref(x, w, b.astype(dt), ss, pp, (1, 1), g), *conv2d_backward_ref(x, w, dy, True, ss, pp, (1, 1), g)]
        for got_, r in zip(got, want):
            err = np.abs(got_ - r).max() / max(1.0, np.abs(r).max())
            assert err < tol, (dt, xs, ws, p, g, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_grouped_each_isa_kernel(isa):
    """The grouped Winograd passes and the depthwise stride-2 dx on each ISA copy, in its own process
    (panel widths differ: 32 / 16 floats, 16 / 8 doubles)."""

    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
