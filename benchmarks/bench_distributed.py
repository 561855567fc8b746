"""Data-parallel scaling from 1 to 2 processes (1 thread each) and MPI all-reduce bandwidth.

    python benchmarks/bench_distributed.py [--quick] [--json benchmarks/out/distributed.json]

The driver starts `mpiexec -n 1` and `mpiexec -n 2` jobs of this file (--worker) and prints:
- per model, the training-step time of one process and of 2 processes through
  deepkern.distributed.DataParallel (bucketed, non-blocking all-reduce overlapped with the
  backward), weak scaling (the same per-rank batch, so the global batch doubles) and strong
  scaling (the same global batch, halved per rank); efficiency = T1 / T2 (weak) and
  T1 / (2 * T2) (strong); "no comm" is the same 2-process step with the all-reduce left out, which
  separates the cost of communication from that of two processes sharing the machine;
- the all-reduce time and bus bandwidth from 4 KB to 64 MB (float32, MPI_Allreduce, 2 ranks) and
  the alpha-beta fit t(n) = 2(N-1) alpha + 2 (N-1)/N n beta of the ring algorithm, which
  docs/DISTRIBUTED.md uses to predict 8, 64 and 512 ranks (and the same bytes with
  log2(N) latency steps, as MPI's recursive-halving algorithms have).
Times are medians of wall-clock and of CPU time (process_time: less distorted by other load).

Models: the main CNN (LeNet-5 shape, 1x28x28, as benchmarks/bench_training.py) and the LSTM LM
of benchmarks/bench_lstm_lm.py (Embedding -> 2-layer LSTM -> Dense over every position).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build(kind, dtype=np.float32):
    import deepkern as dk

    nn = dk.nn
    nn.manual_seed(0)
    if kind == "cnn":
        return nn.Sequential(
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
    V, E, H = LSTM_SHAPE[2:]
    return nn.Sequential([nn.Embedding(V, E), nn.LSTM(E, H, num_layers=2, return_sequences=True), nn.Dense(H, V)])


LSTM_SHAPE = (20, 20, 1000, 128, 128)  # B, T, V, E, H: bench_lstm_lm.py's second configuration
BATCH = {"cnn": 64, "lstm": LSTM_SHAPE[0]}


def data(kind, n, rng):
    if kind == "cnn":
        return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)
    T, V = LSTM_SHAPE[1], LSTM_SHAPE[2]
    seq = rng.integers(0, V, (n, T + 1))
    return seq[:, :-1], seq[:, 1:]


def _median_step(step, repeats, comm):
    for _ in range(3):
        step()
    walls, cpus = [], []
    for _ in range(repeats):
        comm.Barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), min(walls)


def worker(args):
    import deepkern as dk
    from deepkern import distributed as dist

    dk.set_num_threads(1)
    dist.init()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    r, n = dist.rank(), dist.world_size()
    res = {"ranks": n, "models": {}, "allreduce": []}
    loss = dk.nn.SoftmaxCrossEntropy()
    for kind in ("cnn", "lstm"):
        model = build(kind)
        opt = dk.optim.SGD(model, lr=0.01, momentum=0.9)
        dp = dist.DataParallel(model)
        nbytes = sum(p.value.nbytes for p in model.parameters())
        entry = {"params": sum(p.size for p in model.parameters()), "grad_bytes": nbytes, "buckets": len(dp._buckets)}
        rng = np.random.default_rng(r)
        for mode, global_batch in (("weak", BATCH[kind] * n), ("strong", BATCH[kind])):
            if n == 1 and mode == "strong":
                continue
            x, y = data(kind, global_batch, rng)
            idx = np.arange(global_batch)
            mine = dp.shard(idx)
            xb, yb = x[mine], y[mine]

            def dp_step():
                model.zero_grad()
                loss.forward(model.forward(xb), yb)
                dp.backward(loss.backward())
                opt.step()

            def local_step():
                model.train_step(xb, yb, loss, opt)

            entry[f"{mode}_dp"] = _median_step(dp_step, args.repeats, comm)
            entry[f"{mode}_local"] = _median_step(local_step, args.repeats, comm)
            entry[f"{mode}_local_batch"] = len(mine)
        res["models"][kind] = entry
    if n > 1:
        t = MPI.FLOAT
        for p in range(12, 27 if not args.quick else 23, 2):
            count = (1 << p) // 4
            a = np.ones(count, dtype=np.float32)
            out = np.empty_like(a)
            reps = max(5, min(200, (1 << 24) // (1 << p) * 5))
            for _ in range(3):
                comm.Allreduce([a, t], [out, t])
            ts = []
            for _ in range(reps):
                comm.Barrier()
                t0 = time.perf_counter()
                comm.Allreduce([a, t], [out, t])
                ts.append(time.perf_counter() - t0)
            res["allreduce"].append({"bytes": 1 << p, "seconds": statistics.median(ts)})
    if r == 0:
        with open(args.out, "w") as f:
            json.dump(res, f)


def fit_alpha_beta(points, n):
    """Least squares of t = 2(n-1) alpha + 2(n-1)/n bytes beta over the measured sizes."""
    A = np.array([[2 * (n - 1), 2 * (n - 1) / n * p["bytes"]] for p in points])
    t = np.array([p["seconds"] for p in points])
    (alpha, beta), *_ = np.linalg.lstsq(A / t[:, None], np.ones_like(t), rcond=None)  # relative error
    return float(alpha), float(beta)


# An assumed cluster network for the predictions (one rank per node): 100 Gb/s InfiniBand-class
# links, 12.5 GB/s per direction, and 5 us per message step. Not measured here.
NETWORK = {"alpha": 5e-6, "beta": 1 / 12.5e9}


def ring_time(n, nbytes, buckets, alpha, beta):
    """Ring all-reduce of nbytes in `buckets` messages over n ranks: each bucket pays 2(n-1) steps
    of latency; the bytes cross each link 2(n-1)/n times in all."""
    return buckets * 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes * beta


def rabenseifner_time(n, nbytes, buckets, alpha, beta):
    """Reduce-scatter + all-gather by recursive halving/doubling (what MPI libraries pick for
    many ranks): 2 log2(n) latency steps per bucket, the same bytes as the ring."""
    return buckets * 2 * np.log2(n) * alpha + 2 * (n - 1) / n * nbytes * beta


def predict(one, two, summary, alpha, beta):
    """Weak-scaling efficiency T_c / (T_c + T_ar(N)) (no overlap: a lower bound) and
    T_c / max(T_c, T_ar(N)) (all of the all-reduce hidden: an upper bound), T_c = the one-process
    step at the per-rank batch (its CPU time); plus the 2-rank check: T_c2 (2 processes, no comm) + T_ar(2)
    against the measured 2-rank step."""
    out = {}
    print("\nPredicted weak-scaling efficiency (per-rank batch as above), ring all-reduce, alpha-beta model")
    print(
        f"{'model':6} {'network':28} {'N':>4} {'T_ar ms':>8} {'no overlap':>10} {'full overlap':>12} "
        f"{'log-latency T_ar ms':>19} {'no overlap':>10}"
    )
    for kind in ("cnn", "lstm"):
        m = one["models"][kind]
        tc = summary[f"{kind}_weak"]["cpu1"]  # one thread, CPU-bound: its CPU time is the unloaded wall time
        G, k = m["grad_bytes"], two["models"][kind]["buckets"]
        sm = summary[f"{kind}_weak"]
        tar2 = ring_time(2, G, k, alpha, beta)
        check = {"T_ar(2)": tar2}
        for what, key in (("median wall", ""), ("median CPU", "cpu"), ("fastest wall", "min")):
            nocomm, meas = sm[f"{key or 't'}2_nocomm"], sm[f"{key or 't'}2"]
            check[what] = {"predicted": nocomm + tar2, "measured": meas}
        out[kind] = {"check_2_ranks": check}
        for name, a, b in [
            ("this machine (measured a, b)", alpha, beta),
            ("assumed 100 Gb/s IB, 5 us", NETWORK["alpha"], NETWORK["beta"]),
        ]:
            for n in (8, 64, 512):
                tar = ring_time(n, G, k, a, b)
                lo, hi = tc / (tc + tar), tc / max(tc, tar)
                trd = rabenseifner_time(n, G, k, a, b)
                out[kind][f"{name}/{n}"] = {
                    "t_ar": tar,
                    "no_overlap": lo,
                    "full_overlap": hi,
                    "t_ar_log": trd,
                    "no_overlap_log": tc / (tc + trd),
                }
                print(
                    f"{kind:6} {name:28} {n:>4} {1e3 * tar:>8.3f} {lo:>10.2f} {hi:>12.2f} {1e3 * trd:>19.3f} "
                    f"{tc / (tc + trd):>10.2f}"
                )
        print(
            f"{kind:6} 2-rank check, weak, T_ar(2) = {1e3 * tar2:.3f} ms: predicted (2-process step without "
            "comm + T_ar(2)) vs measured, ms: "
            + ", ".join(
                f"{w} {1e3 * c['predicted']:.2f} vs {1e3 * c['measured']:.2f}"
                for w, c in check.items()
                if w != "T_ar(2)"
            )
        )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", default=os.path.join(HERE, "out", "distributed.json"))
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    if args.mode != "interleaved":
        print("note: --mode has no effect here (each workload runs alone in its own process)")
    if args.worker:
        return worker(args)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    runs = {}
    load0 = os.getloadavg()
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            cmd = [
                mpiexec,
                "-n",
                str(n),
                sys.executable,
                __file__,
                "--worker",
                "--out",
                out,
                "--repeats",
                str(args.repeats),
            ] + (["--quick"] if args.quick else [])
            subprocess.run(cmd, check=True, env=env)
            with open(out) as f:
                runs[n] = json.load(f)
    load1 = os.getloadavg()
    one, two = runs[1], runs[2]
    print(
        f"\nData-parallel training step, 1 thread per process (float32 SGD momentum); load average "
        f"{load0[0]:.1f} before, {load1[0]:.1f} after\n"
    )
    print("times in ms: median wall / median CPU / fastest wall of the timed steps; efficiency from each")
    print(
        f"{'model':6} {'params':>9} {'mode':6} {'batch/rank':>10} {'1 process':>20} {'2 processes':>20} "
        f"{'2 proc, no comm':>20} {'efficiency':>16}"
    )
    summary = {}

    def ms(t):
        return "/".join(f"{1e3 * v:.2f}" for v in t)

    for kind in ("cnn", "lstm"):
        m1, m2 = one["models"][kind], two["models"][kind]
        for mode in ("weak", "strong"):
            one_t = m1["weak_local"]  # one process, no DataParallel: the baseline step
            two_t, local_t = m2[f"{mode}_dp"], m2[f"{mode}_local"]
            k = 1 if mode == "weak" else 2
            eff = [a / (k * b) for a, b in zip(one_t, two_t)]
            summary[f"{kind}_{mode}"] = {
                "t1": one_t[0],
                "t2": two_t[0],
                "t2_nocomm": local_t[0],
                "cpu1": one_t[1],
                "cpu2": two_t[1],
                "cpu2_nocomm": local_t[1],
                "min1": one_t[2],
                "min2": two_t[2],
                "min2_nocomm": local_t[2],
                "efficiency": eff[0],
                "efficiency_cpu": eff[1],
                "efficiency_min": eff[2],
            }
            print(
                f"{kind:6} {m1['params']:>9,} {mode:6} {m2[f'{mode}_local_batch']:>10} {ms(one_t):>20} "
                f"{ms(two_t):>20} {ms(local_t):>20} {'/'.join(f'{e:.2f}' for e in eff):>16}"
            )
    n = 2
    # fitted over the message sizes DataParallel sends (buckets of ~1 MB and below)
    alpha, beta = fit_alpha_beta([p for p in two["allreduce"] if p["bytes"] <= (1 << 20)], n)
    print(f"\nMPI_Allreduce, {n} ranks on this machine (float32, median)\n")
    print(f"{'bytes':>10} {'ms':>9} {'bus GB/s':>9} {'model ms':>9}")
    for p in two["allreduce"]:
        model_t = 2 * (n - 1) * alpha + 2 * (n - 1) / n * p["bytes"] * beta
        bus = 2 * (n - 1) / n * p["bytes"] / p["seconds"] / 1e9
        print(f"{p['bytes']:>10} {1e3 * p['seconds']:>9.3f} {bus:>9.2f} {1e3 * model_t:>9.3f}")
    print(
        f"\nalpha = {1e6 * alpha:.2f} us, beta = {1e9 * beta:.4f} ns/byte ({1 / beta / 1e9:.2f} GB/s), "
        "fitted over 4 KB..1 MB"
    )
    predictions = predict(one, two, summary, alpha, beta)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(
            {
                "machine": platform.platform(),
                "processor": platform.processor(),
                "load_before": load0,
                "load_after": load1,
                "runs": runs,
                "summary": summary,
                "alpha": alpha,
                "beta": beta,
                "predictions": predictions,
            },
            f,
            indent=1,
        )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
