"""What a parallel region costs after a gap: how long an OpenMP worker keeps spinning after a region
(a region right after the last is cheap, one after the worker has gone to sleep pays a wake-up).
The warm rule's spin window (csrc/cpu/common/warm_team.cpp) comes from this table.

    PYTHONPATH=python python benchmarks/region_wake.py

Every region threaded (DEEPKERN_PARALLEL_MIN_US=0, set here before the import), 2 threads, a 64^3
GEMM (about 5 us of work) after a busy-waited gap since the last call ended; median and 10th
percentile of the call's wall time per gap. Run it on a quiet machine.
"""

import os
import sys
import time

os.environ["DEEPKERN_PARALLEL_MIN_US"] = "0"
os.environ["DEEPKERN_CONTENTION"] = "off"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import deepkern as dk  # noqa: E402
import harness  # noqa: E402
import numpy as np  # noqa: E402
from deepkern import _cpu  # noqa: E402


def main():
    dk.set_num_threads(2)
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((64, 64)).astype(np.float32) for _ in range(3))
    print(f"region cost after a gap ({harness.machine_description()})")
    print(f"{'gap us':>7s} {'median us':>10s} {'p10 us':>7s}")
    for gap_us in (0, 5, 10, 15, 20, 25, 30, 40, 60, 80, 160, 320):
        times = []
        for _ in range(400):
            _cpu.gemm(a, b, c)
            t_end = time.perf_counter() + gap_us * 1e-6
            while time.perf_counter() < t_end:
                pass
            t0 = time.perf_counter()
            _cpu.gemm(a, b, c)
            times.append(time.perf_counter() - t0)
        print(f"{gap_us:7d} {np.median(times) * 1e6:10.1f} {np.percentile(times, 10) * 1e6:7.1f}")


if __name__ == "__main__":
    main()
