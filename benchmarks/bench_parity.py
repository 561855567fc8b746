"""The PyTorch-parity paths (composed from GEMMs and array ops) against torch, one thread each.

    python benchmarks/bench_parity.py [--repeats 7] [--json benchmarks/out/parity.json]

GRU (dk.gru), the LSTM projection (dk.lstm w_hr=), a 2-layer bidirectional nn.LSTM and nn.GRU,
attention with dropout, grouped-query attention and BatchNorm2D: a training step's forward and
backward each. Times are process CPU time at one thread, the two libraries called alternately,
best of n (load-robust on a shared machine; see bench_lstm.py). These paths run per-step GEMMs
and whole-array gate math in Python, so they are expected to trail fused kernels; the table says
by how much. The fused fast paths (dk.lstm, plain attention) are timed by bench_lstm.py and
bench_attention.py.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def cases(torch, dk, rng):
    f32 = np.float32
    T, B, I, H, P = 32, 16, 64, 128, 48

    def tt(a):
        return torch.tensor(a, requires_grad=True)

    x = rng.standard_normal((T, B, I)).astype(f32)
    dy = rng.standard_normal((T, B, H)).astype(f32)
    gru = torch.nn.GRU(I, H)
    w = [p.detach().numpy().copy() for p in gru.parameters()]

    def dk_gru():
        (y, _), ctx = dk.gru(x, None, *w, return_ctx=True)
        dk.gru_backward(ctx, dy)

    def torch_gru():
        gru(tt(x))[0].backward(torch.tensor(dy))

    yield "dk.gru fwd+bwd", f"T{T} B{B} I{I} H{H}", dk_gru, torch_gru

    lp = torch.nn.LSTM(I, H, proj_size=P)
    wl = [p.detach().numpy().copy() for p in lp.parameters()]
    dyp = rng.standard_normal((T, B, P)).astype(f32)

    def dk_proj():
        _, ctx = dk.lstm(x, None, None, *wl[:4], w_hr=wl[4], return_ctx=True)
        dk.lstm_backward(ctx, dyp)

    def torch_proj():
        lp(tt(x))[0].backward(torch.tensor(dyp))

    yield "dk.lstm w_hr fwd+bwd", f"T{T} B{B} I{I} H{H} P{P}", dk_proj, torch_proj

    xb = np.ascontiguousarray(x.transpose(1, 0, 2))
    for kind in ("LSTM", "GRU"):
        tm = getattr(torch.nn, kind)(I, H, num_layers=2, bidirectional=True, batch_first=True)
        m = getattr(dk.nn, kind)(I, H, num_layers=2, bidirectional=True, return_sequences=True)
        m.load_state_dict(tm.state_dict())
        dyb = rng.standard_normal((B, T, 2 * H)).astype(f32)

        def ours(m=m, dyb=dyb):
            m.forward(xb, training=True)
            m.backward(dyb)

        def theirs(tm=tm, dyb=dyb):
            tm(tt(xb))[0].backward(torch.tensor(dyb))

        yield f"nn.{kind} 2-layer bidir fwd+bwd", f"B{B} T{T} I{I} H{H}", ours, theirs

    q, k, v = (rng.standard_normal((4, 8, 128, 64)).astype(f32) for _ in range(3))
    do = rng.standard_normal(q.shape).astype(f32)

    def dk_drop():
        _, ctx = dk.scaled_dot_product_attention(q, k, v, dropout_p=0.1, seed=0, return_ctx=True)
        dk.scaled_dot_product_attention_backward(ctx, do)

    def torch_drop():
        torch.nn.functional.scaled_dot_product_attention(tt(q), tt(k), tt(v), dropout_p=0.1).backward(torch.tensor(do))

    yield "sdpa dropout fwd+bwd", "B4 H8 L128 D64", dk_drop, torch_drop
    kg, vg = k[:, :2].copy(), v[:, :2].copy()

    def dk_gqa():
        _, ctx = dk.scaled_dot_product_attention(q, kg, vg, enable_gqa=True, return_ctx=True)
        dk.scaled_dot_product_attention_backward(ctx, do)

    def torch_gqa():
        torch.nn.functional.scaled_dot_product_attention(tt(q), tt(kg), tt(vg), enable_gqa=True).backward(
            torch.tensor(do)
        )

    yield "sdpa gqa fwd+bwd", "B4 Hq8 Hkv2 L128 D64", dk_gqa, torch_gqa
    xn = rng.standard_normal((32, 64, 28, 28)).astype(f32)
    dn = rng.standard_normal(xn.shape).astype(f32)
    bn, tbn = dk.nn.BatchNorm2D(64), torch.nn.BatchNorm2d(64)

    def dk_bn():
        bn.forward(xn, training=True)
        bn.backward(dn)

    def torch_bn():
        tbn(tt(xn)).backward(torch.tensor(dn))

    yield "BatchNorm2D fwd+bwd", "N32 C64 28x28", dk_bn, torch_bn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    import deepkern as dk
    import torch

    torch.set_num_threads(1)
    dk.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    all_cases = list(cases(torch, dk, rng))
    for mode in harness.modes():
        print(
            f"\n== parity paths, 1 thread, CPU time, best of {args.repeats} [{mode}]  ({harness.machine_description()})"
        )
        print(f"{'op':32} {'shape':24} {'deepkern ms':>12} {'torch ms':>10} {'ratio':>7}")
        for name, shape, ours, theirs in all_cases:
            a, b = harness.cpu_time_pair(ours, theirs, args.repeats, mode=mode)
            rows.append(dict(op=name, shape=shape, mode=mode, deepkern_ms=a * 1e3, torch_ms=b * 1e3, ratio=a / b))
            print(f"{name:32} {shape:24} {a * 1e3:12.2f} {b * 1e3:10.2f} {a / b:7.2f}")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                dict(machine=harness.machine_description(), threads=1, timer="process_time, best of n", rows=rows),
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
