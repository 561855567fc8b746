"""Recurrent layers: SimpleRNN here; (stacked, bidirectional) LSTM and GRU in lstm_gru.py.

Both take x of shape (B, T, F) and return, like Keras,

- ``return_sequences=False``: the last hidden state (B, H); ``True``: every step's (B, T, H);
- ``return_state=True``: a tuple ``(output, h)`` (SimpleRNN) or ``(output, h, c)`` (LSTM) with
  the final state. For a stacked LSTM (num_layers > 1) h and c are (num_layers, B, H), as in
  PyTorch; for one layer they are (B, H).

``forward(x, initial_state=None, training=True)`` (also ``layer(x, initial_state)``) starts from
`initial_state`: h, or (h, c), in the shapes above (a one-layer state may also come as PyTorch's
(1, B, H)); zeros when None. ``backward(dy)`` takes the gradient of what forward returned: a
tuple ``(dout, dh[, dc])`` when return_state, any entry None for no gradient, or a bare dout
(no gradient on the final state). It accumulates the parameter gradients, returns dx and leaves
the gradient of the initial state in ``.state_grad`` (a tuple like the state), so an encoder can
be trained through a decoder that started from its state.

One bias per gate (the course's count): SimpleRNN has H(I+H)+H parameters, an LSTM layer
4(H(I+H)+H). Weights use PyTorch's layouts (weight_ih (gH, I), weight_hh (gH, H), gate order
i, f, g, o); ``load_torch_state`` reads nn.RNN / nn.LSTM state dicts, summing b_ih + b_hh.

Step-wise use (what dk.bptt and attention decoders drive): ``zero_state(batch)``,
``step(x_t, state) -> (y_t, state, cache)`` and ``step_backward(cache, dy_t, dstate) ->
(dx_t, dstate_prev)``; states are tuples of arrays, dy_t / dstate entries may be None.
"""

import numpy as np

from ._base import Layer, Parameter, default_rng, export_arrays, to_numpy, xp_of
from ._checks import as_input, float_dtype, positive_int
from ._matmul import gemm
from .init import initialize

_RECURRENT_INITS = ("orthogonal", "identity", "glorot_uniform", "torch")


def _recurrent_init(layer, kind, H, gates, rng, dt, scale=1.0):
    """(gates*H, H) recurrent weights; 'identity' puts scale*I in every gate block (IRNN, Le et al. 2015)."""
    if kind not in _RECURRENT_INITS:
        raise ValueError(f"{layer}: 'recurrent_init' must be one of {_RECURRENT_INITS}, got {kind!r}")
    if kind == "identity":
        return np.ascontiguousarray(np.tile(np.eye(H) * scale, (gates, 1)), dtype=dt)
    blocks = [initialize(kind, (H, H), rng, dt) for _ in range(gates)]
    return np.ascontiguousarray(np.concatenate(blocks, axis=0), dtype=dt)


def _torch_key(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class _Recurrent(Layer):
    """Shared input/output handling of the batch-first recurrent layers."""

    _state_names = ("h",)

    def __call__(self, x, initial_state=None, training=None):
        return self.forward(x, initial_state, training=self._mode(training))

    def _input(self, x):
        self.check_input(x)
        W = self._first_weight()
        x = as_input(type(self).__name__, x, xp_of(W), W.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}.forward: 'x' has shape {tuple(x.shape)}; expected (batch, time, "
                f"{self.input_size}) (batch-first, last axis = input_size)"
            )
        if x.shape[1] < 1:
            raise ValueError(f"{type(self).__name__}.forward: 'x' has no time steps (shape {tuple(x.shape)})")
        return x

    def _state_shape(self, B):
        return (B, self.hidden_size)

    def _state_shapes(self, B):
        """One shape per state (LSTM with proj_size: h and c differ)."""
        return (self._state_shape(B),) * len(self._state_names)

    def _out_width(self):
        """Size of the last axis of the output sequence."""
        return self.hidden_size

    def _initial_state(self, initial_state, B, xp, dt):
        n = len(self._state_names)
        shapes = self._state_shapes(B)
        if initial_state is None:
            return tuple(xp.zeros(shape, dt) for shape in shapes)
        if n == 1 and not isinstance(initial_state, (tuple, list)):
            initial_state = (initial_state,)
        if not isinstance(initial_state, (tuple, list)) or len(initial_state) != n:
            raise ValueError(
                f"{type(self).__name__}.forward: 'initial_state' must be a tuple ({', '.join(self._state_names)}), "
                f"got {type(initial_state).__name__}"
            )
        out = []
        for name, s, shape in zip(self._state_names, initial_state, shapes):
            s = as_input(type(self).__name__, s, xp, dt, "initial_state")
            if len(shape) == 2 and tuple(s.shape) == (1,) + shape:
                s = s[0]  # PyTorch's (num_layers=1, B, H)
            if tuple(s.shape) != shape:
                raise ValueError(
                    f"{type(self).__name__}.forward: initial state '{name}' has shape {tuple(s.shape)}; expected {shape}"
                )
            out.append(xp.ascontiguousarray(s))
        return tuple(out)

    def _outputs(self, Y, final):
        """Y (B, T, H) of the top layer, final = tuple of final states -> what forward returns."""
        out = Y if self.return_sequences else Y[:, -1]
        if self.return_state:
            return (out,) + tuple(final)
        return out

    def _split_dy(self, dy, B, T, xp, dt):
        """Gradient of forward's result -> (dY (B, T, H), [dfinal states or None])."""
        n = len(self._state_names)
        if self.return_state and not isinstance(dy, (tuple, list)):
            dy = (dy,) + (None,) * n  # only the output's gradient: the final states get none
        if self.return_state:
            if len(dy) != 1 + n:
                raise ValueError(
                    f"{type(self).__name__}.backward: with return_state=True 'dy' must be a tuple "
                    f"(dout, {', '.join('d' + s for s in self._state_names)}) (entries may be None)"
                )
            dout, dfinal = dy[0], list(dy[1:])
        else:
            dout, dfinal = dy, [None] * n
        H = self._out_width()
        if dout is None:
            dY = xp.zeros((B, T, H), dt)
        elif self.return_sequences:
            dY = xp.asarray(dout, dtype=dt)
            if tuple(dY.shape) != (B, T, H):
                raise ValueError(
                    f"{type(self).__name__}.backward: 'dy' has shape {tuple(dY.shape)}; expected {(B, T, H)}"
                )
        else:
            d = xp.asarray(dout, dtype=dt)
            if tuple(d.shape) != (B, H):
                raise ValueError(f"{type(self).__name__}.backward: 'dy' has shape {tuple(d.shape)}; expected {(B, H)}")
            dY = xp.zeros((B, T, H), dt)
            dY[:, -1] = d
        shapes = self._state_shapes(B)
        for k, d in enumerate(dfinal):
            shape = shapes[k]
            if d is not None:
                d = xp.asarray(d, dtype=dt)
                if tuple(d.shape) != shape:
                    raise ValueError(
                        f"{type(self).__name__}.backward: gradient of state '{self._state_names[k]}' has shape "
                        f"{tuple(d.shape)}; expected {shape}"
                    )
                dfinal[k] = d
        return dY, dfinal

    def output_shape(self, input_shape):
        T = input_shape[0]
        W = self._out_width()
        out = (T, W) if self.return_sequences else (W,)
        return out


class SimpleRNN(_Recurrent):
    """Elman RNN: h_t = act(x_t W_ih^T + h_{t-1} W_hh^T + b), act = tanh (default) or relu.

    recurrent_init: 'orthogonal' (default), 'identity' (W_hh = identity_scale * I; with
    activation='relu' this is Le et al.'s IRNN), 'glorot_uniform' or 'torch'.
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        return_sequences=False,
        return_state=False,
        activation="tanh",
        recurrent_init="orthogonal",
        identity_scale=1.0,
        init="glorot_uniform",
        seed=None,
        dtype=np.float32,
    ):
        self.input_size = positive_int("SimpleRNN", "input_size", input_size)
        self.hidden_size = positive_int("SimpleRNN", "hidden_size", hidden_size)
        if activation not in ("tanh", "relu"):
            raise ValueError(f"SimpleRNN: 'activation' must be 'tanh' or 'relu', got {activation!r}")
        self.activation = activation
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        dt = float_dtype("SimpleRNN", dtype)
        rng = default_rng(seed)
        H, I = self.hidden_size, self.input_size
        self.weight_ih = Parameter(initialize(init, (H, I), rng, dt), "weight_ih")
        self.weight_hh = Parameter(
            _recurrent_init("SimpleRNN", recurrent_init, H, 1, rng, dt, identity_scale), "weight_hh"
        )
        self.bias = Parameter(np.zeros(H, dt), "bias")
        self._cache = None
        self.state_grad = None

    def _first_weight(self):
        return self.weight_ih.value

    def _act(self, xp, a):
        return xp.tanh(a) if self.activation == "tanh" else xp.maximum(a, 0)

    def _act_grad(self, h):
        return (1.0 - h * h) if self.activation == "tanh" else (h > 0).astype(h.dtype)

    # -- whole sequence -----------------------------------------------------------------------
    def forward(self, x, initial_state=None, training=True):
        Y, final = self.forward_sequence(x, initial_state, training)
        return self._outputs(Y, final)

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("SimpleRNN.backward called before forward(x, training=True)")
        xt = self._cache[0]  # time-major (T, B, I)
        dY, dfinal = self._split_dy(dy, xt.shape[1], xt.shape[0], xp_of(xt), xt.dtype)
        return self.backward_sequence(dY, dfinal)

    def forward_sequence(self, x, initial_state=None, training=True):
        """-> (Y (B, T, H) every step's output, final state (h,)), whatever return_* say."""
        x = self._input(x)
        xp, dt = xp_of(x), x.dtype
        B, T, I = x.shape
        H = self.hidden_size
        (h0,) = self._initial_state(initial_state, B, xp, dt)
        Wih, Whh = self.weight_ih.value, self.weight_hh.value
        xt = xp.ascontiguousarray(x.transpose(1, 0, 2))  # time-major, so every step's rows are contiguous
        xw = gemm(xt.reshape(T * B, I), Wih, trans_b=True).reshape(T, B, H) + self.bias.value  # all steps at once
        hs = xp.empty((T + 1, B, H), dt)  # hs[0] = h0, hs[t+1] = h_t
        hs[0] = h0
        for t in range(T):
            hs[t + 1] = self._act(xp, gemm(hs[t], Whh, trans_b=True, out=xw[t]))
        self._cache = (xt, hs) if training else None
        return xp.ascontiguousarray(hs[1:].transpose(1, 0, 2)), (hs[T].copy(),)

    def backward_sequence(self, dY, dfinal=None):
        """dY (B, T, H), dfinal (dh,) or None -> dx; parameter grads accumulate, .state_grad = (dh0,)."""
        if self._cache is None:
            raise RuntimeError("SimpleRNN.backward called before forward(x, training=True)")
        xt, hs = self._cache
        xp, dt = xp_of(xt), xt.dtype
        T, B, I = xt.shape
        H = self.hidden_size
        dhT = None if dfinal is None else dfinal[0]
        Whh = self.weight_hh.value
        dYt = xp.asarray(dY, dtype=dt).transpose(1, 0, 2)
        dA = xp.empty((T, B, H), dt)  # gradient at the pre-activation of every step
        dh = xp.zeros((B, H), dt) if dhT is None else dhT.copy()
        for t in range(T - 1, -1, -1):
            dA[t] = (dYt[t] + dh) * self._act_grad(hs[t + 1])
            dh = gemm(dA[t], Whh)
        dA2 = dA.reshape(T * B, H)
        self.weight_ih.accumulate(gemm(dA2, xt.reshape(T * B, I), trans_a=True))
        self.weight_hh.accumulate(gemm(dA2, hs[:T].reshape(T * B, H), trans_a=True))
        self.bias.accumulate(dA2.sum(axis=0))
        self.state_grad = (dh,)
        return xp.ascontiguousarray(gemm(dA2, self.weight_ih.value).reshape(T, B, I).transpose(1, 0, 2))

    # -- step-wise (bptt, decoders) -------------------------------------------------------------
    def zero_state(self, batch):
        W = self.weight_ih.value
        return (xp_of(W).zeros((batch, self.hidden_size), W.dtype),)

    def step(self, x_t, state):
        """One time step: x_t (B, I), state (h,) -> (h_t, (h_t,), cache)."""
        xp = xp_of(self.weight_ih.value)
        (h,) = state
        x_t = xp.ascontiguousarray(x_t)
        pre = gemm(x_t, self.weight_ih.value, trans_b=True) + self.bias.value
        h1 = self._act(xp, gemm(h, self.weight_hh.value, trans_b=True, out=pre))
        return h1, (h1,), (x_t, h, h1)

    def step_backward(self, cache, dy_t, dstate):
        x_t, h, h1 = cache
        dh = _add(dy_t, dstate[0] if dstate is not None else None, h1)
        da = dh * self._act_grad(h1)
        self.weight_ih.accumulate(gemm(da, x_t, trans_a=True))
        self.weight_hh.accumulate(gemm(da, h, trans_a=True))
        self.bias.accumulate(da.sum(axis=0))
        return gemm(da, self.weight_ih.value), (gemm(da, self.weight_hh.value),)

    def torch_state_dict(self):
        """For torch.nn.RNN(input_size, hidden_size, nonlinearity=activation, batch_first=True)."""
        b = to_numpy(self.bias.value)
        return export_arrays(
            weight_ih_l0=self.weight_ih, weight_hh_l0=self.weight_hh, bias_ih_l0=b, bias_hh_l0=np.zeros_like(b)
        )

    def load_torch_state(self, prefix, state):
        """From torch.nn.RNN(input_size, hidden_size, batch_first=True) (layer 0): the two biases are summed."""
        k = lambda n: _torch_key(prefix, n)  # noqa: E731
        self.weight_ih.assign(state[k("weight_ih_l0")], f"SimpleRNN.load_torch_state: '{k('weight_ih_l0')}'")
        self.weight_hh.assign(state[k("weight_hh_l0")], f"SimpleRNN.load_torch_state: '{k('weight_hh_l0')}'")
        b = np.asarray(_np(state[k("bias_ih_l0")]), np.float64) + np.asarray(_np(state[k("bias_hh_l0")]), np.float64)
        self.bias.assign(b, f"SimpleRNN.load_torch_state: '{k('bias_ih_l0')}' + '{k('bias_hh_l0')}'")


def _np(a):
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def _add(a, b, like):
    """a + b where either may be None (a missing gradient is zero); zeros_like(like) if both are."""
    if a is None and b is None:
        return None if like is None else like * 0
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _contig(xp, a):
    return None if a is None else xp.ascontiguousarray(a)


from .lstm_gru import GRU, LSTM  # noqa: E402,F401  (defined on this module's _Recurrent)
