"""LSTM and GRU layers with PyTorch's arguments: num_layers, bidirectional, proj_size (LSTM),
bias, dropout between layers, batch_first both ways, unbatched (T, I) input.

Both keep the Keras-style outputs of deepkern's recurrent layers (see recurrent.py):
``return_sequences=False`` gives the last time step of the output sequence (B, D*H_out), True
every step's (B, T, D*H_out), ``return_state=True`` adds the final states. D = 2 when
bidirectional (the two directions' outputs concatenated, forward first, as PyTorch); H_out =
proj_size or hidden_size. States are (B, H) for one layer and one direction, else
(num_layers*D, B, H) in PyTorch's order (layer-major, forward before reverse); an LSTM with
proj_size has h of size proj_size and c of size hidden_size. Unbatched x (T, I) drops the batch
axis everywhere ((T, F) / (F,) output, (H,) or (num_layers*D, H) states).

Each (layer, direction) runs the whole sequence through one functional call (dk.lstm, whose
common case is the fused C++ kernel, or dk.gru); the reverse direction runs on the time-reversed
sequence. Weights: weight_ih_l{k}[_reverse], weight_hh_l{k}[_reverse] (PyTorch's layouts), the
LSTM's weight_hr_l{k} with proj_size; the LSTM has one bias per gate, bias_l{k} (the course's
4(H(I+H)+H) count; exported to PyTorch as bias_ih = bias, bias_hh = 0, read back as their sum),
the GRU PyTorch's two, bias_ih_l{k} and bias_hh_l{k} (b_hn sits inside r * (...), so they do
not add up).
"""

import numpy as np

from .. import functional as F
from ._base import Parameter, default_rng, export_arrays, torch_key, xp_of
from ._checks import float_dtype, positive_int
from .init import initialize
from .recurrent import _add, _contig, _np, _Recurrent, _recurrent_init

_LSTM_NAMES = ("weight_ih", "weight_hh", "bias", "weight_hr")
_GRU_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class _Stacked(_Recurrent):
    """Layers x directions of one recurrence; subclasses give the gates and the functional pair."""

    _gates = 4

    def _setup(
        self,
        input_size,
        hidden_size,
        num_layers,
        return_sequences,
        return_state,
        bias,
        batch_first,
        dropout,
        bidirectional,
        proj_size,
        seed,
        dtype,
    ):
        name = type(self).__name__
        self.input_size = positive_int(name, "input_size", input_size)
        self.hidden_size = positive_int(name, "hidden_size", hidden_size)
        self.num_layers = positive_int(name, "num_layers", num_layers)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{name}: 'dropout' must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) or proj_size < 0:
            raise ValueError(f"{name}: 'proj_size' must be an int >= 0, got {proj_size!r}")
        if proj_size >= self.hidden_size:
            raise ValueError(f"{name}: 'proj_size' ({proj_size}) must be smaller than hidden_size ({hidden_size})")
        self.proj_size = int(proj_size)
        self._dirs = ("", "_reverse") if self.bidirectional else ("",)
        self._D = len(self._dirs)
        self._nstack = self.num_layers * self._D
        self._pcache = {}  # (name, layer, direction) -> Parameter or None (a dict: not walked for parameters)
        self._dt = float_dtype(name, dtype)
        self._rng = default_rng(seed)
        self._ctxs = None
        self.state_grad = None

    # -- shapes ----------------------------------------------------------------------------------
    def _h_out(self):
        return self.proj_size or self.hidden_size

    def _out_width(self):
        return self._D * self._h_out()

    def _layer_input(self, layer):
        return self.input_size if layer == 0 else self._out_width()

    def _n_stack(self):
        return self._nstack

    def _state_shape(self, B):
        return self._state_shapes(B)[0]

    def _state_shapes(self, B):
        lead = (B,) if self._nstack == 1 else (self._nstack, B)
        h = lead + (self.proj_size or self.hidden_size,)
        return (h,) if len(self._state_names) == 1 else (h, lead + (self.hidden_size,))

    def _per_k(self, s, k):
        return s if self._nstack == 1 else s[k]

    def _stack_k(self, xp, arrays):
        return arrays[0] if self._nstack == 1 else xp.stack(arrays)

    def _first_weight(self):
        return self.weight_ih_l0.value

    def _first_param(self):
        return self.weight_ih_l0

    def _slot(self, layer, d, names):
        """The Parameters (or None) named `names` of one (layer, direction), cached as a tuple."""
        key = (layer, d, names)
        t = self._pcache.get(key)
        if t is None:
            t = self._pcache[key] = tuple(self._p(n, layer, d) for n in names)
        return t

    def _p(self, name, layer, d):
        key = (name, layer, d)
        p = self._pcache.get(key, False)
        if p is False:
            p = self._pcache[key] = getattr(self, f"{name}_l{layer}{self._dirs[d]}", None)
        return p

    # -- PyTorch's calling conventions: batch_first, unbatched ----------------------------------
    def forward(self, x, initial_state=None, training=None):
        training = self._mode(training)
        W = self._first_weight()
        xp = xp_of(W)
        xa = xp.asarray(x) if not hasattr(x, "ndim") else x
        self._unbatched = xa.ndim == 2
        if self._unbatched:
            xa = xa[None]
            if initial_state is not None:
                initial_state = self._map_state(initial_state, lambda s: xp.asarray(s)[..., None, :])
        elif not self.batch_first and xa.ndim == 3:
            xa = xa.transpose(1, 0, 2)
        Y, final = self.forward_sequence(xa, initial_state, training)
        out = self._outputs(Y, final)
        if not self.batch_first and not self._unbatched and self.return_sequences:
            out = self._map_output(out, lambda a: a.transpose(1, 0, 2))
        if self._unbatched:
            out = self._map_output(out, lambda a: a[0], lambda s: s[..., 0, :])
        return out

    def _map_state(self, state, fn):
        if isinstance(state, (tuple, list)):
            return tuple(fn(s) for s in state)
        return fn(state)

    def _map_output(self, out, fn_out, fn_state=None):
        if self.return_state:
            return (fn_out(out[0]),) + tuple((fn_state or (lambda s: s))(s) for s in out[1:])
        return fn_out(out)

    def backward(self, dy):
        if self._ctxs is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward(x, training=True)")
        xp = xp_of(self._first_weight())
        _, _, B, T, dt = self._ctxs
        unb = getattr(self, "_unbatched", False)
        if unb or (not self.batch_first and self.return_sequences):
            grow = (lambda a: xp.asarray(a)[None]) if unb else (lambda a: xp.asarray(a).transpose(1, 0, 2))
            if self.return_state and isinstance(dy, (tuple, list)):
                dy = (None if dy[0] is None else grow(dy[0]),) + tuple(
                    None if d is None else (xp.asarray(d)[..., None, :] if unb else d) for d in dy[1:]
                )
            elif dy is not None:
                dy = grow(dy)
        dY, dfinal = self._split_dy(dy, B, T, xp, dt)
        dx = self.backward_sequence(dY, dfinal)
        if unb:
            self.state_grad = tuple(s[..., 0, :] for s in self.state_grad)
            return dx[0]
        return dx if self.batch_first else dx.transpose(1, 0, 2)

    # -- whole sequence (batch-first; what dk.bptt and the decoders drive) ----------------------
    def forward_sequence(self, x, initial_state=None, training=True):
        """-> (Y (B, T, D*H_out) the top layer's every step, final states), whatever return_* say."""
        x = self._input(x)
        xp, dt = xp_of(x), x.dtype
        B, T, _ = x.shape
        states = self._initial_state(initial_state, B, xp, dt)
        seq = xp.ascontiguousarray(x.transpose(1, 0, 2))  # time-major (T, B, F)
        ctxs, masks = [], []
        finals = [[] for _ in states]
        for layer in range(self.num_layers):
            outs = []
            for d in range(self._D):
                k = layer * self._D + d
                st = [xp.ascontiguousarray(self._per_k(s, k)) for s in states]
                inp = seq if d == 0 else xp.ascontiguousarray(seq[::-1])
                y, fin, ctx = self._run(layer, d, inp, st, training)
                outs.append(y if d == 0 else y[::-1])
                for j, f in enumerate(fin):
                    finals[j].append(f)
                ctxs.append(ctx)
            seq = outs[0] if self._D == 1 else xp.ascontiguousarray(xp.concatenate(outs, axis=-1))
            mask = None
            if training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = self._rng.random(seq.shape) >= self.dropout
                mask = xp.asarray(keep.astype(dt) * dt.type(1.0 / (1.0 - self.dropout)))
                seq = seq * mask
            masks.append(mask)
        self._ctxs = (ctxs, masks, B, T, dt) if training else None
        return seq.transpose(1, 0, 2), tuple(self._stack_k(xp, f) for f in finals)

    def backward_sequence(self, dY, dfinal=None):
        """dY (B, T, D*H_out), dfinal (entries may be None) -> dx (B, T, I); .state_grad as the state."""
        if self._ctxs is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward(x, training=True)")
        ctxs, masks, B, T, dt = self._ctxs
        xp = xp_of(self._first_weight())
        n_states = len(self._state_names)
        dfinal = [None] * n_states if dfinal is None else list(dfinal)
        Ho = self._h_out()
        dseq = xp.ascontiguousarray(xp.asarray(dY, dtype=dt).transpose(1, 0, 2))
        d0 = [[None] * self._n_stack() for _ in range(n_states)]
        for layer in range(self.num_layers - 1, -1, -1):
            dinp = None
            for d in range(self._D):
                k = layer * self._D + d
                if self._D == 1:
                    dy_d = dseq
                else:
                    dy_d = dseq[..., d * Ho : (d + 1) * Ho]
                    dy_d = xp.ascontiguousarray(dy_d if d == 0 else dy_d[::-1])
                dst = [None if g is None else xp.ascontiguousarray(self._per_k(g, k)) for g in dfinal]
                dx, dstate0 = self._run_backward(layer, d, ctxs[k], dy_d, dst)
                for j, g in enumerate(dstate0):
                    d0[j][k] = g
                dx = dx if d == 0 else dx[::-1]
                dinp = dx if dinp is None else dinp + dx
            dseq = dinp if self._D == 1 else xp.ascontiguousarray(dinp)
            if layer > 0 and masks[layer - 1] is not None:
                dseq = dseq * masks[layer - 1]
        self.state_grad = tuple(self._stack_k(xp, g) for g in d0)
        return dseq.transpose(1, 0, 2)

    # -- PyTorch state ---------------------------------------------------------------------------
    def load_torch_state(self, prefix, state):
        """From the twin torch.nn module (same num_layers, bidirectional, bias, proj_size)."""
        where = f"{type(self).__name__}.load_torch_state"
        for layer in range(self.num_layers):
            for d, sfx in enumerate(self._dirs):
                for name, p in self._torch_params(layer, d).items():
                    k = torch_key(prefix, f"{name}_l{layer}{sfx}")
                    if k not in state:
                        raise KeyError(k)
                    p.assign(state[k], f"{where}: '{k}'")
                self._load_bias(prefix, state, layer, d, where)

    def torch_state_dict(self):
        out = {}
        for layer in range(self.num_layers):
            for d, sfx in enumerate(self._dirs):
                for name, a in {**self._torch_params(layer, d), **self._export_bias(layer, d)}.items():
                    out[f"{name}_l{layer}{sfx}"] = a
        return export_arrays(**out)

    def _check_steppable(self):
        if self.bidirectional or self.proj_size:
            raise ValueError(
                f"{type(self).__name__}.step: the step API runs one direction without projection; "
                "this layer has bidirectional=True or proj_size > 0 (use forward on the whole sequence)"
            )


class LSTM(_Stacked):
    """Long short-term memory, PyTorch's nn.LSTM arguments on deepkern's lstm kernels.

    LSTM(input_size, hidden_size, num_layers=1, return_sequences=False, return_state=False, ...,
    bias=True, batch_first=True, dropout=0.0, bidirectional=False, proj_size=0) — see the module
    docstring for shapes. Per layer and direction: weight_ih_l{k} (4H, I_k), weight_hh_l{k}
    (4H, H_out), bias_l{k} (4H,) (one bias per gate; gate order i, f, g, o as in PyTorch),
    weight_hr_l{k} (proj_size, H) with proj_size. dropout: inverted dropout on every layer's
    output except the last, in training.

    Init: input weights `init` ('glorot_uniform'), recurrent weights `recurrent_init`
    ('orthogonal', or 'identity': identity_scale * I in every gate block), biases zero except the
    forget gate's, set to `forget_bias` (1.0, like Keras' unit_forget_bias).
    """

    _state_names = ("h", "c")

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        return_sequences=False,
        return_state=False,
        recurrent_init="orthogonal",
        identity_scale=1.0,
        forget_bias=1.0,
        init="glorot_uniform",
        seed=None,
        dtype=np.float32,
        *,
        bias=True,
        batch_first=True,
        dropout=0.0,
        bidirectional=False,
        proj_size=0,
    ):
        self._setup(
            input_size,
            hidden_size,
            num_layers,
            return_sequences,
            return_state,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            seed,
            dtype,
        )
        rng, dt, H, P = self._rng, self._dt, self.hidden_size, self.proj_size
        for layer in range(self.num_layers):
            I = self._layer_input(layer)
            for sfx in self._dirs:
                w_ih = np.concatenate([initialize(init, (H, I), rng, dt) for _ in range(4)], axis=0)
                if P:
                    w_hh = np.concatenate([initialize(init, (H, P), rng, dt) for _ in range(4)], axis=0)
                else:
                    w_hh = _recurrent_init("LSTM", recurrent_init, H, 4, rng, dt, identity_scale)
                n = f"_l{layer}{sfx}"
                setattr(self, "weight_ih" + n, Parameter(np.ascontiguousarray(w_ih), "weight_ih" + n))
                setattr(self, "weight_hh" + n, Parameter(np.ascontiguousarray(w_hh), "weight_hh" + n))
                if self.bias:
                    b = np.zeros(4 * H, dt)
                    b[H : 2 * H] = forget_bias
                    setattr(self, "bias" + n, Parameter(b, "bias" + n))
                if P:
                    setattr(self, "weight_hr" + n, Parameter(initialize(init, (P, H), rng, dt), "weight_hr" + n))

    def _run(self, layer, d, inp, st, training):
        w_ih, w_hh, b, w_hr = self._slot(layer, d, _LSTM_NAMES)
        args = (inp, st[0], st[1], w_ih.value, w_hh.value, None if b is None else b.value, None)
        kw = {"w_hr": w_hr.value} if w_hr is not None else {}
        if training:
            (y, h, c), ctx = F.lstm(*args, return_ctx=True, **kw)
        else:
            (y, h, c), ctx = F.lstm(*args, **kw), None
        return y, (h, c), ctx

    def _run_backward(self, layer, d, ctx, dy, dstate):
        g = F.lstm_backward(ctx, dy, dstate[0], dstate[1])
        w_ih, w_hh, b, w_hr = self._slot(layer, d, _LSTM_NAMES)
        w_ih.accumulate(g[3])
        w_hh.accumulate(g[4])
        if b is not None:
            b.accumulate(g[5])
        if w_hr is not None:
            w_hr.accumulate(g[7])
        return g[0], (g[1], g[2])

    def _torch_params(self, layer, d):
        out = {"weight_ih": self._p("weight_ih", layer, d), "weight_hh": self._p("weight_hh", layer, d)}
        if self.proj_size:
            out["weight_hr"] = self._p("weight_hr", layer, d)
        return out

    def _export_bias(self, layer, d):
        b = self._p("bias", layer, d)
        if b is None:
            return {}
        return {"bias_ih": b, "bias_hh": np.zeros(b.shape, b.dtype)}

    def _load_bias(self, prefix, state, layer, d, where):
        if not self.bias:
            return
        ki, kh = (torch_key(prefix, f"{n}_l{layer}{self._dirs[d]}") for n in ("bias_ih", "bias_hh"))
        for k in (ki, kh):
            if k not in state:
                raise KeyError(k)
        total = np.asarray(_np(state[ki]), np.float64) + np.asarray(_np(state[kh]), np.float64)
        self._p("bias", layer, d).assign(total, f"{where}: '{ki}' + '{kh}'")

    # -- step-wise (bptt, decoders): one direction, no projection -------------------------------
    def zero_state(self, batch):
        W = self._first_weight()
        xp = xp_of(W)
        return tuple(xp.zeros(s, W.dtype) for s in self._state_shapes(batch))

    def step(self, x_t, state):
        """One time step through every layer: x_t (B, I), state (h, c) -> (h_top, (h, c), cache)."""
        self._check_steppable()
        xp = xp_of(self._first_weight())
        h, c = state
        inp, hs, cs, ctxs = x_t, [], [], []
        for layer in range(self.num_layers):
            w_ih, w_hh, b = (self._p(n, layer, 0) for n in ("weight_ih", "weight_hh", "bias"))
            (h1, c1), ctx = F.lstm_cell(
                xp.ascontiguousarray(inp),
                xp.ascontiguousarray(self._per_k(h, layer)),
                xp.ascontiguousarray(self._per_k(c, layer)),
                w_ih.value,
                w_hh.value,
                None if b is None else b.value,
                None,
                return_ctx=True,
            )
            hs.append(h1)
            cs.append(c1)
            ctxs.append(ctx)
            inp = h1
        return inp, (self._stack_k(xp, hs), self._stack_k(xp, cs)), (ctxs, x_t.shape[0])

    def step_backward(self, cache, dy_t, dstate):
        xp = xp_of(self._first_weight())
        dh_all, dc_all = (None, None) if dstate is None else dstate
        dhs, dcs = [None] * self.num_layers, [None] * self.num_layers
        dinp = dy_t  # gradient arriving at the top layer's output
        ctxs, _ = cache
        for layer in range(self.num_layers - 1, -1, -1):
            dh_own = None if dh_all is None else self._per_k(dh_all, layer)
            dh = _add(dinp, dh_own, None)  # from the layer above (or the output) + from step t+1
            dc = None if dc_all is None else self._per_k(dc_all, layer)
            dinp, dhs[layer], dcs[layer], dw_ih, dw_hh, db, _ = F.lstm_cell_backward(
                ctxs[layer], _contig(xp, dh), _contig(xp, dc)
            )
            self._p("weight_ih", layer, 0).accumulate(dw_ih)
            self._p("weight_hh", layer, 0).accumulate(dw_hh)
            if self.bias:
                self._p("bias", layer, 0).accumulate(db)
        return dinp, (self._stack_k(xp, dhs), self._stack_k(xp, dcs))


class GRU(_Stacked):
    """Gated recurrent unit, PyTorch's nn.GRU (gate order r, z, n; b_hn inside r * (...)).

    GRU(input_size, hidden_size, num_layers=1, return_sequences=False, return_state=False,
    recurrent_init='orthogonal', init='glorot_uniform', seed=None, dtype=float32, *, bias=True,
    batch_first=True, dropout=0.0, bidirectional=False) — shapes as in the module docstring, one
    state h. Per layer and direction: weight_ih_l{k} (3H, I_k), weight_hh_l{k} (3H, H),
    bias_ih_l{k}, bias_hh_l{k} (3H,): 3(H(I+H) + 2H) parameters a layer, as PyTorch.

    >>> gru = dk.nn.GRU(3, 4, num_layers=2, bidirectional=True, return_sequences=True, return_state=True)
    >>> y, h = gru(np.ones((2, 5, 3), np.float32))
    >>> y.shape, h.shape                      # (B, T, 2*H) and (num_layers*2, B, H)
    ((2, 5, 8), (4, 2, 4))
    >>> gru(np.ones((5, 3), np.float32))[0].shape   # unbatched (T, I)
    (5, 8)
    """

    _state_names = ("h",)
    _gates = 3

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        return_sequences=False,
        return_state=False,
        recurrent_init="orthogonal",
        init="glorot_uniform",
        seed=None,
        dtype=np.float32,
        *,
        bias=True,
        batch_first=True,
        dropout=0.0,
        bidirectional=False,
    ):
        self._setup(
            input_size,
            hidden_size,
            num_layers,
            return_sequences,
            return_state,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            seed,
            dtype,
        )
        rng, dt, H = self._rng, self._dt, self.hidden_size
        for layer in range(self.num_layers):
            I = self._layer_input(layer)
            for sfx in self._dirs:
                n = f"_l{layer}{sfx}"
                w_ih = np.concatenate([initialize(init, (H, I), rng, dt) for _ in range(3)], axis=0)
                setattr(self, "weight_ih" + n, Parameter(np.ascontiguousarray(w_ih), "weight_ih" + n))
                setattr(
                    self,
                    "weight_hh" + n,
                    Parameter(_recurrent_init("GRU", recurrent_init, H, 3, rng, dt), "weight_hh" + n),
                )
                if self.bias:
                    setattr(self, "bias_ih" + n, Parameter(np.zeros(3 * H, dt), "bias_ih" + n))
                    setattr(self, "bias_hh" + n, Parameter(np.zeros(3 * H, dt), "bias_hh" + n))

    def _run(self, layer, d, inp, st, training):
        w = self._slot(layer, d, _GRU_NAMES)
        args = (inp, st[0]) + tuple(None if p is None else p.value for p in w)
        if training:
            (y, h), ctx = F.gru(*args, return_ctx=True)
        else:
            (y, h), ctx = F.gru(*args), None
        return y, (h,), ctx

    def _run_backward(self, layer, d, ctx, dy, dstate):
        dx, dh0, *grads = F.gru_backward(ctx, dy, dstate[0])
        for p, g in zip(self._slot(layer, d, _GRU_NAMES), grads):
            if g is not None:
                p.accumulate(g)
        return dx, (dh0,)

    def _torch_params(self, layer, d):
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        return {n: self._p(n, layer, d) for n in names}

    def _export_bias(self, layer, d):
        return {}

    def _load_bias(self, prefix, state, layer, d, where):
        pass

    def zero_state(self, batch):
        W = self._first_weight()
        return (xp_of(W).zeros(self._state_shape(batch), W.dtype),)

    def step(self, x_t, state):
        """One time step through every layer: x_t (B, I), state (h,) -> (h_top, (h,), cache)."""
        self._check_steppable()
        xp = xp_of(self._first_weight())
        (h,) = state
        inp, hs, ctxs = x_t, [], []
        for layer in range(self.num_layers):
            w = [self._p(n, layer, 0) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h1, ctx = F.gru_cell(
                xp.ascontiguousarray(inp),
                xp.ascontiguousarray(self._per_k(h, layer)),
                *(None if p is None else p.value for p in w),
                return_ctx=True,
            )
            hs.append(h1)
            ctxs.append(ctx)
            inp = h1
        return inp, (self._stack_k(xp, hs),), ctxs

    def step_backward(self, cache, dy_t, dstate):
        xp = xp_of(self._first_weight())
        dh_all = None if dstate is None else dstate[0]
        dhs = [None] * self.num_layers
        dinp = dy_t
        for layer in range(self.num_layers - 1, -1, -1):
            dh = _add(dinp, None if dh_all is None else self._per_k(dh_all, layer), cache[layer].hs[1])
            dinp, dhs[layer], *grads = F.gru_cell_backward(cache[layer], _contig(xp, dh))
            for n, g in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), grads):
                if g is not None:
                    self._p(n, layer, 0).accumulate(g)
        return dinp, (self._stack_k(xp, dhs),)
