"""Argument checking and normalisation shared by the functional ops.

Everything here runs before a kernel: errors are ValueError / TypeError naming the op, the
argument, what it got and what was expected.
"""

import numbers

import numpy as np

from ._backend import backend_for, is_cupy_array
from ._saved import check_unmodified


def _kind(a):
    return "a cupy array (GPU)" if is_cupy_array(a) else f"a {type(a).__name__} (CPU)"


def array_module_of(op, named):
    """The array module of the call; TypeError if numpy and cupy arrays are mixed."""
    gpu = [(n, a) for n, a in named if a is not None and is_cupy_array(a)]
    if not gpu:
        return np
    cpu = [(n, a) for n, a in named if a is not None and isinstance(a, np.ndarray)]
    if cpu:
        (gn, ga), (cn, ca) = gpu[0], cpu[0]
        raise TypeError(
            f"{op}: argument '{gn}' is {_kind(ga)} but '{cn}' is {_kind(ca)}; "
            "pass all arrays on the same device (cupy.asarray / .get())"
        )
    import cupy

    return cupy


_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(op, name, a):
    kind = a.dtype.kind
    if kind not in "fiub" or (kind == "f" and a.dtype not in _FLOATS):
        raise TypeError(
            f"{op}: argument '{name}' has dtype {a.dtype}; expected float16/float32/float64, an integer or a bool array"
        )


def result_dtype(xp, arrays):
    """numpy's promotion, then to float: float16/32/64 stay; integers and bools become float64.
    bfloat16 only where cupy carries it."""
    dt = np.result_type(*[a.dtype for a in arrays])
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    return dt


def compute_dtype(xp, out_dtype):
    """CPU kernels run float32 or float64 (float16 computes in float32); the GPU runs the dtype itself."""
    if xp is np and out_dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(out_dtype)


def as_float_arrays(op, named, optional=()):
    """Normalise [(name, value)] to contiguous arrays of one compute dtype. Only the names in
    `optional` may be None (they stay None); None for any other is a TypeError naming it.

    Returns (backend, arrays, out_dtype, compute_dtype). Input arrays are never modified:
    ascontiguousarray copies only when the layout or dtype differs, and kernels only read inputs.
    """
    fast = _all_ready_numpy(named, optional)
    if fast is not None:
        return fast
    xp = array_module_of(op, named)
    converted = []
    for name, a in named:
        if a is None:
            if name not in optional:
                raise TypeError(f"{op}: '{name}' is required, got None")
            converted.append(None)
            continue
        try:
            arr = xp.asarray(a)
        except Exception as e:
            raise TypeError(f"{op}: argument '{name}' could not be converted to an array ({e})") from None
        _check_dtype(op, name, arr)
        converted.append(arr)
    present = [a for a in converted if a is not None]
    out_dt = result_dtype(xp, present)
    comp_dt = compute_dtype(xp, out_dt)
    out = [None if a is None else kernel_layout(xp, a, comp_dt) for a in converted]
    return backend_for(xp), out, out_dt, comp_dt


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _all_ready_numpy(named, optional):
    """The common call, decided without the general path's conversions (a few microseconds per
    call, as much as a small kernel): every argument None or a C-contiguous, aligned numpy array
    of one kernel dtype. Returns as_float_arrays' result, or None to take the general path
    (which also produces every error message)."""
    dt = None
    for name, a in named:
        if a is None:
            if name not in optional:
                return None
            continue
        if type(a) is not np.ndarray:
            return None
        f = a.flags
        if not (f.c_contiguous and f.aligned) or (dt is not None and a.dtype != dt):
            return None
        dt = a.dtype
    if dt is None or dt not in _KERNEL_DTYPES:
        return None
    return backend_for(np), [a for _, a in named], dt, dt


def kernel_layout(xp, a, dtype=None):
    """`a` as the kernels take it: C-contiguous, `dtype`, and (numpy) aligned to its element size,
    copied only when it is not already. (numpy can hand out misaligned arrays, e.g. np.frombuffer
    at an odd offset; a C++ kernel dereferencing those is undefined behaviour, and vector code
    that peels the loop to an aligned boundary can fault.)"""
    if xp is np:
        a = np.asarray(a, dtype=dtype)
        if a.flags.c_contiguous and a.flags.aligned:
            return a
        return np.array(a, dtype=dtype, order="C", copy=True)  # a fresh array is aligned
    return xp.ascontiguousarray(a, dtype=dtype)


def as_grad(op, ctx, name, g, expected_shape):
    """An upstream gradient for a backward call: same device as the forward, same shape, compute dtype."""
    xp = ctx.backend.xp
    if g is None:
        raise TypeError(f"{op}: '{name}' is required")
    if is_cupy_array(g) != (ctx.backend.name == "cuda"):
        raise TypeError(
            f"{op}: '{name}' is {_kind(g)} but the forward ran on {'the GPU' if ctx.backend.name == 'cuda' else 'the CPU'}"
        )
    g = xp.asarray(g)
    _check_dtype(op, name, g)
    if tuple(g.shape) != tuple(expected_shape):
        raise ValueError(
            f"{op}: '{name}' has shape {tuple(g.shape)}; expected {tuple(expected_shape)} (the forward output's shape)"
        )
    return kernel_layout(xp, g, ctx.compute_dtype)


# Sizes, strides and paddings beyond this are nonsense for any array that fits in memory; the bound
# keeps every derived quantity (H + 2*padding, output sizes, offsets) far inside int64 in the kernels.
MAX_WINDOW_PARAM = 2**40


def int_pair(op, name, v, minimum):
    """An int or a pair of ints, each in [minimum, MAX_WINDOW_PARAM], as a tuple of two Python ints."""
    if type(v) is int and minimum <= v <= MAX_WINDOW_PARAM:  # the common case, without ABC checks
        return (v, v)
    if (
        type(v) is tuple
        and len(v) == 2
        and type(v[0]) is int
        and type(v[1]) is int
        and minimum <= min(v)
        and max(v) <= MAX_WINDOW_PARAM
    ):
        return v
    if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
        pair = (int(v), int(v))
    elif (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(e, numbers.Integral) and not isinstance(e, (bool, np.bool_)) for e in v)
    ):
        pair = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{op}: '{name}' must be an int or a pair of ints, got {v!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: '{name}' must be >= {minimum}, got {v!r}")
    if max(pair) > MAX_WINDOW_PARAM:
        raise ValueError(f"{op}: '{name}' must be <= 2**40, got {v!r}")
    return pair


def check_ndim(op, name, a, ndim, layout):
    if a.ndim != ndim:
        raise ValueError(f"{op}: '{name}' must be a {ndim}-D {layout} array, got shape {tuple(a.shape)}")


def check_ctx(op, ctx, expected_op):
    if getattr(ctx, "op", None) != expected_op:
        got = getattr(ctx, "op", type(ctx).__name__)
        raise TypeError(f"{op}: 'ctx' must come from {expected_op}(..., return_ctx=True), got a context of {got!r}")
    check_unmodified(op, ctx)


class Context:
    """What a forward saves for its backward. `op` names the forward that made it."""

    def __init__(self, op, backend, out_dtype, compute_dtype, **saved):
        self.op = op
        self.backend = backend
        self.out_dtype = out_dtype
        self.compute_dtype = compute_dtype
        self._fingerprints = {}  # name -> (array, fingerprint), see _saved.py
        self.__dict__.update(saved)

    def __repr__(self):
        keys = ", ".join(k for k in self.__dict__ if k not in ("op", "backend", "_fingerprints"))
        return f"<deepkern Context of {self.op} on {self.backend.name}: {keys}>"


def to_out_dtype(a, dtype):
    return a if a.dtype == dtype else a.astype(dtype)
