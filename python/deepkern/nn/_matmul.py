"""2-D matrix products for the layers: op(a) @ op(b) [+ c].

numpy float32/float64 go to the library's packed GEMM (deepkern._cpu.gemm): it follows
dk.set_num_threads, whereas numpy's OpenBLAS starts its own thread pool, which on a small or
shared machine made a 64x256x120 product 100x slower than one thread. cupy arrays use cupy.matmul.
"""
import numpy as np

from .. import _cpu
from .._validate import kernel_layout


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
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    r = opa @ opb
    if out is None:
        return r
    out += r
    return out
