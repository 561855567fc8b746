"""Positional encodings added to a (B, T, dim) sequence of embeddings."""

import numpy as np

from ._base import Layer, Parameter, default_rng, xp_of
from ._checks import as_input, float_dtype, positive_int


def sinusoidal_table(max_len, dim):
    """Vaswani et al.: PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(same angle); (max_len, dim) float64."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    freq = np.exp(-np.log(10000.0) * (np.arange(0, dim, 2, dtype=np.float64) / dim))
    pe = np.zeros((max_len, dim))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq[: dim // 2])
    return pe


class PositionalEncoding(Layer):
    """y = x + PE[:T] for x of shape (B, T, dim) (or (T, dim)), T <= max_len.

    kind='sinusoidal': the fixed table of Vaswani et al. (no parameters; kept in `.table`).
    kind='learned': a trainable (max_len, dim) table `weight`, initialised N(0, init_std^2);
    max_len*dim parameters. backward returns dy (the encoding is added) and, for 'learned',
    accumulates the table rows that were used.
    """

    _buffers = ("table",)

    def __init__(self, dim, max_len, kind="sinusoidal", init_std=0.02, seed=None, dtype=np.float32):
        self.dim = positive_int("PositionalEncoding", "dim", dim)
        self.max_len = positive_int("PositionalEncoding", "max_len", max_len)
        if kind not in ("sinusoidal", "learned"):
            raise ValueError(f"PositionalEncoding: 'kind' must be 'sinusoidal' or 'learned', got {kind!r}")
        self.kind = kind
        dt = float_dtype("PositionalEncoding", dtype)
        self._dtype = dt
        if kind == "learned":
            rng = default_rng(seed)
            self.weight = Parameter(
                np.ascontiguousarray(rng.normal(0.0, init_std, (self.max_len, self.dim)), dt), "weight"
            )
            self.table = None
        else:
            self.table = np.ascontiguousarray(sinusoidal_table(self.max_len, self.dim), dtype=dt)
        self._T = None

    def _table(self):
        return self.weight.value if self.kind == "learned" else self.table

    def forward(self, x, training=True):
        self.check_input(x)
        tab = self._table()
        if self.kind == "sinusoidal" and tab.dtype != self.dtype:
            tab = self.table = tab.astype(self.dtype)
        x = as_input("PositionalEncoding", x, xp_of(tab), tab.dtype)
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(
                f"PositionalEncoding.forward: 'x' has shape {tuple(x.shape)}; expected (batch, time, {self.dim})"
            )
        T = x.shape[-2]
        if T > self.max_len:
            raise ValueError(f"PositionalEncoding.forward: sequence length {T} exceeds max_len {self.max_len}")
        self._T = (T, x.shape) if training else None
        return x + tab[:T]

    def backward(self, dy):
        if self._T is None:
            raise RuntimeError("PositionalEncoding.backward called before forward(x, training=True)")
        T, shape = self._T
        xp = xp_of(self._table())
        dy = xp.asarray(dy, dtype=self._table().dtype)
        if tuple(dy.shape) != tuple(shape):
            raise ValueError(f"PositionalEncoding.backward: 'dy' has shape {tuple(dy.shape)}; expected {tuple(shape)}")
        if self.kind == "learned":
            g = xp.zeros_like(self.weight.value)
            g[:T] = dy.reshape(-1, T, self.dim).sum(axis=0)
            self.weight.accumulate(g)
        return dy

    def output_shape(self, input_shape):
        return tuple(input_shape)
