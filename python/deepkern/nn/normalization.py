"""LayerNorm over the last axis (PyTorch's nn.LayerNorm(dim) with elementwise affine)."""
import numpy as np

from ._base import Layer, Parameter, xp_of
from ._checks import as_input, float_dtype, positive_int


class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis of x (..., dim).

    var is the biased variance (divides by dim), as in PyTorch. weight starts at ones, bias at
    zeros; 2*dim parameters.
    """

    def __init__(self, dim, eps=1e-5, dtype=np.float32):
        self.dim = positive_int("LayerNorm", "dim", dim)
        if not float(eps) > 0:
            raise ValueError(f"LayerNorm: 'eps' must be > 0, got {eps!r}")
        self.eps = float(eps)
        dt = float_dtype("LayerNorm", dtype)
        self.weight = Parameter(np.ones(self.dim, dt), "weight")
        self.bias = Parameter(np.zeros(self.dim, dt), "bias")
        self._cache = None

    def forward(self, x, training=True):
        self.check_input(x)
        W = self.weight.value
        xp = xp_of(W)
        x = as_input("LayerNorm", x, xp, W.dtype)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm.forward: 'x' has shape {tuple(x.shape)}; expected (..., {self.dim})")
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        rstd = 1.0 / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * rstd
        self._cache = (xhat, rstd) if training else None
        return xhat * W + self.bias.value

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("LayerNorm.backward called before forward(x, training=True)")
        xhat, rstd = self._cache
        xp = xp_of(xhat)
        dy = xp.asarray(dy, dtype=xhat.dtype)
        if dy.shape != xhat.shape:
            raise ValueError(f"LayerNorm.backward: 'dy' has shape {tuple(dy.shape)}; expected {tuple(xhat.shape)}")
        lead = tuple(range(dy.ndim - 1))
        self.weight.accumulate((dy * xhat).sum(axis=lead))
        self.bias.accumulate(dy.sum(axis=lead))
        g = dy * self.weight.value
        return rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def load_torch_state(self, prefix, state):
        k = (prefix + ".") if prefix else ""
        self.weight.assign(state[k + "weight"], f"LayerNorm.load_torch_state: '{k}weight'")
        self.bias.assign(state[k + "bias"], f"LayerNorm.load_torch_state: '{k}bias'")
