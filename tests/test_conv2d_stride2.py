"""conv2d's strided shifted-GEMM paths: the per-ISA even/odd split of input rows (column stride 2) and
its inverse in dx, the unfolded buffer for column stride 2 (AVX-512: each input row cut into its tap
columns' windows in registers, tiles written in place), rows of tiles with a partial last tile
("shifted_rowtiles"), tiles written in place when the phase width is the output width
("shifted_inplace": 1x1 kernels on small outputs; larger ones: test_conv2d_pointwise_gather.py), the phase buffer filled one kc block at a time (C*kh*kw > 256), and
the bias added by the GEMM as one more tap. Each shape is checked against the float64 reference
(forward, dx, dw, db) and torch, odd sizes, N = 1, C = 1 / 3, K not a multiple of the tile, strides 2
and 3, dilations, paddings 0..3, several output chunks (K = 520); which path a shape takes is the
C++'s own answer (_cpu.conv2d_plan), mirrored here so the shapes provably cover every branch."""

import re

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close, numeric_grad, run_with_isa
from reference import conv2d_backward_ref, conv2d_ref


def _tile(dt):
    mr, nr = re.search(r"(\d+)x(\d+)", _cpu.gemm_kernel_name(np.dtype(dt).name)).groups()
    return int(mr), int(nr)


def _out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _cpp_forward(xs, ws, s, p, d, dt, threads=1):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)["forward"]


def _avx512():
    return _cpu.gemm_kernel_name("float32").startswith("avx512")


def _unfold2_pays(xs, ws, s, p, d, dt, Ho, Wo, Wq):
    """shifted_unfold_pays for column stride 2 (after the row-tile and in-place checks): AVX-512 with
    a padded row of at most 4 vectors and an output row of at most 2, and the cost model's verdict."""
    (_, C, H, W), (K, _, kh, kw) = xs, ws
    mr, nr = _tile(dt)
    L = 64 // np.dtype(dt).itemsize
    if not (s[1] == 2 and _avx512() and W + 2 * p[1] <= 4 * L and Wo <= 2 * L and (kw - 1) * d[1] // 2 < L):
        return False
    Hq = -(-(H + 2 * p[0]) // s[0])
    if kw * Wo > 8 * s[1] * Wq:
        return False
    macs = -(-K // mr) * mr * C * kh * kw

    def ru(q):
        return -(-q // nr) * nr

    def copy(rows, elems):
        return 100 * rows + 4 * elems

    phase = ru((Ho - 1) * Wq + Wo) * macs + copy(s[0] * 2 * C * Hq, s[0] * 2 * C * Hq * Wq) + copy(K * Ho, K * Ho * Wo)
    return ru(Ho * Wo) * macs + copy(C * kw * H, C * kw * H * Wo) < phase


def _posrows(xs, ws, s):
    """posrows_applies (conv2d_posrows.h): stride 2 both ways, C and K >= 16, not 1x1."""
    return tuple(s) == (2, 2) and xs[1] >= 16 and ws[0] >= 16 and ws[2] * ws[3] > 1


def _expected_forward(xs, ws, s, p, d, dt):
    """The tiling for a shape the shifted GEMM takes with column stride > 1 or a 1x1 kernel: whole
    row tiles ("shifted"), rows with a partial last tile (or K's last panel partial) when that
    computes no more columns than the phase width, in place when that width is the output width,
    else unfolded where column stride 2 may be (_unfold2_pays) or panels on the phase width."""
    (_, _, H, W), (K, _, kh, kw) = xs, ws
    mr, nr = _tile(dt)
    Ho, Wo = _out(H, kh, s[0], p[0], d[0]), _out(W, kw, s[1], p[1], d[1])
    Wq = -(-(W + 2 * p[1]) // s[1])
    if kh == kw == 1 and Ho * Wo >= 256:  # 1x1 on large outputs: gather + GEMM (test_conv2d_pointwise_gather.py)
        return "pointwise_gather"
    if _posrows(xs, ws, s):  # output positions as the GEMM's rows (test_conv2d_posrows.py)
        return "posrows"
    if (Ho - 1) * Wq + Wo + 32 > 2 * Ho * Wo:  # shifted_applies: small outputs take im2col
        return "im2col"
    if Wo % nr == 0 and K % mr == 0:
        return "shifted"
    rem = Wo % nr
    if s[1] > 1 and Wq != Wo and Wo - rem + (0 if rem == 0 else nr // 2 if rem <= nr // 2 else nr) <= Wq:
        return "shifted_rowtiles"
    if Wq == Wo:
        return "shifted_inplace"
    return "unfolded" if _unfold2_pays(xs, ws, s, p, d, dt, Ho, Wo, Wq) else "shifted"


# (x shape, w shape, stride, padding, dilation). K = 24 is a multiple of every kernel's MR (8, 6, 4), K = 19 of none.
SHAPES = [
    ((2, 3, 33, 95), (24, 3, 7, 7), (2, 2), (3, 3), (1, 1)),  # stem-like: Wo = 48 (half last tile at NR 32)
    ((1, 1, 19, 41), (24, 1, 7, 7), (2, 2), (3, 3), (1, 1)),  # Wo = 21: partial tiles at NR 16 / 32
    ((2, 2, 13, 61), (24, 2, 3, 3), (2, 2), (1, 1), (4, 4)),  # Wo = 28, Wq = 32: a partial tile via the edge
    ((1, 3, 9, 93), (24, 3, 3, 3), (2, 2), (1, 1), (1, 11)),  # Wo = 37, Wq = 48: less than half a tile left
    ((2, 5, 17, 19), (24, 5, 3, 3), (2, 2), (1, 1), (1, 1)),  # odd sizes, 3x3/2: panels on the phase width
    ((2, 3, 21, 95), (19, 3, 7, 7), (2, 2), (3, 3), (1, 1)),  # stem-like, K = 19: row tiles with edge rows
    ((2, 4, 15, 16), (19, 4, 3, 3), (2, 2), (2, 3), (1, 1)),  # K = 19: edge rows, paddings 2 / 3
    ((1, 40, 11, 13), (24, 40, 3, 3), (2, 2), (1, 1), (1, 1)),  # 360 taps: two kc blocks, lazy fill
    ((2, 29, 15, 17), (19, 29, 3, 3), (2, 2), (0, 0), (1, 1)),  # 261 taps + bias, no padding
    ((2, 16, 14, 14), (40, 16, 1, 1), (2, 2), (0, 0), (1, 1)),  # 1x1/2 downsample: in place
    ((1, 256, 21, 23), (33, 256, 1, 1), (2, 2), (0, 0), (1, 1)),  # 256 taps + bias: 2 blocks, odd H / W
    ((1, 130, 26, 37), (520, 130, 1, 1), (2, 2), (0, 0), (1, 1)),  # K = 520: 247 outputs in 2 chunks of panels
    ((2, 6, 13, 15), (24, 6, 1, 1), (2, 2), (1, 1), (1, 1)),  # 1x1/2 with padding: in place
    ((2, 5, 24, 23), (17, 5, 1, 1), (3, 3), (2, 2), (1, 1)),  # 1x1/3
    ((2, 3, 31, 47), (24, 3, 5, 5), (3, 3), (2, 1), (1, 2)),  # stride 3 (no split), dilation mix
    ((1, 1, 25, 44), (24, 1, 3, 3), (2, 3), (0, 2), (2, 1)),  # C = 1, mixed strides: Wq = Wo = 16
    ((2, 4, 21, 18), (24, 4, 4, 2), (2, 2), (3, 1), (1, 3)),  # even kernel, padding 3
    # column stride 2 unfolded on AVX-512 (elsewhere the phase layout; C, K >= 16 take positions as
    # rows): float64 at N = 1, odd sizes without padding (C = 30: positions as rows), a row in all four vectors and two kc blocks in a ring of slots (float32), dilation 2,
    # a 5x5 window with padding 2, N = 1 with padding 1
    ((1, 13, 28, 28), (19, 13, 3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 30, 9, 49), (21, 30, 3, 3), (2, 2), (0, 0), (1, 1)),
    ((1, 6, 19, 25), (13, 6, 3, 3), (2, 2), (1, 1), (2, 2)),
    ((2, 4, 15, 21), (9, 4, 5, 5), (2, 2), (2, 2), (1, 1)),
    ((1, 3, 9, 21), (9, 3, 3, 3), (2, 2), (1, 1), (1, 1)),
    # 577 taps: three kc blocks whose channels cycle through a ring of 23 buffer slots (both dtypes)
    ((2, 64, 13, 25), (10, 64, 3, 3), (2, 2), (1, 1), (1, 1)),
    # row strides 1 and 3 with column stride 2, unfolded (one and three row phases)
    ((1, 4, 10, 23), (11, 4, 3, 3), (1, 2), (1, 1), (1, 1)),
    ((1, 4, 9, 41), (11, 4, 3, 3), (3, 2), (0, 1), (1, 1)),
]

STEM, PARTIAL_TILE, BLOCKS, DOWNSAMPLE, UNFOLD2 = SHAPES[0], SHAPES[2], SHAPES[7], SHAPES[9], SHAPES[18]
assert BLOCKS[1][1] * 9 > 256 and DOWNSAMPLE[1][2:] == (1, 1)  # the picks are what their names say


def _check(rng, xs, ws, s, p, d, dt, bias=True, threads=1):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(dt)
        grads = dk.conv2d_backward(ctx, dy)
    finally:
        dk.set_num_threads(old)
    what = f"x{xs} w{ws} s{s} p{p} d{d} {np.dtype(dt).name} threads {threads} bias {bias}"
    assert_close(y, conv2d_ref(x, w, b, s, p, d), dtype=dt, what="y " + what)
    for name, g, r in zip(("dx", "dw", "db"), grads, conv2d_backward_ref(x, w, dy, bias, s, p, d)):
        if r is None:
            assert g is None
        else:
            assert_close(g, r, dtype=dt, what=f"{name} {what}")
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty, dtype=dt, what="torch y " + what)
    assert_close(grads[0], tx.grad, dtype=dt, what="torch dx " + what)
    assert_close(grads[1], tw.grad, dtype=dt, what="torch dw " + what)


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_strided_shapes_vs_reference_and_torch(rng, case, dt):
    assert _cpp_forward(*case, dt) == _expected_forward(*case, dt), case
    _check(rng, *case, dt, bias=True)


@pytest.mark.parametrize("case", SHAPES[:3] + [BLOCKS, DOWNSAMPLE, SHAPES[10], UNFOLD2])
def test_strided_shapes_without_bias(rng, case):
    _check(rng, *case, np.float32, bias=False)


@pytest.mark.parametrize(
    "case", [STEM, PARTIAL_TILE, SHAPES[4], BLOCKS, DOWNSAMPLE, SHAPES[11], UNFOLD2, SHAPES[21], SHAPES[22]]
)
def test_strided_shapes_two_threads(rng, case):
    """N >= threads: whole samples per thread; N = 1: the threads split one sample's tiles."""
    _check(rng, *case, np.float32, threads=2)
    xs = (1,) + case[0][1:]
    _check(rng, xs, *case[1:], np.float64, threads=2)


def test_shapes_cover_every_tiling():
    """For this machine's kernels, the shapes take each tiling, and the row tiles end with a
    half-width tile written in place, a partial one through the edge tile, and one of less than half
    (via the half-width kernel and the edge tile), for float32 or float64; some row-tiled shape has
    K's last panel partial (edge rows)."""
    lasts = set()
    for dt in (np.float32, np.float64):
        mr, nr = _tile(dt)
        seen = {_cpp_forward(*c, dt) for c in SHAPES}
        want = {"shifted_rowtiles", "shifted_inplace", "shifted", "posrows"} | ({"unfolded"} if _avx512() else set())
        assert seen == want, (dt, seen)
        rowtiles = [c for c in SHAPES if _cpp_forward(*c, dt) == "shifted_rowtiles"]
        assert any(c[1][0] % mr for c in rowtiles), "no row-tiled shape with a partial panel of K"
        for c in rowtiles:
            rem = _out(c[0][3], c[1][3], c[2][1], c[3][1], c[4][1]) % nr
            lasts.add("whole" if rem == 0 else "half" if rem == nr // 2 else "less" if rem < nr // 2 else "more")
    assert {"half", "less", "more"} <= lasts, lasts


def test_plan_names_the_resnet_strided_layers():
    """resnet's stem takes row tiles (float32, the AVX-512 8x32, AVX2 6x16 and portable 4x16 kernels
    alike: Wo = 112 = 3.5 x 32 = 7 x 16, K = 64), its 1x1/2 downsample gather + GEMM, and
    its 3x3/2 on 56x56 has positions as rows (every ISA)."""
    stem = ((8, 3, 224, 224), (64, 3, 7, 7), (2, 2), (3, 3), (1, 1))
    down = ((8, 256, 56, 56), (512, 256, 1, 1), (2, 2), (0, 0), (1, 1))
    mr, nr = _tile(np.float32)
    assert _cpp_forward(*stem, np.float32) == ("shifted" if 112 % nr == 0 and 64 % mr == 0 else "shifted_rowtiles")
    assert _cpp_forward(*down, np.float32) == "pointwise_gather"
    assert _cpp_forward(*down, np.float32, threads=2) == "pointwise_gather"
    # the 3x3/2 (56x56 -> 28x28): positions as rows at any thread count
    mid = ((8, 128, 56, 56), (128, 128, 3, 3), (2, 2), (1, 1), (1, 1))
    for threads in (1, 2):
        assert _cpp_forward(*mid, np.float32, threads=threads) == "posrows"


@pytest.mark.parametrize("case", [SHAPES[1], SHAPES[4], DOWNSAMPLE])
def test_strided_finite_differences(rng, case):
    xs, ws, s, p, d = case
    xs = (1, min(xs[1], 2), xs[2], xs[3])
    ws = (ws[0], xs[1], ws[2], ws[3])
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    tol = dict(rtol=1e-6, atol=1e-8)  # central differences carry ~1e-9 truncation/rounding error
    assert_close(dx, numeric_grad(lambda v: dk.conv2d(v, w, b, s, p, d), x, dy), **tol, what="dx")
    assert_close(dw, numeric_grad(lambda v: dk.conv2d(x, v, b, s, p, d), w, dy), **tol, what="dw")
    assert_close(db, numeric_grad(lambda v: dk.conv2d(x, w, v, s, p, d), b, dy), **tol, what="db")


@pytest.mark.parametrize("case", [STEM, PARTIAL_TILE, SHAPES[4], DOWNSAMPLE, UNFOLD2])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_strided_nonfinite_match_torch(rng, case, dt):
    """NaN / Inf in x (in columns and rows that stride 2 reads and skips, next to the padding) and an
    Inf bias: non-finite values appear exactly where torch has them, in y and dw (dx: the weights are
    finite)."""
    xs, ws, s, p, d = case
    x = rng.standard_normal(xs).astype(dt)
    x[0, 0, 1, -1] = np.inf
    x[-1, -1, -1, 0] = np.nan
    x[0, -1, xs[2] // 2, 1] = -np.inf
    x[-1, 0, 3, 5] = np.nan  # odd row and column: read with padding 1 / 3 at stride 2
    x[0, 0, 2, 4] = np.inf  # even ones: read without padding
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt)
    b[1] = np.inf
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
    ty.backward(torch.tensor(dy))
    for name, got, want in (("y", y, ty.detach().numpy()), ("dw", dw, tw.grad.numpy()), ("dx", dx, tx.grad.numpy())):
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), fin), f"{name}: non-finite pattern differs from torch {case}"
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{name}: NaN pattern differs from torch {case}"
        assert name == "dx" or not fin.all(), f"{name}: the test should produce some non-finite values"
        assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), dtype=dt, what=f"{name} {case}")


def test_strided_inputs_untouched(rng):
    x = rng.standard_normal((2, 3, 33, 95)).astype(np.float32)
    w = rng.standard_normal((24, 3, 7, 7)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    copies = [a.copy() for a in (x, w, b)]
    y, ctx = dk.conv2d(x, w, b, 2, 3, return_ctx=True)
    dk.conv2d_backward(ctx, np.ones_like(y))
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c)


_BANDS_SCRIPT = r"""
import os, sys
os.environ["DEEPKERN_PARALLEL_MIN_US"] = "0"  # every region threaded, so small shapes take the bands
os.environ["DEEPKERN_CONTENTION"] = "off"  # both threads run even on a busy machine
import numpy as np
import deepkern as dk
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
sys.path.insert(0, {tests!r})
from reference import conv2d_ref
rng = np.random.default_rng(5)
# row tiles with Ho >= 32 on N >= 2 samples: bands of output rows per sample (K = 19: edge rows;
# Wo = 31: a partial last tile; dilation 4)
cases = [((3, 3, 67, 95), (19, 3, 7, 7), (2, 2), (3, 3), (1, 1)), ((2, 3, 70, 61), (24, 3, 7, 7), (2, 2), (3, 3), (1, 1)),
         ((2, 2, 80, 61), (24, 2, 3, 3), (2, 2), (1, 1), (4, 4))]
for dt in (np.float32, np.float64):
    tol = 2e-4 if dt == np.float32 else 1e-10
    for xs, ws, s, p, d in cases:
        params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
        assert _cpu.conv2d_plan(params, np.dtype(dt).name, 2)["forward"] == "shifted_rowtiles", (xs, ws)
        x, w, b = (rng.standard_normal(a).astype(dt) for a in (xs, ws, ws[0]))
        r = conv2d_ref(x, w, b, s, p, d)
        ys = []
        for t in (1, 2):
            dk.set_num_threads(t)
            y = dk.conv2d(x, w, b, s, p, d, out=np.full(r.shape, np.nan, dt))
            err = np.abs(y - r).max() / max(1.0, np.abs(r).max())
            assert not np.isnan(y).any() and err < tol, (dt, xs, ws, t, err)
            ys.append(y)
        assert np.array_equal(ys[0], ys[1]), (dt, xs, ws)  # bands change the split, not the sums
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_row_bands_each_isa(isa):
    """Two threads on a few row-tiled samples split them into bands of output rows, each band padding
    only the phase rows it reads: same bits as one thread, in every ISA's kernels."""
    r = run_with_isa(isa, _BANDS_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


_GROUPS_SCRIPT = r"""
import os, sys
os.environ["DEEPKERN_PARALLEL_MIN_US"] = "0"
os.environ["DEEPKERN_CONTENTION"] = "off"
import numpy as np
import deepkern as dk
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
sys.path.insert(0, {tests!r})
from reference import conv2d_ref
rng = np.random.default_rng(7)
# row tiles run in groups of tiles that cross output rows: 294 taps (two kc blocks, the edge rows of K = 19
# accumulated), N = 1 at 2 threads (each thread's tile range starts inside a group and a row), a half tile
# inside every group, N = 3. Row tiles need the columns the last tile computes within the padded phase
# width, so the widths follow NR (32 on AVX-512, else 16 or less): Wo = 47 fits every NR, and the half
# tiles are Wo = 21 and 23 at NR 16, Wo = 45 and 46 at NR 32.
wide = _cpu.isa() == "avx512"
cases = [((1, 6, 40, 93), (19, 6, 7, 7)), ((3, 3, 45, 89 if wide else 41), (24, 3, 7, 7)),
         ((2, 3, 27, 91 if wide else 45), (13, 3, 5, 5))]
for dt in (np.float32, np.float64):
    tol = 2e-4 if dt == np.float32 else 1e-10
    for xs, ws in cases:
        s, p, d = (2, 2), (ws[2] // 2, ws[3] // 2), (1, 1)
        params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
        assert _cpu.conv2d_plan(params, np.dtype(dt).name, 2)["forward"] == "shifted_rowtiles", (xs, ws)
        x, w, b = (rng.standard_normal(a).astype(dt) for a in (xs, ws, ws[0]))
        x[-1, 0, xs[2] // 2, 3] = np.nan
        r = conv2d_ref(x, w, b, s, p, d)
        nan = np.isnan(r)
        assert nan.any() and not nan.all()
        ys = []
        for t in (1, 2):
            dk.set_num_threads(t)
            y = dk.conv2d(x, w, b, s, p, d, out=np.full(r.shape, np.nan, dt))
            assert np.array_equal(np.isnan(y), nan), (dt, xs, ws, t)
            err = np.abs(y[~nan] - r[~nan]).max() / max(1.0, np.abs(r[~nan]).max())
            assert err < tol, (dt, xs, ws, t, err)
            ys.append(y)
        assert np.array_equal(ys[0], ys[1], equal_nan=True), (dt, xs, ws)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_row_tile_groups_each_isa(isa):
    """Row tiles go by groups, each weight panel over the whole group: groups that cross rows, start
    mid-row (a thread's share of one sample), hold half tiles, and run in two kc blocks; a NaN input
    spreads to exactly its windows; same bits at 1 and 2 threads, in every ISA's kernels."""
    r = run_with_isa(isa, _GROUPS_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
