"""`out=` buffers of the functional ops: the checks, and the buffer a kernel writes into.

An `out` array must be of the input's kind (numpy on the CPU, cupy on the GPU), have exactly the
result's shape and dtype, be C-contiguous and writeable, and share no memory with any input the
op reads; the op then writes every element of it and returns that same object. One checker for
every op (pooling, conv2d), so the rules and the messages are the same everywhere.
"""

import numpy as np

from ._backend import POISON, is_cupy_array


class OutDtypeError(TypeError, ValueError):
    """`out` of the wrong dtype: a TypeError as numpy's ufuncs raise for it, and a ValueError like
    the other `out` checks (callers may catch either)."""


def _on_backend(backend, a):
    return is_cupy_array(a) if backend.name == "cuda" else isinstance(a, np.ndarray)


def check_out(op, backend, out, shape, dtype, sources, name="out"):
    """Raises TypeError/ValueError naming `name` unless `out` can take the result (see above).
    `sources`: [(name, array)] the op reads, both as given and as converted; entries that are not
    arrays of the backend's kind (None, lists: the op copied them) are skipped."""
    if not _on_backend(backend, out):
        kind = "a cupy array (GPU)" if backend.name == "cuda" else "a numpy array (CPU)"
        raise TypeError(f"{op}: '{name}' must be {kind} like the inputs, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{op}: '{name}' has shape {tuple(out.shape)}; expected {tuple(shape)} (the result's shape)")
    if out.dtype != np.dtype(dtype):
        raise OutDtypeError(f"{op}: '{name}' has dtype {out.dtype}; expected {np.dtype(dtype)} (the result's dtype)")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: '{name}' must be C-contiguous")
    if backend.name != "cuda" and not out.flags.writeable:
        raise ValueError(f"{op}: '{name}' is read-only")
    for src, a in sources:
        if _on_backend(backend, a) and backend.xp.may_share_memory(out, a):
            raise ValueError(f"{op}: '{name}' overlaps the input '{src}'; pass a separate buffer")


def kernel_buffer(op, backend, out, shape, kernel_shape, out_dtype, compute_dtype, sources, name="out"):
    """(buf, direct): the array the kernel writes. A fresh one when out is None; else out itself
    (viewed in the kernel's batched shape; direct=True) when the dtypes agree, or a fresh
    compute-dtype buffer that finish() copies into out."""
    if out is None:
        return backend.empty(kernel_shape, compute_dtype), False
    check_out(op, backend, out, shape, out_dtype, sources, name)
    if np.dtype(out_dtype) != np.dtype(compute_dtype):
        return backend.empty(kernel_shape, compute_dtype), False
    if POISON:  # as backend.empty does: an element the kernel forgot then fails the tests
        out.fill(-1 if out.dtype.kind in "iu" else np.nan)
    return out.reshape(kernel_shape), True


def finish(out, buf, direct, shape, out_dtype):
    """The result: `buf` in the output dtype and shape when out is None; else out (filled from buf
    unless the kernel wrote into it directly)."""
    if out is None:
        res = buf if buf.dtype == out_dtype else buf.astype(out_dtype)
        return res.reshape(shape)
    if not direct:
        out[...] = buf.reshape(shape).astype(out_dtype)
    return out
