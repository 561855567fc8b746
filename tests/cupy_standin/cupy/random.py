"""cupy.random for the stand-in (see cupy/__init__.py): the part of cupy.random's API deepkern uses.

Numbers come from numpy's RandomState (MT19937), not cuRAND: a seed gives different numbers here
than on a GPU. Like cupy, the samplers take a dtype (float32/float64) and return device arrays.
"""

import numpy as _np

from . import ndarray as _ndarray


def _floats(dtype):
    dt = _np.dtype(dtype)
    if dt not in (_np.dtype(_np.float32), _np.dtype(_np.float64)):
        raise TypeError(f"cupy.random: dtype must be float32 or float64, got {dt}")
    return dt


class RandomState:
    def __init__(self, seed=None, method=None):
        self._rs = _np.random.RandomState(seed)

    def seed(self, seed=None):
        self._rs.seed(seed)

    def _out(self, host, dtype):
        return _ndarray._of(_np.asarray(host).astype(_floats(dtype)))

    def random_sample(self, size=None, dtype=float):
        return self._out(self._rs.random_sample(size), dtype)

    def rand(self, *size, dtype=float):
        return self._out(self._rs.random_sample(size or None), dtype)

    def randn(self, *size, dtype=float):
        return self._out(self._rs.standard_normal(size or None), dtype)

    def standard_normal(self, size=None, dtype=float):
        return self._out(self._rs.standard_normal(size), dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return self._out(self._rs.normal(loc, scale, size), dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self._out(self._rs.uniform(low, high, size), dtype)


_global = RandomState()


def get_random_state():
    return _global


def seed(seed=None):
    _global.seed(seed)


def random_sample(size=None, dtype=float):
    return _global.random_sample(size, dtype)


random = random_sample


def rand(*size, dtype=float):
    return _global.rand(*size, dtype=dtype)


def randn(*size, dtype=float):
    return _global.randn(*size, dtype=dtype)


def standard_normal(size=None, dtype=float):
    return _global.standard_normal(size, dtype)


def normal(loc=0.0, scale=1.0, size=None, dtype=float):
    return _global.normal(loc, scale, size, dtype)


def uniform(low=0.0, high=1.0, size=None, dtype=float):
    return _global.uniform(low, high, size, dtype)
