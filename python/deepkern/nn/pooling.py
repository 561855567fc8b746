"""Pooling layers (NCHW) over the functional max/avg pooling kernels."""
from .. import functional as F
from .._validate import int_pair
from ._base import Layer
from .conv import _conv_out


class _Pool2D(Layer):
    _fn = None
    _bwd = None

    def __init__(self, kernel_size, stride=None, padding=0):
        name = type(self).__name__
        self.kernel_size = int_pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else int_pair(name, "stride", stride, 1)
        self.padding = int_pair(name, "padding", padding, 0)
        self._ctx = None

    def forward(self, x, training=True):
        y, ctx = type(self)._fn(x, self.kernel_size, self.stride, self.padding, return_ctx=True)
        self._ctx = ctx if training else None
        return y

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward(x, training=True)")
        return type(self)._bwd(self._ctx, dy)[0]

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C,) + tuple(_conv_out(n, k, s, p, 1)
                            for n, k, s, p in zip((H, W), self.kernel_size, self.stride, self.padding))


class MaxPool2D(_Pool2D):
    """Max pooling (NCHW); the gradient goes only to each window's max."""

    _fn = staticmethod(F.max_pool2d)
    _bwd = staticmethod(F.max_pool2d_backward)


class AvgPool2D(_Pool2D):
    """Average pooling (NCHW); padded zeros count (PyTorch's count_include_pad=True)."""

    _fn = staticmethod(F.avg_pool2d)
    _bwd = staticmethod(F.avg_pool2d_backward)
