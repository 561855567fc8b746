"""deepkern: deep-learning building blocks with hand-written C++/OpenMP and CUDA kernels.

numpy arrays in, numpy arrays out (CPU); cupy arrays in, cupy arrays out (GPU).
"""

from ._openmp_env import bounded_spin as _bounded_spin

with _bounded_spin():  # OpenMP reads its wait policy once, when deepkern._cpu loads it
    from . import _cpu  # noqa: F401  (it reads DEEPKERN_CONTENTION too; bounded_spin warns on a bad one)
from . import (  # noqa: E402,F401
    bptt,  # noqa: E402,F401  (callable: dk.bptt(model, x, loss_fn, truncate=k))
    distributed,  # noqa: E402,F401  (mpi4py is imported only by distributed.init())
    nn,
    optim,
    rl,
)
from ._backend import cuda_available, get_array_module, get_num_threads, set_num_threads
from ._precision import get_allow_tf32, set_allow_tf32
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all

__version__ = "0.1.0"

__all__ = [
    "cuda_available",
    "get_allow_tf32",
    "get_array_module",
    "get_num_threads",
    "set_allow_tf32",
    "set_num_threads",
    *_functional_all,
]
