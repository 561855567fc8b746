"""Accuracy of conv2d's float32 weight gradient against float64 (PyTorch) on long reductions: the
shapes behind the Winograd weight gradient's accumulation policy (results/conv.md, "One Winograd
weight gradient"). Per shape: the dw lowering, the worst error over two draws in units of the tests'
float32 tolerance (|err| / (1e-5 max|ref| + 1e-4 |ref|), tests/helpers.py), and max |err| / max |ref|.

    PYTHONPATH=python python3 benchmarks/conv_dw_accuracy.py [--threads 1] [--only 16x16]

One thread gives the longest sums (one slot); "relu" draws x >= 0 and dy with mean 0.5.
"""

import argparse

import deepkern as dk
import numpy as np
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params

# N, C, H, W, K, kernel, padding, groups, inputs
SHAPES = [
    (8, 64, 32, 32, 64, 3, 1, 1, "normal"),
    (8, 64, 56, 56, 64, 3, 1, 1, "normal"),
    (64, 64, 32, 32, 64, 3, 1, 1, "normal"),
    (32, 64, 56, 56, 64, 3, 1, 1, "normal"),
    (256, 32, 16, 16, 32, 3, 1, 1, "normal"),
    (1024, 32, 16, 16, 32, 3, 1, 1, "normal"),
    (128, 64, 32, 32, 64, 3, 1, 1, "normal"),
    (64, 64, 32, 32, 64, 3, 1, 1, "relu"),
    (8, 32, 28, 28, 32, 5, 2, 1, "normal"),
    (64, 32, 28, 28, 32, 5, 2, 1, "normal"),
    (8, 128, 28, 28, 128, 3, 1, 8, "normal"),
    (64, 128, 28, 28, 128, 3, 1, 8, "normal"),
    (256, 128, 28, 28, 128, 3, 1, 8, "normal"),
    (64, 128, 28, 28, 128, 3, 1, 8, "relu"),
]

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--only", default=None, help="comma-separated substrings of the shape names")
args = ap.parse_args()
dk.set_num_threads(args.threads)
for N, C, H, W, K, k, pad, G, kind in SHAPES:
    name = f"{N}x{C}x{H}x{W} k{K} {k}x{k} g{G} {kind}"
    if args.only and not any(o in name for o in args.only.split(",")):
        continue
    units = rel = 0.0
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = rng.standard_normal((K, C // G, k, k)).astype(np.float32)
        dy = rng.standard_normal((N, K, H + 2 * pad - k + 1, W + 2 * pad - k + 1)).astype(np.float32)
        if kind == "relu":
            x, dy = np.abs(x), dy + np.float32(0.5)
        params, _ = _conv_params("conv2d", x, w, None, 1, pad, 1, G)
        lowering = _cpu.conv2d_plan(params, "float32", args.threads)["dw"]
        dw = np.empty_like(w)
        _cpu.conv2d_backward(params, x, w, dy, None, dw, None)
        tx, tdy = torch.from_numpy(x).double(), torch.from_numpy(dy).double()
        ref = torch.nn.grad.conv2d_weight(tx, w.shape, tdy, 1, pad, 1, G).numpy()
        err = np.abs(dw.astype(np.float64) - ref)
        units = max(units, float(np.max(err / (1e-5 * np.abs(ref).max() + 1e-4 * np.abs(ref)))))
        rel = max(rel, float(err.max() / np.abs(ref).max()))
    print(f"{name:36s} {lowering:12s} tolerance units {units:.3f}  max rel {rel:.2e}", flush=True)
