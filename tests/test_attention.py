"""scaled_dot_product_attention / _backward against the float64 reference, PyTorch and finite differences."""

import os
import subprocess
import sys

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, numeric_grad
from reference import sdpa_backward_ref, sdpa_ref

DTYPES = [np.float64, np.float32]


def _qkv(rng, batch, Lq, Lk, D, Dv, dtype, kb=None, vb=None):
    kb = batch if kb is None else kb
    vb = batch if vb is None else vb
    q = rng.standard_normal(tuple(batch) + (Lq, D)).astype(dtype)
    k = rng.standard_normal(tuple(kb) + (Lk, D)).astype(dtype)
    v = rng.standard_normal(tuple(vb) + (Lk, Dv)).astype(dtype)
    return q, k, v


def _torch_mask(mask):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim < 2:  # torch wants at least (Lq, Lk)-shaped masks; same broadcast meaning
        mask = mask.reshape((1,) * (2 - mask.ndim) + mask.shape)
    return torch.from_numpy(np.ascontiguousarray(mask))


def _run(q, k, v, mask=None, causal=False, scale=None, dout=None, rng=None):
    out, ctx = dk.scaled_dot_product_attention(q, k, v, mask, is_causal=causal, scale=scale, return_ctx=True)
    if dout is None:
        dout = rng.standard_normal(out.shape).astype(q.dtype)
    grads = dk.scaled_dot_product_attention_backward(ctx, dout)
    return out, grads, dout


def _check_ref(q, k, v, out, grads, dout, mask=None, causal=False, scale=None, what=""):
    dt = q.dtype
    assert out.dtype == dt and all(g.dtype == dt for g in grads)
    assert_close(out, sdpa_ref(q, k, v, mask, causal, scale), dt, what=f"{what} out vs ref")
    for name, g, e in zip("qkv", grads, sdpa_backward_ref(q, k, v, dout, mask, causal, scale)):
        assert g.shape == e.shape, f"{what} d{name} shape"
        assert_close(g, e, dt, what=f"{what} d{name} vs ref")


def _check_torch(q, k, v, out, grads, dout, mask=None, causal=False, scale=None, what=""):
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    to = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=_torch_mask(mask), is_causal=causal, scale=scale)
    to.backward(torch.from_numpy(dout))
    assert_close(out, to, q.dtype, what=f"{what} out vs torch")
    for name, g, t in zip("qkv", grads, (tq, tk, tv)):
        assert_close(g, t.grad, q.dtype, what=f"{what} d{name} vs torch")


# (batch, Lq, Lk, D, Dv, causal): Lq/Lk = 1, Lq != Lk both ways (also causal), D != Dv,
# D not a multiple of 8, 0-3 leading dims, partial tiles, several key tiles with few heads.
SHAPES = [
    ((), 1, 1, 1, 1, False),
    ((), 1, 7, 3, 5, False),
    ((), 9, 1, 4, 4, True),
    ((2,), 17, 33, 5, 9, True),
    ((3,), 70, 20, 8, 16, True),
    ((2, 3), 65, 129, 64, 64, False),
    ((2, 2), 64, 64, 16, 16, True),
    ((1, 2, 2), 31, 67, 7, 3, False),
    ((1,), 130, 150, 128, 40, True),
    ((2,), 3, 200, 24, 17, False),
    ((), 100, 257, 33, 65, True),
    ((), 257, 100, 2, 1, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference_and_torch(rng, dtype, shape):
    batch, Lq, Lk, D, Dv, causal = shape
    q, k, v = _qkv(rng, batch, Lq, Lk, D, Dv, dtype)
    out, grads, dout = _run(q, k, v, causal=causal, rng=rng)
    _check_ref(q, k, v, out, grads, dout, causal=causal, what=str(shape))
    _check_torch(q, k, v, out, grads, dout, causal=causal, what=str(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_shapes(rng, dtype):
    for _ in range(12):
        batch = tuple(int(n) for n in rng.integers(1, 4, size=rng.integers(0, 4)))
        Lq, Lk = (int(n) for n in rng.integers(1, 150, size=2))
        D, Dv = (int(n) for n in rng.integers(1, 80, size=2))
        causal = bool(rng.integers(2))
        scale = None if rng.integers(2) else float(rng.uniform(0.05, 1.0))
        q, k, v = _qkv(rng, batch, Lq, Lk, D, Dv, dtype)
        out, grads, dout = _run(q, k, v, causal=causal, scale=scale, rng=rng)
        what = f"{batch} Lq={Lq} Lk={Lk} D={D} Dv={Dv} causal={causal} scale={scale}"
        _check_ref(q, k, v, out, grads, dout, causal=causal, scale=scale, what=what)
        _check_torch(q, k, v, out, grads, dout, causal=causal, scale=scale, what=what)


# Enough heads and query tiles that the forward shares each key tile among a group of query
# tiles (several groups per head, the last one partial; the last tile partial too), and the
# backward each query tile among a group of key tiles; one head with many key tiles, which the
# backward also splits into interleaved sets, each taken a group at a time; wide heads (D 128)
# whose ten key tiles make a full backward group and a partial one.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "shape", [((2, 4), 300, 230, 20, 13), ((), 200, 700, 12, 9), ((2, 2), 130, 600, 128, 33)], ids=str
)
def test_tile_groups(rng, dtype, causal, shape):
    batch, Lq, Lk, D, Dv = shape
    q, k, v = _qkv(rng, batch, Lq, Lk, D, Dv, dtype)
    out, grads, dout = _run(q, k, v, causal=causal, rng=rng)
    _check_ref(q, k, v, out, grads, dout, causal=causal)
    _check_torch(q, k, v, out, grads, dout, causal=causal)
    if not causal:
        mask = rng.standard_normal(batch[:1] + (1,) * (len(batch) > 1) + (Lq, Lk)).astype(dtype)
        mask[rng.random(mask.shape) < 0.2] = -np.inf
        mask[..., 0] = 0.0
        mask[..., Lq - 10, :] = -np.inf  # an empty row in the last, partial query tile
        out, grads, dout = _run(q, k, v, mask, rng=rng)
        assert np.all(out[..., Lq - 10, :] == 0) and np.all(grads[0][..., Lq - 10, :] == 0)
        _check_ref(q, k, v, out, grads, dout, mask=mask)


# (batch, Lq, Lk, mask shape): masks broadcast over batch, heads, rows or columns.
MASKS = [
    ((2, 3), 10, 12, (10, 12)),
    ((2, 3), 10, 12, (12,)),
    ((2, 3), 10, 12, (2, 1, 10, 12)),
    ((2, 3), 10, 12, (3, 1, 12)),
    ((2, 3), 70, 90, (2, 3, 70, 1)),
    ((2, 3), 70, 90, (1, 1, 70, 90)),
    ((), 5, 66, (5, 66)),
    ((4,), 65, 3, (4, 1, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("case", MASKS, ids=str)
def test_masks_broadcast(rng, dtype, kind, case):
    batch, Lq, Lk, mshape = case
    q, k, v = _qkv(rng, batch, Lq, Lk, 12, 10, dtype)
    per_column = mshape[-1] == Lk
    if kind == "bool":
        mask = rng.random(mshape) < 0.7
        if per_column:
            mask[..., 0] = True  # no empty rows, so PyTorch (NaN there) is a valid oracle
    else:
        mask = rng.standard_normal(mshape).astype(dtype)
        if per_column:
            mask[rng.random(mshape) < 0.2] = -np.inf
            mask[..., 0] = 0.0
    out, grads, dout = _run(q, k, v, mask, rng=rng)
    _check_ref(q, k, v, out, grads, dout, mask=mask, what=f"{case} {kind}")
    if per_column or kind == "float":  # a (.., Lq, 1) bool mask empties whole rows: reference only
        _check_torch(q, k, v, out, grads, dout, mask=mask, what=f"{case} {kind}")


def test_mask_broadcast_view_and_scale(rng):
    # a mask passed as a broadcast view (0 strides) and a custom scale
    q, k, v = _qkv(rng, (2, 2), 20, 30, 6, 6, np.float64)
    mask = np.broadcast_to(rng.random((1, 30)) < 0.8, (2, 2, 20, 30))
    mask = mask | (np.arange(30) == 3)
    out, grads, dout = _run(q, k, v, mask, scale=0.3, rng=rng)
    _check_ref(q, k, v, out, grads, dout, mask=mask, scale=0.3)
    _check_torch(q, k, v, out, grads, dout, mask=mask, scale=0.3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fully_masked_rows_give_zeros(rng, dtype):
    q, k, v = _qkv(rng, (2,), 70, 80, 9, 7, dtype)
    mask = rng.random((2, 70, 80)) < 0.5
    mask[0, 3] = False
    mask[1, 64:] = False  # a whole partial tile of rows
    fmask = np.where(mask, 0.0, -np.inf).astype(dtype)
    for m in (mask, fmask):
        out, grads, dout = _run(q, k, v, m, rng=rng)
        assert not np.isnan(out).any() and not any(np.isnan(g).any() for g in grads)
        assert np.all(out[0, 3] == 0) and np.all(out[1, 64:] == 0)
        assert np.all(grads[0][0, 3] == 0) and np.all(grads[0][1, 64:] == 0)
        _check_ref(q, k, v, out, grads, dout, mask=m)


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_key_gradients_exactly_zero(rng, dtype):
    # softmax over one key is constant: dq and dk are exactly 0 (the FA-2 identity
    # rowsum(dO * O) = rowsum(P * dP) must cancel exactly, not to within rounding)
    # tools/sanitize.sh builds at -O1, where the two sums are no longer emitted with the same
    # multiply-add order: there they cancel to rounding (~1e-16) instead of exactly.
    bound = 64 * np.finfo(dtype).eps if os.environ.get("DEEPKERN_SANITIZER_BUILD") == "1" else 0.0
    q, k, v = _qkv(rng, (2,), 90, 1, 11, 78, dtype)
    _, (dq, dk_, _), _ = _run(q, k, v, rng=rng)
    assert np.abs(dq).max() <= bound and np.abs(dk_).max() <= bound
    q, k, v = _qkv(rng, (2,), 90, 30, 11, 78, dtype)
    _, (dq, _, _), _ = _run(q, k, v, causal=True, rng=rng)
    assert np.abs(dq[:, 0]).max() <= bound  # causal row 0 sees only key 0


def test_no_keys(rng):
    q, k, v = _qkv(rng, (2,), 5, 0, 4, 3, np.float64)
    out, (dq, dk_, dv), _ = _run(q, k, v, rng=rng)
    assert out.shape == (2, 5, 3) and np.all(out == 0) and np.all(dq == 0)
    assert dk_.shape == (2, 0, 4) and dv.shape == (2, 0, 3)
    q, k, v = _qkv(rng, (2,), 0, 4, 4, 3, np.float64)
    out, (dq, dk_, dv), _ = _run(q, k, v, rng=rng)
    assert out.shape == (2, 0, 3) and np.all(dk_ == 0) and np.all(dv == 0)


def test_large_finite_negative_mask_is_not_empty(rng):
    q, k, v = _qkv(rng, (), 4, 6, 3, 3, np.float64)
    # very negative but finite: a normal softmax (underflowing to exact zeros where others are 0)
    mask = np.full((4, 6), -1e4)
    mask[1, 2:4] = 0.0
    out, grads, dout = _run(q, k, v, mask, rng=rng)
    _check_ref(q, k, v, out, grads, dout, mask=mask)
    _check_torch(q, k, v, out, grads, dout, mask=mask)


def test_nan_propagates_like_torch(rng):
    q, k, v = _qkv(rng, (2,), 6, 5, 4, 3, np.float32)
    q[0, 2, 1] = np.nan
    v[1, 4, 0] = np.nan
    out = dk.scaled_dot_product_attention(q, k, v)
    expected = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)))
    assert_close(out, expected, np.float32)  # NaN exactly where torch has NaN
    assert np.isnan(out[0, 2]).all() and np.isnan(out[1, :, 0]).all()


def test_batch_dims_broadcast_between_q_k_v(rng):
    q = rng.standard_normal((2, 3, 5, 4))
    k = rng.standard_normal((3, 7, 4))
    v = rng.standard_normal((1, 1, 7, 6))
    out, grads, dout = _run(q, k, v, rng=rng)
    _check_ref(q, k, v, out, grads, dout)
    _check_torch(q, k, v, out, grads, dout)


@pytest.mark.parametrize("causal,masked", [(False, False), (True, False), (False, True)])
def test_finite_differences(rng, causal, masked):
    q, k, v = _qkv(rng, (2,), 3, 4, 3, 2, np.float64)
    mask = None
    if masked:
        mask = rng.standard_normal((3, 4))
        mask[1, 2] = -np.inf
    out, grads, dout = _run(q, k, v, mask, causal, scale=0.7, rng=rng)
    fns = [
        lambda x: dk.scaled_dot_product_attention(x, k, v, mask, is_causal=causal, scale=0.7),
        lambda x: dk.scaled_dot_product_attention(q, x, v, mask, is_causal=causal, scale=0.7),
        lambda x: dk.scaled_dot_product_attention(q, k, x, mask, is_causal=causal, scale=0.7),
    ]
    for name, f, x, g in zip("qkv", fns, (q, k, v), grads):
        assert_close(g, numeric_grad(f, x, dout), rtol=1e-6, atol=1e-8, what=f"d{name} vs finite differences")


def test_inputs_unmodified_and_dtypes(rng):
    q, k, v = _qkv(rng, (2,), 6, 5, 4, 4, np.float32)
    mask = rng.random((6, 5)) < 0.8
    mask[:, 0] = True
    copies = [a.copy() for a in (q, k, v, mask)]
    out, grads, dout = _run(q, k, v, mask, rng=rng)
    for a, c in zip((q, k, v, mask), copies):
        assert np.array_equal(a, c)
    # ints promote to float64; float16 computes in float32 and comes back float16
    qi, ki, vi = (rng.integers(-3, 4, size=s) for s in ((3, 4), (5, 4), (5, 2)))
    out = dk.scaled_dot_product_attention(qi, ki, vi)
    assert out.dtype == np.float64
    assert_close(out, sdpa_ref(qi, ki, vi), np.float64)
    assert dk.scaled_dot_product_attention(q.astype(np.float16), k, v).dtype == np.float32
    out16 = dk.scaled_dot_product_attention(*(a.astype(np.float16) for a in (q, k, v)))
    assert out16.dtype == np.float16


def test_thread_counts_agree(rng):
    q, k, v = _qkv(rng, (1,), 150, 300, 16, 8, np.float64)
    n = dk.get_num_threads()
    try:
        res = []
        for t in (1, 2, 3):
            dk.set_num_threads(t)
            res.append(_run(q, k, v, causal=True, dout=np.ones((1, 150, 8)))[:2])
    finally:
        dk.set_num_threads(n)
    for out, grads in res[1:]:
        assert_close(out, res[0][0], np.float64)
        for g, g0 in zip(grads, res[0][1]):
            assert_close(g, g0, np.float64)


_ISA_SCRIPT = """
import numpy as np, deepkern as dk, sys
sys.path.insert(0, {tests!r})
from reference import sdpa_ref, sdpa_backward_ref
from helpers import assert_close
rng = np.random.default_rng(1)
for dt in (np.float64, np.float32):
    for (B, Lq, Lk, D, Dv, causal) in [(2, 70, 90, 13, 21, True), (2, 33, 130, 64, 64, False),
                                       (8, 300, 230, 20, 13, True), (8, 300, 230, 20, 13, False),
                                       (1, 200, 700, 12, 9, True), (4, 130, 600, 128, 33, True)]:
        q, k, v = (rng.standard_normal((B, L, E)).astype(dt) for L, E in ((Lq, D), (Lk, D), (Lk, Dv)))
        mask = rng.standard_normal((Lq, Lk)).astype(dt) if not causal else None
        out, ctx = dk.scaled_dot_product_attention(q, k, v, mask, is_causal=causal, return_ctx=True)
        dout = rng.standard_normal(out.shape).astype(dt)
        assert_close(out, sdpa_ref(q, k, v, mask, causal), dt)
        for g, e in zip(dk.scaled_dot_product_attention_backward(ctx, dout), sdpa_backward_ref(q, k, v, dout, mask, causal)):
            assert_close(g, e, dt)
print(dk._cpu.attention_isa(()))
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_other_isa_builds(isa):
    """The generic and AVX2 builds of the kernels (chosen at run time) are correct too."""
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, DEEPKERN_CPU_ISA=isa)
    r = subprocess.run([sys.executable, "-c", _ISA_SCRIPT.format(tests=tests)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in (isa, "generic")


def _bad(q=None, k=None, v=None, **kw):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 8)) if q is None else q
    k = rng.standard_normal((2, 5, 8)) if k is None else k
    v = rng.standard_normal((2, 5, 6)) if v is None else v
    return lambda: dk.scaled_dot_product_attention(q, k, v, **kw)


BAD = [
    (_bad(q=np.ones(8)), ValueError, "'q'"),
    (_bad(k=np.ones((2, 5, 7))), ValueError, "'k'"),
    (_bad(v=np.ones((2, 4, 6))), ValueError, "'v'"),
    (_bad(k=np.ones((3, 5, 8))), ValueError, "leading"),
    (_bad(attn_mask=np.ones((4, 4), bool)), ValueError, "attn_mask"),
    (_bad(attn_mask=np.ones((3, 2, 4, 5), bool)), ValueError, "attn_mask"),
    (_bad(attn_mask=np.ones((4, 5), bool), is_causal=True), ValueError, "attn_mask"),
    (_bad(attn_mask=np.array([["a"] * 5] * 4)), TypeError, "attn_mask"),
    (_bad(scale=float("inf")), ValueError, "scale"),
    (_bad(scale=float("nan")), ValueError, "scale"),
    (_bad(scale="0.5"), TypeError, "scale"),
    (_bad(is_causal="yes"), TypeError, "is_causal"),
    (_bad(q=np.ones((2, 4, 8), complex)), TypeError, "'q'"),
    (_bad(q=np.ones((2, 4, 0)), k=np.ones((2, 5, 0))), ValueError, "'q'"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_backward_inputs(rng):
    q, k, v = _qkv(rng, (2,), 4, 5, 8, 6, np.float64)
    out, ctx = dk.scaled_dot_product_attention(q, k, v, return_ctx=True)
    with pytest.raises(ValueError, match="dout"):
        dk.scaled_dot_product_attention_backward(ctx, np.ones((2, 4, 5)))
    with pytest.raises(TypeError, match="dout"):
        dk.scaled_dot_product_attention_backward(ctx, None)
    _, pctx = dk.max_pool2d(np.ones((1, 1, 2, 2)), 2, return_ctx=True)
    with pytest.raises(TypeError, match="ctx"):
        dk.scaled_dot_product_attention_backward(pctx, np.ones((2, 4, 6)))
