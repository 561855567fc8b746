"""2-D matrix products for the layers: op(a) @ op(b) [+ c].

numpy float32/float64 go to the library's packed GEMM (deepkern._cpu.gemm): it follows
dk.set_num_threads, whereas numpy's OpenBLAS starts its own thread pool, which on a small or
shared machine made a 64x256x120 product 100x slower than one thread. cupy float16/32/64 arrays go
to deepkern's CUDA GEMM (the `gemm` kernel of the CUDA module, not cuBLAS) when the module has it;
other arrays (and a build without it) use the array module's matmul.
"""

import numpy as np

from .. import _backend, _cpu
from .._precision import get_allow_tf32
from .._validate import kernel_layout

_GPU_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _device_gemm(a, b, trans_a, trans_b, out):
    """op(a) @ op(b) (+= into out) with deepkern's CUDA GEMM; None where it does not apply."""
    mod = _backend._cuda
    if mod is None or not hasattr(mod, "gemm") or not _backend.is_cupy_array(a) or not _backend.is_cupy_array(b):
        return None
    if a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in _GPU_DTYPES:
        return None
    if out is not None and (not _backend.is_cupy_array(out) or out.dtype != a.dtype or not out.flags.c_contiguous):
        return None
    be = _backend.backend_for(_backend.get_array_module(a))
    a, b = be.xp.ascontiguousarray(a), be.xp.ascontiguousarray(b)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    c = be.empty((m, n), a.dtype) if out is None else out
    params = {
        "M": m,
        "N": n,
        "K": k,
        "lda": a.shape[1],
        "ldb": b.shape[1],
        "ldc": n,
        "trans_a": int(bool(trans_a)),
        "trans_b": int(bool(trans_b)),
        "alpha": 1.0,
        "beta": 0.0 if out is None else 1.0,
        "allow_tf32": int(get_allow_tf32()),
    }
    be.call("gemm", params, a, b, c)
    return c


def gemm(a, b, trans_a=False, trans_b=False, out=None):
    """op(a) @ op(b); with out given, the product is ADDED to out in place (out += ...)."""
    if isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) and b.dtype == a.dtype:
        a = kernel_layout(np, a)
        b = kernel_layout(np, b)
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        if out is None:
            c = np.empty((m, n), a.dtype)
            _cpu.gemm(a, b, c, trans_a, trans_b, 1.0, 0.0, True)
            return c
        if out.dtype == a.dtype and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable:
            _cpu.gemm(a, b, out, trans_a, trans_b, 1.0, 1.0, True)
            return out
    r = _device_gemm(a, b, trans_a, trans_b, out)
    if r is not None:
        return r
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    r = opa @ opb
    if out is None:
        return r
    out += r
    return out
