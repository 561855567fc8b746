"""scaled_dot_product_attention's composed path: attention dropout and the additive mask's gradient.

The fused kernels (csrc/cpu/attention/) never form the (Lq, Lk) probability matrix; dropout on
it and the mask's gradient dS need it, so these cases run as batched matmuls and whole-array
softmax here (numpy or cupy alike):
    S = q k^T * scale + mask;  P = softmax(S) (a row with nothing to attend to: zeros)
    out = (P * keep / (1 - p)) v,  keep ~ Bernoulli(1 - p) drawn once from `seed`, kept in the ctx
backward: dP~ = dout v^T; dv = P~^T dout; dP = dP~ * keep / (1 - p); dS = P * (dP - rowsum(dP * P));
dq = dS k * scale; dk = dS^T q * scale; dmask = dS summed to the mask's own shape.
Also the grouped-query helpers: K/V heads repeated for the forward, their gradients summed back.
Batched products on numpy run the library's GEMM once per (batch, head) (bmm): numpy.matmul goes
to OpenBLAS's own thread pool, which on a shared machine measured 100-500x slower here.
"""

import numpy as np


def bmm(xp, a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) over matching leading dims (op = swap of the last two axes)."""
    if xp is np and a.dtype == b.dtype and a.dtype in (np.float32, np.float64):
        from ..nn._matmul import gemm  # deferred: deepkern.nn imports this package

        lead = a.shape[:-2]
        A = a.reshape((-1,) + a.shape[-2:])
        B = b.reshape((-1,) + b.shape[-2:])
        out = [gemm(A[i], B[i], trans_a=trans_a, trans_b=trans_b) for i in range(A.shape[0])]
        return (
            np.stack(out).reshape(lead + out[0].shape)
            if out
            else xp.matmul(xp.swapaxes(a, -1, -2) if trans_a else a, xp.swapaxes(b, -1, -2) if trans_b else b)
        )
    return xp.matmul(xp.swapaxes(a, -1, -2) if trans_a else a, xp.swapaxes(b, -1, -2) if trans_b else b)


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
    s = bmm(xp, q, k, trans_b=True) * dtype.type(scale)
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
    out = bmm(xp, pd, v)
    return out, (p, keep)


def backward(xp, q, k, v, saved, dout, scale, dtype):
    """-> (dq, dk, dv, dS) at the shapes of q, k, v and of the scores (N, Lq, Lk)."""
    p, keep = saved
    pd = p if keep is None else p * keep
    dv = bmm(xp, pd, dout, trans_a=True)
    dp = bmm(xp, dout, v, trans_b=True)
    if keep is not None:
        dp = dp * keep
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    sc = dtype.type(scale)
    dq = bmm(xp, ds, k) * sc
    dk = bmm(xp, ds, q, trans_a=True) * sc
    return dq, dk, dv, ds
