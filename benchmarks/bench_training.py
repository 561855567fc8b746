"""One training step of a CNN, deepkern vs the same model in PyTorch, one process.

    python benchmarks/bench_training.py [--threads 2] [--batch 64] [--model lenet|convblock|all]
        [--cpu-time] [--mode interleaved|blocks|both] [--json benchmarks/out/training.json]

lenet (LeNet-5 shape on 1x28x28): Conv(1->6, 5) ReLU MaxPool(2) Conv(6->16, 5) ReLU MaxPool(2)
Flatten Dense(256->120) ReLU Dense(120->84) ReLU Dense(84->10), batch --batch.
convblock (large activations): Conv(16->64, 3, padding 1) ReLU MaxPool(2) Flatten Dense(65536->10)
on 32x16x64x64: the conv's output is 32x64x64x64 float32 = 33.5 MB (8192 pages of 4 KiB), a
buffer a step that allocates it anew pays one page fault per page for.
Softmax cross-entropy, SGD with momentum. A step = zero grads, forward, loss, backward, optimizer
step. Both models start from the same weights (PyTorch's are loaded into deepkern with
load_torch_state_dict) and see the same batch; the script checks that one step moves both to the
same weights before timing. The "flt" columns are minor page faults per step (getrusage).
--cpu-time times process CPU time instead of wall clock (use with --threads 1 on a busy machine).
numpy advises huge pages for large arrays where THP is "madvise" (faults then come per 2 MiB page);
--no-numpy-hugepages turns that off, as on a machine with THP "never".

Floor (lenet): about 36 MFLOP forward (conv1 11.1, conv2 19.7, dense 5.4) and twice that
backward, so ~108 MFLOP per step, ~0.5 ms at this machine's ~200 GFLOP/s fp32 peak on 2 cores; at
batch 64 the step is dominated by per-op overheads, not FLOPs. convblock: 4.8 GFLOP per step
(conv forward 2.4, weight gradient 2.4; the first layer needs no input gradient).
"""

import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

nn = dk.nn


def build_convblock(torch):
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(16, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 32 * 32, 10),
    )
    dm = nn.Sequential(
        [nn.Conv2D(16, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Dense(64 * 32 * 32, 10)]
    )
    dm.load_torch_state_dict(tm.state_dict())
    return tm, dm


def build(torch):
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 120),
        torch.nn.ReLU(),
        torch.nn.Linear(120, 84),
        torch.nn.ReLU(),
        torch.nn.Linear(84, 10),
    )
    dm = nn.Sequential(
        [
            nn.Conv2D(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Flatten(),
            nn.Dense(256, 120),
            nn.ReLU(),
            nn.Dense(120, 84),
            nn.ReLU(),
            nn.Dense(84, 10),
        ]
    )
    dm.load_torch_state_dict(tm.state_dict())
    return tm, dm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", default=None)
    ap.add_argument("--model", default="all", choices=["lenet", "convblock", "all"])
    ap.add_argument("--cpu-time", action="store_true", help="time with process CPU time (use with --threads 1)")
    ap.add_argument(
        "--no-numpy-hugepages",
        action="store_true",
        help="turn off numpy's huge-page advice on large arrays (as on a machine with THP off): 4 KiB faults",
    )
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    if args.no_numpy_hugepages:
        np._core.multiarray._set_madvise_hugepage(False)
    torch = torch_threads(args.threads)
    dk.set_num_threads(args.threads)
    if args.cpu_time:  # the harness's clock, swapped for CPU time of this process
        harness.time.perf_counter = time.process_time
    cases = []
    if args.model in ("lenet", "all"):
        cases.append(lenet_case(torch, args.batch))
    if args.model in ("convblock", "all"):
        cases.append(convblock_case(torch))
    clock = "process CPU time" if args.cpu_time else "wall clock"
    run_cases(
        cases,
        json_path=args.json,
        repeats=args.repeats,
        warmup=5,
        title=f"training step, {args.threads} threads, {clock} (deepkern vs torch {torch.__version__})",
    )
    print("\nminor page faults per step: 10 steps of each library in a row, after the table (the median above")
    print("can hide a pattern that alternates between steps):")
    for c in cases:
        for name, fn in (("deepkern", c.deepkern), ("torch", c.peer)):
            faults = fault_profile(fn)
            print(f"  {c.op:32s} {name:8s} mean {statistics.mean(faults):7.0f}  per step {faults}")


def fault_profile(fn, steps=10):
    """Each of `steps` calls' minor page faults (getrusage ru_minflt)."""
    faults = []
    for _ in range(steps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return faults


def step_pair(torch, tm, dm, x, y):
    """The two step functions, after checking that one step lands both models on the same weights."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    dopt = dk.optim.SGD(dm, lr=0.01, momentum=0.9)
    loss = nn.SoftmaxCrossEntropy()

    def torch_step():
        topt.zero_grad()
        out = torch.nn.functional.cross_entropy(tm(xt), yt)
        out.backward()
        topt.step()

    def dk_step():
        dm.train_step(x, y, loss, dopt)

    # same start, same batch: one step must land both on the same weights
    dk_step()
    torch_step()
    for (name, p), tp in zip(dm.named_parameters(), tm.parameters()):
        err = np.abs(p.value - tp.detach().numpy()).max()
        assert err < 1e-4, f"{name}: deepkern and torch differ by {err} after one step"
    return dk_step, torch_step


def lenet_case(torch, batch):
    torch.manual_seed(0)
    tm, dm = build(torch)
    rng = np.random.default_rng(0)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    dk_step, torch_step = step_pair(torch, tm, dm, x, y)
    flops = 3 * 2 * batch * (6 * 24 * 24 * 25 + 16 * 8 * 8 * 150 + 256 * 120 + 120 * 84 + 84 * 10)
    return Case("LeNet train step (SGD+mom)", f"{batch}x1x28x28 f32", dk_step, torch_step, flops=flops)


def convblock_case(torch):
    torch.manual_seed(0)
    tm, dm = build_convblock(torch)
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 64, 64), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    dk_step, torch_step = step_pair(torch, tm, dm, x, y)
    flops = 2 * 2 * 32 * 64 * 64 * 64 * 16 * 9 + 3 * 2 * 32 * 65536 * 10
    return Case("conv-ReLU-pool step (SGD+mom)", "32x16x64x64 k64 3x3 f32", dk_step, torch_step, flops=flops)


if __name__ == "__main__":
    main()
