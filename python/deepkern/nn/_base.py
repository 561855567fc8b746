"""Parameter and Layer: the two types every layer in deepkern.nn is built from."""
import numpy as np

from .._backend import get_array_module


class Parameter:
    """A trainable array and its gradient. Layers accumulate into `.grad` in backward();
    optimizers read `.grad` and update `.value` in place."""

    def __init__(self, value, name=""):
        self.value = value
        self.grad = None
        self.name = name

    @property
    def shape(self):
        return self.value.shape

    @property
    def size(self):
        return int(self.value.size)

    def accumulate(self, g):
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    def zero_grad(self):
        self.grad = None

    def __repr__(self):
        return f"Parameter({self.name or '?'}, shape={tuple(self.value.shape)}, dtype={self.value.dtype})"


class Layer:
    """Base class: forward(x, training=True) -> y; backward(dy) -> dx (accumulating parameter
    grads); parameters() -> list of Parameter; num_params()."""

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def parameters(self):
        return [v for v in self.__dict__.values() if isinstance(v, Parameter)]

    def num_params(self):
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def __call__(self, x, training=True):
        return self.forward(x, training=training)

    def __repr__(self):
        return f"{type(self).__name__}()"


def xp_of(x):
    return get_array_module(x)


def default_rng(seed=None):
    return np.random.default_rng(seed)
