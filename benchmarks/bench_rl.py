"""Vectorised batch mode vs sequential runs: rl.batch_train(R runs) against R calls of rl.train.

    PYTHONPATH=python python3 benchmarks/bench_rl.py [--runs 1000] [--seq-runs 40] [--full]

Both sides are pure Python + numpy, single-threaded (numpy's element-wise ops do not use threads;
no BLAS call is involved), so the "2 threads" convention has nothing to pin. Sequential runs are
independent and each costs the same in expectation, so the sequential time of R runs is measured
on --seq-runs of them and scaled by R / seq_runs (--full also times all R sequentially for the first
case, to check the scaling). Timings are medians of interleaved repeats (benchmarks/harness.py).

Floor of the batch mode: each lock-step costs about 30 numpy calls (~1 us of call overhead each)
plus ~250 bytes of array traffic per run (L2-resident at R = 1000, ~10 GB/s through numpy's
unfused element-wise loops): ~55 us per lock-step of 1000 runs, i.e. ~18 M run-steps/s. The
sequential loop's floor is Python's own overhead, ~3-5 us per step (act + env.step + update).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from deepkern import rl  # noqa: E402
from harness import machine_description, time_interleaved  # noqa: E402

CLS = {"q_learning": rl.QLearning, "sarsa": rl.SARSA, "expected_sarsa": rl.ExpectedSARSA}

CASES = [  # (label, env factory, agent, episodes, kwargs)
    ("CliffWalking", rl.CliffWalking, "q_learning", 100, dict(alpha=0.5, gamma=1.0, epsilon=0.1)),
    ("CliffWalking", rl.CliffWalking, "sarsa", 100, dict(alpha=0.5, gamma=1.0, epsilon=0.1)),
    ("CliffWalking", rl.CliffWalking, "expected_sarsa", 100, dict(alpha=0.5, gamma=1.0, epsilon=0.1)),
    ("WindyGridworld", rl.WindyGridworld, "sarsa", 100, dict(alpha=0.5, gamma=1.0, epsilon=0.1)),
    (
        "FrozenLake 4x4 slippery",
        rl.FrozenLake,
        "q_learning",
        300,
        dict(alpha=0.1, gamma=0.99, epsilon=1.0, epsilon_decay=0.99, epsilon_min=0.05),
    ),
]


def sequential(make, kind, runs, episodes, kw, seed0=0):
    env = make()
    steps = 0
    for i in range(runs):
        agent = CLS[kind](env.observation_space.n, env.action_space.n, seed=seed0 + i, **kw)
        _, lengths = rl.train(env, agent, episodes, seed=10_000 + seed0 + i, return_lengths=True)
        steps += int(lengths.sum())
    return steps


def table(args, mode):
    """The batch vs sequential table in one timing mode; returns its rows."""
    R, n_seq = args.runs, args.seq_runs
    print(f"== rl.batch_train (R={R}) vs R x rl.train [{mode}]  ({machine_description()})")
    hdr = (
        f"{'env':24s} {'agent':15s} {'episodes':>8s} {'batch s':>8s} {'seq s (R runs)':>15s} {'speedup':>8s} "
        f"{'batch Msteps/s':>14s} {'seq Msteps/s':>12s}"
    )
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for label, make, kind, episodes, kw in CASES:
        env = make()
        info = {}

        def run_batch():
            _, L = rl.batch_train(env, kind, R, episodes, seed=1, env_seed=2, return_lengths=True, **kw)
            info["batch_steps"] = int(L.sum())

        def run_seq():
            info["seq_steps"] = sequential(make, kind, n_seq, episodes, kw)

        t_batch, t_seq = harness.time_pair(run_batch, run_seq, repeats=args.repeats, warmup=1, mode=mode)
        t_seq_R = t_seq * R / n_seq
        seq_rate = info["seq_steps"] / t_seq / 1e6
        batch_rate = info["batch_steps"] / t_batch / 1e6
        row = dict(
            env=label,
            agent=kind,
            mode=mode,
            episodes=episodes,
            runs=R,
            seq_runs_timed=n_seq,
            batch_s=t_batch,
            seq_s_scaled=t_seq_R,
            speedup=t_seq_R / t_batch,
            batch_msteps_per_s=batch_rate,
            seq_msteps_per_s=seq_rate,
        )
        rows.append(row)
        print(
            f"{label:24s} {kind:15s} {episodes:8d} {t_batch:8.3f} {t_seq_R:15.2f} {row['speedup']:7.1f}x "
            f"{batch_rate:14.2f} {seq_rate:12.3f}"
        )
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seq-runs", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also time all R runs sequentially for the first case")
    ap.add_argument("--sweep", action="store_true", help="batch throughput against R (CliffWalking, Q-learning)")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "out", "rl.json"))
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    R = args.runs
    rows = []
    for mode in harness.each_mode():
        rows += table(args, mode)
    if args.full:
        label, make, kind, episodes, kw = CASES[0]
        t0 = time.perf_counter()
        sequential(make, kind, R, episodes, kw)
        t_full = time.perf_counter() - t0
        rows[0]["seq_s_full"] = t_full
        print(
            f"\nfull check, {label} {kind}: all {R} runs sequentially took {t_full:.2f} s "
            f"(scaled estimate {rows[0]['seq_s_scaled']:.2f} s); speedup {t_full / rows[0]['batch_s']:.1f}x"
        )
    if args.sweep:
        print("\nbatch throughput against R (CliffWalking, q_learning, 100 episodes):")
        env = rl.CliffWalking()
        for runs in (1, 10, 100, 1000, 10000):
            info = {}

            def run_sweep():
                _, L = rl.batch_train(env, "q_learning", runs, 100, seed=1, return_lengths=True)
                info["steps"] = int(L.sum())

            t, _ = time_interleaved(run_sweep, None, repeats=args.repeats, warmup=1)
            rows.append(dict(sweep_runs=runs, batch_s=t, batch_msteps_per_s=info["steps"] / t / 1e6))
            print(f"  R={runs:6d}: {t:8.3f} s, {info['steps'] / t / 1e6:6.2f} M run-steps/s")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"machine": machine_description(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
