"""Backend selection: numpy arrays go to deepkern._cpu, cupy arrays to deepkern._cuda.

The functional ops call `backend_for(xp).call(name, params, *arrays)`; this module hides the
two calling conventions (numpy arrays for the CPU binding; device pointers, a dtype code and
cupy's current stream for the CUDA binding). `params` is the op's params dict, one key per field
of its struct in csrc/common/*_params.h, read by name in csrc/bindings/fields.h; an absent
optional array is None on both sides.

With DEEPKERN_CUDA_SIM=1 in the environment at import, cupy arrays go to deepkern._cuda_sim
instead: the same CUDA kernels run on the SIMT host simulator, for tests with the cupy stand-in
(tests/cupy_standin, host memory). The real _cuda is then never loaded: one process, one of the two.
"""

import os

import numpy as np

from . import _cpu

SIMULATOR = os.environ.get("DEEPKERN_CUDA_SIM", "0").strip().upper() in ("1", "ON", "TRUE", "YES")

if SIMULATOR:
    try:
        from . import _cuda_sim as _cuda
    except ImportError as e:  # pragma: no cover - depends on the build
        raise ImportError(
            "DEEPKERN_CUDA_SIM=1 but deepkern._cuda_sim was not built "
            "(install with DEEPKERN_CUDA_SIM=ON on a machine with the CUDA headers)"
        ) from e
else:
    try:  # the CUDA module is optional: built only where nvcc was found
        from . import _cuda
    except ImportError:  # pragma: no cover - depends on the build
        _cuda = None

# Tests set DEEPKERN_POISON=1 so every output buffer starts as NaN (or -1 for indices):
# an element a kernel forgot to write then fails the comparison instead of passing by luck.
POISON = os.environ.get("DEEPKERN_POISON", "0") == "1"

_DTYPE_CODES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


def _cupy():
    try:
        import cupy
    except Exception:  # pragma: no cover - cupy absent or broken
        return None
    return cupy


def is_cupy_array(a):
    t = type(a)
    return t is not np.ndarray and t.__module__.split(".")[0] == "cupy"  # numpy first: the common case


def get_array_module(*arrays):
    """numpy, or cupy if any argument is a cupy array (cupy.get_array_module's rule).

    >>> import numpy as np, deepkern as dk
    >>> dk.get_array_module(np.zeros(3), [1.0]) is np
    True
    """
    for a in arrays:
        if is_cupy_array(a):
            import cupy

            return cupy
    return np


def _is_standin(cp):
    return getattr(cp, "__file__", "").replace(os.sep, "/").endswith("cupy_standin/cupy/__init__.py")


def cuda_available():
    """True when deepkern._cuda was built, cupy imports and a CUDA device is visible (under
    DEEPKERN_CUDA_SIM=1: when the simulator module is loaded and cupy is the host-memory stand-in).

    >>> import deepkern as dk
    >>> isinstance(dk.cuda_available(), bool)
    True
    """
    if _cuda is None:
        return False
    cp = _cupy()
    if cp is None:
        return False
    if SIMULATOR:
        return _is_standin(cp)
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def set_num_threads(n):
    """Threads every CPU kernel uses from now on (process-wide; n a positive int).

    >>> import deepkern as dk
    >>> before = dk.get_num_threads()
    >>> dk.set_num_threads(1)
    >>> dk.get_num_threads()
    1
    >>> dk.set_num_threads(before)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 2**31 - 1:
        raise ValueError(f"set_num_threads: n must be a positive int (at most 2**31-1), got {n!r}")
    _cpu.set_num_threads(int(n))


def get_num_threads():
    """Threads the CPU kernels use (an int >= 1): OpenMP's default until set_num_threads.

    >>> import deepkern as dk
    >>> dk.get_num_threads() >= 1
    True
    """
    return _cpu.get_num_threads()


class _CpuBackend:
    name = "cpu"
    xp = np

    def empty(self, shape, dtype):
        if POISON:
            fill = -1 if np.dtype(dtype).kind in "iu" else np.nan
            return np.full(shape, fill, dtype=dtype)
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def call(self, fn, params, *arrays):
        return getattr(_cpu, fn)(params, *arrays)


class _CudaBackend:
    name = "cuda"

    def __init__(self):
        self.xp = _cupy()

    def empty(self, shape, dtype):
        cp = self.xp
        if POISON:
            fill = -1 if np.dtype(dtype).kind in "iu" else np.nan
            return cp.full(shape, fill, dtype=dtype)
        return cp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype)

    def call(self, fn, params, *arrays):
        """The first array carries the element type; the launch goes on cupy's current stream
        of the arrays' device."""
        cp = self.xp
        if SIMULATOR and not _is_standin(cp):
            raise RuntimeError(
                "deepkern runs on its CUDA simulator (DEEPKERN_CUDA_SIM=1), whose kernels read host memory: "
                "it takes the cupy stand-in of tests/cupy_standin, not real cupy arrays; unset DEEPKERN_CUDA_SIM"
            )
        kernel = getattr(_cuda, fn, None)
        if kernel is None:
            raise NotImplementedError(f"deepkern: {fn} has no CUDA kernel yet; run it on numpy arrays (CPU)")
        code = _DTYPE_CODES[np.dtype(arrays[0].dtype).name]
        with arrays[0].device:
            stream = cp.cuda.get_current_stream().ptr
            # None (an absent optional array) crosses as None; the kernel sees a null pointer
            return kernel(params, code, *[None if a is None else a.data.ptr for a in arrays], stream)

    def query(self, fn, *args):
        """A host-side question to the CUDA module (e.g. a workspace size); launches nothing."""
        return getattr(_cuda, fn)(*args)


_CPU = _CpuBackend()
_CUDA = None


def backend_for(xp):
    global _CUDA
    if xp is np:
        return _CPU
    if _cuda is None:
        raise RuntimeError(
            "deepkern was built without its CUDA module (no nvcc at install time); "
            "reinstall with DEEPKERN_CUDA=ON on a machine with the CUDA toolkit to use cupy arrays"
        )
    if _CUDA is None:
        _CUDA = _CudaBackend()
    return _CUDA
