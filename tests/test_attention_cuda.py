"""scaled_dot_product_attention on the GPU (cupy in, cupy out): forward and every gradient against
the float64 reference and the CPU backend, float32 (exact SIMT kernels) and float16 (tensor cores
at D = 64 / 128, 1e-2 relative norm error), every mask kind, partial tiles, both dQ modes.

Marked `cuda`: runs on a GPU with real cupy, or on the SIMT simulator with the cupy stand-in
(DEEPKERN_CUDA_SIM=1); skipped where neither is present (see conftest.py). Sizes stay small: every
case runs on CPU fibers in CI.
"""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, assert_rel_norm
from reference import sdpa_backward_ref, sdpa_ref

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _host(a):
    return a.get()


def _check(got, expected, dtype, what):
    if np.dtype(dtype) == np.float16:
        assert_rel_norm(got, expected, 1e-2, what=what)
    else:
        assert_close(got, expected, dtype, what=what)


def _run_gpu(cp, q, k, v, mask, causal, scale, dout):
    args = [cp.asarray(a) for a in (q, k, v)]
    m = None if mask is None else cp.asarray(mask)
    snap = [a.get().copy() for a in args]
    out, ctx = dk.scaled_dot_product_attention(*args, m, is_causal=causal, scale=scale, return_ctx=True)
    assert isinstance(out, cp.ndarray) and out.dtype == q.dtype and out.shape == sdpa_shape(q, v)
    grads = dk.scaled_dot_product_attention_backward(ctx, cp.asarray(dout))
    for g, a in zip(grads, (q, k, v)):
        assert isinstance(g, cp.ndarray) and g.dtype == a.dtype and g.shape == a.shape
    for a, s in zip(args, snap):
        assert np.array_equal(a.get(), s, equal_nan=True), "an input was modified"
    return _host(out), tuple(_host(g) for g in grads)


def sdpa_shape(q, v):
    batch = np.broadcast_shapes(q.shape[:-2], v.shape[:-2])
    return tuple(batch) + (q.shape[-2], v.shape[-1])


def _case(cp, rng, batch, Lq, Lk, D, Dv, dtype, mask=None, causal=False, scale=None, what=""):
    """GPU vs the float64 reference and vs the CPU backend on the same (rounded) inputs."""
    q = rng.standard_normal(tuple(batch) + (Lq, D)).astype(dtype)
    k = rng.standard_normal(tuple(batch) + (Lk, D)).astype(dtype)
    v = rng.standard_normal(tuple(batch) + (Lk, Dv)).astype(dtype)
    dout = rng.standard_normal(tuple(batch) + (Lq, Dv)).astype(dtype)
    out, grads = _run_gpu(cp, q, k, v, mask, causal, scale, dout)
    what = f"{what} {batch} Lq={Lq} Lk={Lk} D={D} Dv={Dv} {np.dtype(dtype).name} causal={causal}"
    _check(out, sdpa_ref(q, k, v, mask, causal, scale), dtype, f"{what} out vs ref")
    for name, g, e in zip("qkv", grads, sdpa_backward_ref(q, k, v, dout, mask, causal, scale)):
        _check(g, e, dtype, f"{what} d{name} vs ref")
    cpu_out, ctx = dk.scaled_dot_product_attention(q, k, v, mask, is_causal=causal, scale=scale, return_ctx=True)
    cpu_grads = dk.scaled_dot_product_attention_backward(ctx, dout)
    _check(out, cpu_out.astype(np.float64), dtype, f"{what} out vs cpu")
    for name, g, e in zip("qkv", grads, cpu_grads):
        _check(g, e.astype(np.float64), dtype, f"{what} d{name} vs cpu")
    return q, k, v, dout, out, grads


DTYPES = [np.float32, np.float16]

# (batch, Lq, Lk, D, Dv): 1-row and 1-key, Lq/Lk off the 16/32/64 tiles, D != Dv, 0-3 batch dims.
SHAPES = [
    ((2,), 1, 1, 8, 8),
    ((), 1, 37, 64, 64),
    ((2, 3), 70, 45, 64, 64),
    ((1,), 33, 1, 80, 80),
    ((2,), 17, 130, 128, 128),
    ((1,), 20, 40, 256, 256),
    ((3,), 65, 66, 8, 24),
    ((1, 2), 40, 50, 80, 64),
    ((), 5, 7, 96, 33),
    ((2, 1, 2), 9, 12, 16, 16),
    ((1,), 81, 19, 128, 72),
    ((1,), 3, 70, 200, 256),
    ((1,), 200, 150, 64, 64),  # causal tiles wholly below the diagonal (the unchecked fast path)
]


# Small cases a GPU run also checks under compute-sanitizer (memcheck, racecheck, synccheck):
# both tensor-core head dims with partial tiles, a SIMT head dim.
SANITIZE = {((2, 3), 70, 45, 64, 64), ((2,), 17, 130, 128, 128), ((3,), 65, 66, 8, 24)}
CASES = [
    pytest.param(s, marks=pytest.mark.sanitize, id=str(s)) if s in SANITIZE else pytest.param(s, id=str(s))
    for s in SHAPES
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", CASES)
def test_shapes(cp, rng, dtype, causal, shape):
    _case(cp, rng, *shape, dtype, causal=causal)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_random_shapes_and_scale(cp, rng, dtype):
    for _ in range(4):
        batch = tuple(int(n) for n in rng.integers(1, 3, size=rng.integers(0, 3)))
        Lq, Lk = (int(n) for n in rng.integers(1, 90, size=2))
        D = int(rng.choice([8, 64, 80, 128, 256, int(rng.integers(1, 257))]))
        Dv = D if rng.integers(2) else int(rng.integers(1, 257))
        scale = None if rng.integers(2) else float(rng.uniform(0.05, 1.0))
        _case(cp, rng, batch, Lq, Lk, D, Dv, dtype, causal=bool(rng.integers(2)), scale=scale, what="random")


# (batch, Lq, Lk, mask shape): broadcast over batch, heads, rows or columns (stride 0 on the GPU too).
MASKS = [
    ((2, 3), 10, 12, (10, 12)),
    ((2, 3), 10, 12, (12,)),
    ((2, 3), 10, 70, (2, 1, 10, 70)),
    ((2, 3), 10, 12, (3, 1, 12)),
    ((2, 3), 70, 33, (2, 3, 70, 1)),
    ((), 5, 66, (5, 66)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("case", MASKS, ids=str)
@pytest.mark.parametrize("D", [64, 24])
def test_masks(cp, rng, dtype, kind, case, D):
    batch, Lq, Lk, mshape = case
    if kind == "bool":
        mask = rng.random(mshape) < 0.7  # a (..., Lq, 1) mask empties whole rows: zeros expected
    else:
        mask = rng.standard_normal(mshape).astype(dtype)
        mask[rng.random(mshape) < 0.2] = -np.inf
    _case(cp, rng, batch, Lq, Lk, D, D, dtype, mask=mask, what=f"{kind} mask {mshape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_rows_give_zeros(cp, rng, dtype):
    mask = rng.random((2, 20, 40)) < 0.5
    mask[0, 3] = False
    mask[1, 19] = False
    *_, out, grads = _case(cp, rng, (2,), 20, 40, 64, 64, dtype, mask=mask, what="empty rows")
    assert np.all(out[0, 3] == 0) and np.all(out[1, 19] == 0)
    assert np.all(grads[0][0, 3] == 0) and np.all(grads[0][1, 19] == 0)


def test_no_keys(cp, rng):
    q = cp.asarray(rng.standard_normal((2, 5, 8)).astype(np.float32))
    k = cp.asarray(np.zeros((2, 0, 8), np.float32))
    v = cp.asarray(np.zeros((2, 0, 4), np.float32))
    out, ctx = dk.scaled_dot_product_attention(q, k, v, return_ctx=True)
    assert np.array_equal(out.get(), np.zeros((2, 5, 4), np.float32))
    dq, dk_, _ = dk.scaled_dot_product_attention_backward(ctx, cp.asarray(np.ones((2, 5, 4), np.float32)))
    assert np.array_equal(dq.get(), np.zeros((2, 5, 8), np.float32)) and dk_.shape == (2, 0, 8)


def test_batch_dims_broadcast_between_q_k_v(cp, rng):
    q = rng.standard_normal((2, 3, 9, 16)).astype(np.float32)
    k = rng.standard_normal((1, 3, 11, 16)).astype(np.float32)
    v = rng.standard_normal((3, 11, 8)).astype(np.float32)
    dout = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    out, grads = _run_gpu(cp, q, k, v, None, True, None, dout)
    assert_close(out, sdpa_ref(q, k, v, None, True), np.float32, what="out")
    for name, g, e in zip("qkv", grads, sdpa_backward_ref(q, k, v, dout, None, True)):
        assert_close(g, e, np.float32, what=f"d{name}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_deterministic_dq_pass(cp, rng, dtype, monkeypatch):
    """DEEPKERN_DETERMINISTIC=1: dQ by the separate pass agrees with the atomics' and repeats bitwise."""
    q, k, v, dout, _, grads = _case(cp, rng, (2,), 45, 70, 64, 64, dtype, causal=True, what="atomic dq")
    monkeypatch.setenv("DEEPKERN_DETERMINISTIC", "1")
    runs = [_run_gpu(cp, q, k, v, None, True, None, dout)[1] for _ in range(2)]
    for name, a, b, g in zip("qkv", runs[0], runs[1], grads):
        assert np.array_equal(a, b), f"deterministic d{name} differs between runs"
        _check(a, g.astype(np.float64), dtype, f"deterministic d{name} vs atomic")


def test_head_dim_limit(cp, rng):
    q = cp.asarray(rng.standard_normal((1, 4, 257)).astype(np.float32))
    with pytest.raises(ValueError, match="at most 256"):
        dk.scaled_dot_product_attention(q, q, q)
