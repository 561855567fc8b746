"""Optimizer steps: deepkern vs torch.optim (CPU), same process, same parameters and gradients.

    PYTHONPATH=python python3 benchmarks/bench_optim.py [--threads 2] [--mode both] [--json PATH]

The parameters are those of bench_lstm_lm.py's language model (Embedding 2000x256, a 2-layer LSTM
256 -> 256, Dense 256 -> 2000: 2.1 million float32), each with a fixed random gradient; one call is
one optimizer step over all of them. deepkern's SGD and Adam update in one fused pass per parameter
(csrc/cpu/optim/sgd.cpp, adam.cpp); torch.optim with its defaults. Bytes counted:
every array the rule reads and writes once (parameter, gradient and state).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

SHAPES = [(2000, 256), (1024, 256), (1024, 256), (1024,), (1024, 256), (1024, 256), (1024,), (2000, 256), (2000,)]


def make_case(name, dk_opt, torch_opt, arrays_per_param, rng, threads):
    torch = torch_threads(threads)
    values = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) * 1e-3 for s in SHAPES]
    params = [dk.nn.Parameter(v.copy()) for v in values]
    for p, g in zip(params, grads):
        p.grad = g
    tparams = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    for p, g in zip(tparams, grads):
        p.grad = torch.from_numpy(g)
    dopt, topt = dk_opt(params), torch_opt(torch, tparams)
    n = sum(int(np.prod(s)) for s in SHAPES)
    shape = f"{len(SHAPES)} params, {n / 1e6:.1f}M f32"
    return Case(name, shape, dopt.step, topt.step, bytes=4.0 * n * arrays_per_param)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "out", "optim.json"))
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    dk.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    cases = [
        # SGD: w read + written, g read; momentum adds the buffer read + written
        make_case("SGD", lambda p: dk.optim.SGD(p, lr=0.1), lambda t, p: t.optim.SGD(p, lr=0.1), 3, rng, args.threads),
        make_case(
            "SGD momentum 0.9",
            lambda p: dk.optim.SGD(p, lr=0.1, momentum=0.9),
            lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9),
            5,
            rng,
            args.threads,
        ),
        # Adam: w, m, v read + written, g read
        make_case(
            "Adam", lambda p: dk.optim.Adam(p, lr=1e-3), lambda t, p: t.optim.Adam(p, lr=1e-3), 7, rng, args.threads
        ),
    ]
    title = f"optimizer step, CPU float32, {args.threads} thread(s) each"
    run_cases(cases, json_path=args.json, repeats=args.repeats, title=title)


if __name__ == "__main__":
    main()
