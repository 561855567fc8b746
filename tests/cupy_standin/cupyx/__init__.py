"""cupyx for the cupy stand-in (see ../cupy/__init__.py): scatter_add only (what deepkern uses)."""

import numpy as _np
from cupy import _index, ndarray

# cupy's scatter with an integer-array index runs on atomicAdd, which exists for these types only
_ATOMIC_ADD = {_np.dtype(t) for t in (_np.float16, _np.float32, _np.float64, _np.int32, _np.uint32, _np.uint64)}


def scatter_add(a, slices, value):
    """numpy.add.at on the device array `a`; value may be a stand-in array, a scalar or array-like
    (cupy converts a host value); `a` must be a stand-in array."""
    if not isinstance(a, ndarray):
        raise TypeError(f"scatter_add: 'a' must be a cupy.ndarray, got {type(a)}")
    parts = slices if isinstance(slices, tuple) else (slices,)
    if any(isinstance(s, (ndarray, _np.ndarray, list)) for s in parts) and a.dtype not in _ATOMIC_ADD:
        raise TypeError(f"cupy.add.at only supports int32, float16, float32, float64, uint32, uint64, got {a.dtype}")
    v = value._a if isinstance(value, ndarray) else _np.asarray(value)
    _np.add.at(a._a, _index(slices), v.astype(a.dtype, copy=False))
