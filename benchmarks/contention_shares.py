"""How long the calling thread waits for a core, per detector window (5 ms), quiet and with a busy neighbour:
the measurement behind the busy-machine threshold (csrc/cpu/common/contention.cpp, kBusyShare).

    python benchmarks/contention_shares.py quiet
    python benchmarks/contention_shares.py busy      # one other process spinning on a core

Regions keep full teams during the measurement (DEEPKERN_CONTENTION_SHARE=5 is set before deepkern
loads), so the shares are those the detector sees before it acts. Per workload: the windows read,
the 10th/50th/90th percentiles of the waiting share, and the fraction of windows above 5/10/20%.
"""

import os

os.environ["DEEPKERN_CONTENTION_SHARE"] = "5"
import multiprocessing
import sys
import time

import numpy as np


def spin(stop):
    while not stop.is_set():
        pass


def run(cond):
    import deepkern as dk
    import torch
    from bench_training import build
    from deepkern import _cpu

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)

    def f(*s):
        return rng.standard_normal(s).astype(np.float32)

    x, w = f(8, 128, 56, 56), f(128, 128, 3, 3)
    tx, tw = torch.tensor(x), torch.tensor(w)
    a, b, c = f(512, 512), f(512, 512), f(512, 512)
    _, m = build(torch)  # LeNet, as bench_training.py and bench_busy.py time it
    lx = rng.random((64, 1, 28, 28), dtype=np.float32)
    ly = rng.integers(0, 10, 64)
    opt = dk.optim.SGD(m, lr=0.01, momentum=0.9)
    loss = dk.nn.SoftmaxCrossEntropy()
    fns = {
        "gemm512 blocks": lambda: _cpu.gemm(a, b, c),
        "conv s2 blocks": lambda: dk.conv2d(x, w, stride=2, padding=1),
        "conv s2 interleaved torch": lambda: (
            dk.conv2d(x, w, stride=2, padding=1),
            torch.nn.functional.conv2d(tx, tw, stride=2, padding=1),
        ),
        "lenet steps": lambda: m.train_step(lx, ly, loss, opt),
    }
    for name, fn in fns.items():
        shares, last = [], _cpu._contention()["windows"]
        t_end = time.perf_counter() + 1.5
        while time.perf_counter() < t_end:
            fn()
            s = _cpu._contention()
            if s["windows"] != last:
                last = s["windows"]
                shares.append(s["share"])
        p = np.percentile(shares, [10, 50, 90]) if shares else [0, 0, 0]
        print(
            f"{cond:6s} {name:28s} windows {len(shares):4d}  share p10 {p[0]:.3f} p50 {p[1]:.3f} p90 {p[2]:.3f}  >5% {np.mean(np.array(shares) > 0.05):.2f} >10% {np.mean(np.array(shares) > 0.10):.2f} >20% {np.mean(np.array(shares) > 0.2):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    cond = sys.argv[1] if len(sys.argv) > 1 else "quiet"
    stop = multiprocessing.Event()
    if cond == "busy":
        p = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
        p.start()
        time.sleep(0.2)
    run(cond)
    stop.set()
