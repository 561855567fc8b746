"""conv2d forward of 1x1 kernels with a stride or padding by gather + GEMM ("pointwise_gather":
x gathered at the strided positions into [C (+ a row of ones for the bias), Ho*Wo], one packed GEMM
per sample or band of output rows). Checked against the float64 reference and torch: strides 1..3
(mixed), paddings 0..2, odd sizes, N = 1, K not a multiple of the tile, several bands of rows,
1 and 2 threads (whole items per thread, or one item's gather and GEMM threaded), float32 and
float64, without bias, non-contiguous x, non-finite values, and each ISA in its own process."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close, run_with_isa
from reference import conv2d_ref


def _plan(xs, ws, s, p, d, dt=np.float32, threads=1):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)["forward"]


# (x shape, w shape, stride, padding, dilation); all have Ho*Wo >= 256 (smaller stay shifted)
SHAPES = [
    ((2, 16, 56, 56), (40, 16, 1, 1), (2, 2), (0, 0), (1, 1)),  # resnet-like downsample, Wo = 28
    ((1, 7, 37, 41), (13, 7, 1, 1), (2, 2), (1, 1), (1, 1)),  # odd sizes, padding 1: zero border
    ((2, 5, 33, 35), (19, 5, 1, 1), (2, 2), (2, 2), (3, 2)),  # padding 2, dilation (no effect on 1x1)
    ((1, 3, 50, 52), (7, 3, 1, 1), (3, 3), (0, 1), (1, 1)),  # stride 3: scalar gather
    ((2, 4, 40, 33), (9, 4, 1, 1), (1, 2), (0, 0), (1, 1)),  # row stride 1, column stride 2
    ((1, 6, 39, 20), (11, 6, 1, 1), (2, 1), (1, 0), (1, 1)),  # column stride 1: row copies
    ((1, 1, 17, 17), (5, 1, 1, 1), (1, 1), (1, 1), (1, 1)),  # stride 1 with padding only, C = 1
    ((2, 700, 60, 35), (30, 700, 1, 1), (2, 2), (1, 0), (1, 1)),  # bands: 701 x 18 x 31 > 2^18, 20 rows per band
]


def _check(rng, xs, ws, s, p, d, dt, bias=True, threads=1, noncontig=False):
    x = rng.standard_normal(xs).astype(dt)
    if noncontig:  # every other column of a wider array
        wide = rng.standard_normal(xs[:3] + (2 * xs[3],)).astype(dt)
        x = wide[..., ::2]
        assert not x.flags.c_contiguous
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        y = dk.conv2d(x, w, b, s, p, d)
    finally:
        dk.set_num_threads(old)
    what = f"x{xs} w{ws} s{s} p{p} {np.dtype(dt).name} threads {threads} bias {bias} noncontig {noncontig}"
    assert y.dtype == dt
    assert_close(y, conv2d_ref(x, w, b, s, p, d), dtype=dt, what="y " + what)
    tb = torch.tensor(b) if bias else None
    ty = torch.nn.functional.conv2d(torch.tensor(np.ascontiguousarray(x)), torch.tensor(w), tb, s, p, d)
    assert_close(y, ty, dtype=dt, what="torch y " + what)


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gather_shapes(rng, case, dt):
    assert _plan(*case, dt) == "pointwise_gather", case
    _check(rng, *case, dt)


@pytest.mark.parametrize("case", [SHAPES[0], SHAPES[1], SHAPES[3], SHAPES[7]])
def test_gather_without_bias_and_noncontiguous(rng, case):
    _check(rng, *case, np.float32, bias=False)
    _check(rng, *case, np.float64, noncontig=True)


@pytest.mark.parametrize(
    "case",
    [
        ((4, 64, 56, 56), (96, 64, 1, 1), (2, 2), (0, 0), (1, 1)),  # samples per thread
        ((1, 128, 41, 40), (96, 128, 1, 1), (2, 2), (1, 0), (1, 1)),  # one sample: threaded gather + GEMM
        ((1, 700, 60, 35), (64, 700, 1, 1), (2, 2), (1, 0), (1, 1)),  # one sample, bands shared out
    ],
)
def test_gather_two_threads(rng, case):
    assert _plan(*case, threads=2) == "pointwise_gather"
    for dt in (np.float32, np.float64):
        _check(rng, *case, dt, threads=2)


def test_gather_threads_agree_bitwise(rng):
    """The thread count changes who computes what, never the sums."""
    x = rng.standard_normal((3, 96, 45, 44)).astype(np.float32)
    w = rng.standard_normal((70, 96, 1, 1)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    old = dk.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            dk.set_num_threads(t)
            outs.append(dk.conv2d(x, w, b, 2, 1))
    finally:
        dk.set_num_threads(old)
    assert np.array_equal(outs[0], outs[1])


def test_small_outputs_stay_shifted():
    assert _plan((2, 16, 14, 14), (40, 16, 1, 1), (2, 2), (0, 0), (1, 1)) == "shifted_inplace"  # 7x7 out
    assert _plan((2, 16, 30, 30), (40, 16, 1, 1), (1, 1), (0, 0), (1, 1)) == "pointwise"  # plain GEMM


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gather_nonfinite_match_torch(rng, dt):
    """Inf / NaN in x on rows and columns the stride reads and skips, and an Inf bias."""
    xs, ws = (2, 5, 33, 34), (7, 5, 1, 1)
    x = rng.standard_normal(xs).astype(dt)
    x[0, 0, 2, 4] = np.inf  # read
    x[1, 4, 3, 5] = np.nan  # skipped (odd row and column, no padding)
    x[1, 2, 0, 32] = -np.inf  # read
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt)
    b[3] = np.inf
    y = dk.conv2d(x, w, b, 2, 0)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), 2, 0).numpy()
    fin = np.isfinite(want)
    assert not fin.all()
    assert np.array_equal(np.isfinite(y), fin) and np.array_equal(np.isnan(y), np.isnan(want))
    assert_close(np.where(fin, y, 0.0), np.where(fin, want, 0.0), dtype=dt)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
sys.path.insert(0, {tests!r})
from reference import conv2d_ref
rng = np.random.default_rng(3)
cases = [((2, 9, 37, 41), (13, 9, 1, 1), (2, 2), (1, 1)), ((1, 4, 50, 52), (7, 4, 1, 1), (3, 3), (0, 2)),
         ((2, 3, 40, 33), (9, 3, 1, 1), (1, 2), (0, 0)), ((1, 700, 60, 35), (30, 700, 1, 1), (2, 2), (1, 0))]
for dt in (np.float32, np.float64):
    tol = 2e-4 if dt == np.float32 else 1e-10
    for xs, ws, s, p in cases:
        x, w, b = (rng.standard_normal(a).astype(dt) for a in (xs, ws, ws[0]))
        for t in (1, 2):
            dk.set_num_threads(t)
            y = dk.conv2d(x, w, b, s, p)
            r = conv2d_ref(x, w, b, s, p, (1, 1))
            err = np.abs(y - r).max() / max(1.0, np.abs(r).max())
            assert not np.isnan(y).any() and err < tol, (dt, xs, ws, s, p, t, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_gather_each_isa(isa):
    """The per-ISA row split (stride 2) and GEMM kernel under the gather, in its own process."""
    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
