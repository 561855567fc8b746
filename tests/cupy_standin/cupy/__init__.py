"""A strict, numpy-backed stand-in for cupy. A TEST DOUBLE, for tests/test_cupy_standin.py only.

It is not cupy and proves nothing about deepkern's CUDA kernels, streams, memory or speed:
nothing runs on a GPU, and ``cuda.runtime.getDeviceCount()`` is 0, so deepkern sees no usable
device (``dk.cuda_available()`` is False) and every kernel-backed op must refuse a stand-in array.
Real cupy on a real GPU is still needed for that.

What it is for: running deepkern's pure-Python layer (layers, losses, optimizers, fit, bptt) on
"device" arrays, on a machine without a GPU, and failing wherever real cupy would fail. Each rule
below was checked against cupy's own source (cupy/_core/core.pyx: ``__array__``,
``__array_ufunc__``, ``__array_function__``, ``fill``; _kernel.pyx ``_preprocess_arg``;
_routines_indexing.pyx ``_scatter_op``; cupyx.scatter_add's docs):

- an array's memory is "on the device": ``__array__`` raises TypeError with cupy's message, so
  ``np.asarray(a)``, ``np.array(a)``, ``np.ascontiguousarray(a)`` and any C-level numpy conversion fail;
- arithmetic, comparisons and ufuncs mixing a stand-in array with a numpy ndarray raise TypeError
  (cupy: "Unsupported type <class 'numpy.ndarray'>"), in either order and in place; Python and
  numpy scalars are fine; comparisons also take a 0-d numpy array (cupy turns it into a scalar);
- numpy ufuncs and functions called on stand-in arrays (``np.exp(a)``, ``np.sum(a)``,
  ``np.shape(a)``) dispatch to the stand-in and return stand-in arrays, as cupy's
  ``__array_ufunc__`` / ``__array_function__`` do. The bugs that remain are numpy-side
  *creation* (``np.zeros``, ``np.random``) meeting a device array, and implicit conversions;
- reductions and integer indexing give 0-d arrays, not scalars; float()/int()/bool() work;
- module functions (``cupy.exp``, ``cupy.concatenate``, ``cupy.ascontiguousarray``, ...) reject numpy
  arrays; ``cupy.asarray`` / ``cupy.array`` copy host -> device explicitly; ``.get()`` /
  ``cupy.asnumpy`` copy back; ``zeros_like`` & co. accept a numpy array (they read shape and dtype);
- ``a[basic index] = numpy_array`` (not 0-d) raises ValueError, as cupy's ``fill`` does (a list:
  TypeError); with an integer-array index the value is copied over (cupy converts it);
- ``cupy.random`` has what cupy's has and deepkern uses (RandomState: random_sample, rand, randn,
  normal, uniform, standard_normal). Its numbers are numpy's MT19937, not cuRAND's.

Deliberately stricter than cupy in one place: a few real cupy functions (e.g. ``cupy.sum``) happen
to accept a numpy array; here every module function except the conversions rejects one, because a
numpy array reaching a cupy function on deepkern's device path is a bug either way.
"""

import sys

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin as _OperatorsMixin

_CONVERSION_ERROR = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)
_COMPARISONS = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"}
_PY_SCALARS = (bool, int, float, complex)


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _wrap(r):
    """numpy results -> stand-in arrays (scalars become 0-d arrays, as cupy returns them)."""
    if isinstance(r, (_np.ndarray, _np.generic)):
        return ndarray._of(r if isinstance(r, _np.ndarray) else _np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(e) for e in r)
    if isinstance(r, list):
        return [_wrap(e) for e in r]
    return r


def _kernel_arg(x, ufunc_name=""):
    """An operand of a ufunc / elementwise kernel: a stand-in array or a scalar, nothing else."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        if x.ndim == 0 and ufunc_name in _COMPARISONS:
            return x.item()
        raise _unsupported(x)
    if type(x) in _PY_SCALARS or isinstance(x, _np.generic):
        return x
    raise _unsupported(x)


def _fn_arg(x):
    """An argument of a module function: stand-in arrays unwrapped (also inside lists/tuples);
    a numpy array is refused; other things (shapes, dtypes, lists of numbers) pass."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise _unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_fn_arg(e) for e in x)
    return x


def _index(key):
    """An index: stand-in arrays unwrapped; numpy arrays and lists are allowed (cupy converts them)."""
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    return key


def _is_basic(key):
    parts = key if isinstance(key, tuple) else (key,)
    return not any(isinstance(k, (ndarray, _np.ndarray, list)) for k in parts)


class ndarray(_OperatorsMixin):
    """A "device" array: wraps a numpy array that only the stand-in itself touches."""

    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = _np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _of(cls, host):  # wraps without copying, so views stay views
        obj = cls.__new__(cls)
        obj._a = host
        return obj

    # -- the device boundary ------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_CONVERSION_ERROR)

    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype or arr.shape != self.shape:
            raise ValueError(f"set: got {arr.dtype} {arr.shape}, the array is {self.dtype} {self.shape}")
        self._a[...] = arr

    # -- numpy protocols: dispatch to the stand-in, like cupy ---------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        args = [_kernel_arg(x, name) for x in inputs]
        out = kwargs.pop("out", None)
        kwargs = {k: _kernel_arg(v) if isinstance(v, (ndarray, _np.ndarray)) else v for k, v in kwargs.items()}
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                if not isinstance(o, ndarray):
                    raise _unsupported(o)
            kwargs["out"] = tuple(o._a for o in outs)
        r = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return outs[0] if len(outs) == 1 else outs
        return _wrap(r)

    def __array_function__(self, func, types, args, kwargs):
        impl = getattr(sys.modules[__name__], func.__name__, None) if func.__module__ == "numpy" else None
        if impl is None:
            return NotImplemented  # numpy then raises TypeError: no implementation found
        return impl(*args, **kwargs)

    # -- attributes ---------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T))
    device = property(lambda self: cuda.Device(0))
    data = property(lambda self: cuda.MemoryPointer(self._a.ctypes.data))

    _METHODS = frozenset(
        "reshape transpose swapaxes ravel flatten squeeze astype copy view sum mean var std max min argmax "
        "argmin prod cumsum all any clip dot fill item tolist repeat take nonzero round conj diagonal trace "
        "sort argsort".split()
    )

    def __getattr__(self, name):
        if name not in ndarray._METHODS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        method = getattr(self._a, name)

        def call(*args, **kwargs):
            args = [_fn_arg(a) for a in args]
            kwargs = {k: _fn_arg(v) for k, v in kwargs.items()}
            if name == "item" or name == "tolist":
                return method(*args, **kwargs)
            return _wrap(method(*args, **kwargs))

        return call

    # -- indexing -----------------------------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        if isinstance(value, ndarray):
            value = value._a
        elif _is_basic(key) and isinstance(value, _np.ndarray) and value.ndim > 0:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")  # cupy's fill()
        elif _is_basic(key) and isinstance(value, (list, tuple)):
            raise _unsupported(value)  # fill() takes a scalar
        self._a[_index(key)] = value

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # -- conversions to Python scalars (cupy copies the value to the host) -------------------------
    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())


# -- module functions ---------------------------------------------------------------------------


def asarray(a, dtype=None, order=None, *, blocking=False):
    """Host -> device (a copy), or `a` itself when it is already a stand-in array of that dtype."""
    if isinstance(a, ndarray):
        return a if dtype is None or _np.dtype(dtype) == a.dtype else a.astype(dtype)
    return array(a, dtype=dtype)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return ndarray._of(_np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    if isinstance(obj, (list, tuple)):
        obj = _index(type(obj)(e._a if isinstance(e, ndarray) else e for e in obj))
    return ndarray._of(_np.array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin))


asanyarray = asarray


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream, order, out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    for a in args:
        if isinstance(a, ndarray):
            return sys.modules[__name__]
    return _np


def _like(fn):
    def like(a, *args, **kwargs):  # reads only a's shape and dtype, so a numpy array is fine
        host = a._a if isinstance(a, ndarray) else _np.asarray(a)
        return _wrap(fn(host, *args, **{k: _fn_arg(v) for k, v in kwargs.items()}))

    like.__name__ = fn.__name__
    return like


zeros_like, ones_like, empty_like, full_like = (
    _like(f) for f in (_np.zeros_like, _np.ones_like, _np.empty_like, _np.full_like)
)


class _Ufunc:
    """cupy.exp etc.: operands must be stand-in arrays or scalars."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__

    def _run(self, method, args, kwargs):
        args = [_kernel_arg(a, self.__name__) for a in args]
        out = kwargs.pop("out", None)
        out = out[0] if isinstance(out, tuple) else out
        kwargs = {k: (_kernel_arg(v) if isinstance(v, (ndarray, _np.ndarray)) else v) for k, v in kwargs.items()}
        if out is not None:
            if not isinstance(out, ndarray):
                raise _unsupported(out)
            kwargs["out"] = out._a
        r = getattr(self._uf, method)(*args, **kwargs)
        return out if out is not None else _wrap(r)

    def __call__(self, *args, **kwargs):
        return self._run("__call__", args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run("reduce", args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run("outer", args, kwargs)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


def _function(fn):
    def call(*args, **kwargs):
        return _wrap(fn(*[_fn_arg(a) for a in args], **{k: _fn_arg(v) for k, v in kwargs.items()}))

    call.__name__ = fn.__name__
    return call


def __getattr__(name):
    """Everything else numpy has at top level: ufuncs and functions wrapped strictly; dtypes
    (cupy.float32 is numpy.float32) and constants (inf, pi, newaxis) as they are. numpy's
    submodules (linalg, fft, ...) are not provided."""
    if name.startswith("__"):
        raise AttributeError(name)
    obj = getattr(_np, name, None)
    if isinstance(obj, _np.ufunc):
        f = _Ufunc(obj)
    elif isinstance(obj, type) or obj is None and name == "newaxis" or isinstance(obj, (int, float)):
        return obj
    elif callable(obj):
        f = _function(obj)
    else:
        raise AttributeError(f"module 'cupy' (stand-in) has no attribute {name!r}")
    globals()[name] = f
    return f


from . import cuda, random  # noqa: E402,F401  (cupy.cuda, cupy.random; they use ndarray)
