"""scaled_dot_product_attention's composed path: attention dropout and the additive mask's gradient.

The fused kernels (csrc/cpu/attention/) never form the (Lq, Lk) probability matrix; dropout on
it and the mask's gradient dS need it, so these cases run as batched matmuls and whole-array
softmax here (numpy or cupy alike):
    S = q k^T * scale + mask;  P = softmax(S) (a row with nothing to attend to: zeros)
    out = (P * keep / (1 - p)) v,  keep ~ Bernoulli(1 - p) drawn once from `seed`, kept in the ctx
backward: dP~ = dout v^T; dv = P~^T dout; dP = dP~ * keep / (1 - p); dS = P * (dP - rowsum(dP * P));
dq = dS k * scale; dk = dS^T q * scale; dmask = dS summed to the mask's own shape.
Also the grouped-query helpers: K/V heads repeated for the forward, their gradients summed back.
"""
import numpy as np


def expand_kv(xp, a, groups):
    """(..., Hkv, L, E) -> (..., Hkv * groups, L, E), each head repeated `groups` times in a row
    (PyTorch's repeat_interleave on dim -3)."""
    return a if groups == 1 else xp.ascontiguousarray(xp.repeat(a, groups, axis=-3))


def reduce_kv(g, groups):
    """Gradient at the expanded heads -> gradient at the Hkv heads (sum over each group)."""
    if groups == 1:
        return g
    s = g.shape  # a sum: contiguous
    return g.reshape(s[:-3] + (s[-3] // groups, groups) + s[-2:]).sum(axis=-3)


def forward(xp, q, k, v, mask, is_causal, scale, dropout_p, seed, dtype):
    """-> (out, saved) with q (N, Lq, D), k (N, Lk, D), v (N, Lk, Dv) and mask None or broadcastable
    to (N, Lq, Lk) (additive float)."""
    Lq, Lk = q.shape[-2], k.shape[-2]
    s = xp.matmul(q, xp.swapaxes(k, -1, -2)) * dtype.type(scale)
    if mask is not None:
        s = s + mask
    if is_causal:
        allowed = xp.asarray(np.tril(np.ones((Lq, Lk), bool)))
        s = xp.where(allowed, s, dtype.type(-np.inf))
    m = s.max(axis=-1, keepdims=True)
    dead = ~xp.isfinite(m) & (m < 0)  # rows that attend to nothing (every score -inf)
    e = xp.exp(s - xp.where(dead, dtype.type(0), m))
    e = xp.where(dead, dtype.type(0), e)
    total = e.sum(axis=-1, keepdims=True)
    p = e / xp.where(total == 0, dtype.type(1), total)
    keep = None
    pd = p
    if dropout_p > 0:
        rng = np.random.default_rng(seed)
        keep = xp.asarray((rng.random(p.shape) >= dropout_p).astype(dtype) * dtype.type(1.0 / (1.0 - dropout_p)))
        pd = p * keep
    out = xp.matmul(pd, v)
    return out, (p, keep)


def backward(xp, q, k, v, saved, dout, scale, dtype):
    """-> (dq, dk, dv, dS) at the shapes of q, k, v and of the scores (N, Lq, Lk)."""
    p, keep = saved
    pd = p if keep is None else p * keep
    dv = xp.matmul(xp.swapaxes(pd, -1, -2), dout)
    dp = xp.matmul(dout, xp.swapaxes(v, -1, -2))
    if keep is not None:
        dp = dp * keep
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    sc = dtype.type(scale)
    dq = xp.matmul(ds, k) * sc
    dk = xp.matmul(xp.swapaxes(ds, -1, -2), q) * sc
    return dq, dk, dv, ds
