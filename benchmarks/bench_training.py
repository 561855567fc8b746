"""One training step of a LeNet-style CNN, deepkern vs the same model in PyTorch, one process.

    python benchmarks/bench_training.py [--threads 2] [--batch 64] [--json benchmarks/out/training.json]

Model (LeNet-5 shape on 1x28x28): Conv(1->6, 5) ReLU MaxPool(2) Conv(6->16, 5) ReLU MaxPool(2)
Flatten Dense(256->120) ReLU Dense(120->84) ReLU Dense(84->10), softmax cross-entropy, SGD with
momentum. A step = zero grads, forward, loss, backward, optimizer step. Both models start from the
same weights (PyTorch's are loaded into deepkern with load_torch_state_dict) and see the same batch;
the script checks that one step moves both to the same weights before timing.

Floor: about 36 MFLOP forward (conv1 11.1, conv2 19.7, dense 5.4) and twice that backward, so
~108 MFLOP per step, ~0.5 ms at this machine's ~200 GFLOP/s fp32 peak on 2 cores; at batch 64 the
step is dominated by per-op overheads, not FLOPs.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

nn = dk.nn


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
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    torch = torch_threads(args.threads)
    dk.set_num_threads(args.threads)
    torch.manual_seed(0)
    tm, dm = build(torch)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
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

    flops = 3 * 2 * args.batch * (6 * 24 * 24 * 25 + 16 * 8 * 8 * 150 + 256 * 120 + 120 * 84 + 84 * 10)
    cases = [Case("LeNet train step (SGD+mom)", f"{args.batch}x1x28x28 f32", dk_step, torch_step, flops=flops)]
    run_cases(
        cases,
        json_path=args.json,
        repeats=args.repeats,
        warmup=5,
        title=f"training step, {args.threads} threads (deepkern vs torch {torch.__version__})",
    )


if __name__ == "__main__":
    main()
