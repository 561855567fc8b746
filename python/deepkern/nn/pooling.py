"""Pooling layers (NCHW, or one unbatched CHW sample) over the functional max/avg pooling kernels.
They write y, the max indices and dx into buffers kept from the previous step when no one holds
those any more (nn/_workspace.py), so a training step allocates none of them anew."""

import numpy as np

from .. import functional as F
from .._backend import get_array_module
from .._validate import int_pair
from ..functional import pooling as FP
from ..functional.pooling import pool_options, pool_output_size
from ._base import Layer
from ._workspace import Workspace

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Pool2D(Layer):
    _fn = None
    _bwd = None

    def _init_window(self, kernel_size, stride, padding):
        name = type(self).__name__
        self.kernel_size = int_pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else int_pair(name, "stride", stride, 1)
        self.padding = int_pair(name, "padding", padding, 0)
        self._ctx = None
        self._ws = Workspace()

    def _call(self, x):
        raise NotImplementedError

    def forward(self, x, training=True):
        self._ctx = None  # the previous step's indices are then free for reuse
        out, ctx = self._call(x)
        self._ctx = ctx if training else None
        return out

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward(x, training=True)")
        ctx = self._ctx
        dx = self._ws.get("dx", ctx.backend.xp, FP._dx_shape(ctx), ctx.out_dtype)
        return type(self)._bwd(ctx, dy, out=dx)[0]

    def _out_shapes(self, x):
        """(y's shape, the indices' batched shape) when x is a ready float array whose result the
        workspace can hold; None otherwise (the functional op then checks x and allocates)."""
        if getattr(x, "ndim", 0) not in (3, 4) or getattr(x, "dtype", None) not in _FLOATS:
            return None
        if not x.flags.c_contiguous:
            return None
        try:
            shape = self.output_shape(tuple(x.shape[-3:]))
        except (TypeError, ValueError):
            return None
        if min(shape) < 1:
            return None
        if x.ndim == 3:
            return shape, (1,) + shape
        return (x.shape[0],) + shape, (x.shape[0],) + shape

    def _reused_buffers(self, x, with_indices):
        shapes = self._out_shapes(x)
        if shapes is None:
            return None, None
        xp = get_array_module(x)
        y = self._ws.get("y", xp, shapes[0], x.dtype)
        return y, (self._ws.get("indices", xp, shapes[1], "int64") if with_indices else None)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C,) + tuple(
            pool_output_size(n, k, s, p, d, self.ceil_mode)
            for n, k, s, p, d in zip((H, W), self.kernel_size, self.stride, self.padding, self.dilation)
        )


class MaxPool2D(_Pool2D):
    """Max pooling (NCHW or CHW); the gradient goes only to each window's max.
    With return_indices, forward returns (y, indices) as PyTorch's nn.MaxPool2d does."""

    _bwd = staticmethod(F.max_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        self._init_window(kernel_size, stride, padding)
        self.dilation = int_pair("MaxPool2D", "dilation", dilation, 1)
        if not isinstance(return_indices, bool):
            raise TypeError(f"MaxPool2D: 'return_indices' must be a bool, got {return_indices!r}")
        self.return_indices = return_indices
        pool_options("MaxPool2D", ceil_mode)
        self.ceil_mode = ceil_mode

    def _call(self, x):
        y, idx = self._reused_buffers(x, not self.return_indices)  # returned indices are the caller's: fresh
        return FP._max_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
            True,
            y,
            idx,
        )


class AvgPool2D(_Pool2D):
    """Average pooling (NCHW or CHW); by default padded zeros count (PyTorch's count_include_pad=True)."""

    _bwd = staticmethod(F.avg_pool2d_backward)
    dilation = (1, 1)

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
    ):
        self._init_window(kernel_size, stride, padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        pool_options("AvgPool2D", ceil_mode, count_include_pad, divisor_override)

    def _call(self, x):
        y, _ = self._reused_buffers(x, False)
        return F.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
            return_ctx=True,
            out=y,
        )
