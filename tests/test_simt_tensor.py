"""The simulator's tensor-core and async-copy emulation (cuda/common/mma.cuh, cp_async.cuh):
fragments are built here in numpy from the PTX ISA layouts (g = lane // 4, t = lane % 4) and the
results checked against numpy matmuls; ldmatrix against its definition and, fed into mma, as the
kernels use it. Marked `simt` (simulator only, see conftest.py).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.simt

LANES = np.arange(32)
G, T = LANES // 4, LANES % 4


@pytest.fixture(scope="module")
def sim():
    from deepkern import _cuda_sim

    return _cuda_sim


def pack16(lo, hi):
    """Two 16-bit patterns per 32-bit register, the first element in the low half."""
    return lo.astype(np.uint32) | (hi.astype(np.uint32) << 16)


def bits16(x, kind):
    if kind == "f16":
        return x.astype(np.float16).view(np.uint16)
    return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)  # bf16: exact inputs only


def run_mma(sim, a_regs, b_regs, c, kind_code):
    words = np.zeros((32, 10), np.uint32)
    words[:, :4], words[:, 4:6] = a_regs, b_regs
    words[:, 6:] = c.astype(np.float32).view(np.uint32)
    d = np.full((32, 4), np.nan, np.float32)
    sim._simt_selftest_tensor("mma_raw", words.ctypes.data, d.ctypes.data, 0, kind_code)
    return d


def c_fragment(m):
    """C/D register i of lane (g, t): row g + 8*(i//2), column 2t + i%2."""
    return np.stack([m[G + 8 * (i // 2), 2 * T + i % 2] for i in range(4)], axis=1)


def from_c_fragment(d):
    m = np.full((16, 8), np.nan)
    for i in range(4):
        m[G + 8 * (i // 2), 2 * T + i % 2] = d[:, i]
    return m


@pytest.mark.parametrize("kind,code", [("f16", 0), ("bf16", 1)])
def test_mma_m16n8k16_layout_matches_a_matmul(sim, rng, kind, code):
    # small integers and halves: exact in f16/bf16, so the product is exact and any misplaced
    # element shows
    a = rng.integers(-8, 9, (16, 16)) / 2.0
    b = rng.integers(-8, 9, (16, 8)) / 4.0
    c = rng.integers(-50, 51, (16, 8)).astype(np.float64)
    ab, bb = bits16(a, kind), bits16(b, kind)
    # A reg r: row g + 8*(r%2), columns 2t + 8*(r//2) + {0, 1}; B reg r: rows 2t + 8r + {0, 1}, column g
    a_regs = np.stack(
        [
            pack16(ab[G + 8 * (r % 2), 2 * T + 8 * (r // 2)], ab[G + 8 * (r % 2), 2 * T + 8 * (r // 2) + 1])
            for r in range(4)
        ],
        axis=1,
    )
    b_regs = np.stack([pack16(bb[2 * T + 8 * r, G], bb[2 * T + 8 * r + 1, G]) for r in range(2)], axis=1)
    d = run_mma(sim, a_regs, b_regs, c_fragment(c), code)
    np.testing.assert_array_equal(from_c_fragment(d), a @ b + c)


def test_mma_m16n8k16_f16_random_values(sim, rng):
    a = rng.standard_normal((16, 16)).astype(np.float16)
    b = rng.standard_normal((16, 8)).astype(np.float16)
    c = rng.standard_normal((16, 8)).astype(np.float32)
    ab, bb = a.view(np.uint16), b.view(np.uint16)
    a_regs = np.stack(
        [
            pack16(ab[G + 8 * (r % 2), 2 * T + 8 * (r // 2)], ab[G + 8 * (r % 2), 2 * T + 8 * (r // 2) + 1])
            for r in range(4)
        ],
        axis=1,
    )
    b_regs = np.stack([pack16(bb[2 * T + 8 * r, G], bb[2 * T + 8 * r + 1, G]) for r in range(2)], axis=1)
    d = run_mma(sim, a_regs, b_regs, c_fragment(c), 0)
    want = a.astype(np.float64) @ b.astype(np.float64) + c
    np.testing.assert_allclose(from_c_fragment(d), want, rtol=1e-6, atol=1e-6)


def tf32_round(x):
    """cvt.rna.tf32.f32 in numpy: nearest, ties away from zero, 10 mantissa bits kept."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x1000) & 0xFFFFE000) & 0xFFFFFFFF).astype(np.uint32)


def test_to_tf32_rounds_to_nearest_ties_away(sim, rng):
    xs = np.concatenate(
        [
            rng.standard_normal(200).astype(np.float32),
            np.array([1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11), 1 + 2**-12, 0.0, -0.0], np.float32),
        ]
    )
    got = np.array([sim._simt_to_tf32(float(x)) for x in xs], np.uint32)
    np.testing.assert_array_equal(got, tf32_round(xs))
    assert sim._simt_to_tf32(1 + 2**-11) == np.float32(1 + 2**-10).view(np.uint32)  # tie: away from zero
    assert np.isnan(np.uint32(sim._simt_to_tf32(float("nan"))).view(np.float32))


def test_mma_m16n8k8_tf32_layout_matches_a_matmul(sim, rng):
    a = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    c = rng.standard_normal((16, 8)).astype(np.float32)
    at, bt = tf32_round(a), tf32_round(b)
    # A reg r: row g + 8*(r%2), column t + 4*(r//2); B reg r: row t + 4r, column g
    a_regs = np.stack([at[G + 8 * (r % 2), T + 4 * (r // 2)] for r in range(4)], axis=1)
    b_regs = np.stack([bt[T + 4 * r, G] for r in range(2)], axis=1)
    d = run_mma(sim, a_regs, b_regs, c_fragment(c), 2)
    want = at.view(np.float32).astype(np.float64) @ bt.view(np.float32).astype(np.float64) + c
    np.testing.assert_allclose(from_c_fragment(d), want, rtol=1e-6, atol=1e-6)
    # the unit reads only the tf32 bits: unrounded fp32 inputs are truncated, not rounded
    a_raw = np.stack([a[G + 8 * (r % 2), T + 4 * (r // 2)].view(np.uint32) for r in range(4)], axis=1)
    b_raw = np.stack([b[T + 4 * r, G].view(np.uint32) for r in range(2)], axis=1)
    d2 = run_mma(sim, a_raw, b_raw, c_fragment(c), 2)
    trunc = lambda m: (m.view(np.uint32) & 0xFFFFE000).view(np.float32).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(from_c_fragment(d2), trunc(a) @ trunc(b) + c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("num", [1, 2, 4])
@pytest.mark.parametrize("trans", [False, True])
def test_ldmatrix_gives_each_lane_its_pairs(sim, rng, num, trans):
    m = rng.integers(0, 2**16, (4, 8, 8)).astype(np.uint16)  # lane l supplies row l%8 of matrix l//8
    out = np.zeros((32, 4), np.uint32)
    sim._simt_selftest_tensor("ldmatrix_raw", m.ctypes.data, out.ctypes.data, 0, num + 8 * trans)
    row, col = LANES // 4, 2 * (LANES % 4)
    for j in range(num):
        src = m[j].T if trans else m[j]
        np.testing.assert_array_equal(out[:, j], pack16(src[row, col], src[row, col + 1]))
    assert (out[:, num:] == 0).all()


def test_ldmatrix_then_mma_is_a_row_major_matmul(sim, rng):
    a = rng.standard_normal((16, 16)).astype(np.float16)
    b = rng.standard_normal((16, 8)).astype(np.float16)
    d = np.full((16, 8), np.nan, np.float32)
    sim._simt_selftest_tensor("ldmatrix_mma", a.ctypes.data, b.ctypes.data, d.ctypes.data, 0)
    np.testing.assert_allclose(d, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-6, atol=1e-6)


def test_cp_async_lands_only_at_the_wait_that_completes_its_group(sim, rng):
    x = rng.standard_normal(128).astype(np.float32)
    pred = 0b1111_0111_1111_1110  # threads 0 and 11 copy nothing: their 16 bytes become zeros
    out = np.zeros(384, np.float32)
    sim._simt_selftest_tensor("cp_async_groups", x.ctypes.data, out.ctypes.data, 0, pred)
    first = x[:64].copy()
    for t in (0, 11):
        first[4 * t : 4 * t + 4] = 0
    assert np.isnan(out[:128]).all()  # before any wait: the 0xFF poison
    np.testing.assert_array_equal(out[128:192], first)
    assert np.isnan(out[192:256]).all()  # the second group is still in flight after wait<1>
    np.testing.assert_array_equal(out[256:320], first)
    np.testing.assert_array_equal(out[320:384], x[64:])


def test_cp_async_into_global_memory_is_an_error(sim):
    x = np.zeros(4, np.float32)
    y = np.zeros(4, np.float32)
    with pytest.raises(RuntimeError, match="cp_async: destination .* is not in this block's shared memory"):
        sim._simt_selftest_tensor("cp_async_to_global", x.ctypes.data, y.ctypes.data, 0, 0)
