"""Conv2D: a thin layer over the kernels dk.conv2d / dk.conv2d_backward."""
import numpy as np

from .. import functional as F
from ..functional.conv import _conv2d_backward
from .._validate import int_pair
from ._base import Layer, Parameter, default_rng, export_arrays, torch_key, xp_of
from ._checks import as_input, float_dtype, positive_int
from .init import initialize


def _conv_out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


class Conv2D(Layer):
    """2-D convolution over NCHW input; weight (out_channels, in_channels, kh, kw) like PyTorch.
    K*C*kh*kw + K parameters. Init 'he_normal' by default (the layer is usually followed by ReLU)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True,
                 init="he_normal", seed=None, dtype=np.float32):
        self.in_channels = positive_int("Conv2D", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2D", "out_channels", out_channels)
        self.kernel_size = int_pair("Conv2D", "kernel_size", kernel_size, 1)
        self.stride = int_pair("Conv2D", "stride", stride, 1)
        self.padding = int_pair("Conv2D", "padding", padding, 0)
        self.dilation = int_pair("Conv2D", "dilation", dilation, 1)
        dt = float_dtype("Conv2D", dtype)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(initialize(init, shape, default_rng(seed), dt), "weight")
        self.bias = Parameter(np.zeros(self.out_channels, dt), "bias") if bias else None
        self._ctx = None

    _input_grad_skippable = True  # backward honours _input_grad_unused (see Layer)

    def forward(self, x, training=True):
        self.check_input(x)
        W = self.weight.value
        x = as_input("Conv2D", x, xp_of(W), W.dtype)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D.forward: 'x' has shape {tuple(x.shape)}; expected (N, {self.in_channels}, H, W)"
            )
        b = None if self.bias is None else self.bias.value
        y, ctx = F.conv2d(x, W, b, self.stride, self.padding, self.dilation, return_ctx=True)
        self._ctx = ctx if training else None
        return y

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError("Conv2D.backward called before forward(x, training=True)")
        dx, dw, db = _conv2d_backward(self._ctx, dy, input_grad=not self._input_grad_unused)
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def output_shape(self, input_shape):
        _, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        return (self.out_channels, _conv_out(H, kh, sh, ph, dh), _conv_out(W, kw, sw, pw, dw))

    def torch_state_dict(self):
        return export_arrays(weight=self.weight, bias=self.bias)

    def load_torch_state(self, prefix, state):
        for name in ("weight", "bias"):
            if getattr(self, name) is not None:
                k = torch_key(prefix, name)
                getattr(self, name).assign(state[k], f"Conv2D.load_torch_state: '{k}'")
