"""Parameter-free elementwise layers and shape layers: ReLU, Sigmoid, Tanh, Dropout, Flatten."""

import math

import numpy as np

from .. import _cpu
from .._saved import Remembered, recall
from .._validate import kernel_layout
from ._base import Layer, default_rng, xp_of
from ._checks import check_backward
from ._workspace import Workspace


def _float(x):
    xp = xp_of(x)
    a = xp.asarray(x)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


class _Elementwise(Layer):
    def output_shape(self, input_shape):
        return tuple(input_shape)


class ReLU(_Elementwise):
    """max(x, 0) with PyTorch's semantics: NaN passes through, -inf gives 0; the gradient is
    exactly 0 where x <= 0 (also where dy is inf or NaN) and dy elsewhere (x > 0 or NaN). numpy float32/float64 run
    one C++ pass each way (deepkern._cpu.relu_*); other arrays (cupy, float16) use array ops.
    The numpy path writes y, the mask and dx into buffers of an earlier step that nothing else
    holds any more (nn/_workspace.py): no large buffer is allocated anew each training step."""

    def __init__(self):
        self._mask = None
        self._ws = Workspace()

    def forward(self, x, training=True):
        x = _float(x)
        if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64):
            x = kernel_layout(np, x)  # (np.ascontiguousarray would turn a 0-d x into shape (1,))
            self._mask = None  # the previous step's mask is then free for reuse
            y = self._ws.get("y", np, x.shape, x.dtype)
            active = self._ws.get("mask", np, x.shape, np.bool_)
            _cpu.relu_forward(x, y, active)
        else:
            xp = xp_of(x)
            active = ~(x <= 0)
            y = xp.where(x < 0, xp.zeros((), x.dtype), x)
        self._mask = active if training else None
        return y

    def backward(self, dy):
        mask = self._mask
        check_backward("ReLU", mask, dy, mask.shape if mask is not None else None)
        if isinstance(mask, np.ndarray) and isinstance(dy, np.ndarray) and dy.dtype in (np.float32, np.float64):
            dy = kernel_layout(np, dy)
            dx = self._ws.get("dx", np, dy.shape, dy.dtype)
            _cpu.relu_backward(dy, mask, dx)
            return dx
        xp = xp_of(mask)
        return xp.where(mask, dy, xp.zeros((), getattr(dy, "dtype", np.float64)))


class Sigmoid(_Elementwise):
    def __init__(self):
        self._y = None

    def forward(self, x, training=True):
        x = _float(x)
        xp = xp_of(x)
        # 1/(1+exp(-x)) overflows harmlessly to 0 for very negative x (exp -> inf).
        with np.errstate(over="ignore"):
            y = 1.0 / (1.0 + xp.exp(-x))
        self._y = Remembered(y) if training else None
        return y

    def backward(self, dy):
        check_backward("Sigmoid", self._y, dy, self._y.array.shape if self._y is not None else None)
        y = recall("Sigmoid", "y", self._y)
        return dy * y * (1 - y)


class Tanh(_Elementwise):
    def __init__(self):
        self._y = None

    def forward(self, x, training=True):
        x = _float(x)
        y = xp_of(x).tanh(x)
        self._y = Remembered(y) if training else None
        return y

    def backward(self, dy):
        check_backward("Tanh", self._y, dy, self._y.array.shape if self._y is not None else None)
        y = recall("Tanh", "y", self._y)
        return dy * (1 - y * y)


class Dropout(_Elementwise):
    """Inverted dropout: in training each unit is zeroed with probability p and the survivors are
    scaled by 1/(1-p), so inference is the identity. forward(x, training=None): None follows the
    layer's mode (train() / eval()), an explicit True/False wins."""

    def __init__(self, p=0.5, seed=None):
        if not (0.0 <= float(p) < 1.0):
            raise ValueError(f"Dropout: 'p' must be in [0, 1), got {p!r}")
        self.p = float(p)
        self._rng = default_rng(seed)
        self._mask = None

    def forward(self, x, training=None):
        training = self._mode(training)
        x = _float(x)
        if not training or self.p == 0.0:
            self._mask = None if training is False else 1.0
            return x
        xp = xp_of(x)
        if xp is np:
            keep = self._rng.random(x.shape) >= self.p
        else:  # pragma: no cover - GPU: a cupy generator seeded from ours, so seeds still reproduce
            keep = xp.random.RandomState(int(self._rng.integers(2**31))).random_sample(x.shape) >= self.p
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, dy):
        if self._mask is None:
            raise RuntimeError("Dropout.backward called before forward(x, training=True)")
        return dy * self._mask


class Flatten(Layer):
    """(N, ...) -> (N, prod(...))."""

    def __init__(self):
        self._shape = None

    def forward(self, x, training=True):
        xp = xp_of(x)
        x = xp.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"Flatten.forward: 'x' must have a batch dimension, got shape {tuple(x.shape)}")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        check_backward(
            "Flatten", self._shape, dy, (self._shape[0], math.prod(self._shape[1:])) if self._shape else None
        )
        return dy.reshape(self._shape)

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class LeakyReLU(_Elementwise):
    """max(x, 0) + negative_slope * min(x, 0) (PyTorch's default slope 0.01)."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = float(negative_slope)
        self._mask = None

    def forward(self, x, training=True):
        x = _float(x)
        mask = x > 0
        self._mask = mask if training else None
        return xp_of(x).where(mask, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dy):
        check_backward("LeakyReLU", self._mask, dy, self._mask.shape if self._mask is not None else None)
        return xp_of(dy).where(self._mask, dy, dy * dy.dtype.type(self.negative_slope))


class Softmax(_Elementwise):
    """softmax over the last axis (for probabilities at inference; train on logits with
    SoftmaxCrossEntropy, which is more stable)."""

    def __init__(self):
        self._y = None

    def forward(self, x, training=True):
        x = _float(x)
        xp = xp_of(x)
        e = xp.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
        self._y = Remembered(y) if training else None
        return y

    def backward(self, dy):
        check_backward("Softmax", self._y, dy, self._y.array.shape if self._y is not None else None)
        y = recall("Softmax", "y", self._y)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
