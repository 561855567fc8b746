"""dw of stride-2 convolutions by positions as rows (conv2d_posrows.h, conv2d_weight_grad_posrows): the
taps (c, i, j) are the tile's rows, each a pointer into the sample's zero-padded input, the output
channels its columns (dy transposed), and the output positions its inner dimension. Shapes cover batch
1, odd sizes, C*kh*kw and K not multiples of the tile (a partial last tap tile, a partial channel panel),
more positions than one block (several blocks, a short last one), dilation, even and non-square kernels,
1xk kernels, paddings 0..3, a 1x1 output, and the shapes it leaves to the shifted GEMM (small outputs with
few channels). Checked against the float64 reference and torch, bitwise across
thread counts, for the generic, avx2 and avx512 copies of the tile, and for NaN / Inf in x and dy (every
product is an im2col term, padding zeros included: non-finite values land where im2col puts them, which is
where torch puts them except for an Inf in dy next to the padding); dw is poisoned first."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv2d_backward, _conv_params
from helpers import assert_close, run_with_isa
from reference import conv2d_backward_ref

# (x shape, w shape, padding, dilation); stride 2. The path takes outputs of >= 128 positions or
# inputs of >= 128 channels.
SHAPES = [
    ((1, 128, 9, 10), (16, 128, 3, 3), (1, 1), (1, 1)),  # batch 1, 25 positions, 128 channels
    ((2, 17, 33, 31), (19, 17, 3, 3), (1, 1), (1, 1)),  # C, K odd: 153 taps (a partial tile), a partial panel
    ((3, 40, 31, 33), (33, 40, 3, 3), (0, 0), (1, 1)),  # no padding
    ((1, 16, 45, 38), (40, 16, 3, 3), (1, 1), (1, 1)),  # 437 positions: two blocks, the last one short
    ((2, 20, 33, 35), (16, 20, 5, 5), (2, 2), (1, 1)),  # 5x5
    ((1, 24, 30, 41), (20, 24, 3, 3), (1, 1), (2, 2)),  # dilation 2
    ((2, 18, 24, 25), (32, 18, 2, 4), (1, 3), (1, 1)),  # even, non-square kernel, padding 3
    ((2, 24, 27, 29), (17, 24, 1, 3), (0, 1), (1, 1)),  # 1x3
    ((1, 128, 14, 14), (128, 128, 3, 3), (1, 1), (1, 1)),  # resnet-like 3x3/2
    ((2, 130, 2, 2), (24, 130, 3, 3), (1, 1), (1, 1)),  # a 1x1 output
]


def _setup(rng, xs, ws, p, d, dt):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    y, ctx = dk.conv2d(x, w, None, 2, p, d, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    return x, w, ctx, dy


def _dw(ctx, dy, threads=1):
    """dw through the out= buffer, poisoned with NaN first (dx not computed)."""
    out = np.full(ctx.w.shape, np.nan, ctx.w.dtype)
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        dx, dw, _ = _conv2d_backward(ctx, dy, False, outs={"dw": out})
    finally:
        dk.set_num_threads(old)
    assert dx is None and dw is out
    return dw


def _torch_dw(x, w, dy, p, d):
    tw = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x), tw, None, 2, p, d).backward(torch.tensor(dy))
    return tw.grad.numpy()


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_plan_is_posrows(case, dt):
    xs, ws, p, d = case
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, (2, 2), p, d)
    for threads in (1, 2):
        assert _cpu.conv2d_plan(params, np.dtype(dt).name, threads)["dw"] == "posrows", case


@pytest.mark.parametrize(
    "xs, ws, s, d",
    [
        ((1, 16, 9, 9), (16, 16, 3, 3), (2, 2), (1, 1)),  # 25 positions, 16 channels: the shifted GEMM's
        ((64, 32, 16, 16), (64, 32, 3, 3), (2, 2), (1, 1)),  # 64 positions, 32 channels
        ((1, 15, 31, 31), (16, 15, 3, 3), (2, 2), (1, 1)),  # C < 16
        ((1, 16, 31, 31), (16, 16, 3, 3), (2, 1), (1, 1)),  # stride 2 on one axis only
        ((1, 16, 31, 31), (16, 16, 1, 1), (2, 2), (1, 1)),  # 1x1
    ],
)
def test_plan_declines(xs, ws, s, d):
    params, _ = _conv_params("conv2d", np.empty(xs, np.float32), np.empty(ws, np.float32), None, s, (1, 1), d)
    assert _cpu.conv2d_plan(params, "float32", 1)["dw"] != "posrows"


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dw_vs_reference_and_torch(rng, case, dt):
    xs, ws, p, d = case
    x, w, ctx, dy = _setup(rng, xs, ws, p, d, dt)
    dw = _dw(ctx, dy)
    what = f"x{xs} w{ws} p{p} d{d} {np.dtype(dt).name}"
    _, want, _ = conv2d_backward_ref(x, w, dy, False, (2, 2), p, d)
    assert_close(dw, want, dtype=dt, what=what)
    assert_close(dw, _torch_dw(x, w, dy, p, d), dtype=dt, what="torch " + what)


@pytest.mark.parametrize("case", [SHAPES[1], SHAPES[3], SHAPES[8]])
@pytest.mark.parametrize("n", [1, 3])
def test_threads_bitwise(rng, case, n):
    """Each dw value is summed by one tile over samples and positions in one order: 1, 2 and 3 threads
    give identical bits."""
    xs, ws, p, d = case
    _, _, ctx, dy = _setup(rng, (n,) + xs[1:], ws, p, d, np.float32)
    dw1 = _dw(ctx, dy, threads=1)
    for threads in (2, 3):
        assert np.array_equal(_dw(ctx, dy, threads=threads), dw1), (case, n, threads)


def _same_nonfinite(got, want, dt):
    fin = np.isfinite(want)
    assert fin.any() and not fin.all()
    assert np.array_equal(np.isfinite(got), fin) and np.array_equal(np.isnan(got), np.isnan(want))
    assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), dtype=dt)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_nonfinite_matches_torch(rng, dt):
    """NaN / Inf in x next to the padding and in rows / columns the stride skips, Inf in dy inside:
    non-finite dw exactly where torch has it."""
    xs, ws, p, d = (2, 17, 33, 31), (19, 17, 3, 3), (1, 1), (1, 1)
    x, w, _, _ = _setup(rng, xs, ws, p, d, dt)
    x[0, 0, 0, 0] = np.inf  # corner, next to the padding
    x[1, 3, 3, 5] = np.nan  # odd row, odd column
    x[0, 9, 7, 9] = -np.inf
    x[1, 16, 32, 30] = np.nan  # last row and column
    y, ctx = dk.conv2d(x, w, None, 2, p, d, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    dy[1, 4, 3, 2] = np.inf  # an inner output: its taps read no padding
    _same_nonfinite(_dw(ctx, dy), _torch_dw(x, w, dy, p, d), dt)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_inf_dy_at_the_border_as_im2col(rng, dt):
    """Inf in dy at an output whose taps read the padding: the padding zero's product is NaN, as in
    im2col and the float64 reference (the library's other dw paths agree; torch's CPU kernel skips
    those products and gives finite values there)."""
    xs, ws, p, d = (2, 17, 33, 31), (19, 17, 3, 3), (1, 1), (1, 1)
    x, w, ctx, dy = _setup(rng, xs, ws, p, d, dt)
    dy[1, 4, 0, 5] = np.inf  # first output row: tap row 0 reads the padding
    _, want, _ = conv2d_backward_ref(x, w, dy, False, (2, 2), p, d)
    assert np.isnan(want).any()
    _same_nonfinite(_dw(ctx, dy), want, dt)


def test_inputs_unchanged(rng):
    xs, ws, p, d = SHAPES[4]
    x, w, ctx, dy = _setup(rng, xs, ws, p, d, np.float32)
    copies = [a.copy() for a in (x, w, dy)]
    _dw(ctx, dy, threads=2)
    for a, c in zip((x, w, dy), copies):
        assert np.array_equal(a, c)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
from deepkern import _cpu
from deepkern.functional.conv import _conv2d_backward, _conv_params
sys.path.insert(0, {tests!r})
from reference import conv2d_backward_ref
rng = np.random.default_rng(3)
cases = [((2, 17, 33, 31), (19, 17, 3, 3), (1, 1), (1, 1)), ((1, 16, 45, 38), (40, 16, 3, 3), (1, 1), (1, 1)),
         ((1, 24, 30, 41), (20, 24, 3, 3), (1, 1), (2, 2)), ((2, 130, 2, 2), (24, 130, 3, 3), (1, 1), (1, 1))]
for dt in (np.float32, np.float64):
    tol = 2e-5 if dt == np.float32 else 1e-13
    for xs, ws, p, d in cases:
        params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, (2, 2), p, d)
        assert _cpu.conv2d_plan(params, np.dtype(dt).name, 2)["dw"] == "posrows", (dt, xs, ws)
        x, w = (rng.standard_normal(v).astype(dt) for v in (xs, ws))
        y, ctx = dk.conv2d(x, w, None, 2, p, d, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(dt)
        out = np.full(ws, np.nan, dt)
        _conv2d_backward(ctx, dy, False, outs={{"dw": out}})
        r = conv2d_backward_ref(x, w, dy, False, (2, 2), p, d)[1]
        err = np.abs(out - r).max() / max(1.0, np.abs(r).max())
        assert err < tol, (dt, xs, ws, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_copy(isa):
    """The generic, avx2 and avx512 copies of the tile, each in its own process."""
    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
