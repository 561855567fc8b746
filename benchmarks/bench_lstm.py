"""LSTM over a whole sequence, deepkern vs torch.nn.LSTM, side by side in one process.

    python benchmarks/bench_lstm.py [--threads 2] [--json benchmarks/out/lstm.json] [--repeats 15]
    python benchmarks/bench_lstm.py --threads 1 --cpu-time [--repeats 9] [--size 0]   (A/B on a loaded machine)
    python benchmarks/bench_lstm.py --device cuda [--quick]   (the GPU benchmark: bench_lstm_cuda.py)

Float32 on the CPU, both libraries at the same thread count. "fwd+bwd" is a training step's
worth: the forward with a context, then every gradient (dx, dh0, dc0, dW_ih, dW_hh, db) from dy.
"fwd" is inference (torch under no_grad, deepkern without a context).

The floor: an LSTM is GEMM-bound. Forward FLOPs = 2*T*B*(I+H)*4H (input projection +
recurrence); backward = 2x that (dX and dh; dW_ih and dW_hh). Divided by the GEMM rate this
machine reaches (measured here with deepkern's GEMM and torch's MKL on the projection's shape),
that is the time no implementation can beat; the pointwise work (5 transcendental functions
per hidden unit and step) and the per-step GEMMs' lower efficiency come on top.

On a shared, loaded machine wall-clock times at 2 threads swing wildly (a descheduled thread
stalls its partner at every per-step barrier, in both libraries). So the script also reports a
load-robust view: both libraries at ONE thread, timed by process CPU time (interleaved, best
of n), and the GEMM rate measured the same way; the 2-thread floor uses twice that rate.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from deepkern import _cpu  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402


def lstm_flops(T, B, I, H):
    fwd = 2.0 * T * B * (I + H) * 4 * H
    return fwd, 3 * fwd


def cpu_time_interleaved(fn_a, fn_b, repeats=9, warmup=2, mode="interleaved"):
    """Best process CPU seconds of fn_a and fn_b (harness.cpu_time_pair; interleaved by default)."""
    return harness.cpu_time_pair(fn_a, fn_b, repeats, warmup, mode=mode)


def gemm_rate(torch, M=2048, N=1024, K=256):
    """Single-thread GFLOP/s (CPU time) of one float32 GEMM of the input projection's shape:
    deepkern, torch (MKL)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((N, K)).astype(np.float32)
    c = np.empty((M, N), np.float32)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    t_dk, t_torch = cpu_time_interleaved(lambda: _cpu.gemm(a, b, c, False, True, 1.0, 0.0, True), lambda: at @ bt.T)
    fl = 2.0 * M * N * K
    return fl / t_dk / 1e9, fl / t_torch / 1e9


def cases(torch, T, B, I, H, fwd_only=False):
    rng = np.random.default_rng(0)
    k = 1 / np.sqrt(H)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((B, H)).astype(np.float32)
    c0 = rng.standard_normal((B, H)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    m = torch.nn.LSTM(I, H)
    w = [p.detach().numpy().copy() for p in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)]
    assert all(np.abs(a).max() <= k for a in w)
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0)[None].requires_grad_(True)
    c0t = torch.from_numpy(c0)[None].requires_grad_(True)
    dyt = torch.from_numpy(dy)

    def dk_fb():
        _, ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
        dk.lstm_backward(ctx, dy)

    def torch_fb():
        y, _ = m(xt, (h0t, c0t))
        y.backward(dyt)
        for p in (xt, h0t, c0t, *m.parameters()):
            p.grad = None

    def torch_f():
        with torch.no_grad():
            m(xt, (h0t, c0t))

    fwd, total = lstm_flops(T, B, I, H)
    shape = f"T{T} B{B} I{I} H{H} f32"
    out = [Case("lstm fwd", shape, lambda: dk.lstm(x, h0, c0, *w), torch_f, flops=fwd)]
    if not fwd_only:
        out.insert(0, Case("lstm fwd+bwd", shape, dk_fb, torch_fb, flops=total))
    return out


# The last is the char-LSTM example's layer (bench_epochs.py): B32 T64, I64 H128.
SIZES = [(64, 32, 256, 256), (128, 16, 128, 128), (32, 64, 512, 512), (100, 4, 32, 64), (64, 32, 64, 128)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="cuda: float32 LSTM cases and the training steps only")
    harness.add_args(ap)
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="only the 1-thread process-CPU-time table (best of --repeats, default 9)",
    )
    ap.add_argument("--size", type=int, action="append", help="index into SIZES (repeatable; default all)")
    args = ap.parse_args()
    harness.apply_args(args)
    if args.device == "cuda":
        import bench_lstm_cuda

        args.repeats = args.repeats or 20
        return bench_lstm_cuda.main(args)
    args.json = args.json or os.path.join(os.path.dirname(__file__), "out", "lstm.json")
    sizes = [SIZES[i] for i in args.size] if args.size else SIZES
    cpu_repeats = (args.repeats or 9) if args.cpu_time else 9
    args.repeats = args.repeats or 15
    torch = torch_threads(1)
    dk.set_num_threads(1)
    g_dk, g_torch = gemm_rate(torch)
    peak = max(g_dk, g_torch)
    print(f"deepkern ISA {dk._cpu.isa()}, GEMM kernel {_cpu.gemm_kernel_name('float32')}")
    print(
        f"GEMM 2048x1024x256 f32, 1 thread (CPU time): deepkern {g_dk:.0f} GFLOP/s, torch (MKL) {g_torch:.0f} GFLOP/s"
    )
    for T, B, I, H in SIZES[:1]:
        fwd, total = lstm_flops(T, B, I, H)
        print(
            f"floor T{T} B{B} I{I} H{H}: fwd+bwd {total / 1e9:.2f} GFLOP -> {total / peak / 1e6:.1f} ms on 1 thread, "
            f"{total / (args.threads * peak) / 1e6:.1f} ms on {args.threads}; fwd {fwd / 1e9:.2f} GFLOP -> "
            f"{fwd / peak / 1e6:.1f} / {fwd / (args.threads * peak) / 1e6:.1f} ms"
        )

    for mode in harness.modes():
        print(f"\n== lstm, CPU float32, 1 thread each, process CPU time (best of {cpu_repeats}) [{mode}]")
        print(f"   ({harness.machine_description()})")
        hdr = f"{'op':14s} {'shape':24s} {'deepkern ms':>12s} {'torch ms':>10s} {'speedup':>8s} {'% of GEMM rate':>15s}"
        print(hdr)
        for size in sizes:
            for c in cases(torch, *size):
                t_dk, t_peer = cpu_time_interleaved(c.deepkern, c.peer, repeats=cpu_repeats, mode=mode)
                print(
                    f"{c.op:14s} {c.shape:24s} {t_dk * 1e3:12.2f} {t_peer * 1e3:10.2f} {t_peer / t_dk:7.2f}x "
                    f"{100 * c.flops / t_dk / 1e9 / peak:14.1f}%"
                )

    if args.cpu_time:
        return 0
    torch.set_num_threads(args.threads)
    dk.set_num_threads(args.threads)
    all_cases = [c for size in sizes for c in cases(torch, *size)]
    rows = run_cases(
        all_cases,
        json_path=args.json,
        repeats=args.repeats,
        title=f"lstm, CPU float32, {args.threads} threads each, wall clock (median)",
    )
    for r in rows:
        print(
            f"  {r['op']:14s} {r['shape']:24s} [{r['mode']}] {100 * r['gflop_per_s'] / (args.threads * peak):5.1f}% of "
            f"{args.threads} x the 1-thread GEMM rate"
        )


if __name__ == "__main__":
    sys.exit(main())
