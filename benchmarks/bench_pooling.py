"""max/avg pooling, deepkern vs PyTorch, side by side in one process.

    python benchmarks/bench_pooling.py [--threads 2] [--json benchmarks/out/pooling.json]
    python benchmarks/bench_pooling.py --threads 1 --cpu-time   # per-process CPU time: robust on a loaded machine
    python benchmarks/bench_pooling.py --device cuda [--json out.json]   # the GPU cases only (gpu_harness.py)
    python benchmarks/bench_pooling.py --mode both [--no-hugepage]   # interleaved and quiet blocks; as with THP off

CPU: 32x64x64x64 float32, 2x2 windows (stride 2), against torch CPU at the same thread count and
against this machine's copy bandwidth (a numpy copy of a large array, bytes read + written).
GPU (`--device cuda`): 64x128x112x112 float32, 2x2 max/avg forward and forward+backward against torch
CUDA, timed with CUDA events, as % of the H100 copy ceiling and of this device's measured cupy copy.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402


def copy_bandwidth_gbs(nbytes=256 << 20, repeats=10):
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        ts.append(time.perf_counter() - t0)
    return 2 * nbytes / np.median(ts) / 1e9


def thp_setting():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[", 1)[1].split("]", 1)[0]
    except (OSError, IndexError):
        return "unknown"


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

    y_buf = np.empty(dy.shape, x.dtype)
    dx_buf = np.empty_like(x)

    def dk_max_fb_out():  # the functional ops writing into buffers kept from the last call
        _, ctx = dk.max_pool2d(x, 2, return_ctx=True, out=y_buf)
        dk.max_pool2d_backward(ctx, dy, out=dx_buf)

    max_layer, avg_layer = dk.nn.MaxPool2D(2), dk.nn.AvgPool2D(2)
    t_max, t_avg = torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2)

    def dk_layer_fb(layer):
        def step():  # a layer keeps its y / indices / dx buffers from step to step
            layer.forward(x)
            layer.backward(dy)

        return step

    def torch_layer_fb(module):
        def step():
            module(xg).backward(dyt)
            xg.grad = None

        return step

    shape = "x".join(map(str, x.shape)) + f" {x.dtype.name[:1]}{8 * e}"
    return [
        Case(
            f"max_pool2d 2x2 fwd [{device_label}]",
            shape,
            lambda: dk.max_pool2d(x, 2),
            lambda: F.max_pool2d(xt, 2),
            bytes=fwd_bytes,
        ),
        Case(f"max_pool2d 2x2 fwd+bwd [{device_label}]", shape, dk_max_fb, torch_max_fb, bytes=fwd_bytes + bwd_bytes),
        Case("max_pool2d 2x2 fwd+bwd, out= [cpu]", shape, dk_max_fb_out, torch_max_fb, bytes=fwd_bytes + bwd_bytes),
        Case(
            "nn.MaxPool2D 2x2 fwd+bwd [cpu]",
            shape,
            dk_layer_fb(max_layer),
            torch_layer_fb(t_max),
            bytes=fwd_bytes + bwd_bytes,
        ),
        Case(
            f"avg_pool2d 2x2 fwd [{device_label}]",
            shape,
            lambda: dk.avg_pool2d(x, 2),
            lambda: F.avg_pool2d(xt, 2),
            bytes=n * e * 1.25,
        ),
        Case(f"avg_pool2d 2x2 fwd+bwd [{device_label}]", shape, dk_avg_fb, torch_avg_fb, bytes=n * e * 2.5),
        Case("nn.AvgPool2D 2x2 fwd+bwd [cpu]", shape, dk_layer_fb(avg_layer), torch_layer_fb(t_avg), bytes=n * e * 2.5),
        Case(
            f"max_pool2d 3x3 s2 p1 fwd [{device_label}]",
            shape,
            lambda: dk.max_pool2d(x, 3, 2, 1),
            lambda: F.max_pool2d(xt, 3, 2, 1),
            bytes=fwd_bytes,
        ),
    ]


def extra_cpu_cases(torch, rng):
    """Windows other than 2x2 and narrow images (LeNet's 24x24 and 8x8 maps), forward+backward."""
    F = torch.nn.functional
    cases = []
    for shape, k, s, p in [
        ((32, 64, 64, 64), 3, 2, 1),
        ((8, 64, 56, 56), 3, 1, 1),
        ((64, 6, 24, 24), 2, 2, 0),
        ((64, 16, 8, 8), 2, 2, 0),
    ]:
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
        cases.append(
            Case(
                f"max_pool2d {k}x{k} s{s} p{p} fwd+bwd [cpu]",
                label,
                dk_fb,
                torch_fb,
                bytes=x.nbytes * 2 + y.size * (4 + 8) * 2,
            )
        )
    return cases


def gpu_main(args):
    """The GPU cases: host inputs first, then a clear message (status 2) where there is no device."""
    from gpu_harness import GpuCase, GpuUnavailable, run_gpu_cases

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 128, 112, 112)).astype(np.float32)
    dy = rng.standard_normal((64, 128, 56, 56)).astype(np.float32)
    try:
        import cupy as cp
        import torch

        if not (dk.cuda_available() and torch.cuda.is_available()):
            raise GpuUnavailable("needs deepkern._cuda with cupy and a CUDA device, and torch with CUDA")
    except (ImportError, GpuUnavailable) as e:
        print(f"bench_pooling --device cuda: no GPU here ({e}); inputs were built, nothing was timed.", file=sys.stderr)
        return 2
    F = torch.nn.functional
    xg, dyg = cp.asarray(x), cp.asarray(dy)
    xt, dyt = torch.as_tensor(xg, device="cuda"), torch.as_tensor(dyg, device="cuda")
    xtg = xt.clone().requires_grad_(True)
    n, e = x.size, x.itemsize
    fwd_bytes = n * e + n / 4 * e + n / 4 * 8  # x read; y and int64 indices written
    bwd_bytes = n / 4 * e + n / 4 * 8 + n * e  # dy and indices read; dx written

    def dk_max_fb():
        _, ctx = dk.max_pool2d(xg, 2, return_ctx=True)
        return dk.max_pool2d_backward(ctx, dyg)

    def th_max_fb():
        xtg.grad = None
        F.max_pool2d(xtg, 2).backward(dyt)

    def dk_avg_fb():
        _, ctx = dk.avg_pool2d(xg, 2, return_ctx=True)
        return dk.avg_pool2d_backward(ctx, dyg)

    def th_avg_fb():
        xtg.grad = None
        F.avg_pool2d(xtg, 2).backward(dyt)

    copy_dst = cp.empty_like(xg)
    shape = "64x128x112x112 f32"
    cases = [
        GpuCase(
            "device copy (cupy, the bandwidth yardstick)",
            shape,
            lambda: copy_dst.__setitem__(..., xg),
            bytes=2 * n * e,
            ceiling="copy",
        ),
        GpuCase(
            "max_pool2d 2x2 fwd",
            shape,
            lambda: dk.max_pool2d(xg, 2),
            lambda: F.max_pool2d(xt, 2),
            bytes=fwd_bytes,
            ceiling="copy",
        ),
        GpuCase("max_pool2d 2x2 fwd+bwd", shape, dk_max_fb, th_max_fb, bytes=fwd_bytes + bwd_bytes, ceiling="copy"),
        GpuCase(
            "avg_pool2d 2x2 fwd",
            shape,
            lambda: dk.avg_pool2d(xg, 2),
            lambda: F.avg_pool2d(xt, 2),
            bytes=n * e * 1.25,
            ceiling="copy",
        ),
        GpuCase("avg_pool2d 2x2 fwd+bwd", shape, dk_avg_fb, th_avg_fb, bytes=n * e * 2.5, ceiling="copy"),
        GpuCase(
            "max_pool2d 3x3 s2 p1 fwd+bwd (gather path)",
            shape,
            lambda: dk.max_pool2d_backward(
                dk.max_pool2d(xg, 3, 2, 1, return_ctx=True)[1], cp.ones((64, 128, 56, 56), cp.float32)
            ),
            bytes=2 * n * e + 2 * (n / 4) * 12,
        ),
    ]
    rows = run_gpu_cases(cases, json_path=args.json, repeats=args.repeats, title="pooling on the GPU")
    copy_gbs = rows[0]["gb_per_s"]
    for r in rows[1:]:
        if r["gb_per_s"]:
            print(f"  {r['op']:44s} {100 * r['gb_per_s'] / copy_gbs:5.1f}% of this device's measured copy bandwidth")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "out", "pooling.json"))
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cpu-time", action="store_true", help="time with process CPU time (use with --threads 1)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: the GPU cases only")
    ap.add_argument(
        "--no-hugepage",
        action="store_true",
        help="turn off numpy's huge-page advice for big arrays (as where THP is 'never'): every page of a "
        "fresh result then faults",
    )
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    if args.no_hugepage:
        np._core.multiarray._set_madvise_hugepage(False)
    if args.device == "cuda":
        sys.exit(gpu_main(args))
    if args.cpu_time:  # the harness's clock, swapped for CPU time of this process
        harness.time.perf_counter = time.process_time
    torch = torch_threads(args.threads)
    dk.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 64, 64)).astype(np.float32)
    dy = rng.standard_normal((32, 64, 32, 32)).astype(np.float32)
    bw = copy_bandwidth_gbs()
    print(
        f"CPU copy bandwidth (numpy copy, read + write): {bw:.1f} GB/s; deepkern ISA {dk._cpu.isa()}, "
        f"{args.threads} threads for both; THP {thp_setting()}, numpy huge-page advice "
        f"{'off' if args.no_hugepage else 'on'}"
    )
    rows = run_cases(
        pool_cases(x, dy, torch, "cpu", torch.from_numpy),
        json_path=args.json,
        repeats=args.repeats,
        title="pooling, CPU",
    )
    for r in rows:
        print(f"  {r['op']:40s} [{r['mode']}] {100 * r['gb_per_s'] / bw:5.1f}% of copy bandwidth")
    run_cases(
        extra_cpu_cases(torch, rng),
        json_path=args.json.replace(".json", "_extra.json"),
        repeats=args.repeats,
        title="pooling, CPU: other windows and narrow images",
    )


if __name__ == "__main__":
    main()
