"""Scaled dot-product attention references: plain softmax(q k^T * scale + mask) v in float64,
with the API's rule that a query row with nothing to attend to gives zeros (and zero grads)."""

import numpy as np

__all__ = ["sdpa_ref", "sdpa_backward_ref", "sdpa_full_ref", "sdpa_mask_grad_ref"]


def _probs(q, k, mask, causal, scale):
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    Lq, D = q.shape[-2:]
    Lk = k.shape[-2]
    if scale is None:
        scale = 1.0 / np.sqrt(D)
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if causal:
        s = np.where(np.tril(np.ones((Lq, Lk), dtype=bool)), s, -np.inf)
    if mask is not None:
        mask = np.asarray(mask)
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask.astype(np.float64)
    m = np.max(s, axis=-1, keepdims=True) if Lk else np.full(s.shape[:-1] + (1,), -np.inf)
    m = np.where(np.isneginf(m), 0.0, m)
    p = np.exp(s - m)
    l = p.sum(axis=-1, keepdims=True)
    return p / np.where(l == 0, 1.0, l), scale


def _unbroadcast(g, shape):
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def sdpa_ref(q, k, v, mask=None, causal=False, scale=None):
    p, _ = _probs(q, k, mask, causal, scale)
    return np.matmul(p, np.asarray(v, dtype=np.float64))


def sdpa_backward_ref(q, k, v, dout, mask=None, causal=False, scale=None):
    """-> (dq, dk, dv), each summed back to its input's shape where the batch dims broadcast."""
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    p, scale = _probs(q, k, mask, causal, scale)
    dv = np.matmul(np.swapaxes(p, -1, -2), dout)
    dp = np.matmul(dout, np.swapaxes(v, -1, -2))
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True)) * scale
    dq = np.matmul(ds, k)
    dk = np.matmul(np.swapaxes(ds, -1, -2), q)
    return _unbroadcast(dq, q.shape), _unbroadcast(dk, k.shape), _unbroadcast(dv, v.shape)


def sdpa_full_ref(q, k, v, mask=None, causal=False, scale=None, keep=None, dropout_p=0.0, groups=1):
    """Attention with dropout (keep: bool (..., Lq, Lk) of kept probabilities, survivors scaled by
    1/(1-p)) and grouped-query heads (query head h reads K/V head h // groups), one head at a time.
    Returns (out, P) with P the probabilities before dropout (the mask's gradient is dP-based)."""
    q = np.asarray(q, np.float64)
    k = np.asarray(k, np.float64)
    v = np.asarray(v, np.float64)
    Hq = q.shape[-3] if q.ndim >= 3 else 1
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    probs = np.zeros(q.shape[:-1] + (k.shape[-2],))
    for h in range(Hq):
        sel_q = (Ellipsis, h, slice(None), slice(None)) if q.ndim >= 3 else (Ellipsis,)
        sel_k = (Ellipsis, h // groups, slice(None), slice(None)) if q.ndim >= 3 else (Ellipsis,)
        m = None
        if mask is not None:
            mm = np.asarray(mask)
            mm = np.broadcast_to(mm, q.shape[:-1] + (k.shape[-2],))
            m = mm[sel_q]
        p, _ = _probs(q[sel_q], k[sel_k], m, causal, scale)
        probs[sel_q] = p
        if keep is not None:
            p = p * np.broadcast_to(keep, probs.shape)[sel_q] / (1.0 - dropout_p)
        out[sel_q] = np.matmul(p, v[sel_k])
    return out, probs


def sdpa_mask_grad_ref(q, k, v, dout, mask, scale=None, keep=None, dropout_p=0.0):
    """d loss / d (additive float) mask: the scores' gradient P * (dP - rowsum(dP * P)), where dP is
    the gradient at the probabilities (through the dropout mask `keep` if given), summed back to
    the mask's own shape."""
    p, _ = _probs(q, k, mask, False, scale)
    dp = np.matmul(np.asarray(dout, np.float64), np.swapaxes(np.asarray(v, np.float64), -1, -2))
    if keep is not None:
        dp = dp * keep / (1.0 - dropout_p)
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    return _unbroadcast(ds, np.shape(mask)).reshape(np.shape(mask))
