"""max/avg pooling, deepkern vs PyTorch, side by side in one process.

    python benchmarks/bench_pooling.py [--threads 2] [--json benchmarks/out/pooling.json]
    python benchmarks/bench_pooling.py --threads 1 --cpu-time   # per-process CPU time: robust on a loaded machine

CPU: 32x64x64x64 float32, 2x2 windows (stride 2), against torch CPU at the same thread count and
against this machine's copy bandwidth (a numpy copy of a large array, bytes read + written).
GPU (when deepkern._cuda, cupy and a device are present): 64x128x112x112 float32 against torch CUDA.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

import deepkern as dk  # noqa: E402


def copy_bandwidth_gbs(nbytes=256 << 20, repeats=10):
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        ts.append(time.perf_counter() - t0)
    return 2 * nbytes / np.median(ts) / 1e9


def pool_cases(x, dy, torch, device_label, to_torch):
    n = x.size
    e = x.dtype.itemsize
    # bytes: forward reads x, writes y (n/4) and int64 indices (n/4); backward reads dy and indices, writes dx
    fwd_bytes = n * e + n / 4 * e + n / 4 * 8
    bwd_bytes = n / 4 * e + n / 4 * 8 + n * e
    xt = to_torch(x)
    dyt = to_torch(dy)
    F = torch.nn.functional

    def dk_max_fb():
        y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
        dk.max_pool2d_backward(ctx, dy)

    xg = xt.clone().requires_grad_(True)

    def torch_max_fb():
        y = F.max_pool2d(xg, 2)
        y.backward(dyt)
        xg.grad = None

    def dk_avg_fb():
        y, ctx = dk.avg_pool2d(x, 2, return_ctx=True)
        dk.avg_pool2d_backward(ctx, dy)

    def torch_avg_fb():
        y = F.avg_pool2d(xg, 2)
        y.backward(dyt)
        xg.grad = None

    shape = "x".join(map(str, x.shape)) + f" {x.dtype.name[:1]}{8 * e}"
    return [
        Case(f"max_pool2d 2x2 fwd [{device_label}]", shape, lambda: dk.max_pool2d(x, 2), lambda: F.max_pool2d(xt, 2),
             bytes=fwd_bytes),
        Case(f"max_pool2d 2x2 fwd+bwd [{device_label}]", shape, dk_max_fb, torch_max_fb, bytes=fwd_bytes + bwd_bytes),
        Case(f"avg_pool2d 2x2 fwd [{device_label}]", shape, lambda: dk.avg_pool2d(x, 2), lambda: F.avg_pool2d(xt, 2),
             bytes=n * e * 1.25),
        Case(f"avg_pool2d 2x2 fwd+bwd [{device_label}]", shape, dk_avg_fb, torch_avg_fb, bytes=n * e * 2.5),
        Case(f"max_pool2d 3x3 s2 p1 fwd [{device_label}]", shape, lambda: dk.max_pool2d(x, 3, 2, 1),
             lambda: F.max_pool2d(xt, 3, 2, 1), bytes=fwd_bytes),
    ]


def extra_cpu_cases(torch, rng):
    """Windows other than 2x2 and narrow images (LeNet's 24x24 and 8x8 maps), forward+backward."""
    F = torch.nn.functional
    cases = []
    for shape, k, s, p in [((32, 64, 64, 64), 3, 2, 1), ((8, 64, 56, 56), 3, 1, 1), ((64, 6, 24, 24), 2, 2, 0),
                           ((64, 16, 8, 8), 2, 2, 0)]:
        x = rng.standard_normal(shape).astype(np.float32)
        xg = torch.from_numpy(x).clone().requires_grad_(True)
        y = dk.max_pool2d(x, k, s, p)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dyt = torch.from_numpy(dy)

        def dk_fb(x=x, dy=dy, k=k, s=s, p=p):
            _, ctx = dk.max_pool2d(x, k, s, p, return_ctx=True)
            dk.max_pool2d_backward(ctx, dy)

        def torch_fb(xg=xg, dyt=dyt, k=k, s=s, p=p):
            F.max_pool2d(xg, k, s, p).backward(dyt)
            xg.grad = None

        label = "x".join(map(str, shape)) + " f32"
        cases.append(Case(f"max_pool2d {k}x{k} s{s} p{p} fwd+bwd [cpu]", label, dk_fb, torch_fb,
                          bytes=x.nbytes * 2 + y.size * (4 + 8) * 2))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "out", "pooling.json"))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cpu-time", action="store_true", help="time with process CPU time (use with --threads 1)")
    args = ap.parse_args()
    if args.cpu_time:  # the harness's clock, swapped for CPU time of this process
        harness.time.perf_counter = time.process_time
    torch = torch_threads(args.threads)
    dk.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 64, 64)).astype(np.float32)
    dy = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    bw = copy_bandwidth_gbs()
    print(f"CPU copy bandwidth (numpy copy, read + write): {bw:.1f} GB/s; deepkern ISA {dk._cpu.isa()}, "
          f"{args.threads} threads for both")
    rows = run_cases(pool_cases(x, dy, torch, "cpu", torch.from_numpy), json_path=args.json, repeats=args.repeats,
                     title="pooling, CPU")
    for r in rows:
        print(f"  {r['op']:40s} {100 * r['gb_per_s'] / bw:5.1f}% of copy bandwidth")
    run_cases(extra_cpu_cases(torch, rng), json_path=args.json.replace(".json", "_extra.json"), repeats=args.repeats,
              title="pooling, CPU: other windows and narrow images")

    if dk.cuda_available() and torch.cuda.is_available():
        import cupy as cp

        xg = cp.asarray(rng.standard_normal((64, 128, 112, 112)).astype(np.float32))
        dyg = cp.asarray(rng.standard_normal((64, 128, 56, 56)).astype(np.float32))
        sync = cp.cuda.get_current_stream().synchronize
        run_cases(pool_cases(xg, dyg, torch, "cuda", lambda a: torch.as_tensor(a, device="cuda")),
                  json_path=args.json.replace(".json", "_cuda.json"), repeats=args.repeats, title="pooling, GPU",
                  sync=lambda: (sync(), torch.cuda.synchronize()))


if __name__ == "__main__":
    main()
