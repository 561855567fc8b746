"""AttentionDecoder: the decoder half of an attention encoder-decoder (teacher forcing + step-wise decoding).

A whole model, e.g. for sequence reversal or toy translation::

    enc = LSTM(E, H, return_sequences=True, return_state=True)
    dec = AttentionDecoder(LSTM(E + H, H), BahdanauAttention(H, H))   # Luong: LSTM(E, H), LuongAttention(H)
    head = Dense(2 * H, V)

    keys, h, c = enc.forward(src)                        # (B, S, H), final state
    out = dec.forward(tgt_in, keys, initial_state=(h, c))  # (B, T, H + H): [h_t; context_t]
    logits = head.forward(out)
    ...
    dtgt, dkeys, _ = dec.backward(head.backward(dlogits))
    enc.backward((dkeys, *dec.state_grad))               # through the keys and the handed-over state
"""

import numpy as np

from ._base import Layer, xp_of
from .attention import BahdanauAttention, LuongAttention


def _top_h(state):
    h = state[0]
    return h if h.ndim == 2 else h[-1]  # stacked LSTM: (num_layers, B, H) -> the top layer's h


def _add_top_h(state, dq, like):
    """state gradient + dq on the top layer's h (state may be None: zeros)."""
    if state is None:
        state = tuple(s * 0 for s in like)
    h = state[0]
    if h.ndim == 2:
        h = h + dq
    else:
        h = h.copy()
        h[-1] += dq
    return (h,) + tuple(state[1:])


class AttentionDecoder(Layer):
    """A recurrent decoder (SimpleRNN or LSTM, used through its step API) attending over keys.

    With BahdanauAttention the attention runs *before* each step, scored from the previous
    decoder state s_{t-1}, and its context is fed with the input: s_t = cell([x_t; c_t], s_{t-1});
    so the cell's input_size is input_dim + value_dim. With LuongAttention the cell steps first
    (input_size = input_dim) and the attention is scored from the new state h_t.

    ``forward(inputs, keys, initial_state=None, values=None, mask=None, training=True)`` with
    inputs (B, T, input_dim) (teacher forcing), keys (B, S, Dk) (the encoder outputs), values
    default keys, mask (B, S) bool -> (B, T, H + Dv): per step [h_t; c_t], for a Dense head
    (Luong's attentional state tanh(W_c [c_t; h_t]) is a Dense + Tanh on it).
    ``backward(dout)`` -> (dinputs, dkeys, dvalues) (dvalues None when values were the keys),
    and ``.state_grad`` holds the gradient of the initial state. ``.alignment`` is (B, T, S).
    ``decode_step(x_t, state, keys, values=None, mask=None)`` -> (out_t, state) for greedy or
    beam decoding at inference.
    """

    def __init__(self, cell, attention):
        if not all(callable(getattr(cell, n, None)) for n in ("zero_state", "step", "step_backward")):
            raise TypeError(
                f"AttentionDecoder: 'cell' must be a SimpleRNN or LSTM (step API), got {type(cell).__name__}"
            )
        if not isinstance(attention, (BahdanauAttention, LuongAttention)):
            raise TypeError(
                f"AttentionDecoder: 'attention' must be BahdanauAttention or LuongAttention, got "
                f"{type(attention).__name__}"
            )
        if attention.query_dim is not None and attention.query_dim != cell.hidden_size:
            raise ValueError(
                f"AttentionDecoder: the attention's query_dim ({attention.query_dim}) must equal the "
                f"cell's hidden_size ({cell.hidden_size})"
            )
        self.cell = cell
        self.attention = attention
        self.before = isinstance(attention, BahdanauAttention)
        self.alignment = None
        self.state_grad = None
        self._cache = None

    def __call__(self, inputs, keys, initial_state=None, values=None, mask=None, training=None):
        return self.forward(inputs, keys, initial_state, values, mask, self._mode(training))

    def _check_inputs(self, inputs, keys, values):
        xp = xp_of(self.cell.parameters()[0].value)
        dt = self.cell.parameters()[0].value.dtype
        inputs = xp.asarray(inputs, dtype=dt)
        keys = xp.asarray(keys, dtype=dt)
        Dv = keys.shape[-1] if values is None else np.shape(values)[-1]
        need = (inputs.shape[-1] + Dv) if self.before else inputs.shape[-1]
        if inputs.ndim != 3 or need != self.cell.input_size:
            raise ValueError(
                f"AttentionDecoder.forward: 'inputs' has shape {tuple(inputs.shape)}; the cell takes "
                f"input_size {self.cell.input_size}" + (f" = input_dim + value_dim ({Dv})" if self.before else "")
            )
        return xp, inputs, keys

    def forward(self, inputs, keys, initial_state=None, values=None, mask=None, training=True):
        xp, inputs, keys = self._check_inputs(inputs, keys, values)
        B, T, _ = inputs.shape
        if not self.before:  # Luong: the whole decoder sequence first, then attention on all steps at once
            Hs, _ = self.cell.forward_sequence(inputs, initial_state, training)
            ctx = self.attention.forward(Hs, keys, values, mask, training=training)
            self.alignment = self.attention.alignment
            self._cache = ("after", B, T) if training else None
            return xp.concatenate([Hs, ctx], axis=-1)
        state = (
            self.cell.zero_state(B)
            if initial_state is None
            else tuple(
                xp.asarray(s, dtype=inputs.dtype)
                for s in (initial_state if isinstance(initial_state, (tuple, list)) else (initial_state,))
            )
        )
        outs, caches, aligns = [], [], []
        for t in range(T):
            ctx, acache = self.attention.attend(_top_h(state), keys, values, mask)  # score from s_{t-1}
            aligns.append(self.attention.alignment)
            h, state_next, ccache = self.cell.step(xp.concatenate([inputs[:, t], ctx], axis=-1), state)
            caches.append((acache, ccache, state))
            state = state_next
            outs.append(xp.concatenate([h, ctx], axis=-1))
        self.alignment = xp.stack(aligns, axis=1)
        self._cache = ("before", B, T, caches, inputs.shape[-1]) if training else None
        return xp.stack(outs, axis=1)

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("AttentionDecoder.backward called before forward(..., training=True)")
        H = self.cell.hidden_size
        xp = xp_of(dout)
        if self._cache[0] == "after":
            dq, dkeys, dvalues = self.attention.backward(dout[..., H:])
            dinputs = self.cell.backward_sequence(dout[..., :H] + dq, None)
            self.state_grad = self.cell.state_grad
            return dinputs, dkeys, dvalues
        _, B, T, caches, E = self._cache
        dinputs = xp.zeros((B, T, E), dout.dtype)
        dkeys = dvalues = None
        dstate = None
        for t in range(T - 1, -1, -1):
            acache, ccache, state_prev = caches[t]
            dx, dstate = self.cell.step_backward(ccache, dout[:, t, :H], dstate)
            dinputs[:, t] = dx[:, :E]
            dq, dk, dv = self.attention.attend_backward(acache, dout[:, t, H:] + dx[:, E:])
            dkeys = dk if dkeys is None else dkeys + dk
            if dv is not None:
                dvalues = dv if dvalues is None else dvalues + dv
            dstate = _add_top_h(dstate, dq, state_prev)
        self.state_grad = dstate
        return dinputs, dkeys, dvalues

    def decode_step(self, x_t, state, keys, values=None, mask=None):
        """One inference step: x_t (B, input_dim), state (None = zeros) -> ([h_t; c_t] (B, H + Dv), state)."""
        xp = xp_of(self.cell.parameters()[0].value)
        dt = self.cell.parameters()[0].value.dtype
        x_t = xp.asarray(x_t, dtype=dt)
        state = self.cell.zero_state(x_t.shape[0]) if state is None else state
        if self.before:
            ctx, _ = self.attention.attend(_top_h(state), keys, values, mask)
            h, state, _ = self.cell.step(xp.concatenate([x_t, ctx], axis=-1), state)
        else:
            h, state, _ = self.cell.step(x_t, state)
            ctx, _ = self.attention.attend(h, keys, values, mask)
        return xp.concatenate([h, ctx], axis=-1), state
