"""deepkern's packed GEMM (internal deepkern._cpu.gemm) vs numpy matmul (OpenBLAS), same thread count.

    OPENBLAS_NUM_THREADS is set here before numpy is imported (threadpoolctl is not installed).
    python benchmarks/bench_gemm.py [--threads 2] [--json benchmarks/out/gemm.json]
    python benchmarks/bench_gemm.py --threads 1 --cpu-time   # process CPU time: robust on a loaded machine

Floor: 2*n^3 FLOPs over the FMA peak (AVX-512: 2 x 16 float32 FMAs per cycle per core on this CPU).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024, 2048])
ap.add_argument("--cpu-time", action="store_true", help="time with process CPU time (use with --threads 1)")
ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "out", "gemm.json"))
harness.add_args(ap)
args = ap.parse_args()
harness.apply_args(args)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
from deepkern import _cpu  # noqa: E402
from harness import Case, run_cases  # noqa: E402

if args.cpu_time:  # the harness's clock, swapped for CPU time of this process
    import time

    harness.time.perf_counter = time.process_time

dk.set_num_threads(args.threads)
rng = np.random.default_rng(0)
cases = []
for dt in (np.float32, np.float64):
    for n in args.sizes:
        a = rng.standard_normal((n, n)).astype(dt)
        b = rng.standard_normal((n, n)).astype(dt)
        c = np.empty((n, n), dt)
        cases.append(
            Case(
                "gemm " + np.dtype(dt).name,
                f"{n}x{n}x{n}",
                lambda a=a, b=b, c=c: _cpu.gemm(a, b, c),
                lambda a=a, b=b, c=c: np.matmul(a, b, out=c),
                flops=2.0 * n**3,
                peer_name="numpy",
            )
        )
print(
    f"deepkern kernels: float32 {_cpu.gemm_kernel_name('float32')}, float64 {_cpu.gemm_kernel_name('float64')}; "
    f"threads {args.threads} (numpy/OpenBLAS {os.environ['OPENBLAS_NUM_THREADS']})"
)
run_cases(cases, json_path=args.json, repeats=15, title="GEMM: deepkern vs numpy matmul")
