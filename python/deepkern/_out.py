"""`out=` buffers of the functional ops: the checks, and the buffer a kernel writes into.

An `out` array must be of the input's kind (numpy on the CPU, cupy on the GPU), have exactly the
result's shape and dtype, be C-contiguous and writeable, and share no memory with any input the
op reads; the op then writes every element of it and returns that same object.
"""

import numpy as np

from ._backend import POISON, is_cupy_array


def check_out(op, backend, out, shape, dtype, sources):
    """Raises TypeError/ValueError naming 'out' unless `out` can take the result (see above).
    `sources`: [(name, array)] the op reads; None entries are skipped."""
    on_gpu = backend.name == "cuda"
    if not (is_cupy_array(out) if on_gpu else isinstance(out, np.ndarray)):
        kind = "a cupy array (GPU)" if on_gpu else "a numpy array (CPU)"
        raise TypeError(f"{op}: 'out' must be {kind} like the inputs, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{op}: 'out' has shape {tuple(out.shape)}; expected {tuple(shape)} (the result's shape)")
    if out.dtype != np.dtype(dtype):
        raise ValueError(f"{op}: 'out' has dtype {out.dtype}; expected {np.dtype(dtype)} (the result's dtype)")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: 'out' must be C-contiguous")
    if not on_gpu and not out.flags.writeable:
        raise ValueError(f"{op}: 'out' is read-only")
    for name, a in sources:
        if a is not None and backend.xp.may_share_memory(out, a):
            raise ValueError(f"{op}: 'out' overlaps the input '{name}'; pass a separate buffer")


def kernel_buffer(op, backend, out, shape, kernel_shape, out_dtype, compute_dtype, sources):
    """(buf, direct): the array the kernel writes. A fresh one when out is None; else out itself
    (viewed in the kernel's batched shape; direct=True) when the dtypes agree, or a fresh
    compute-dtype buffer that finish() copies into out."""
    if out is None:
        return backend.empty(kernel_shape, compute_dtype), False
    check_out(op, backend, out, shape, out_dtype, sources)
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
