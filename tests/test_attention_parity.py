"""scaled_dot_product_attention's PyTorch arguments: dropout_p (seeded, same mask in the backward),
enable_gqa, the additive mask's gradient (attn_mask_requires_grad=True) — against the float64
reference, PyTorch (same formula, same mask) and finite differences."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, numeric_grad
from reference import sdpa_full_ref, sdpa_mask_grad_ref

R, A = 1e-10, 1e-12


def _keep(seed, shape, p):
    """The documented mask rule: numpy.random.default_rng(seed).random(shape) >= p."""
    return np.random.default_rng(seed).random(shape) >= p


GQA = [  # q shape, Hkv, Lk, Dv
    ((2, 6, 5, 8), 2, 7, 3),
    ((1, 4, 1, 1), 1, 3, 2),
    ((3, 9, 4, 5), 3, 1, 4),
    ((6, 3, 2), 3, 5, 7),  # no batch dim, Hkv = Hq
    ((2, 2, 8, 3, 4), 2, 6, 4),  # two leading dims
]


@pytest.mark.parametrize("qs,hkv,lk,dv", GQA)
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_gqa_matches_torch_and_reference(qs, hkv, lk, dv, mask_kind, rng):
    q = rng.standard_normal(qs)
    k = rng.standard_normal(qs[:-3] + (hkv, lk, qs[-1]))
    v = rng.standard_normal(qs[:-3] + (hkv, lk, dv))
    mask = None
    if mask_kind == "bool":
        mask = rng.random((qs[-2], lk)) > 0.3
    elif mask_kind == "float":
        mask = rng.standard_normal((qs[-2], lk))
    out, ctx = dk.scaled_dot_product_attention(q, k, v, mask, enable_gqa=True, return_ctx=True)
    ref, _ = sdpa_full_ref(q, k, v, mask, groups=qs[-3] // hkv)
    assert_close(out, ref, rtol=R, atol=A, what="gqa out vs reference")
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tm = None if mask is None else torch.tensor(mask)
    to = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, enable_gqa=True)
    dout = rng.standard_normal(out.shape)
    to.backward(torch.tensor(dout))
    assert_close(out, to, rtol=R, atol=A, what="gqa out vs torch")
    for name, g, t in zip("qkv", dk.scaled_dot_product_attention_backward(ctx, dout), (tq, tk, tv)):
        assert g.shape == tuple(t.shape)
        assert_close(g, t.grad, rtol=1e-9, atol=1e-11, what=f"gqa d{name}")


@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 6, 3), (1, 1, 1, 1, 1, 1), (3, 2, 7, 2, 5, 4)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("causal", [False, True])
def test_dropout_matches_same_mask_reference_torch_and_finite_differences(shape, p, causal, rng):
    B, H, Lq, Lk, D, Dv = shape
    q, k = rng.standard_normal((B, H, Lq, D)), rng.standard_normal((B, H, Lk, D))
    v = rng.standard_normal((B, H, Lk, Dv))
    seed = int(rng.integers(1 << 30))
    out, ctx = dk.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal, seed=seed, return_ctx=True)
    keep = _keep(seed, (B, H, Lq, Lk), p)
    ref, _ = sdpa_full_ref(q, k, v, causal=causal, keep=keep, dropout_p=p)
    assert_close(out, ref, rtol=R, atol=A, what="dropout out vs reference")
    np.testing.assert_array_equal(
        out, dk.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal, seed=seed)
    )
    # torch: the same formula with the same mask, through autograd
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    s = tq @ tk.transpose(-1, -2) / np.sqrt(D)
    if causal:
        s = s.masked_fill(~torch.ones(Lq, Lk, dtype=torch.bool).tril(), float("-inf"))
    to = (torch.softmax(s, -1) * torch.tensor(keep) / (1 - p)) @ tv
    dout = rng.standard_normal(out.shape)
    to.backward(torch.tensor(dout))
    assert_close(out, to, rtol=R, atol=A, what="dropout out vs torch")
    grads = dk.scaled_dot_product_attention_backward(ctx, dout)
    for name, g, t in zip("qkv", grads, (tq, tk, tv)):
        assert_close(g, t.grad, rtol=1e-9, atol=1e-11, what=f"dropout d{name} vs torch")
    if B * H * Lq * Lk <= 16:
        f = lambda a: dk.scaled_dot_product_attention(a, k, v, dropout_p=p, is_causal=causal, seed=seed)  # noqa: E731
        assert_close(grads[0], numeric_grad(f, q, dout), rtol=1e-6, atol=1e-8, what="dq finite differences")


def test_dropout_statistics_and_seeds(rng):
    q, k, v = (rng.standard_normal((4, 64, 64)) for _ in range(3))
    a = dk.scaled_dot_product_attention(q, k, v, dropout_p=0.3, seed=1)
    b = dk.scaled_dot_product_attention(q, k, v, dropout_p=0.3, seed=2)
    c = dk.scaled_dot_product_attention(q, k, v, dropout_p=0.3)
    assert not np.allclose(a, b) and not np.allclose(a, c)
    # an all-ones value matrix reads back sum(P * keep) / (1 - p): 1 on average
    ones = np.ones((4, 64, 8))
    mean = dk.scaled_dot_product_attention(q, k, ones, dropout_p=0.3, seed=5).mean()
    assert abs(mean - 1.0) < 0.02
    np.testing.assert_array_equal(
        dk.scaled_dot_product_attention(q, k, v, dropout_p=0.0, seed=3), dk.scaled_dot_product_attention(q, k, v)
    )


MASKS = [(5, 7), (1, 5, 7), (2, 3, 5, 7), (3, 1, 7), (7,), (2, 1, 1, 7)]


@pytest.mark.parametrize("mshape", MASKS)
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_float_mask_gradient_matches_torch_and_finite_differences(mshape, p, rng):
    q, k, v = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 7, 4)), rng.standard_normal((2, 3, 7, 6))
    mask = rng.standard_normal(mshape)
    mask[..., 0] = -np.inf  # a masked-out key: its gradient is 0, never NaN
    out, ctx = dk.scaled_dot_product_attention(
        q, k, v, mask, dropout_p=p, seed=9, attn_mask_requires_grad=True, return_ctx=True
    )
    dout = rng.standard_normal(out.shape)
    dq, dk_, dv, dmask = dk.scaled_dot_product_attention_backward(ctx, dout)
    assert dmask.shape == mshape and np.isfinite(dmask).all()
    keep = _keep(9, (2, 3, 5, 7), p) if p else None
    assert_close(
        dmask,
        sdpa_mask_grad_ref(q, k, v, dout, mask, keep=keep, dropout_p=p),
        rtol=1e-9,
        atol=1e-11,
        what="dmask vs reference",
    )
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tmask = torch.tensor(mask, requires_grad=True)
    s = tq @ tk.transpose(-1, -2) / 2.0 + tmask
    pr = torch.softmax(s, -1)
    if keep is not None:
        pr = pr * torch.tensor(keep) / (1 - p)
    to = pr @ tv
    to.backward(torch.tensor(dout))
    assert_close(out, to, rtol=R, atol=A, what="out")
    assert_close(dmask, tmask.grad, rtol=1e-9, atol=1e-11, what="dmask vs torch")
    for g, t in zip((dq, dk_, dv), (tq, tk, tv)):
        assert_close(g, t.grad, rtol=1e-9, atol=1e-11, what="dq/dk/dv")
    if p == 0.0:  # also torch's own sdpa with a mask that requires grad
        tm2 = torch.tensor(mask, requires_grad=True)
        F.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=tm2).backward(
            torch.tensor(dout)
        )
        assert_close(dmask, tm2.grad, rtol=1e-9, atol=1e-11, what="dmask vs torch sdpa")
    m2 = mask.copy()
    m2[..., 0] = -5.0  # finite everywhere for finite differences
    _, c2 = dk.scaled_dot_product_attention(
        q, k, v, m2, dropout_p=p, seed=9, attn_mask_requires_grad=True, return_ctx=True
    )
    g = dk.scaled_dot_product_attention_backward(c2, dout)[3]
    f = lambda m: dk.scaled_dot_product_attention(q, k, v, m, dropout_p=p, seed=9)  # noqa: E731
    assert_close(g, numeric_grad(f, m2, dout), rtol=1e-6, atol=1e-8, what="dmask finite differences")


def test_float32_and_gqa_with_dropout_and_mask_grad(rng):
    q = rng.standard_normal((2, 4, 3, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    v = rng.standard_normal((2, 2, 5, 3)).astype(np.float32)
    mask = rng.standard_normal((3, 5)).astype(np.float32)
    out, ctx = dk.scaled_dot_product_attention(
        q, k, v, mask, 0.25, enable_gqa=True, seed=4, attn_mask_requires_grad=True, return_ctx=True
    )
    assert out.dtype == np.float32
    keep = _keep(4, (2, 4, 3, 5), 0.25)
    ref, _ = sdpa_full_ref(q, k, v, mask, keep=keep, dropout_p=0.25, groups=2)
    assert_close(out, ref, dtype=np.float32, what="f32 out")
    grads = dk.scaled_dot_product_attention_backward(ctx, np.ones_like(out))
    assert [g.shape for g in grads] == [q.shape, k.shape, v.shape, mask.shape]
    assert all(g.dtype == np.float32 for g in grads)


def _bad(**kw):
    q, k, v = np.ones((2, 4, 3, 8)), np.ones((2, 2, 5, 8)), np.ones((2, 2, 5, 3))
    args = dict(q=q, k=k, v=v)
    args.update(kw)
    return lambda: dk.scaled_dot_product_attention(**args)


BAD = [
    (_bad(), ValueError, "leading"),  # 4 query heads, 2 K/V heads, no enable_gqa: no broadcast
    (_bad(enable_gqa=True, k=np.ones((2, 3, 5, 8)), v=np.ones((2, 3, 5, 3))), ValueError, "multiple"),
    (_bad(enable_gqa=True, v=np.ones((2, 1, 5, 3))), ValueError, "'v' has 1"),
    (_bad(enable_gqa=True, q=np.ones((3, 8)), k=np.ones((5, 8)), v=np.ones((5, 3))), ValueError, "heads dim"),
    (_bad(enable_gqa="yes"), TypeError, "enable_gqa"),
    (_bad(enable_gqa=True, dropout_p=1.0), ValueError, "dropout_p"),
    (_bad(enable_gqa=True, dropout_p=-0.1), ValueError, "dropout_p"),
    (_bad(enable_gqa=True, dropout_p=True), TypeError, "dropout_p.*is_causal"),
    (_bad(enable_gqa=True, dropout_p=0.1, seed=-1), TypeError, "seed"),
    (_bad(enable_gqa=True, attn_mask_requires_grad=True), TypeError, "float"),
    (_bad(enable_gqa=True, attn_mask=np.ones((3, 5), bool), attn_mask_requires_grad=True), TypeError, "float"),
    (_bad(enable_gqa=True, attn_mask=np.ones((3, 5)), attn_mask_requires_grad=1), TypeError, "attn_mask_requires_grad"),
]


@pytest.mark.parametrize("fn,exc,match", BAD)
def test_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_inputs_untouched_and_common_case_still_uses_the_kernel(rng):
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    saved = [a.copy() for a in (q, k, v)]
    _, ctx = dk.scaled_dot_product_attention(q, k, v, dropout_p=0.5, seed=0, return_ctx=True)
    dk.scaled_dot_product_attention_backward(ctx, np.ones((2, 3, 4)))
    for a, b in zip((q, k, v), saved):
        np.testing.assert_array_equal(a, b)
    _, ctx = dk.scaled_dot_product_attention(q, k, v, return_ctx=True)
    assert getattr(ctx, "composed", None) is None and ctx.lse is not None  # the fused kernel's ctx
