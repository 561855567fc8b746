"""Scaled dot-product attention: deepkern vs torch.nn.functional.scaled_dot_product_attention (CPU).

    PYTHONPATH=python python3 benchmarks/bench_attention.py [--quick] [--no-long] [--no-memory] [--no-cpu-time]
    PYTHONPATH=python python3 benchmarks/bench_attention.py --device cuda [--json PATH]   (attention_cuda_cases.py)

Both at 2 threads, same process, interleaved (benchmarks/harness.py). Speedup = torch / deepkern.
FLOPs counted: forward 4*Lq*Lk*D per head (QK^T and PV), backward 10*Lq*Lk*D (S recomputed, dV, dP,
dQ, dK), over the (b, h, i, j) pairs that are not causally masked. Then the memory check: peak RSS
growth of one forward+backward in a fresh process for N = 1024 ... 8192, which must grow linearly;
and deepkern's per-core efficiency: one thread, CPU time (robust on a shared, loaded machine).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

THREADS = 2


def pairs(N, causal):
    return N * (N + 1) // 2 if causal else N * N


def make_cases(B, H, N, D, causal, rng, fwd=True, bwd=True):
    torch = torch_threads(THREADS)
    F = torch.nn.functional
    q, k, v, do = (rng.standard_normal((B, H, N, D)).astype(np.float32) for _ in range(4))
    tq, tk, tv, tdo = (torch.from_numpy(a) for a in (q, k, v, do))
    flop_f = 4.0 * B * H * pairs(N, causal) * D
    shape = f"B{B} H{H} N{N} D{D}{' causal' if causal else ''}"
    cases = []

    if fwd:

        def dk_fwd():
            return dk.scaled_dot_product_attention(q, k, v, is_causal=causal)

        def torch_fwd():
            with torch.no_grad():
                return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

        cases.append(Case("sdpa forward", shape, dk_fwd, torch_fwd, flops=flop_f))
    if bwd:

        def dk_fb():
            _, ctx = dk.scaled_dot_product_attention(q, k, v, is_causal=causal, return_ctx=True)
            return dk.scaled_dot_product_attention_backward(ctx, do)

        def torch_fb():
            x = [t.clone().requires_grad_(True) for t in (tq, tk, tv)]
            F.scaled_dot_product_attention(*x, is_causal=causal).backward(tdo)
            return [t.grad for t in x]

        cases.append(Case("sdpa fwd+bwd", shape, dk_fb, torch_fb, flops=flop_f * 14 / 4))
    return cases


_MEM_CHILD = r"""
import resource, sys, numpy as np


def peak_kib():
    # VmHWM: this process's own peak RSS. ru_maxrss would do, but Linux carries it across exec, so a
    # child forked from a big parent would report the parent's peak.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


which, N, D = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
small = [rng.standard_normal((1, 1, 64, D), dtype=np.float32) for _ in range(3)]
if which == "deepkern":
    import deepkern as dk
    dk.set_num_threads(2)
    _, c = dk.scaled_dot_product_attention(*small, return_ctx=True)  # load, start the threads
    dk.scaled_dot_product_attention_backward(c, small[0])
else:
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    x = [torch.from_numpy(a).requires_grad_(True) for a in small]
    F.scaled_dot_product_attention(*x).sum().backward()
base = peak_kib()
# everything from here on counts: inputs, outputs, saved state, gradients, scratch
q, k, v, do = (rng.standard_normal((1, 1, N, D), dtype=np.float32) for _ in range(4))
if which == "deepkern":
    out, ctx = dk.scaled_dot_product_attention(q, k, v, return_ctx=True)
    grads = dk.scaled_dot_product_attention_backward(ctx, do)
else:
    x = [torch.from_numpy(a).requires_grad_(True) for a in (q, k, v)]
    F.scaled_dot_product_attention(*x).backward(torch.from_numpy(do))
print(peak_kib() - base)
"""


def memory_rows(Ns=(1024, 2048, 4096, 8192), D=64):
    """Peak RSS growth (VmHWM, the process's own maxrss) over a baseline taken after imports and a
    warm-up call, while creating q, k, v, dout and running one forward+backward; B=H=1, float32,
    a fresh process each."""
    rows = []
    for N in Ns:
        row = {"N": N, "D": D, "inputs_and_grads_mib": 8 * N * D * 4 / 2**20, "one_LqxLk_matrix_mib": N * N * 4 / 2**20}
        for which in ("deepkern", "torch"):
            r = subprocess.run(
                [sys.executable, "-c", _MEM_CHILD, which, str(N), str(D)],
                capture_output=True,
                text=True,
                env=dict(os.environ),
            )
            row[f"{which}_peak_growth_mib"] = int(r.stdout.strip()) / 1024 if r.returncode == 0 else None
        rows.append(row)
    print(
        f"\n== peak RSS growth of one forward+backward, B=1 H=1 D=64 float32 (fresh process each)  ({harness.machine_description()})"
    )
    print(
        f"{'N':>6s} {'deepkern MiB':>13s} {'torch MiB':>10s} {'q,k,v,dO,out,grads MiB':>23s} {'one NxN f32 MiB':>16s}"
    )
    for r in rows:
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(
            f"{r['N']:6d} {f(r['deepkern_peak_growth_mib']):>13s} {f(r['torch_peak_growth_mib']):>10s} "
            f"{r['inputs_and_grads_mib']:23.1f} {r['one_LqxLk_matrix_mib']:16.1f}"
        )
    return rows


def cpu_time_rows(
    shapes=((2, 8, 512, 64, False), (2, 8, 512, 64, True), (1, 4, 4096, 64, False), (1, 4, 2048, 128, False)), repeats=7
):
    """deepkern alone on ONE thread, timed in CPU seconds (time.process_time), median of repeats:
    the kernel's efficiency per core, which other processes on a shared machine hardly disturb."""
    import statistics
    import time

    rng = np.random.default_rng(1)
    dk.set_num_threads(1)
    rows = []
    print(
        f"\n== deepkern on 1 thread, CPU time per call (robust to a loaded machine)  ({harness.machine_description()})"
    )
    print(f"{'shape':28s} {'fwd ms':>8s} {'fwd GF/s':>9s} {'bwd ms':>8s} {'bwd GF/s':>9s}")
    try:
        for B, H, N, D, causal in shapes:
            q, k, v, do = (rng.standard_normal((B, H, N, D), dtype=np.float32) for _ in range(4))

            def cpu(fn):
                fn()
                ts = []
                for _ in range(repeats):
                    t = time.process_time()
                    fn()
                    ts.append(time.process_time() - t)
                return statistics.median(ts)

            tf = cpu(lambda: dk.scaled_dot_product_attention(q, k, v, is_causal=causal))
            _, ctx = dk.scaled_dot_product_attention(q, k, v, is_causal=causal, return_ctx=True)
            tb = cpu(lambda: dk.scaled_dot_product_attention_backward(ctx, do))
            flop_f = 4.0 * B * H * pairs(N, causal) * D
            shape = f"B{B} H{H} N{N} D{D}{' causal' if causal else ''}"
            rows.append(
                dict(
                    shape=shape,
                    fwd_ms=tf * 1e3,
                    fwd_gflops=flop_f / tf / 1e9,
                    bwd_ms=tb * 1e3,
                    bwd_gflops=2.5 * flop_f / tb / 1e9,
                )
            )
            r = rows[-1]
            print(f"{shape:28s} {r['fwd_ms']:8.2f} {r['fwd_gflops']:9.1f} {r['bwd_ms']:8.2f} {r['bwd_gflops']:9.1f}")
    finally:
        dk.set_num_threads(THREADS)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only the B=2 H=8 N=512 D=64 targets")
    ap.add_argument("--no-long", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-cpu-time", action="store_true")
    ap.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: float16/float32 B=4 H=16 N=4096 vs PyTorch's flash/cuDNN/efficient SDPA on the GPU",
    )
    ap.add_argument("--json", default=None, help="where the results go (default benchmarks/out/attention[_cuda].json)")
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    if args.device == "cuda":
        from attention_cuda_cases import run

        run(json_path=args.json or os.path.join(out, "attention_cuda.json"))
        return
    args.json = args.json or os.path.join(out, "attention.json")
    dk.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    print(f"deepkern attention build: {dk._cpu.attention_isa(())}, threads {THREADS} (torch {THREADS})")

    cases = make_cases(2, 8, 512, 64, False, rng) + make_cases(2, 8, 512, 64, True, rng)
    rows = run_cases(cases, repeats=20, title="SDPA targets (float32)")
    if not args.quick and not args.no_long:
        long_cases = []
        for D in (64, 128):
            long_cases += make_cases(1, 4, 4096, D, False, rng)
            long_cases += make_cases(1, 4, 4096, D, True, rng)
        rows += run_cases(long_cases, repeats=3, warmup=1, title="SDPA long sequences (float32)")
    mem = memory_rows() if not args.quick and not args.no_memory else []
    cpu = cpu_time_rows() if not args.quick and not args.no_cpu_time else []
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "memory": mem, "cpu_time_1_thread": cpu}, f, indent=1)


if __name__ == "__main__":
    main()
