"""conv2d's positions-as-rows forward (conv2d_posrows.h: stride 2 on both axes, C and K >= 16, not
1x1): output positions broadcast from a zero-padded band of input rows, output channels in
NR-wide panels, tiles transposed into y. Shapes cover batch 1, odd sizes, C and K not multiples of the
vector width or the tile, fewer positions than one tile, several channel blocks (C*kh*kw > 256), several
bands of output rows with a short last one, dilation, even and non-square kernels, paddings 0..3, with
and without bias; y is poisoned before the kernel runs. Checked against the float64 reference and torch,
bitwise across thread counts, for the generic, avx2 and avx512 copies (tiles of 6 and 14 positions), and
for NaN / Inf propagation."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close, run_with_isa
from reference import conv2d_ref

# (x shape, w shape, stride, padding, dilation)
SHAPES = [
    ((1, 16, 9, 10), (16, 16, 3, 3), (2, 2), (1, 1), (1, 1)),  # batch 1, one block, K = one panel (AVX2 float32)
    ((2, 17, 13, 11), (19, 17, 3, 3), (2, 2), (1, 1), (1, 1)),  # C, K odd: a partial panel of K
    ((3, 40, 15, 17), (33, 40, 3, 3), (2, 2), (0, 0), (1, 1)),  # 360 taps: two channel blocks, no padding
    ((1, 16, 41, 38), (300, 16, 3, 3), (2, 2), (1, 1), (1, 1)),  # K = 300: several bands, the last one short
    ((2, 20, 17, 19), (16, 20, 5, 5), (2, 2), (2, 2), (1, 1)),  # 5x5: 500 taps in two blocks
    ((1, 24, 14, 21), (20, 24, 3, 3), (2, 2), (1, 1), (2, 2)),  # dilation 2
    ((2, 18, 12, 13), (32, 18, 2, 4), (2, 2), (1, 3), (1, 1)),  # even, non-square kernel, padding 3
    ((1, 16, 3, 3), (16, 16, 3, 3), (2, 2), (1, 1), (1, 1)),  # 4 outputs: fewer positions than one tile
    ((2, 100, 7, 9), (17, 100, 1, 3), (2, 2), (0, 1), (1, 1)),  # 1x3 kernel, 300 taps
    ((1, 128, 14, 14), (128, 128, 3, 3), (2, 2), (1, 1), (1, 1)),  # resnet-like 3x3/2: 1152 taps in 5 blocks
    ((2, 16, 13, 29), (24, 16, 3, 3), (2, 2), (1, 0), (1, 1)),  # 98 positions: whole tiles of 14 (AVX-512) and 6 rows
]


def _plan(xs, ws, s, p, d, dt, threads=1):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)["forward"]


def _forward(x, w, b, s, p, d, threads=1):
    """y through out=, poisoned with NaN first."""
    Ho = (x.shape[2] + 2 * p[0] - d[0] * (w.shape[2] - 1) - 1) // s[0] + 1
    Wo = (x.shape[3] + 2 * p[1] - d[1] * (w.shape[3] - 1) - 1) // s[1] + 1
    y = np.full((x.shape[0], w.shape[0], Ho, Wo), np.nan, x.dtype)
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        dk.conv2d(x, w, b, s, p, d, out=y)
    finally:
        dk.set_num_threads(old)
    return y


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_plan_is_posrows(case, dt):
    for threads in (1, 2):
        got = _plan(*case, dt, threads)
        assert got == "posrows", (case, got)


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_vs_reference_and_torch(rng, case, dt, bias):
    xs, ws, s, p, d = case
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y = _forward(x, w, b, s, p, d)
    what = f"x{xs} w{ws} s{s} p{p} d{d} {np.dtype(dt).name} bias {bias}"
    assert_close(y, conv2d_ref(x, w, b, s, p, d), dtype=dt, what=what)
    ty = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), stride=s, padding=p, dilation=d
    )
    assert_close(y, ty, dtype=dt, what="torch " + what)


@pytest.mark.parametrize("case", [SHAPES[1], SHAPES[2], SHAPES[3], SHAPES[9]])
@pytest.mark.parametrize("n", [1, 3])
def test_threads_bitwise(rng, case, n):
    """Each output is summed by one tile in one order: 1, 2 and 3 threads give identical bits (N = 1:
    the threads split one sample's bands)."""
    xs, ws, s, p, d = case
    x = rng.standard_normal((n,) + xs[1:]).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y1 = _forward(x, w, b, s, p, d, threads=1)
    for threads in (2, 3):
        assert np.array_equal(_forward(x, w, b, s, p, d, threads=threads), y1), (case, n, threads)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_nonfinite_match_torch(rng, dt):
    """NaN / Inf in x next to the padding, in rows and columns stride 2 skips, and an Inf bias:
    non-finite values exactly where torch has them."""
    xs, ws, s, p, d = (2, 17, 13, 11), (19, 17, 3, 3), (2, 2), (1, 1), (1, 1)
    x = rng.standard_normal(xs).astype(dt)
    x[0, 0, 0, 0] = np.inf  # corner, next to the padding
    x[1, 16, 12, 10] = np.nan  # last row and column
    x[0, 5, 6, 1] = -np.inf
    x[1, 3, 3, 5] = np.nan  # odd row, odd column
    x[0, 9, 7, 9] = np.inf  # odd row, odd column
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt)
    b[4] = np.inf
    y = _forward(x, w, b, s, p, d)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), s, p, d).numpy()
    fin = np.isfinite(want)
    assert not fin.all()
    assert np.array_equal(np.isfinite(y), fin) and np.array_equal(np.isnan(y), np.isnan(want))
    assert_close(np.where(fin, y, 0.0), np.where(fin, want, 0.0), dtype=dt)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
sys.path.insert(0, {tests!r})
from reference import conv2d_ref
rng = np.random.default_rng(3)
cases = [((2, 17, 13, 11), (19, 17, 3, 3), (2, 2), (1, 1), (1, 1)), ((1, 40, 15, 17), (33, 40, 3, 3), (2, 2), (0, 0), (1, 1)),
         ((1, 16, 41, 38), (300, 16, 3, 3), (2, 2), (1, 1), (1, 1)), ((1, 16, 3, 3), (16, 16, 3, 3), (2, 2), (1, 1), (1, 1))]
for dt in (np.float32, np.float64):
    tol = 2e-5 if dt == np.float32 else 1e-13
    for xs, ws, s, p, d in cases:
        params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
        assert _cpu.conv2d_plan(params, np.dtype(dt).name, 2)["forward"] == "posrows", (dt, xs, ws)
        x, w, b = (rng.standard_normal(v).astype(dt) for v in (xs, ws, ws[0]))
        y = np.full((xs[0], ws[0], (xs[2] + 2 * p[0] - ws[2]) // 2 + 1, (xs[3] + 2 * p[1] - ws[3]) // 2 + 1), np.nan, dt)
        dk.conv2d(x, w, b, s, p, d, out=y)
        r = conv2d_ref(x, w, b, s, p, d)
        err = np.abs(y - r).max() / max(1.0, np.abs(r).max())
        assert err < tol, (dt, xs, ws, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_copy(isa):
    """The generic, avx2 and avx512 copies of the micro-kernel, each in its own process."""
    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
