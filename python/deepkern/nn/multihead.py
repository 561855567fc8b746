"""Multi-head attention on deepkern's scaled-dot-product-attention, with nn.MultiheadAttention's
arguments (dropout, bias, add_bias_kv, add_zero_attn, kdim, vdim, batch_first, key_padding_mask,
need_weights, average_attn_weights) and PyTorch's parameter names."""

import numpy as np

from .. import functional as F  # dk.scaled_dot_product_attention (+ _backward)
from ..functional.attention_composed import bmm
from ._base import Layer, Parameter, default_rng, export_arrays, torch_key, xp_of
from ._checks import as_input, float_dtype, positive_int
from ._matmul import gemm
from .init import initialize

_NAME = "MultiHeadAttention"


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al.), PyTorch's parameter layout, batch-first by default.

    ``MultiHeadAttention(dim, num_heads, causal=False, bias=True, seed=None, dtype=float32, *,
    dropout=0.0, add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, batch_first=True)``

    ``forward(query, key=None, value=None, attn_mask=None, training=None, *, key_padding_mask=None,
    need_weights=False, average_attn_weights=True)``: query (B, Lq, dim) ((Lq, B, dim) with
    batch_first=False; unbatched (Lq, dim)); key (B, Lk, kdim), default query (self-attention);
    value (B, Lk, vdim), default key. Each head attends softmax(q_h k_h^T / sqrt(dim/num_heads)) v_h
    (dropout on the probabilities in training); heads are concatenated and projected.
    causal=True lets position i attend to positions <= i only.

    Masks. attn_mask: bool with True = *may attend* (deepkern's and dk.scaled_dot_product_attention's
    convention; nn.MultiheadAttention's bool attn_mask means the opposite) or additive float;
    (Lq, Lk), (B, Lq, Lk), (B*num_heads, Lq, Lk) (PyTorch's) or (B, num_heads, Lq, Lk).
    key_padding_mask (B, Lk) ((Lk,) unbatched) has PyTorch's meaning: bool True = *padding, ignore
    this key*, or additive float. A query with nothing left to attend to gets zeros, not NaN.

    Returns the output, or ``(output, weights)`` with need_weights=True (deepkern's default is False,
    so a bare output stays the common case): weights (B, Lq, Lk') averaged over heads, or
    (B, num_heads, Lq, Lk') with average_attn_weights=False, after dropout as PyTorch returns them
    (Lk' counts the bias_kv / zero-attention keys). They are for inspection: backward takes the
    output's gradient only.

    ``backward(dout)`` -> dx for self-attention (key and value not given), else the tuple
    (dquery, dkey, dvalue) where dvalue is None (folded into dkey) when value defaulted to key.

    Parameters (PyTorch's names): in_proj_weight (3*dim, dim) when kdim = vdim = dim, else
    q_proj_weight (dim, dim), k_proj_weight (dim, kdim), v_proj_weight (dim, vdim); in_proj_bias
    (3*dim,), out_proj_weight (dim, dim) and out_proj_bias (dim,) (state dict: out_proj.weight /
    out_proj.bias), bias_k and bias_v (1, 1, dim) with add_bias_kv. 4*dim^2 + 4*dim by default.

    >>> mha = dk.nn.MultiHeadAttention(8, 2, kdim=3, vdim=5)
    >>> q, k, v = np.ones((2, 4, 8)), np.ones((2, 6, 3)), np.ones((2, 6, 5))
    >>> pad = np.zeros((2, 6), bool); pad[:, 4:] = True          # the last two keys are padding
    >>> out, w = mha(q, k, v, key_padding_mask=pad, need_weights=True)
    >>> out.shape, w.shape, float(w[..., 4:].sum())
    ((2, 4, 8), (2, 4, 6), 0.0)
    """

    def __init__(
        self,
        dim,
        num_heads,
        causal=False,
        bias=True,
        seed=None,
        dtype=np.float32,
        *,
        dropout=0.0,
        add_bias_kv=False,
        add_zero_attn=False,
        kdim=None,
        vdim=None,
        batch_first=True,
    ):
        self.dim = positive_int(_NAME, "dim", dim)
        self.num_heads = positive_int(_NAME, "num_heads", num_heads)
        if self.dim % self.num_heads:
            raise ValueError(f"{_NAME}: 'dim' ({dim}) must be divisible by 'num_heads' ({num_heads})")
        self.kdim = self.dim if kdim is None else positive_int(_NAME, "kdim", kdim)
        self.vdim = self.dim if vdim is None else positive_int(_NAME, "vdim", vdim)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{_NAME}: 'dropout' must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.causal = bool(causal)
        self.add_zero_attn = bool(add_zero_attn)
        self.batch_first = bool(batch_first)
        self._packed = self.kdim == self.dim and self.vdim == self.dim
        dt = float_dtype(_NAME, dtype)
        rng = default_rng(seed)
        D = self.dim
        if self._packed:
            w = np.concatenate([initialize("glorot_uniform", (D, D), rng, dt) for _ in range(3)], axis=0)
            self.in_proj_weight = Parameter(np.ascontiguousarray(w), "in_proj_weight")
        else:
            self.q_proj_weight = Parameter(initialize("glorot_uniform", (D, D), rng, dt), "q_proj_weight")
            self.k_proj_weight = Parameter(initialize("glorot_uniform", (D, self.kdim), rng, dt), "k_proj_weight")
            self.v_proj_weight = Parameter(initialize("glorot_uniform", (D, self.vdim), rng, dt), "v_proj_weight")
        self.in_proj_bias = Parameter(np.zeros(3 * D, dt), "in_proj_bias") if bias else None
        self.out_proj_weight = Parameter(initialize("glorot_uniform", (D, D), rng, dt), "out_proj_weight")
        self.out_proj_bias = Parameter(np.zeros(D, dt), "out_proj_bias") if bias else None
        if add_bias_kv:
            self.bias_k = Parameter(initialize("glorot_uniform", (1, 1, D), rng, dt), "bias_k")
            self.bias_v = Parameter(initialize("glorot_uniform", (1, 1, D), rng, dt), "bias_v")
        else:
            self.bias_k = self.bias_v = None
        self._rng = rng
        self._cache = None

    def __call__(self, query, key=None, value=None, attn_mask=None, training=None, **kw):
        return self.forward(query, key, value, attn_mask, training=self._mode(training), **kw)

    # -- pieces ------------------------------------------------------------------------------------
    def _w(self, i):
        """The projection weight of q (0), k (1) or v (2): a view into in_proj_weight when packed."""
        D = self.dim
        if self._packed:
            return self.in_proj_weight.value[i * D : (i + 1) * D]
        return (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i].value

    def _input(self, name, a, xp, dt, width, unbatched):
        a = as_input(_NAME, a, xp, dt, name)
        want = 2 if unbatched else 3
        if a.ndim != want or a.shape[-1] != width:
            layout = (
                "(length, {w})"
                if unbatched
                else ("(batch, length, {w})" if self.batch_first else "(length, batch, {w})")
            )
            raise ValueError(
                f"{_NAME}.forward: '{name}' has shape {tuple(a.shape)}; expected "
                f"{layout.format(w=width)}" + (" (unbatched, like the query)" if unbatched else "")
            )
        if unbatched:
            return a[None]
        return a if self.batch_first else a.transpose(1, 0, 2)

    def _project(self, a, i):
        B, L, W = a.shape
        y = gemm(a.reshape(B * L, W), self._w(i), trans_b=True)
        if self.in_proj_bias is not None:
            y += self.in_proj_bias.value[i * self.dim : (i + 1) * self.dim]
        return y.reshape(B, L, self.dim)

    def _heads(self, xp, a):
        B, L, _ = a.shape
        hd = self.dim // self.num_heads
        return xp.ascontiguousarray(a.reshape(B, L, self.num_heads, hd).transpose(0, 2, 1, 3))  # (B, h, L, hd)

    def _mask(self, xp, attn_mask, kpm, B, Lq, Lk, extra, dt, unbatched):
        """attn_mask and key_padding_mask -> one mask for sdpa (bool True = may attend, or additive),
        (B or 1, h or 1, Lq, Lk + extra); the `extra` appended keys (bias_kv, zero_attn) are allowed."""
        H = self.num_heads
        m = None
        if attn_mask is not None:
            m = xp.asarray(attn_mask)
            if m.dtype != bool:
                m = m.astype(dt)
            if m.ndim == 3 and unbatched and m.shape[0] == H:
                m = m[None]
            elif m.ndim == 3 and m.shape[0] == B * H and H > 1:
                m = m.reshape(B, H, Lq, Lk)  # PyTorch's (B*num_heads, Lq, Lk)
            elif m.ndim == 3:
                m = m[:, None]
            ok = (
                m.ndim in (2, 4)
                and m.shape[-2:] == (Lq, Lk)
                and (m.ndim == 2 or (m.shape[0] in (1, B) and m.shape[1] in (1, H)))
            )
            if not ok:
                raise ValueError(
                    f"{_NAME}.forward: 'attn_mask' has shape {tuple(np.shape(attn_mask))}; expected "
                    f"({Lq}, {Lk}), ({B}, {Lq}, {Lk}), ({B * H}, {Lq}, {Lk}) or ({B}, {H}, {Lq}, {Lk})"
                )
            if m.ndim == 2:
                m = m[None, None]
        if kpm is not None:
            p = xp.asarray(kpm)
            if unbatched and p.ndim == 1:
                p = p[None]
            if p.shape != (B, Lk):
                raise ValueError(
                    f"{_NAME}.forward: 'key_padding_mask' has shape {tuple(np.shape(kpm))}; expected "
                    f"({B}, {Lk}) = (batch, key length)" + (f" or ({Lk},) unbatched" if unbatched else "")
                )
            p = ~p if p.dtype == bool else p.astype(dt)  # PyTorch's True = padding -> True = may attend
            p = p[:, None, None, :]
            if m is None:
                m = p
            elif m.dtype == bool and p.dtype == bool:
                m = m & p
            else:
                m = _additive(xp, m, dt) + _additive(xp, p, dt)
        if m is None:
            return None
        if extra:
            pad_shape = m.shape[:-1] + (extra,)
            pad = xp.ones(pad_shape, bool) if m.dtype == bool else xp.zeros(pad_shape, dt)
            m = xp.concatenate([xp.broadcast_to(m, m.shape), pad], axis=-1)
        return xp.ascontiguousarray(m)

    # -- forward / backward ----------------------------------------------------------------------
    def forward(
        self,
        query,
        key=None,
        value=None,
        attn_mask=None,
        training=None,
        *,
        key_padding_mask=None,
        need_weights=False,
        average_attn_weights=True,
    ):
        training = self._mode(training)
        self.check_input(query, "query")
        xp, dt = xp_of(self.out_proj_weight.value), self.out_proj_weight.value.dtype
        unbatched = getattr(query, "ndim", np.ndim(query)) == 2
        q_in = self._input("query", query, xp, dt, self.dim, unbatched)
        if key is None and self.kdim != self.dim:
            raise ValueError(f"{_NAME}.forward: 'key' is required when kdim ({self.kdim}) != dim ({self.dim})")
        k_in = q_in if key is None else self._input("key", key, xp, dt, self.kdim, unbatched)
        if value is None and self.vdim != self.kdim:
            raise ValueError(f"{_NAME}.forward: 'value' is required when vdim ({self.vdim}) != kdim ({self.kdim})")
        v_in = k_in if value is None else self._input("value", value, xp, dt, self.vdim, unbatched)
        if k_in.shape[:2] != v_in.shape[:2] or k_in.shape[0] != q_in.shape[0]:
            raise ValueError(
                f"{_NAME}.forward: 'key' {tuple(k_in.shape)} and 'value' {tuple(v_in.shape)} "
                f"must share (batch, length), with batch {q_in.shape[0]} (shapes batch-first)"
            )
        B, Lq, D = q_in.shape
        Lk = k_in.shape[1]
        qp, kp, vp = self._project(q_in, 0), self._project(k_in, 1), self._project(v_in, 2)
        if self.bias_k is not None:
            kp = xp.concatenate([kp, xp.broadcast_to(self.bias_k.value, (B, 1, D))], axis=1)
            vp = xp.concatenate([vp, xp.broadcast_to(self.bias_v.value, (B, 1, D))], axis=1)
        q, k, v = self._heads(xp, qp), self._heads(xp, kp), self._heads(xp, vp)
        if self.add_zero_attn:
            z = xp.zeros(k.shape[:2] + (1, k.shape[3]), dt)
            k, v = xp.concatenate([k, z], axis=2), xp.concatenate([v, z], axis=2)
        extra = k.shape[2] - Lk
        mask = self._mask(xp, attn_mask, key_padding_mask, B, Lq, Lk, extra, dt, unbatched)
        causal = self.causal
        if causal and mask is not None:  # sdpa takes one or the other: fold causality into the mask
            allowed = xp.asarray(np.tril(np.ones((Lq, k.shape[2]), bool)))
            mask = (mask & allowed) if mask.dtype == bool else xp.where(allowed, mask, dt.type(-np.inf))
            causal = False
        p = self.dropout if training else 0.0
        seed = int(self._rng.integers(2**31)) if p > 0 else None
        o, ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal, seed=seed, return_ctx=True
        )
        o = xp.ascontiguousarray(o.transpose(0, 2, 1, 3)).reshape(B * Lq, D)
        out = gemm(o, self.out_proj_weight.value, trans_b=True)
        if self.out_proj_bias is not None:
            out += self.out_proj_bias.value
        out = out.reshape(B, Lq, D)
        self._cache = (q_in, k_in, v_in, o, ctx, key is None, value is None, Lk, unbatched) if training else None
        out = out[0] if unbatched else (out if self.batch_first else out.transpose(1, 0, 2))
        if not need_weights:
            return out
        w = self._weights(xp, q, k, mask, causal, p, seed, dt)
        if average_attn_weights:
            w = w.mean(axis=1)
        return out, (w[0] if unbatched else w)

    def _weights(self, xp, q, k, mask, causal, p, seed, dt):
        """The attention probabilities (B, h, Lq, Lk'), after dropout with the mask sdpa drew from `seed`."""
        s = bmm(xp, q, k, trans_b=True) * dt.type(1.0 / np.sqrt(q.shape[-1]))
        Lq, Lk = s.shape[-2:]
        if causal:
            s = xp.where(xp.asarray(np.tril(np.ones((Lq, Lk), bool))), s, dt.type(-np.inf))
        if mask is not None:
            s = xp.where(mask, s, dt.type(-np.inf)) if mask.dtype == bool else s + mask
        m = s.max(axis=-1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, dt.type(0))
        e = xp.exp(s - m)
        tot = e.sum(axis=-1, keepdims=True)
        w = e / xp.where(tot == 0, dt.type(1), tot)
        if p > 0:
            keep = np.random.default_rng(seed).random(w.shape) >= p  # sdpa's documented mask rule
            w = w * xp.asarray(keep.astype(dt)) * dt.type(1.0 / (1.0 - p))
        return w

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError(f"{_NAME}.backward called before forward(..., training=True)")
        q_in, k_in, v_in, o, ctx, self_attn, v_is_k, Lk, unbatched = self._cache
        xp = xp_of(o)
        B, Lq, D = q_in.shape
        dout = xp.asarray(dout, dtype=o.dtype)
        want = (Lq, D) if unbatched else ((B, Lq, D) if self.batch_first else (Lq, B, D))
        if dout.shape != want:
            raise ValueError(f"{_NAME}.backward: 'dout' has shape {tuple(dout.shape)}; expected {want}")
        dout = dout[None] if unbatched else (dout if self.batch_first else dout.transpose(1, 0, 2))
        H, hd = self.num_heads, D // self.num_heads
        d2 = xp.ascontiguousarray(dout).reshape(-1, D)
        self.out_proj_weight.accumulate(gemm(d2, o, trans_a=True))
        if self.out_proj_bias is not None:
            self.out_proj_bias.accumulate(d2.sum(axis=0))
        do = gemm(d2, self.out_proj_weight.value).reshape(B, Lq, H, hd).transpose(0, 2, 1, 3)
        dq, dk, dv = F.scaled_dot_product_attention_backward(ctx, xp.ascontiguousarray(do))
        merge = lambda g: xp.ascontiguousarray(g.transpose(0, 2, 1, 3)).reshape(B, -1, D)  # noqa: E731
        dq, dk, dv = (
            merge(dq),
            merge(dk[:, :, : Lk + (self.bias_k is not None)]),
            merge(dv[:, :, : Lk + (self.bias_k is not None)]),
        )
        if self.bias_k is not None:
            self.bias_k.accumulate(dk[:, Lk].sum(axis=0).reshape(1, 1, D))
            self.bias_v.accumulate(dv[:, Lk].sum(axis=0).reshape(1, 1, D))
            dk, dv = dk[:, :Lk], dv[:, :Lk]
        grads_w, grads_b, dins = [], [], []
        for i, (dh, a) in enumerate(((dq, q_in), (dk, k_in), (dv, v_in))):
            g = xp.ascontiguousarray(dh).reshape(-1, D)  # grad at this projection's output
            grads_w.append(gemm(g, a.reshape(-1, a.shape[-1]), trans_a=True))
            grads_b.append(g.sum(axis=0))
            dins.append(gemm(g, self._w(i)).reshape(a.shape))
        if self._packed:
            self.in_proj_weight.accumulate(xp.concatenate(grads_w, axis=0))
        else:
            for prm, g in zip((self.q_proj_weight, self.k_proj_weight, self.v_proj_weight), grads_w):
                prm.accumulate(g)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(xp.concatenate(grads_b))
        fix = (
            (lambda a: a[0]) if unbatched else ((lambda a: a) if self.batch_first else (lambda a: a.transpose(1, 0, 2)))
        )
        dq_in, dk_in, dv_in = dins
        if self_attn and v_is_k:
            return fix(dq_in + dk_in + dv_in)
        if v_is_k:
            return fix(dq_in), fix(dk_in + dv_in), None
        if self_attn:  # key = query but value given
            return fix(dq_in + dk_in), None, fix(dv_in)
        return fix(dq_in), fix(dk_in), fix(dv_in)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    # -- PyTorch state -----------------------------------------------------------------------------
    def _torch_params(self):
        names = ("in_proj_weight",) if self._packed else ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        out = {n: getattr(self, n) for n in names}
        out.update(
            {
                "in_proj_bias": self.in_proj_bias,
                "bias_k": self.bias_k,
                "bias_v": self.bias_v,
                "out_proj.weight": self.out_proj_weight,
                "out_proj.bias": self.out_proj_bias,
            }
        )
        return {k: v for k, v in out.items() if v is not None}

    def torch_state_dict(self):
        """For torch.nn.MultiheadAttention(dim, num_heads, bias=, add_bias_kv=, kdim=, vdim=)."""
        return export_arrays(**self._torch_params())

    def load_torch_state(self, prefix, state):
        """From torch.nn.MultiheadAttention with the same dim, num_heads, bias, add_bias_kv, kdim, vdim."""
        for name, p in self._torch_params().items():
            k = torch_key(prefix, name)
            if k not in state:
                raise KeyError(k)
            p.assign(state[k], f"{_NAME}.load_torch_state: '{k}'")


def _additive(xp, m, dt):
    return xp.where(m, dt.type(0), dt.type(-np.inf)) if m.dtype == bool else m
