"""Counts the OpenMP parallel regions deepkern starts (with more than one thread, and with one)
in the bench_busy.py workloads: a count, so unlike a timing it means the same on a loaded machine.

    python benchmarks/count_regions.py [--pythonpath OTHER/python] [--min-us 0]

Compiles a small LD_PRELOAD shim around libgomp's GOMP_parallel (needs cc and libgomp; GCC's
OpenMP only) and runs each workload in a fresh process with OMP_NUM_THREADS=2.
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_busy import WORKLOADS  # noqa: E402

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
static long team, alone;
typedef void (*par_t)(void (*)(void*), void*, unsigned, unsigned);
void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags) {
  static par_t real;
  if (!real) real = (par_t)dlvsym(RTLD_NEXT, "GOMP_parallel", "GOMP_4.0");
  if (num_threads == 1) alone++; else team++;
  real(fn, data, num_threads, flags);
}
__attribute__((destructor)) static void report(void) { fprintf(stderr, "REGIONS %ld %ld\n", team, alone); }
"""


def build_shim(tmp):
    src, ver, so = (os.path.join(tmp, n) for n in ("shim.c", "shim.map", "shim.so"))
    open(src, "w").write(SHIM)
    open(ver, "w").write("GOMP_4.0 { global: GOMP_parallel; };\n")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", src, "-o", so, "-ldl", f"-Wl,--version-script={ver}"], check=True)
    libgomp = subprocess.run(["cc", "-print-file-name=libgomp.so.1"], capture_output=True, text=True).stdout.strip()
    return f"{so} {libgomp}"  # libgomp preloaded too, so RTLD_NEXT finds it before deepkern loads it


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pythonpath", default="python")
    ap.add_argument("--min-us", default=None, help="DEEPKERN_PARALLEL_MIN_US for the run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LD_PRELOAD": build_shim(tmp), "OMP_NUM_THREADS": "2", "PYTHONPATH": args.pythonpath}
        env.pop("DEEPKERN_PARALLEL_MIN_US", None)
        if args.min_us is not None:
            env["DEEPKERN_PARALLEL_MIN_US"] = args.min_us
        # every step each workload runs, warm-up included: 3 + 60 LeNet steps, 1 + 8 * 64 LSTM batches
        for name, units, what in (("lenet_steps", 63, "step"), ("lstm_fit", 513, "batch")):
            out = subprocess.run([sys.executable, "-c", WORKLOADS[name]], env=env, capture_output=True, text=True)
            line = next((ln for ln in out.stderr.splitlines() if ln.startswith("REGIONS")), None)
            if line is None:
                raise RuntimeError(out.stderr[-600:])
            team, alone = (int(v) for v in line.split()[1:])
            print(f"{name:12s} {team / units:6.1f} threaded regions per {what}, {alone / units:6.1f} one-thread")


if __name__ == "__main__":
    main()
