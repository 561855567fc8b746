"""Multi-head attention on deepkern's scaled-dot-product-attention kernel."""
import numpy as np

from .. import functional as F  # dk.scaled_dot_product_attention (+ _backward)
from ._base import Layer, Parameter, default_rng, export_arrays, xp_of
from ._checks import as_input, float_dtype, positive_int
from ._matmul import gemm
from .init import initialize


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al.), batch-first, with PyTorch's parameter layout.

    ``forward(query, key=None, value=None, attn_mask=None, training=True)``:
    query (B, Lq, dim); key (B, Lk, dim), default query (self-attention); value (B, Lk, dim),
    default key. Each head h attends softmax(q_h k_h^T / sqrt(dim/num_heads)) v_h; the heads are
    concatenated and projected. causal=True lets position i attend to positions <= i only.
    attn_mask: bool, True = *may attend* (deepkern's and F.scaled_dot_product_attention's
    convention; note nn.MultiheadAttention's bool mask means the opposite), or an additive float
    mask; shape (Lq, Lk), (B, Lq, Lk) or (B, num_heads, Lq, Lk).

    ``backward(dout)`` -> dx for self-attention (key and value not given), else the tuple
    (dquery, dkey, dvalue) where dvalue is None (and folded into dkey) when value defaulted to key.

    Parameters (PyTorch's names): in_proj_weight (3*dim, dim) = [W_q; W_k; W_v], in_proj_bias
    (3*dim,), out_proj_weight (dim, dim), out_proj_bias (dim,): 4*dim^2 + 4*dim in all.
    """

    def __init__(self, dim, num_heads, causal=False, bias=True, seed=None, dtype=np.float32):
        self.dim = positive_int("MultiHeadAttention", "dim", dim)
        self.num_heads = positive_int("MultiHeadAttention", "num_heads", num_heads)
        if self.dim % self.num_heads:
            raise ValueError(f"MultiHeadAttention: 'dim' ({dim}) must be divisible by 'num_heads' ({num_heads})")
        self.causal = bool(causal)
        dt = float_dtype("MultiHeadAttention", dtype)
        rng = default_rng(seed)
        D = self.dim
        w = np.concatenate([initialize("glorot_uniform", (D, D), rng, dt) for _ in range(3)], axis=0)
        self.in_proj_weight = Parameter(np.ascontiguousarray(w), "in_proj_weight")
        self.in_proj_bias = Parameter(np.zeros(3 * D, dt), "in_proj_bias") if bias else None
        self.out_proj_weight = Parameter(initialize("glorot_uniform", (D, D), rng, dt), "out_proj_weight")
        self.out_proj_bias = Parameter(np.zeros(D, dt), "out_proj_bias") if bias else None
        self._cache = None

    def __call__(self, query, key=None, value=None, attn_mask=None, training=None):
        return self.forward(query, key, value, attn_mask, training=self._mode(training))

    def _input(self, name, a, xp, dt):
        a = as_input("MultiHeadAttention", a, xp, dt, name)
        if a.ndim != 3 or a.shape[-1] != self.dim:
            raise ValueError(f"MultiHeadAttention.forward: '{name}' has shape {tuple(a.shape)}; expected "
                             f"(batch, length, {self.dim})")
        return a

    def _project(self, xp, a, i):
        D = self.dim
        B, L, _ = a.shape
        y = gemm(a.reshape(B * L, D), self.in_proj_weight.value[i * D:(i + 1) * D], trans_b=True)
        if self.in_proj_bias is not None:
            y += self.in_proj_bias.value[i * D:(i + 1) * D]
        hd = D // self.num_heads
        return xp.ascontiguousarray(y.reshape(B, L, self.num_heads, hd).transpose(0, 2, 1, 3))  # (B, h, L, hd)

    def _mask(self, xp, attn_mask, B, Lq, Lk, dt):
        if attn_mask is None:
            return None
        m = xp.asarray(attn_mask)
        if m.dtype != bool:
            m = m.astype(dt)
        if m.ndim == 3:
            m = m[:, None]
        ok = m.ndim in (2, 4) and m.shape[-2:] == (Lq, Lk) and (m.ndim == 2 or (m.shape[0] in (1, B) and
                                                                               m.shape[1] in (1, self.num_heads)))
        if not ok:
            raise ValueError(f"MultiHeadAttention.forward: 'attn_mask' has shape {tuple(np.shape(attn_mask))}; "
                             f"expected ({Lq}, {Lk}), ({B}, {Lq}, {Lk}) or ({B}, {self.num_heads}, {Lq}, {Lk})")
        return xp.ascontiguousarray(m)

    def forward(self, query, key=None, value=None, attn_mask=None, training=True):
        self.check_input(query, "query")
        W = self.in_proj_weight.value
        xp, dt = xp_of(W), W.dtype
        q_in = self._input("query", query, xp, dt)
        k_in = q_in if key is None else self._input("key", key, xp, dt)
        v_in = k_in if value is None else self._input("value", value, xp, dt)
        if k_in.shape[:2] != v_in.shape[:2] or k_in.shape[0] != q_in.shape[0]:
            raise ValueError(f"MultiHeadAttention.forward: 'key' {tuple(k_in.shape)} and 'value' {tuple(v_in.shape)} "
                             f"must share (batch, length), with batch {q_in.shape[0]}")
        B, Lq, D = q_in.shape
        Lk = k_in.shape[1]
        q, k, v = self._project(xp, q_in, 0), self._project(xp, k_in, 1), self._project(xp, v_in, 2)
        mask = self._mask(xp, attn_mask, B, Lq, Lk, dt)
        o, ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal, return_ctx=True)
        o = xp.ascontiguousarray(o.transpose(0, 2, 1, 3)).reshape(B * Lq, D)
        out = gemm(o, self.out_proj_weight.value, trans_b=True)
        if self.out_proj_bias is not None:
            out += self.out_proj_bias.value
        out = out.reshape(B, Lq, D)
        self._cache = (q_in, k_in, v_in, o, ctx, key is None, value is None) if training else None
        return out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("MultiHeadAttention.backward called before forward(..., training=True)")
        q_in, k_in, v_in, o, ctx, self_attn, v_is_k = self._cache
        xp = xp_of(o)
        B, Lq, D = q_in.shape
        dout = xp.asarray(dout, dtype=o.dtype)
        if dout.shape != (B, Lq, D):
            raise ValueError(f"MultiHeadAttention.backward: 'dout' has shape {tuple(dout.shape)}; expected {(B, Lq, D)}")
        H, hd = self.num_heads, D // self.num_heads
        d2 = xp.ascontiguousarray(dout).reshape(-1, D)
        self.out_proj_weight.accumulate(gemm(d2, o, trans_a=True))
        if self.out_proj_bias is not None:
            self.out_proj_bias.accumulate(d2.sum(axis=0))
        do = gemm(d2, self.out_proj_weight.value).reshape(B, Lq, H, hd).transpose(0, 2, 1, 3)
        dq, dk, dv = F.scaled_dot_product_attention_backward(ctx, xp.ascontiguousarray(do))
        grads_w, grads_b, dins = [], [], []
        Win = self.in_proj_weight.value
        for i, (dh, a) in enumerate(((dq, q_in), (dk, k_in), (dv, v_in))):
            g = xp.ascontiguousarray(dh.transpose(0, 2, 1, 3)).reshape(-1, D)  # grad at this projection's output
            grads_w.append(gemm(g, a.reshape(-1, D), trans_a=True))
            grads_b.append(g.sum(axis=0))
            dins.append(gemm(g, Win[i * D:(i + 1) * D]).reshape(a.shape))
        self.in_proj_weight.accumulate(xp.concatenate(grads_w, axis=0))
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(xp.concatenate(grads_b))
        dq_in, dk_in, dv_in = dins
        if self_attn and v_is_k:
            return dq_in + dk_in + dv_in
        if v_is_k:
            return dq_in, dk_in + dv_in, None
        if self_attn:  # key = query but value given
            return dq_in + dk_in, None, dv_in
        return dq_in, dk_in, dv_in

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def torch_state_dict(self):
        return export_arrays(**{"in_proj_weight": self.in_proj_weight, "in_proj_bias": self.in_proj_bias,
                                "out_proj.weight": self.out_proj_weight, "out_proj.bias": self.out_proj_bias})

    def load_torch_state(self, prefix, state):
        """From torch.nn.MultiheadAttention(dim, num_heads, batch_first=True)."""
        k = (prefix + ".") if prefix else ""
        self.in_proj_weight.assign(state[k + "in_proj_weight"], f"MultiHeadAttention.load_torch_state: '{k}in_proj_weight'")
        self.out_proj_weight.assign(state[k + "out_proj.weight"],
                                    f"MultiHeadAttention.load_torch_state: '{k}out_proj.weight'")
        if self.in_proj_bias is not None:
            self.in_proj_bias.assign(state[k + "in_proj_bias"], f"MultiHeadAttention.load_torch_state: '{k}in_proj_bias'")
            self.out_proj_bias.assign(state[k + "out_proj.bias"],
                                      f"MultiHeadAttention.load_torch_state: '{k}out_proj.bias'")
