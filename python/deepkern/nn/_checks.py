"""Small argument checks for layer constructors and forward inputs (ValueError/TypeError naming
the layer, the argument, what it got and what was expected)."""

import numbers

import numpy as np

from .._backend import is_cupy_array
from ._base import where_is


def positive_int(layer, name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{layer}: '{name}' must be a positive int, got {v!r}")
    return int(v)


def float_dtype(layer, dtype):
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{layer}: 'dtype' must be a floating dtype, got {dt}")
    return dt


def as_input(layer, x, xp, dtype, name="x"):
    """x as an array of the layer's compute dtype on the layer's array module; an array on the
    other device (numpy for a layer on the GPU, cupy for one on the CPU) is a TypeError."""
    if is_cupy_array(x) != (xp is not np) and (is_cupy_array(x) or isinstance(x, np.ndarray)):
        raise TypeError(
            f"{layer}.forward: '{name}' is {where_is(x)} but the layer computes on the {'CPU' if xp is np else 'GPU'}; "
            "move the model with .to('cuda'/'cpu') or pass arrays on the same device"
        )
    try:
        a = xp.asarray(x)
    except Exception as e:
        raise TypeError(f"{layer}.forward: '{name}' could not be converted to an array ({e})") from None
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{layer}.forward: '{name}' has dtype {a.dtype}; expected a real numeric array")
    return a if a.dtype == dtype else a.astype(dtype)


def check_backward(layer, cache, dy, expected_shape):
    if cache is None:
        raise RuntimeError(f"{layer}.backward called before forward(x, training=True)")
    if tuple(dy.shape) != tuple(expected_shape):
        raise ValueError(f"{layer}.backward: 'dy' has shape {tuple(dy.shape)}; expected {tuple(expected_shape)}")
