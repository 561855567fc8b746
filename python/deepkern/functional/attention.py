"""scaled_dot_product_attention and its backward (PyTorch's semantics, flash-style kernels).

q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv) -> out (..., Lq, Dv); the leading dims broadcast
against each other. attn_mask: boolean (True = may attend) or additive float, broadcastable to
(..., Lq, Lk); it is passed to the kernel with strides (0 along broadcast dims), never expanded.
A query row with nothing to attend to gets zeros (and zero gradients), not NaN.

On cupy arrays (CUDA): head dims up to 256; float16 accumulates in float32 and keeps its
log-sum-exp in float32. The backward adds dQ with float atomics by default (fastest, but the sum
order varies from run to run); DEEPKERN_DETERMINISTIC=1 in the environment at the call selects a
separate dQ pass instead (no atomics, bitwise reproducible, about 1.5x the backward's work).

dropout_p > 0 and attn_mask_requires_grad=True run the composed path (attention_composed.py);
enable_gqa repeats the K/V heads for either path and sums their gradients back.
"""

import math
import numbers
import os

import numpy as np

from .._saved import watch
from .._validate import Context, array_module_of, as_float_arrays, as_grad, check_ctx, to_out_dtype
from . import attention_composed as composed

_OP = "scaled_dot_product_attention"
_CUDA_MAX_HEAD_DIM = 256


def _acc_dtype(backend, dtype):
    """The kernels' accumulator type: float32 for float16 data on the GPU, else the data type."""
    return np.float32 if backend.name == "cuda" and np.dtype(dtype) == np.float16 else dtype


def _deterministic():
    """True when DEEPKERN_DETERMINISTIC=1: the GPU backward sums dQ without atomics."""
    return os.environ.get("DEEPKERN_DETERMINISTIC", "0") == "1"


def _shapes(op, q, k, v):
    for name, a in (("q", q), ("k", k), ("v", v)):
        if a.ndim < 2:
            raise ValueError(f"{op}: '{name}' must have at least 2 dims (..., L, E), got shape {tuple(a.shape)}")
    Lq, D = int(q.shape[-2]), int(q.shape[-1])
    Lk = int(k.shape[-2])
    if int(k.shape[-1]) != D:
        raise ValueError(
            f"{op}: 'k' has embedding size {k.shape[-1]} (shape {tuple(k.shape)}); expected q's {D} (q shape {tuple(q.shape)})"
        )
    if int(v.shape[-2]) != Lk:
        raise ValueError(
            f"{op}: 'v' has sequence length {v.shape[-2]} (shape {tuple(v.shape)}); expected k's {Lk} (k shape {tuple(k.shape)})"
        )
    if D < 1:
        raise ValueError(f"{op}: 'q' must have an embedding size >= 1, got shape {tuple(q.shape)}")
    if q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:  # the common case, without numpy's general rule
        return tuple(int(s) for s in q.shape[:-2]), Lq, Lk, D, int(v.shape[-1])
    try:
        batch = tuple(int(s) for s in np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"{op}: the leading (batch/head) dims of 'q' {tuple(q.shape)}, 'k' {tuple(k.shape)} and 'v' {tuple(v.shape)} "
            "do not broadcast"
        ) from None
    return batch, Lq, Lk, D, int(v.shape[-1])


def _scale(op, scale, D):
    if scale is None:
        return 1.0 / math.sqrt(D)
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{op}: 'scale' must be a real number or None, got {scale!r}")
    s = float(scale)
    if not math.isfinite(s):
        raise ValueError(f"{op}: 'scale' must be finite, got {scale!r}")
    return s


def _causal(op, is_causal, attn_mask):
    """is_causal as a bool; it excludes attn_mask (PyTorch's rule)."""
    if not isinstance(is_causal, (bool, np.bool_)) and not (
        isinstance(is_causal, numbers.Integral) and is_causal in (0, 1)
    ):
        raise TypeError(f"{op}: 'is_causal' must be a bool, got {is_causal!r}")
    is_causal = bool(is_causal)
    if attn_mask is not None and is_causal:
        raise ValueError(
            f"{op}: 'attn_mask' must be None when is_causal=True (as in PyTorch); fold causality into the mask"
        )
    return is_causal


def _at_batch(xp, a, batch):
    """a (..., L, E) with the broadcast leading dims `batch`, contiguous (a itself when it has them)."""
    if tuple(a.shape[:-2]) == batch:
        return a
    return xp.ascontiguousarray(xp.broadcast_to(a, batch + tuple(a.shape[-2:])))


def _mask_layout(op, xp, mask, batch, Lq, Lk, dtype):
    """The additive mask in `dtype` at its own (unbroadcast) size, its Lq/Lk element strides and
    one element offset per flattened batch entry."""
    m = xp.asarray(mask)
    full = batch + (Lq, Lk)
    try:
        ok = m.ndim <= len(full) and tuple(np.broadcast_shapes(m.shape, full)) == full
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: 'attn_mask' of shape {tuple(m.shape)} does not broadcast to (..., Lq, Lk) = {full}")
    if m.dtype.kind == "b":
        add = xp.where(m, 0.0, -np.inf).astype(dtype)
    elif m.dtype.kind in "fiu":
        add = m.astype(dtype)
    else:
        raise TypeError(f"{op}: 'attn_mask' has dtype {m.dtype}; expected bool (True = may attend) or float (additive)")
    add = xp.ascontiguousarray(add.reshape((1,) * (len(full) - m.ndim) + tuple(m.shape)))
    strides = [0 if n == 1 else s // add.itemsize for n, s in zip(add.shape, add.strides)]
    off = xp.zeros(batch, dtype=np.int64)
    for ax, n in enumerate(batch):
        shape = [1] * len(batch)
        shape[ax] = n
        off = off + (xp.arange(n, dtype=np.int64) * strides[ax]).reshape(shape)
    return add, xp.ascontiguousarray(off.reshape(-1)), strides[-2], strides[-1]


def _gqa(op, q, k, v, enable_gqa):
    """Heads per K/V head (1 without enable_gqa), checked against PyTorch's rule."""
    if not isinstance(enable_gqa, (bool, np.bool_)):
        raise TypeError(f"{op}: 'enable_gqa' must be a bool, got {enable_gqa!r}")
    if not enable_gqa:
        return 1
    if q.ndim < 3 or k.ndim < 3 or v.ndim < 3:
        raise ValueError(
            f"{op}: enable_gqa needs a heads dim (..., H, L, E) in 'q', 'k' and 'v', got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    hq, hk, hv = int(q.shape[-3]), int(k.shape[-3]), int(v.shape[-3])
    if hk != hv or hk < 1 or hq % hk:
        raise ValueError(
            f"{op}: with enable_gqa the query heads ({hq}, dim -3 of 'q') must be a multiple of the "
            f"key/value heads ('k' has {hk}, 'v' has {hv}; they must be equal)"
        )
    return hq // hk


def _dropout(op, dropout_p):
    if isinstance(dropout_p, (bool, np.bool_)) or not isinstance(dropout_p, numbers.Real):
        raise TypeError(
            f"{op}: 'dropout_p' must be a float in [0, 1), got {dropout_p!r} (as in PyTorch, is_causal "
            "comes after dropout_p: pass is_causal=...)"
        )
    p = float(dropout_p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{op}: 'dropout_p' must be in [0, 1), got {dropout_p!r}")
    return p


def _extras(op, xp, q, k, v, attn_mask, dropout_p, enable_gqa, seed, attn_mask_requires_grad):
    """Check the arguments beyond the fused kernel's -> (dropout probability, heads per K/V head)."""
    p_drop = _dropout(op, dropout_p)
    groups = _gqa(op, q, k, v, enable_gqa)
    if not isinstance(attn_mask_requires_grad, (bool, np.bool_)):
        raise TypeError(f"{op}: 'attn_mask_requires_grad' must be a bool, got {attn_mask_requires_grad!r}")
    if attn_mask_requires_grad and (attn_mask is None or xp.asarray(attn_mask).dtype.kind != "f"):
        raise TypeError(
            f"{op}: attn_mask_requires_grad=True needs a float (additive) 'attn_mask', got "
            f"{'None' if attn_mask is None else xp.asarray(attn_mask).dtype}"
        )
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise TypeError(f"{op}: 'seed' must be None or an int >= 0, got {seed!r}")
    return p_drop, groups


def scaled_dot_product_attention(
    q,
    k,
    v,
    attn_mask=None,
    dropout_p=0.0,
    is_causal=False,
    scale=None,
    enable_gqa=False,
    *,
    seed=None,
    attn_mask_requires_grad=False,
    return_ctx=False,
):
    """softmax(q k^T * scale + mask) v over the last two dims; scale defaults to 1/sqrt(D).

    is_causal: query i attends keys j <= i (top-left aligned, as PyTorch; not with attn_mask).
    dropout_p: PyTorch's attention dropout on the probabilities (survivors scaled by 1/(1-p));
    the mask is drawn from numpy.random.default_rng(seed) (seed=None: fresh entropy) and the
    backward uses the same mask. enable_gqa: k and v may have fewer heads (dim -3) than q, each
    serving q.shape[-3] // k.shape[-3] consecutive query heads (grouped-query attention).
    attn_mask_requires_grad=True (float attn_mask only): the backward also returns the mask's
    gradient, at the mask's own shape, as a fourth result.
    Returns out (..., Lq, Dv), plus a ctx for scaled_dot_product_attention_backward when return_ctx.

    >>> q, k, v = np.ones((2, 8, 4, 16)), np.ones((2, 2, 6, 16)), np.ones((2, 2, 6, 16))   # 8 query heads, 2 K/V
    >>> mask = np.zeros((4, 6))
    >>> out, ctx = dk.scaled_dot_product_attention(q, k, v, mask, dropout_p=0.1, enable_gqa=True, seed=0,
    ...                                            attn_mask_requires_grad=True, return_ctx=True)
    >>> [g.shape for g in dk.scaled_dot_product_attention_backward(ctx, np.ones_like(out))]
    [(2, 8, 4, 16), (2, 2, 6, 16), (2, 2, 6, 16), (4, 6)]
    """
    op = _OP
    array_module_of(op, [("q", q), ("k", k), ("v", v), ("attn_mask", attn_mask)])  # device mix check
    given_q, given_k, given_v = q, k, v
    backend, (q, k, v), out_dt, comp_dt = as_float_arrays(op, [("q", q), ("k", k), ("v", v)])
    xp = backend.xp
    if (
        type(dropout_p) is float
        and dropout_p == 0.0
        and enable_gqa is False
        and attn_mask_requires_grad is False
        and seed is None
    ):
        p_drop, groups = 0.0, 1  # the defaults: nothing to check
    else:
        p_drop, groups = _extras(op, xp, q, k, v, attn_mask, dropout_p, enable_gqa, seed, attn_mask_requires_grad)
    if groups > 1:
        given_k = given_v = None  # the kernel sees expanded copies; nothing of the caller's to watch
        k, v = composed.expand_kv(xp, k, groups), composed.expand_kv(xp, v, groups)
    batch, Lq, Lk, D, Dv = _shapes(op, q, k, v)
    is_causal = _causal(op, is_causal, attn_mask)
    s = _scale(op, scale, D)
    if backend.name == "cuda" and max(D, Dv) > _CUDA_MAX_HEAD_DIM:
        raise ValueError(
            f"{op}: on the GPU the head dims of 'q'/'k' (D={D}) and 'v' (Dv={Dv}) must be at most {_CUDA_MAX_HEAD_DIM}"
        )
    q_shape, k_shape, v_shape = tuple(q.shape), tuple(k.shape), tuple(v.shape)
    q, k, v = (_at_batch(xp, a, batch) for a in (q, k, v))
    if attn_mask is not None:
        mask, moff, m_rs, m_cs = _mask_layout(op, xp, attn_mask, batch, Lq, Lk, comp_dt)
    else:
        mask, moff, m_rs, m_cs = None, None, 0, 0
    # The kernels' AttentionParams (csrc/common/attention_params.h), one key per field.
    params = {
        "BH": math.prod(batch),
        "Lq": Lq,
        "Lk": Lk,
        "D": D,
        "Dv": Dv,
        "causal": int(is_causal),
        "has_mask": int(attn_mask is not None),
        "m_rs": m_rs,
        "m_cs": m_cs,
        "scale": s,
    }
    if p_drop > 0 or attn_mask_requires_grad:
        m_shape = None if attn_mask is None else tuple(xp.asarray(attn_mask).shape)
        add = None if attn_mask is None else mask  # (1.., Lq, Lk)-broadcastable, at the mask's own size
        out, saved = composed.forward(xp, q, k, v, add, is_causal, s, p_drop, seed, np.dtype(comp_dt))
        saved_for_backward = dict(composed=saved, scale=s, mask_shape=m_shape if attn_mask_requires_grad else None)
    else:
        out = backend.empty(batch + (Lq, Dv), comp_dt)
        lse = backend.empty(batch + (Lq,), _acc_dtype(backend, comp_dt))
        backend.call("attention_forward", params, q, k, v, mask, moff, out, lse)
        saved_for_backward = dict(composed=None, mask=mask, mask_off=moff, lse=lse)
    result = to_out_dtype(out, out_dt)
    if not return_ctx:
        return result
    ctx = Context(
        op,
        backend,
        out_dt,
        comp_dt,
        params=params,
        q=q,
        k=k,
        v=v,
        out=out,
        q_shape=q_shape,
        k_shape=k_shape,
        v_shape=v_shape,
        groups=groups,
        **saved_for_backward,
    )
    watch(ctx, q=(q, given_q), k=(k, given_k), v=(v, given_v), out=(out, result))
    return result, ctx


def _unbroadcast(xp, g, shape):
    """Sum a gradient computed at the broadcast batch shape back to an input's own shape."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def scaled_dot_product_attention_backward(ctx, dout):
    """(dq, dk, dv) for the forward that made ctx, given dout = d loss / d out; (dq, dk, dv, dmask)
    when the forward had attn_mask_requires_grad=True (dmask at the mask's own shape).

    >>> import numpy as np, deepkern as dk
    >>> q = k = v = np.ones((1, 3, 4))
    >>> out, ctx = dk.scaled_dot_product_attention(q, k, v, return_ctx=True)
    >>> dq, dk_, dv = dk.scaled_dot_product_attention_backward(ctx, np.ones_like(out))
    >>> float(np.abs(dq).max()), round(float(dv.sum()), 9)   # equal keys: q gets no gradient; dv sums dout
    (0.0, 12.0)
    """
    op = "scaled_dot_product_attention_backward"
    check_ctx(op, ctx, _OP)
    dout = as_grad(op, ctx, "dout", dout, ctx.out.shape)
    b = ctx.backend
    groups = ctx.groups
    dmask = None
    if ctx.composed is not None:
        dq, dk, dv, ds = composed.backward(
            b.xp, ctx.q, ctx.k, ctx.v, ctx.composed, dout, ctx.scale, np.dtype(ctx.compute_dtype)
        )
        if ctx.mask_shape is not None:
            dmask = _unbroadcast(b.xp, ds, ctx.mask_shape).reshape(ctx.mask_shape)
    else:
        dq = b.empty(ctx.q.shape, ctx.compute_dtype)
        dk = b.empty(ctx.k.shape, ctx.compute_dtype)
        dv = b.empty(ctx.v.shape, ctx.compute_dtype)
        params, workspace = ctx.params, ()
        if b.name == "cuda":
            det = _deterministic()
            BH, Lq, D = ctx.params["BH"], ctx.params["Lq"], ctx.params["D"]
            drow = b.empty((BH * Lq,), _acc_dtype(b, ctx.compute_dtype))
            atomic_f32 = not det and np.dtype(ctx.compute_dtype) == np.float16
            dq_acc = b.empty((BH * Lq * D,), np.float32) if atomic_f32 else None
            params, workspace = {**ctx.params, "deterministic": int(det)}, (drow, dq_acc)
        b.call(
            "attention_backward",
            params,
            ctx.q,
            ctx.k,
            ctx.v,
            ctx.mask,
            ctx.mask_off,
            ctx.out,
            ctx.lse,
            dout,
            dq,
            dk,
            dv,
            *workspace,
        )
    dq = _unbroadcast(b.xp, dq, ctx.q_shape)
    dk = composed.reduce_kv(_unbroadcast(b.xp, dk, ctx.k_shape), groups)
    dv = composed.reduce_kv(_unbroadcast(b.xp, dv, ctx.v_shape), groups)
    grads = (dq, dk, dv) if dmask is None else (dq, dk, dv, dmask)
    return tuple(to_out_dtype(g, ctx.out_dtype) for g in grads)
