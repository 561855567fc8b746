"""Speed of the SIMT simulator's synchronisation: thread-barriers and warp shuffles per second.

Each simulated thread runs n __syncthreads() (or n __shfl_xor_sync) and nothing else, so the time
is the fiber switches (to the block's scheduler and back: two per thread per sync point) plus
the scheduler's bookkeeping. One OS thread (DEEPKERN_SIM_THREADS=1), best of 5 runs.
Usage: DEEPKERN_CUDA_SIM=1 PYTHONPATH=python python benchmarks/simt_switch.py
"""

import os
import time

os.environ.setdefault("DEEPKERN_SIM_THREADS", "1")

import numpy as np  # noqa: E402
from deepkern import _cuda_sim  # noqa: E402


def best(name, block, n):
    x = np.zeros(1, np.float32)
    y = np.zeros(1, np.float32)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        _cuda_sim._simt_selftest(name, 1, block, 0, x.ctypes.data, y.ctypes.data, n)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    sw = min(_cuda_sim._simt_switch_ns(1_000_000) for _ in range(5))
    print(f"bare fiber switch (one fiber and its caller, ping-pong): {sw:.1f} ns")
    block, n = 256, 2000
    print(f"block of {block} threads, {n} sync points each, one OS thread")
    for name, what in [("barrier_loop", "__syncthreads"), ("shfl_loop", "__shfl_xor_sync")]:
        t = best(name, block, n)
        syncs = block * n
        print(
            f"{what:16s} {t * 1e3:8.1f} ms  {syncs / t / 1e6:6.2f} M thread-syncs/s  "
            f"{t / syncs * 1e9:6.1f} ns per thread-sync ({t / syncs / 2 * 1e9:5.1f} ns per fiber switch)"
        )


if __name__ == "__main__":
    main()
