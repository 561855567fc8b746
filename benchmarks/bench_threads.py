"""Threads: OpenMP speedup from 2 threads, and proof that kernels release the GIL.

    python benchmarks/bench_threads.py [--json benchmarks/out/threads.json] [--repeats 15]

1. OpenMP speedup: every op at dk.set_num_threads(1) vs (2), interleaved, median of repeats.
   On a 2-core machine the ceiling is 2.0x (less for memory-bound ops sharing one memory bus).
2. GIL release: each op on 1 OpenMP thread, called from 2 Python threads at once, against the
   same call made twice in a row from one thread. Wall(2 threads) / wall(1 call) is ~1.0 when the
   binding releases the GIL (the calls overlap on the 2 cores) and ~2.0 when it holds it.
   A pure-Python loop (holds the GIL) is the control: its ratio is ~2.0.
   This needs two free cores; on a loaded machine everything serialises and it cannot tell.
3. GIL release, load-proof: while one call runs in a background thread, the main thread counts
   Python loop iterations. A kernel that holds the GIL lets the main thread run only before and
   after it (~0 per ms of the call); one that releases it lets the main thread keep counting.
   Control: sum(range(n)), a C builtin that holds the GIL for its whole run.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from deepkern import _cpu  # noqa: E402
from harness import machine_description, time_interleaved  # noqa: E402


def workloads(rng):
    """(name, shape label, fn) — each call tens of ms on one core, so that scheduling noise on a
    shared machine (a descheduled OpenMP thread stalls its team for a time slice) weighs less."""
    x = rng.standard_normal((32, 64, 96, 96)).astype(np.float32)
    dy2 = rng.standard_normal((32, 64, 48, 48)).astype(np.float32)
    dy3 = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    out = []

    def max_fb():
        _, ctx = dk.max_pool2d(x, 2, return_ctx=True)
        dk.max_pool2d_backward(ctx, dy2)

    def avg_fb():
        _, ctx = dk.avg_pool2d(x, 3, return_ctx=True)
        dk.avg_pool2d_backward(ctx, dy3)

    out.append(("max_pool2d fwd+bwd", "32x64x96x96 k2 f32", max_fb))
    out.append(("avg_pool2d fwd+bwd", "32x64x96x96 k3 f32", avg_fb))
    a = rng.standard_normal((1536, 1536)).astype(np.float32)
    b = rng.standard_normal((1536, 1536)).astype(np.float32)
    c = np.empty((1536, 1536), np.float32)
    out.append(("gemm (internal)", "1536^3 f32", lambda: _cpu.gemm(a, b, c)))
    if hasattr(dk, "conv2d"):
        xc = rng.standard_normal((16, 64, 56, 56)).astype(np.float32)
        wc = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
        out.append(("conv2d fwd", "16x64x56x56 -> 64, 3x3 f32", lambda: dk.conv2d(xc, wc, padding=1)))
    if hasattr(dk, "lstm"):
        T, B, I, H = 64, 64, 256, 256
        xs = rng.standard_normal((T, B, I)).astype(np.float32)
        h0 = np.zeros((B, H), np.float32)
        wih = rng.standard_normal((4 * H, I)).astype(np.float32) * 0.1
        whh = rng.standard_normal((4 * H, H)).astype(np.float32) * 0.1
        out.append(("lstm fwd", f"T{T} B{B} I{I} H{H} f32", lambda: dk.lstm(xs, h0, h0, wih, whh)))
    if hasattr(dk, "scaled_dot_product_attention"):
        q = rng.standard_normal((8, 8, 512, 64)).astype(np.float32)
        out.append(("sdpa fwd", "8x8x512x64 f32", lambda: dk.scaled_dot_product_attention(q, q, q)))
    return out


def python_loop():
    s = 0
    for i in range(2_000_000):
        s += i
    return s


def overlap_ratio(fn, repeats):
    """median wall(2 Python threads, one call each) / median wall(one call)."""

    def two_threads():
        ts = [threading.Thread(target=fn) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    t1, t2 = time_interleaved(fn, two_threads, repeats=repeats, warmup=2)
    return t1, t2, t2 / t1


def main_thread_progress(fn):
    """(iterations of a Python loop the main thread ran per ms while fn ran in another thread, ms)."""
    done = threading.Event()

    def work():
        fn()
        done.set()

    t = threading.Thread(target=work)
    n = 0
    t0 = time.perf_counter()
    t.start()
    while not done.is_set():
        n += 1
    t.join()
    ms = (time.perf_counter() - t0) * 1e3
    return n / ms, ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    ap.add_argument("--repeats", type=int, default=10)
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    rng = np.random.default_rng(0)
    work = workloads(rng)
    n0 = dk.get_num_threads()
    rows = []

    for mode in harness.each_mode():
        omp_table(work, args.repeats, mode, rows)
    gil_tables(work, args.repeats, rows)
    dk.set_num_threads(n0)
    print(f"load average after: {os.getloadavg()}")

    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "rows": rows}, f, indent=1)


def omp_table(work, repeats, mode, rows):
    print(
        f"== OpenMP speedup, set_num_threads 1 vs 2 [{mode}]  ({machine_description()}; load average {os.getloadavg()})"
    )
    hdr = f"{'op':24s} {'shape':28s} {'1 thr ms':>9s} {'2 thr ms':>9s} {'speedup':>8s}"
    print(hdr + "\n" + "-" * len(hdr))
    for name, shape, fn in work:

        def at(n, fn=fn):
            def call():
                dk.set_num_threads(n)
                fn()

            return call

        t1, t2 = harness.time_pair(at(1), at(2), repeats=repeats, warmup=2, mode=mode)
        rows.append(
            dict(
                kind="omp_speedup",
                op=name,
                shape=shape,
                mode=mode,
                ms_1thread=t1 * 1e3,
                ms_2threads=t2 * 1e3,
                speedup=t1 / t2,
            )
        )
        print(f"{name:24s} {shape:28s} {t1 * 1e3:9.2f} {t2 * 1e3:9.2f} {t1 / t2:7.2f}x")


def gil_tables(work, repeats, rows):

    print(f"\n== GIL release: 2 Python threads x 1 call (1 OpenMP thread each) vs 1 call  ({machine_description()})")
    hdr = f"{'op':24s} {'1 call ms':>10s} {'2 thr ms':>9s} {'ratio':>6s}  (1.0 = fully overlapped, 2.0 = serialised)"
    print(hdr + "\n" + "-" * len(hdr))
    dk.set_num_threads(1)
    for name, _shape, fn in [*work, ("pure-Python loop (control)", "", python_loop)]:
        t1, t2, r = overlap_ratio(fn, max(5, repeats // 2))
        rows.append(dict(kind="gil_overlap", op=name, ms_one_call=t1 * 1e3, ms_two_threads=t2 * 1e3, ratio=r))
        print(f"{name:24s} {t1 * 1e3:10.2f} {t2 * 1e3:9.2f} {r:6.2f}")
    print(
        f"\n== GIL release, load-proof: main-thread Python iterations per ms while the call runs elsewhere  ({machine_description()})"
    )
    hdr = f"{'op':28s} {'call ms':>9s} {'iters/ms':>10s}  (~0 = GIL held during the call)"
    print(hdr + "\n" + "-" * len(hdr))
    idle, _ = main_thread_progress(lambda: time.sleep(0.05))
    for name, _shape, fn in [
        *work,
        ("sum(range(3e7)) (control)", "", lambda: sum(range(30_000_000))),
        ("time.sleep(50 ms) (idle)", "", lambda: time.sleep(0.05)),
    ]:
        rate, ms = statistics.median([main_thread_progress(fn) for _ in range(3)])
        rows.append(dict(kind="gil_progress", op=name, ms=ms, iters_per_ms=rate, idle_iters_per_ms=idle))
        print(f"{name:28s} {ms:9.1f} {rate:10.0f}")


if __name__ == "__main__":
    main()
