"""conv2d forward and forward+backward: deepkern vs PyTorch CPU (torch.nn.functional.conv2d + autograd),
same thread count, same inputs, interleaved (benchmarks/harness.py). GFLOP/s is also given as a fraction
of deepkern's measured GEMM peak (a 1024^3 float32 GEMM at the same thread count).

    python benchmarks/bench_conv.py [--threads 2] [--set main|lenet|resnet|groups|all] [--json ...]
    python benchmarks/bench_conv.py --threads 1 --cpu-time   # per-process CPU time: robust on a loaded machine
    python benchmarks/bench_conv.py --device cuda [--json out.json]   # the GPU cases (conv_cuda_cases.py)

Floor: conv is compute-bound here (weights and activations fit in L2/L3), so the floor is
FLOPs / GEMM peak: 2*N*K*Ho*Wo*C*kh*kw per pass; forward+backward = 3x the forward FLOPs.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--set", default="all", choices=["main", "lenet", "resnet", "groups", "all"])
ap.add_argument("--repeats", type=int, default=15)
ap.add_argument("--only", default=None, help="run only the cases whose name contains this (e.g. '5x5')")
ap.add_argument("--cpu-time", action="store_true", help="time with process CPU time (use with --threads 1)")
ap.add_argument("--json", default=None)
ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: deepkern vs PyTorch + cuDNN on the GPU")
harness.add_args(ap)
args = ap.parse_args()
harness.apply_args(args)
if args.device == "cuda":
    sys.path.insert(0, os.path.dirname(__file__))
    import conv_cuda_cases

    sys.exit(conv_cuda_cases.run(args))
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
from deepkern import _cpu  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

torch = torch_threads(args.threads)
dk.set_num_threads(args.threads)
F = torch.nn.functional
if args.cpu_time:  # the harness's clock, swapped for CPU time of this process
    harness.time.perf_counter = time.process_time

rng = np.random.default_rng(0)


def gemm_peak():
    n = 1024
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty((n, n), np.float32)
    t, _ = harness.time_interleaved(lambda: _cpu.gemm(a, b, c), None, repeats=10, warmup=2)
    return 2.0 * n**3 / t / 1e9


def conv_cases(name, N, C, H, W, K, k, stride=1, padding=0, groups=1):
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    Cg = C // groups
    w = (rng.standard_normal((K, Cg, k, k)) / np.sqrt(Cg * k * k)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    y = dk.conv2d(x, w, b, stride, padding, 1, groups)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    txg, twg, tbg = (t.clone().requires_grad_() for t in (tx, tw, tb))
    flops = 2.0 * y.size * Cg * k * k
    shape = f"{N}x{C}x{H}x{W} k{K} {k}x{k} s{stride} p{padding}" + (f" g{groups}" if groups > 1 else "")

    def dk_fwd():
        return dk.conv2d(x, w, b, stride, padding, 1, groups)

    def torch_fwd():
        with torch.no_grad():
            return F.conv2d(tx, tw, tb, stride, padding, 1, groups)

    def dk_fb():
        _, ctx = dk.conv2d(x, w, b, stride, padding, 1, groups, return_ctx=True)
        return dk.conv2d_backward(ctx, dy)

    def torch_fb():
        txg.grad = twg.grad = tbg.grad = None
        F.conv2d(txg, twg, tbg, stride, padding, 1, groups).backward(tdy)

    return [
        Case(f"{name} fwd", shape, dk_fwd, torch_fwd, flops=flops),
        Case(f"{name} fwd+bwd", shape, dk_fb, torch_fb, flops=3 * flops),
    ]


sets = {
    "main": lambda: conv_cases("conv3x3", 8, 64, 32, 32, 64, 3, 1, 1),
    "lenet": lambda: (
        conv_cases("lenet c1 5x5", 64, 1, 32, 32, 6, 5)
        + conv_cases("lenet c3 5x5", 64, 6, 14, 14, 16, 5)
        + conv_cases("lenet c5 5x5", 64, 16, 5, 5, 120, 5)
    ),
    "resnet": lambda: (
        conv_cases("resnet stem 7x7 s2", 8, 3, 224, 224, 64, 7, 2, 3)
        + conv_cases("resnet 1x1", 8, 64, 56, 56, 256, 1)
        + conv_cases("resnet 3x3", 8, 64, 56, 56, 64, 3, 1, 1)
        + conv_cases("resnet 3x3 s2", 8, 128, 56, 56, 128, 3, 2, 1)
        + conv_cases("resnet 1x1 s2 (downsample)", 8, 256, 56, 56, 512, 1, 2)
        + conv_cases("resnet 5x5", 8, 32, 28, 28, 32, 5, 1, 2)
    ),
    # MobileNet-style depthwise 3x3 (its own kernel, no GEMM), a channel multiplier, and grouped (ResNeXt-like)
    "groups": lambda: (
        conv_cases("depthwise 3x3", 8, 128, 56, 56, 128, 3, 1, 1, groups=128)
        + conv_cases("depthwise 3x3 s2", 8, 128, 56, 56, 128, 3, 2, 1, groups=128)
        + conv_cases("depthwise 3x3 K=2C", 8, 32, 56, 56, 64, 3, 1, 1, groups=32)
        + conv_cases("grouped 3x3 g8", 8, 128, 28, 28, 128, 3, 1, 1, groups=8)
    ),
}
chosen = ["main", "lenet", "resnet", "groups"] if args.set == "all" else [args.set]
peak = gemm_peak()
clock = "process CPU time" if args.cpu_time else "wall clock"
print(
    f"threads {args.threads} (deepkern and torch), {clock}; kernel {_cpu.gemm_kernel_name('float32')}; "
    f"measured GEMM peak (1024^3 float32): {peak:.1f} GFLOP/s"
)
for s in chosen:
    cases = [c for c in sets[s]() if args.only is None or args.only in c.op]
    if not cases:
        continue
    rows = run_cases(
        cases,
        json_path=args.json and args.json.replace(".json", f"_{s}.json"),
        repeats=args.repeats,
        title=f"conv2d {s} (float32)",
    )
    print("  fraction of GEMM peak: " + ", ".join(f"{r['op']}: {r['gflop_per_s'] / peak:.0%}" for r in rows))
