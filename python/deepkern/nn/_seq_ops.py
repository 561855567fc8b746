"""The sequence kernels the recurrent and attention layers call.

The layers call `lstm`, `lstm_backward`, `lstm_cell`, `lstm_cell_backward`,
`scaled_dot_product_attention` and `scaled_dot_product_attention_backward` from here. Each name
is deepkern's C++ kernel (deepkern.functional) when the build has it. Only while a kernel has
not been built yet does the name fall back to the array-module version below: the same
signature and contract as API.md, written with xp.matmul on whole arrays (numpy or cupy),
so the layers work and can be tested before the kernel lands. `USING_FALLBACK` says which.
"""
import numpy as np

from .. import functional as _F
from .._backend import get_array_module


class _Ctx:
    def __init__(self, op, **saved):
        self.op = op
        self.__dict__.update(saved)


def _sigmoid(xp, a):
    # written so that neither branch overflows for large |a|
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gates(xp, pre, H):
    i = _sigmoid(xp, pre[..., :H])
    f = _sigmoid(xp, pre[..., H:2 * H])
    g = xp.tanh(pre[..., 2 * H:3 * H])
    o = _sigmoid(xp, pre[..., 3 * H:])
    return i, f, g, o


def _fb_lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    xp = get_array_module(x)
    H = h.shape[-1]
    pre = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        pre = pre + b_ih
    if b_hh is not None:
        pre = pre + b_hh
    i, f, g, o = _gates(xp, pre, H)
    c1 = f * c + i * g
    tc = xp.tanh(c1)
    h1 = o * tc
    if not return_ctx:
        return h1, c1
    ctx = _Ctx("lstm_cell", x=x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, gates=(i, f, g, o), tc=tc,
               has_b=(b_ih is not None, b_hh is not None))
    return (h1, c1), ctx


def _cell_grads(xp, ctx_gates, tc, c_prev, dh1, dc1):
    i, f, g, o = ctx_gates
    dc = dc1 + dh1 * o * (1.0 - tc * tc)
    dpre = xp.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                           dc * i * (1.0 - g * g), dh1 * tc * o * (1.0 - o)], axis=-1)
    return dpre, dc * f


def _fb_lstm_cell_backward(ctx, dh1, dc1):
    xp = get_array_module(ctx.x)
    dh1 = xp.zeros_like(ctx.h) if dh1 is None else dh1
    dc1 = xp.zeros_like(ctx.c) if dc1 is None else dc1
    dpre, dc = _cell_grads(xp, ctx.gates, ctx.tc, ctx.c, dh1, dc1)
    db = dpre.sum(axis=0)
    return (dpre @ ctx.w_ih, dpre @ ctx.w_hh, dc, dpre.T @ ctx.x, dpre.T @ ctx.h,
            db if ctx.has_b[0] else None, db.copy() if ctx.has_b[1] else None)


def _fb_lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    xp = get_array_module(x)
    T = x.shape[0]
    H = h0.shape[-1]
    xw = x @ w_ih.T  # (T, B, 4H): the input projection of every step in one matmul
    if b_ih is not None:
        xw = xw + b_ih
    if b_hh is not None:
        xw = xw + b_hh
    hs = xp.empty((T + 1,) + h0.shape, dtype=x.dtype)
    cs = xp.empty((T + 1,) + c0.shape, dtype=x.dtype)
    gates = xp.empty((T,) + h0.shape[:-1] + (4 * H,), dtype=x.dtype)
    hs[0], cs[0] = h0, c0
    for t in range(T):
        i, f, g, o = _gates(xp, xw[t] + hs[t] @ w_hh.T, H)
        gates[t] = xp.concatenate([i, f, g, o], axis=-1)
        cs[t + 1] = f * cs[t] + i * g
        hs[t + 1] = o * xp.tanh(cs[t + 1])
    y = hs[1:].copy()
    out = (y, hs[T].copy(), cs[T].copy())
    if not return_ctx:
        return out
    ctx = _Ctx("lstm", x=x, hs=hs, cs=cs, gates=gates, w_ih=w_ih, w_hh=w_hh,
               has_b=(b_ih is not None, b_hh is not None))
    return out, ctx


def _fb_lstm_backward(ctx, dy, dhT=None, dcT=None):
    xp = get_array_module(ctx.x)
    T = ctx.x.shape[0]
    H = ctx.hs.shape[-1]
    dh = xp.zeros_like(ctx.hs[0]) if dhT is None else dhT.copy()
    dc = xp.zeros_like(ctx.cs[0]) if dcT is None else dcT.copy()
    dpre = xp.empty_like(ctx.gates)
    for t in range(T - 1, -1, -1):
        gt = ctx.gates[t]
        gs = (gt[..., :H], gt[..., H:2 * H], gt[..., 2 * H:3 * H], gt[..., 3 * H:])
        dpre[t], dc = _cell_grads(xp, gs, xp.tanh(ctx.cs[t + 1]), ctx.cs[t], dy[t] + dh, dc)
        dh = dpre[t] @ ctx.w_hh
    I = ctx.x.shape[-1]
    d2 = dpre.reshape(-1, 4 * H)
    dw_ih = d2.T @ ctx.x.reshape(-1, I)
    dw_hh = d2.T @ ctx.hs[:T].reshape(-1, H)
    db = d2.sum(axis=0)
    return (dpre @ ctx.w_ih, dh, dc, dw_ih, dw_hh, db if ctx.has_b[0] else None,
            db.copy() if ctx.has_b[1] else None)


def _fb_sdpa(q, k, v, attn_mask=None, is_causal=False, scale=None, *, return_ctx=False):
    xp = get_array_module(q)
    D = q.shape[-1]
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    s = (q @ xp.swapaxes(k, -1, -2)) * scale
    Lq, Lk = s.shape[-2], s.shape[-1]
    allowed = xp.ones(s.shape, dtype=bool)
    if is_causal:
        allowed = allowed & xp.tril(xp.ones((Lq, Lk), dtype=bool))
    if attn_mask is not None:
        if attn_mask.dtype == bool:
            allowed = allowed & attn_mask
        else:
            s = s + attn_mask
    s = xp.where(allowed, s, -xp.inf)
    m = s.max(axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    p = xp.exp(s - m)
    den = p.sum(axis=-1, keepdims=True)
    p = p / xp.where(den > 0, den, 1.0)  # a row with nothing to attend to -> zeros
    out = p @ v
    if not return_ctx:
        return out
    return out, _Ctx("scaled_dot_product_attention", q=q, k=k, v=v, p=p, scale=scale)


def _fb_sdpa_backward(ctx, dout):
    xp = get_array_module(ctx.q)
    p = ctx.p
    dv = xp.swapaxes(p, -1, -2) @ dout
    dp = dout @ xp.swapaxes(ctx.v, -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * ctx.scale
    dq = ds @ ctx.k
    dk = xp.swapaxes(ds, -1, -2) @ ctx.q
    # broadcast batch dims (e.g. shared k/v) are summed back to the input's shape
    return dq, _unbroadcast(xp, dk, ctx.k.shape), _unbroadcast(xp, dv, ctx.v.shape)


def _unbroadcast(xp, g, shape):
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


_PAIRS = {
    "lstm": (_fb_lstm, _fb_lstm_backward),
    "lstm_cell": (_fb_lstm_cell, _fb_lstm_cell_backward),
    "scaled_dot_product_attention": (_fb_sdpa, _fb_sdpa_backward),
}

USING_FALLBACK = {}
for _name, (_fwd, _bwd) in _PAIRS.items():
    _kf, _kb = getattr(_F, _name, None), getattr(_F, _name + "_backward", None)
    USING_FALLBACK[_name] = _kf is None or _kb is None
    globals()[_name] = _fwd if USING_FALLBACK[_name] else _kf
    globals()[_name + "_backward"] = _bwd if USING_FALLBACK[_name] else _kb
