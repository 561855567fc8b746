"""Conv2D: a thin layer over the kernels dk.conv2d / dk.conv2d_backward (plus padding_mode).
It writes y, dx, dw and db into buffers kept from an earlier step when no one holds those any
more (nn/_workspace.py), so a training step allocates none of them anew."""

import numpy as np

from .. import functional as F
from .._validate import int_pair
from ..functional.conv import _conv2d_backward, same_padding
from . import _padding
from ._base import Layer, Parameter, default_rng, export_arrays, torch_key, xp_of
from ._checks import as_input, float_dtype, positive_int
from ._workspace import Workspace
from .init import initialize


def _conv_out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


class Conv2D(Layer):
    """2-D convolution over NCHW (or one CHW) input; weight (out_channels, in_channels/groups, kh, kw)
    like PyTorch's nn.Conv2d, with its arguments: padding an int, a pair, "same" or "valid";
    groups; bias; padding_mode "zeros", "reflect", "replicate" or "circular".
    K*C/groups*kh*kw + K parameters. Init 'he_normal' by default (the layer is usually followed by ReLU)."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        init="he_normal",
        seed=None,
        dtype=np.float32,
    ):
        self.in_channels = positive_int("Conv2D", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2D", "out_channels", out_channels)
        self.kernel_size = int_pair("Conv2D", "kernel_size", kernel_size, 1)
        self.stride = int_pair("Conv2D", "stride", stride, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2D: 'padding' must be an int, a pair, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"Conv2D: padding='same' needs stride 1 (as in PyTorch), got stride {self.stride}")
            self.padding = padding
        else:
            self.padding = int_pair("Conv2D", "padding", padding, 0)
        self.dilation = int_pair("Conv2D", "dilation", dilation, 1)
        self.groups = positive_int("Conv2D", "groups", groups)
        for name, n in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if n % self.groups:
                raise ValueError(f"Conv2D: '{name}' ({n}) must be divisible by 'groups' ({self.groups})")
        if padding_mode not in _padding.MODES:
            raise ValueError(f"Conv2D: 'padding_mode' must be one of {_padding.MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        dt = float_dtype("Conv2D", dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(initialize(init, shape, default_rng(seed), dt), "weight")
        self.bias = Parameter(np.zeros(self.out_channels, dt), "bias") if bias else None
        self._ctx = None
        self._ws = Workspace()

    _input_grad_skippable = True  # backward honours _input_grad_unused (see Layer)

    def _first_param(self):  # check_input's device reference, without walking the attributes
        return self.weight

    def forward(self, x, training=True):
        self.check_input(x)
        W = self.weight.value
        xp = xp_of(W)
        x = as_input("Conv2D", x, xp, W.dtype)
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"Conv2D.forward: 'x' has shape {tuple(x.shape)}; expected (N, {self.in_channels}, H, W) "
                f"or ({self.in_channels}, H, W)"
            )
        b = None if self.bias is None else self.bias.value
        self._ctx = None  # what the previous step saved is then free for reuse
        padding, self._pads = self.padding, None
        if self.padding_mode != "zeros" and self.padding != "valid":
            self._pads = self._mode_pads()
            _padding.check_pads("Conv2D.forward", self.padding_mode, self._pads, x.shape[-2], x.shape[-1])
            x, padding = _padding.pad(xp, x, self._pads, self.padding_mode), 0
        shape = self._y_shape(x.shape, padding)
        out = None if shape is None else self._ws.get("y", xp, shape, x.dtype)
        y, ctx = F.conv2d(x, W, b, self.stride, padding, self.dilation, self.groups, return_ctx=True, out=out)
        self._ctx = ctx if training else None
        self._x_shape = tuple(x.shape)
        return y

    def _y_shape(self, x_shape, padding):
        """y's shape for an input of x_shape (3 or 4 dims), or None when the kernel would refuse
        it (F.conv2d then raises its own error)."""
        if padding == "same":
            spatial = x_shape[-2:]
        else:
            (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
            ph, pw = (0, 0) if padding == "valid" else int_pair("Conv2D", "padding", padding, 0)
            spatial = (_conv_out(x_shape[-2], kh, sh, ph, dh), _conv_out(x_shape[-1], kw, sw, pw, dw))
        if min(spatial) < 1:
            return None
        return tuple(x_shape[:-3]) + (self.out_channels,) + tuple(spatial)

    def _mode_pads(self):
        """((top, bottom), (left, right)) as PyTorch pads for a padding_mode other than zeros."""
        if self.padding == "same":
            return tuple(same_padding(k, d) for k, d in zip(self.kernel_size, self.dilation))
        return tuple((p, p) for p in self.padding)

    def backward(self, dy):
        if self._ctx is None:
            raise RuntimeError("Conv2D.backward called before forward(x, training=True)")
        ctx, xp = self._ctx, xp_of(self.weight.value)
        input_grad = not self._input_grad_unused
        outs = {"dw": self._ws.get("dw", xp, self.weight.value.shape, ctx.out_dtype)}
        if input_grad:
            outs["dx"] = self._ws.get("dx", xp, self._x_shape, ctx.out_dtype)
        if self.bias is not None:
            outs["db"] = self._ws.get("db", xp, self.bias.value.shape, ctx.out_dtype)
        dx, dw, db = _conv2d_backward(ctx, dy, input_grad, outs)
        if dx is not None and self._pads is not None:
            dx = _padding.pad_backward(xp_of(dx), dx, self._pads, self.padding_mode)
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def output_shape(self, input_shape):
        _, H, W = input_shape
        if self.padding == "same":
            return (self.out_channels, H, W)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        ph, pw = (0, 0) if self.padding == "valid" else self.padding
        return (self.out_channels, _conv_out(H, kh, sh, ph, dh), _conv_out(W, kw, sw, pw, dw))

    def torch_state_dict(self):
        return export_arrays(weight=self.weight, bias=self.bias)

    def load_torch_state(self, prefix, state):
        for name in ("weight", "bias"):
            if getattr(self, name) is not None:
                k = torch_key(prefix, name)
                getattr(self, name).assign(state[k], f"Conv2D.load_torch_state: '{k}'")
