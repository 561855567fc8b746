"""Attention for encoder-decoder models: Bahdanau (additive) and Luong (multiplicative).

Both layers share one calling convention::

    context = attn.forward(query, keys, values=None, mask=None)     # also attn(query, keys, ...)
    dquery, dkeys, dvalues = attn.backward(dcontext)

- query: the decoder state(s), (B, Dq) for one decoder step or (B, Tq, Dq) for many at once.
- keys: the encoder outputs (B, S, Dk); values: (B, S, Dv), default the keys (then the values'
  gradient is included in dkeys and dvalues is None).
- mask: optional bool (B, S), True where an encoder position may be attended to (padding off).
- context: (B, Dv) or (B, Tq, Dv) = sum_s alignment[..., s] * values[:, s].
- `.alignment`: the last forward's attention weights, (B, S) or (B, Tq, S), rows summing to 1.

The two differ in *when* the decoder calls them (this is what the course contrasts):

- Bahdanau: the score uses the *previous* decoder state s_{t-1}, before the decoder step; the
  context then feeds the step: s_t = cell([y_{t-1}; c_t], s_{t-1}).
- Luong: the decoder steps first; the score uses the *current* state h_t, and the context is
  combined with h_t afterwards (e.g. h~_t = tanh(W_c [c_t; h_t])). With teacher forcing all
  steps can be attended at once by passing the decoder's whole output sequence as the query.

For a decoder loop that calls a layer once per step, `attend(...)` returns `(context, cache)`
and `attend_backward(cache, dcontext)` the three gradients, without touching the layer's own
forward/backward cache; parameter gradients accumulate either way. `AttentionDecoder` in
deepkern.nn.seq2seq is such a loop.
"""

import numpy as np

from ._base import Layer, Parameter, default_rng, xp_of
from ._checks import as_input, float_dtype, positive_int
from .init import initialize


class _Attention(Layer):
    """Shared: input checks, masked softmax over encoder positions, context, and their backward."""

    def _arrays(self, query, keys, values, mask):
        name = type(self).__name__
        self.check_input(query, "query")
        W = self._param_like()  # None for a layer without parameters (Luong "dot")
        if W is None:  # compute in the inputs' float dtype (float64 stays float64)
            xp = xp_of(query)
            dt = xp.asarray(query).dtype
            dt = dt if dt.kind == "f" else np.dtype(np.float64)
        else:
            xp, dt = xp_of(W), W.dtype
        q = as_input(name, query, xp, dt, "query")
        k = as_input(name, keys, xp, dt, "keys")
        v = k if values is None else as_input(name, values, xp, dt, "values")
        Dq = self.query_dim or q.shape[-1]
        Dk = self.key_dim or Dq
        if q.ndim not in (2, 3) or q.shape[-1] != Dq:
            raise ValueError(f"{name}.forward: 'query' has shape {tuple(q.shape)}; expected (B, {Dq}) or (B, Tq, {Dq})")
        if k.ndim != 3 or k.shape[-1] != Dk or k.shape[0] != q.shape[0]:
            raise ValueError(f"{name}.forward: 'keys' has shape {tuple(k.shape)}; expected ({q.shape[0]}, S, {Dk})")
        if v.ndim != 3 or v.shape[:2] != k.shape[:2]:
            raise ValueError(
                f"{name}.forward: 'values' has shape {tuple(v.shape)}; expected {tuple(k.shape[:2])} + (Dv,)"
            )
        m = None
        if mask is not None:
            m = xp.asarray(mask)
            if m.dtype != bool or tuple(m.shape) != tuple(k.shape[:2]):
                raise ValueError(
                    f"{name}.forward: 'mask' must be a bool array of shape {tuple(k.shape[:2])}, "
                    f"got {m.dtype} {tuple(m.shape)}"
                )
        return xp, q, k, v, m

    def attend(self, query, keys, values=None, mask=None):
        """(context, cache) for one call; see the module docstring. Sets `.alignment`."""
        xp, q, k, v, m = self._arrays(query, keys, values, mask)
        single = q.ndim == 2
        q3 = q[:, None, :] if single else q
        s, scache = self._scores(xp, q3, k)  # (B, Tq, S)
        if m is not None:
            s = xp.where(m[:, None, :], s, -xp.inf)
        mx = s.max(axis=-1, keepdims=True)
        mx = xp.where(xp.isfinite(mx), mx, 0.0)
        p = xp.exp(s - mx)
        den = p.sum(axis=-1, keepdims=True)
        a = p / xp.where(den > 0, den, 1.0)  # a fully masked row attends to nothing -> zero context
        ctx = a @ v
        self.alignment = a[:, 0] if single else a
        cache = (single, q3, k, v, values is None, a, scache)
        return (ctx[:, 0] if single else ctx), cache

    def attend_backward(self, cache, dcontext):
        single, q3, k, v, v_is_k, a, scache = cache
        xp = xp_of(a)
        dc = xp.asarray(dcontext, dtype=a.dtype)
        expect = (a.shape[0], v.shape[-1]) if single else (a.shape[0], a.shape[1], v.shape[-1])
        if tuple(dc.shape) != expect:
            raise ValueError(
                f"{type(self).__name__}.backward: 'dcontext' has shape {tuple(dc.shape)}; expected {expect}"
            )
        dc = dc[:, None, :] if single else dc
        da = dc @ v.transpose(0, 2, 1)  # (B, Tq, S)
        dv = a.transpose(0, 2, 1) @ dc  # (B, S, Dv)
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
        dq, dk = self._scores_backward(xp, scache, ds)
        if single:
            dq = dq[:, 0]
        if v_is_k:
            return dq, dk + dv, None
        return dq, dk, dv

    def forward(self, query, keys, values=None, mask=None, training=True):
        ctx, cache = self.attend(query, keys, values, mask)
        self._cache = cache if training else None
        return ctx

    def __call__(self, query, keys, values=None, mask=None, training=None):
        return self.forward(query, keys, values, mask, training=self._mode(training))

    def backward(self, dcontext):
        """-> (dquery, dkeys, dvalues); dvalues is None when forward's values defaulted to keys."""
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward(..., training=True)")
        return self.attend_backward(self._cache, dcontext)


def _additive_scores(xp, qp, kp, v):
    """score[b, t, s] = v . tanh(qp[b, t] + kp[b, s]); returns (score, tanh values)."""
    e = xp.tanh(qp[:, :, None, :] + kp[:, None, :, :])  # (B, Tq, S, A)
    return e @ v, e


def _additive_backward(e, v, ds):
    """-> (d qp, d kp, d v) of _additive_scores."""
    dpre = ds[..., None] * v * (1.0 - e * e)
    dvv = (ds[..., None] * e).reshape(-1, e.shape[-1]).sum(axis=0)
    return dpre.sum(axis=2), dpre.sum(axis=1), dvv


class BahdanauAttention(_Attention):
    """Additive attention (Bahdanau et al. 2015): score(s, h_j) = v^T tanh(W_q s + W_k h_j + b).

    query_dim: size of the decoder state s_{t-1}; key_dim: size of the encoder outputs h_j
    (default query_dim); units: size A of the hidden scoring layer (default query_dim).
    Parameters w_query (A, Dq), w_key (A, Dk), bias (A,), v (A,): A(Dq+Dk+2).
    """

    def __init__(self, query_dim, key_dim=None, units=None, seed=None, dtype=np.float32):
        self.query_dim = positive_int("BahdanauAttention", "query_dim", query_dim)
        self.key_dim = self.query_dim if key_dim is None else positive_int("BahdanauAttention", "key_dim", key_dim)
        self.units = self.query_dim if units is None else positive_int("BahdanauAttention", "units", units)
        dt = float_dtype("BahdanauAttention", dtype)
        rng = default_rng(seed)
        A = self.units
        self.w_query = Parameter(initialize("glorot_uniform", (A, self.query_dim), rng, dt), "w_query")
        self.w_key = Parameter(initialize("glorot_uniform", (A, self.key_dim), rng, dt), "w_key")
        self.bias = Parameter(np.zeros(A, dt), "bias")
        self.v = Parameter(np.ascontiguousarray(rng.uniform(-1, 1, A) / np.sqrt(A), dtype=dt), "v")
        self.alignment = None
        self._cache = None

    def _param_like(self):
        return self.w_query.value

    def _scores(self, xp, q, k):
        qp = q @ self.w_query.value.T
        kp = k @ self.w_key.value.T + self.bias.value
        s, e = _additive_scores(xp, qp, kp, self.v.value)
        return s, (q, k, e)

    def _scores_backward(self, xp, scache, ds):
        q, k, e = scache
        dqp, dkp, dv = _additive_backward(e, self.v.value, ds)
        A = self.units
        self.w_query.accumulate(dqp.reshape(-1, A).T @ q.reshape(-1, self.query_dim))
        self.w_key.accumulate(dkp.reshape(-1, A).T @ k.reshape(-1, self.key_dim))
        self.bias.accumulate(dkp.reshape(-1, A).sum(axis=0))
        self.v.accumulate(dv)
        return dqp @ self.w_query.value, dkp @ self.w_key.value


class LuongAttention(_Attention):
    """Multiplicative attention (Luong et al. 2015), scored from the decoder state *after* its step.

    score="dot": h_t . h_j (needs key_dim == query_dim; no parameters, and the dims may be left
    out: LuongAttention(score="dot") takes any query/keys of equal size and computes in their dtype);
    score="general": h_t^T W_a h_j, W_a (Dq, Dk);
    score="concat": v^T tanh(W_a [h_t; h_j]), W_a (units, Dq + Dk), v (units,).
    """

    def __init__(self, query_dim=None, key_dim=None, score="dot", units=None, seed=None, dtype=np.float32):
        if score not in ("dot", "general", "concat"):
            raise ValueError(f"LuongAttention: 'score' must be 'dot', 'general' or 'concat', got {score!r}")
        if query_dim is None and score != "dot":
            raise ValueError(f"LuongAttention: score={score!r} has weights and needs 'query_dim'")
        self.query_dim = None if query_dim is None else positive_int("LuongAttention", "query_dim", query_dim)
        self.key_dim = self.query_dim if key_dim is None else positive_int("LuongAttention", "key_dim", key_dim)
        if score == "dot" and self.key_dim != self.query_dim:
            raise ValueError(
                f"LuongAttention: score='dot' needs key_dim == query_dim, got {self.key_dim} and {self.query_dim}"
            )
        self.score = score
        self.units = self.query_dim if units is None else positive_int("LuongAttention", "units", units)
        if score == "dot":
            self.units = None
        dt = float_dtype("LuongAttention", dtype)
        self._dtype = dt
        rng = default_rng(seed)
        if score == "general":
            self.weight = Parameter(initialize("glorot_uniform", (self.query_dim, self.key_dim), rng, dt), "weight")
        elif score == "concat":
            A = self.units
            self.weight = Parameter(initialize("glorot_uniform", (A, self.query_dim + self.key_dim), rng, dt), "weight")
            self.v = Parameter(np.ascontiguousarray(rng.uniform(-1, 1, A) / np.sqrt(A), dtype=dt), "v")
        self.alignment = None
        self._cache = None

    def _param_like(self):
        return None if self.score == "dot" else self.weight.value

    def _scores(self, xp, q, k):
        kt = k.transpose(0, 2, 1)
        if self.score == "dot":
            return q @ kt, (q, k)
        if self.score == "general":
            qw = q @ self.weight.value  # (B, Tq, Dk)
            return qw @ kt, (q, k, qw)
        Dq = self.query_dim
        W = self.weight.value
        s, e = _additive_scores(xp, q @ W[:, :Dq].T, k @ W[:, Dq:].T, self.v.value)
        return s, (q, k, e)

    def _scores_backward(self, xp, scache, ds):
        q, k = scache[0], scache[1]
        if self.score == "dot":
            return ds @ k, ds.transpose(0, 2, 1) @ q
        if self.score == "general":
            qw = scache[2]
            dqw = ds @ k  # (B, Tq, Dk)
            self.weight.accumulate(q.reshape(-1, self.query_dim).T @ dqw.reshape(-1, self.key_dim))
            return dqw @ self.weight.value.T, ds.transpose(0, 2, 1) @ qw
        e = scache[2]
        Dq, A = self.query_dim, self.units
        W = self.weight.value
        dqp, dkp, dv = _additive_backward(e, self.v.value, ds)
        gq = dqp.reshape(-1, A).T @ q.reshape(-1, Dq)
        gk = dkp.reshape(-1, A).T @ k.reshape(-1, self.key_dim)
        self.weight.accumulate(xp.concatenate([gq, gk], axis=1))
        self.v.accumulate(dv)
        return dqp @ W[:, :Dq], dkp @ W[:, Dq:]
