"""float64 references for the sequence layers: the formulas written out, one score at a time."""

import numpy as np


def _softmax(s, mask=None):
    s = np.array(s, dtype=np.float64)
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    if not np.isfinite(s).any():
        return np.zeros_like(s)
    e = np.exp(s - s[np.isfinite(s)].max())
    return e / e.sum()


def additive_attention(q, k, v, Wq, Wk, b, va, mask=None):
    """Bahdanau: e_s = va . tanh(Wq q + Wk k_s + b); a = softmax(e); ctx = sum_s a_s v_s.
    q (B, Tq, Dq), k (B, S, Dk), v (B, S, Dv) -> (ctx (B, Tq, Dv), a (B, Tq, S))."""
    B, Tq, _ = q.shape
    S = k.shape[1]
    ctx = np.zeros((B, Tq, v.shape[2]))
    A = np.zeros((B, Tq, S))
    for b_ in range(B):
        for t in range(Tq):
            e = [va @ np.tanh(Wq @ q[b_, t] + Wk @ k[b_, s] + b) for s in range(S)]
            A[b_, t] = _softmax(e, None if mask is None else mask[b_])
            ctx[b_, t] = sum(A[b_, t, s] * v[b_, s] for s in range(S))
    return ctx, A


def luong_attention(q, k, v, score, W=None, va=None, mask=None):
    """Luong: dot q.k_s, general q^T W k_s, concat va . tanh(W [q; k_s])."""
    B, Tq, _ = q.shape
    S = k.shape[1]
    ctx = np.zeros((B, Tq, v.shape[2]))
    A = np.zeros((B, Tq, S))
    for b_ in range(B):
        for t in range(Tq):
            e = []
            for s in range(S):
                if score == "dot":
                    e.append(q[b_, t] @ k[b_, s])
                elif score == "general":
                    e.append(q[b_, t] @ W @ k[b_, s])
                else:
                    e.append(va @ np.tanh(W @ np.concatenate([q[b_, t], k[b_, s]])))
            A[b_, t] = _softmax(e, None if mask is None else mask[b_])
            ctx[b_, t] = sum(A[b_, t, s] * v[b_, s] for s in range(S))
    return ctx, A


def sinusoidal(max_len, dim):
    pe = np.zeros((max_len, dim))
    for p in range(max_len):
        for i in range(dim):
            angle = p / 10000 ** (2 * (i // 2) / dim)
            pe[p, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
    return pe
