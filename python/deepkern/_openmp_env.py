"""OpenMP's idle threads on a shared machine: a bounded spin by default.

Between two parallel regions an OpenMP worker spins, waiting for the next one: GCC's libgomp spins
about 300,000 times (milliseconds) before it sleeps. On a machine where another process holds a
core, that spinning takes the core from the thread that has work, and small kernels (an LSTM step,
a LeNet layer) run many times slower (benchmarks/bench_busy.py; figures in benchmarks/RESULTS.md).
A short spin keeps the quick hand-over between back-to-back regions (the phases of one kernel) on a
quiet machine and lets the workers sleep soon on a busy one. What it costs, a sleeping worker's
wake-up (tens of microseconds on a VM), is paid only by kernels big enough to start a region at all:
smaller ones run on the calling thread (threads_for in csrc/cpu/common/parallel.h). Measurements:
benchmarks/RESULTS.md, "Busy machine".

The OpenMP runtime reads these settings once, when it is loaded, so deepkern sets them only
around the import of deepkern._cpu and restores the environment afterwards: child processes and
libraries that load their own OpenMP later (PyTorch bundles one) see the user's environment
unchanged. Whatever the user sets wins: OMP_WAIT_POLICY, GOMP_SPINCOUNT (libgomp) or
KMP_BLOCKTIME (LLVM's libomp) leave deepkern's defaults out.
"""

import contextlib
import os

SPIN_COUNT = "1000"  # libgomp spins before sleeping (see benchmarks/RESULTS.md, "Busy machine")
BLOCKTIME_MS = "1"  # the same idea for LLVM's libomp, in milliseconds


def defaults(environ):
    """The variables deepkern would add to `environ` (none when the user chose a wait policy)."""
    if "OMP_WAIT_POLICY" in environ:
        return {}
    wanted = {"GOMP_SPINCOUNT": SPIN_COUNT, "KMP_BLOCKTIME": BLOCKTIME_MS}
    return {k: v for k, v in wanted.items() if k not in environ}


@contextlib.contextmanager
def bounded_spin():
    warn_on_bad_contention(os.environ)
    added = defaults(os.environ)
    os.environ.update(added)
    try:
        yield added
    finally:
        for k in added:
            os.environ.pop(k, None)


CONTENTION_MODES = ("auto", "off", "force", "0", "1")


def warn_on_bad_contention(environ):
    """DEEPKERN_CONTENTION picks how parallel regions react to an oversubscribed machine: auto (the
    default: a thread that waits for a core runs its regions alone for a while,
    csrc/cpu/common/contention.cpp), off (always full teams) or force (always alone). An unknown
    value is treated as auto, and said so."""
    value = environ.get("DEEPKERN_CONTENTION", "")
    if value and value not in CONTENTION_MODES:
        import warnings

        warnings.warn(
            f"DEEPKERN_CONTENTION={value!r} is not one of auto, off, force; using auto", RuntimeWarning, stacklevel=4
        )
