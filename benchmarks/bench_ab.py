"""Single-thread process-CPU-time of a few kernels (GEMM, LSTM, attention), one JSON line:
for comparing two builds of deepkern on the same machine, run alternately, e.g.

    for i in 1 2 3; do PYTHONPATH=/tmp/old python benchmarks/bench_ab.py; PYTHONPATH=python python benchmarks/bench_ab.py; done

Best of 7 per case. Results of the per-ISA / SIMD-layer refactor: benchmarks/results/arch.md.
deepkern alone (no peer): `--mode` (benchmarks/harness.py) is accepted and has no effect; the
machine line goes to stderr so stdout stays one JSON line.
"""

import argparse
import json
import os
import sys
import time

import deepkern as dk
import numpy as np
from deepkern import _cpu

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ap = argparse.ArgumentParser()
harness.add_args(ap)
harness.apply_args(ap.parse_args())
dk.set_num_threads(1)
print(harness.machine_description(), file=sys.stderr)
rng = np.random.default_rng(0)


def best(fn, n=7):
    fn()
    ts = []
    for _ in range(n):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    return min(ts)


res = {}
a = rng.standard_normal((512, 512)).astype(np.float32)
b = a.copy()
c = np.empty_like(a)
res["gemm512_f32"] = best(lambda: _cpu.gemm(a, b, c))
a64 = a.astype(np.float64)
c64 = np.empty_like(a64)
res["gemm384_f64"] = best(lambda: _cpu.gemm(a64[:384, :384].copy(), a64[:384, :384].copy(), c64[:384, :384].copy()))
T, B, I, H = 32, 16, 128, 256
x = rng.standard_normal((T, B, I)).astype(np.float32)
w_ih = (rng.standard_normal((4 * H, I)) * 0.1).astype(np.float32)
w_hh = (rng.standard_normal((4 * H, H)) * 0.1).astype(np.float32)
bi = np.zeros(4 * H, np.float32)
bh = np.zeros(4 * H, np.float32)
res["lstm_fwd"] = best(lambda: dk.lstm(x, None, None, w_ih, w_hh, bi, bh))


def fb():
    out, ctx = dk.lstm(x, None, None, w_ih, w_hh, bi, bh, return_ctx=True)
    dk.lstm_backward(ctx, np.ones_like(out[0]))


res["lstm_fwdbwd"] = best(fb)
q = rng.standard_normal((2, 4, 256, 64)).astype(np.float32)
k = q.copy()
v = q.copy()
res["attn_fwd"] = best(lambda: dk.scaled_dot_product_attention(q, k, v))


def afb():
    o, ctx = dk.scaled_dot_product_attention(q, k, v, is_causal=True, return_ctx=True)
    dk.scaled_dot_product_attention_backward(ctx, o)


res["attn_causal_fwdbwd"] = best(afb)
print(json.dumps(res))
