"""A shared machine: small training jobs with one other process keeping one core busy.

    python benchmarks/bench_busy.py [--repeats 5] [--baseline OTHER/python] [--json benchmarks/out/busy.json]

Two workloads, each timed in a fresh process (OpenMP reads its settings once, at start):
- a small LSTM `fit`: LSTM(1 -> 32) + Dense(32 -> 1) on 2,048 sequences of 20 steps, MSE, Adam,
  batch 32, 8 epochs;
- 60 LeNet training steps (batch 64, as benchmarks/bench_training.py), right after 3 warm-up steps
  (`lenet_steps`: a job that has just started pays the busy-machine detector's first decision,
  10-30 ms) and after 0.4 s of steps (`lenet_steady`: a training loop already running).
Each is run quiet and with a busy neighbour (a process spinning on one core for the whole run),
under the library's default threading (small kernels on the calling thread, csrc/cpu/common/parallel.h;
a bounded spin, python/deepkern/_openmp_env.py) and under the variants one could choose instead.
The table gives seconds (median of repeats) and busy/quiet ratios; the target is busy/quiet <= 1.5
for the default, and the default losing <= 5% on the quiet machine. A VM's host may take CPU time
from the guest itself (steal): the last column gives its share during each variant's runs, quiet and
busy, since a "quiet" run under host steal is not quiet.

Then a quiet check of single kernels at the benchmark tables' sizes, small to large (`kernels`,
2 threads, median wall microseconds), each called back to back ("blocks") and round-robin after the
other kernels ("interleaved", as the ops of a training step follow each other): the default against
the busy-machine detection switched off (DEEPKERN_CONTENTION=off), every region threaded and one
thread, and, with --baseline, against another build of deepkern (its python/ folder, e.g. the
previous release), so the quiet cost of both mechanisms is measured, not assumed.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import machine_description  # noqa: E402

_LENET = """
import json, numpy as np, deepkern as dk
nn = dk.nn
nn.manual_seed(0)
m = nn.Sequential([nn.Conv2D(1, 6, 5), nn.ReLU(), nn.MaxPool2D(2), nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2),
                   nn.Flatten(), nn.Dense(256, 120), nn.ReLU(), nn.Dense(120, 84), nn.ReLU(), nn.Dense(84, 10)])
rng = np.random.default_rng(0)
x = rng.random((64, 1, 28, 28), dtype=np.float32); y = rng.integers(0, 10, 64)
opt = dk.optim.SGD(m, lr=0.01, momentum=0.9); loss = nn.SoftmaxCrossEntropy()
{warmup}
t0 = time.perf_counter()
for _ in range(60): m.train_step(x, y, loss, opt)
print("SECONDS", time.perf_counter() - t0)
print("STATE", json.dumps(getattr(dk._cpu, "_contention", dict)()))
"""
_WARMUP_STEPS = "import time\nfor _ in range(3): m.train_step(x, y, loss, opt)"
# a loop already running: the detector has settled
_WARMUP_LOOP = (
    "import time\nt_warm = time.perf_counter() + 0.4\nwhile time.perf_counter() < t_warm: m.train_step(x, y, loss, opt)"
)

WORKLOADS = {
    "lstm_fit": """
import json, numpy as np, deepkern as dk
rng = np.random.default_rng(0)
x = rng.standard_normal((2048, 20, 1)).astype(np.float32)
y = x.sum(axis=1) * 0.1
dk.nn.manual_seed(0)
m = dk.nn.Sequential([dk.nn.LSTM(1, 32), dk.nn.Dense(32, 1)])
m.fit(x[:32], y[:32], dk.nn.MSE(), dk.optim.Adam(m.parameters(), lr=1e-2), epochs=1, batch_size=32, progress=False)
import time; t0 = time.perf_counter()
m.fit(x, y, dk.nn.MSE(), dk.optim.Adam(m.parameters(), lr=1e-2), epochs=8, batch_size=32, progress=False)
print("SECONDS", time.perf_counter() - t0)
print("STATE", json.dumps(getattr(dk._cpu, "_contention", dict)()))
""",
    "lenet_steps": _LENET.format(warmup=_WARMUP_STEPS),
    "lenet_steady": _LENET.format(warmup=_WARMUP_LOOP),
    "kernels": """
import json, time, numpy as np, deepkern as dk
rng = np.random.default_rng(0)
f = lambda *s: rng.standard_normal(s).astype(np.float32)
cases = {}
for n in (64, 128, 256, 512, 1024):
    a, b, c = f(n, n), f(n, n), f(n, n)
    cases[f"gemm {n}^3"] = lambda a=a, b=b, c=c: dk._cpu.gemm(a, b, c)
for name, xs, ws in [("conv lenet1", (64, 1, 28, 28), (6, 1, 5, 5)), ("conv lenet2", (64, 6, 12, 12), (16, 6, 5, 5)),
                     ("conv 32x32 c32", (16, 32, 32, 32), (32, 32, 3, 3)), ("conv 56x56 c64", (8, 64, 56, 56), (64, 64, 3, 3))]:
    x, w = f(*xs), f(*ws)
    y, ctx = dk.conv2d(x, w, padding=0, return_ctx=True); dy = f(*y.shape)
    cases[name + " fwd"] = lambda x=x, w=w: dk.conv2d(x, w)
    cases[name + " bwd"] = lambda ctx=ctx, dy=dy: dk.conv2d_backward(ctx, dy)
for name, xs in [("maxpool 64x6x24x24", (64, 6, 24, 24)), ("maxpool 64x16x8x8", (64, 16, 8, 8)), ("maxpool 32x64x56x56", (32, 64, 56, 56))]:
    x = f(*xs)
    cases[name] = lambda x=x: dk.max_pool2d(x, 2)
for T, B, I, H in [(20, 32, 1, 32), (32, 16, 128, 256), (64, 64, 256, 512)]:
    x, wi, wh = f(T, B, I), f(4 * H, I) * 0.1, f(4 * H, H) * 0.1
    (y, hT, cT), ctx = dk.lstm(x, None, None, wi, wh, return_ctx=True); dy = f(*y.shape)
    cases[f"lstm T{T} B{B} H{H} fwd"] = lambda x=x, wi=wi, wh=wh: dk.lstm(x, None, None, wi, wh)
    cases[f"lstm T{T} B{B} H{H} bwd"] = lambda ctx=ctx, dy=dy: dk.lstm_backward(ctx, dy)
for B, L, D in [(4, 32, 32), (8, 128, 64), (8, 512, 64)]:
    q, k, v = f(B, 4, L, D), f(B, 4, L, D), f(B, 4, L, D)
    cases[f"attention B{B} L{L} D{D}"] = lambda q=q, k=k, v=v: dk.scaled_dot_product_attention(q, k, v)
out = {}
for name, fn in cases.items():  # blocks: one kernel called back to back
    fn()
    reps = []
    t_end = time.perf_counter() + 0.25
    while len(reps) < 5 or (time.perf_counter() < t_end and len(reps) < 200):
        t0 = time.perf_counter(); fn(); reps.append(time.perf_counter() - t0)
    out[name + " [blocks]"] = float(np.median(reps)) * 1e6
reps = {name: [] for name in cases}
for _ in range(15):  # interleaved: each call follows another kernel's, as the ops of a training step do
    for name, fn in cases.items():
        t0 = time.perf_counter(); fn(); reps[name].append(time.perf_counter() - t0)
for name, r in reps.items():
    out[name + " [interleaved]"] = float(np.median(r)) * 1e6
print("JSON", json.dumps(out))
""",
}

VARIANTS = {
    "default": {},
    "contention detection off": {"DEEPKERN_CONTENTION": "off"},
    "every region threaded": {"DEEPKERN_PARALLEL_MIN_US": "0"},
    "warm rule off": {"DEEPKERN_PARALLEL_WARM_US": "100"},
    "threshold 50 us": {"DEEPKERN_PARALLEL_MIN_US": "50"},
    "threshold 25 us": {"DEEPKERN_PARALLEL_MIN_US": "25"},
    "default, spin 10k": {"GOMP_SPINCOUNT": "10000"},
    "default, libgomp spin 300k": {"GOMP_SPINCOUNT": "300000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}
BASELINE = "baseline build (default)"
_CLEAR = (
    "DEEPKERN_CONTENTION",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "OMP_NUM_THREADS",
    "DEEPKERN_PARALLEL_MIN_US",
    "DEEPKERN_PARALLEL_WARM_US",
    "DEEPKERN_WARM_WINDOW_US",
    "KMP_BLOCKTIME",
    "DEEPKERN_CONTENTION_SHARE",
    "DEEPKERN_CONTENTION_WINDOW_US",
    "DEEPKERN_CONTENTION_STRIKES",
)


def _spin(stop):
    while not stop.is_set():
        pass


def _run(code, env_extra, pythonpath=None):
    env = {k: v for k, v in os.environ.items() if k not in _CLEAR}
    env.update(env_extra)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("STATE"):  # the busy-machine detector's counts (csrc/cpu/common/contention.cpp)
            state = json.loads(line[5:])
            if state.get("windows"):
                DETECTOR.append(state["busy_windows"] / state["windows"])
    for line in out.stdout.splitlines():
        if line.startswith("SECONDS"):
            return float(line.split()[1])
        if line.startswith("JSON"):
            return json.loads(line[4:])
    raise RuntimeError(f"workload failed: {out.stderr.strip()[-400:]}")


DETECTOR = []  # per run: the share of the detector's windows that left regions on one thread


def stolen_ticks():
    """The host's steal so far, machine-wide clock ticks (/proc/stat; 0 where there is none)."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return 0


def steal_share(ticks0, t0):
    """Share of the machine's CPU time the VM's host took since (ticks0, t0)."""
    span = time.perf_counter() - t0
    return (stolen_ticks() - ticks0) / os.sysconf("SC_CLK_TCK") / (os.cpu_count() * span) if span > 0 else 0.0


def measure(workload, variant, busy, repeats, baseline=None):
    stop = multiprocessing.Event()
    neighbour = None
    if busy:
        neighbour = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
        neighbour.start()
        time.sleep(0.2)
    env, path = ({}, baseline) if variant == BASELINE else (VARIANTS[variant], None)
    ticks0, t0 = stolen_ticks(), time.perf_counter()
    try:
        seconds = statistics.median(_run(WORKLOADS[workload], env, path) for _ in range(repeats))
        return seconds, steal_share(ticks0, t0)
    finally:
        if neighbour is not None:
            stop.set()
            neighbour.join()


def kernels_table(variants, repeats, baseline):
    """Quiet, 2 threads (unless the variant says 1): each kernel's median wall time per variant (runs
    alternate, median of repeats). Below the threshold "default" runs on one thread and "every
    region threaded" on two: the pair is the 1-vs-2-thread comparison the threshold rests on."""
    runs = {v: [] for v in variants}
    for r in range(repeats):
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:  # rotated: no variant always first
            env, path = ({}, baseline) if v == BASELINE else (VARIANTS[v], None)
            runs[v].append(_run(WORKLOADS["kernels"], {"OMP_NUM_THREADS": "2", **env}, path))
    med = {v: {k: statistics.median(r[k] for r in runs[v]) for k in runs[v][0]} for v in variants}
    ref = variants[0]
    print(f"\nquiet kernels, 2 threads, median us of {repeats} alternating runs (ratio to '{ref}' in brackets)")
    print(f"{'kernel':28s} " + " ".join(f"{v[:28]:>30s}" for v in variants))
    for k in med[ref]:
        cells = [f"{med[v][k]:10.1f} ({med[v][k] / med[ref][k]:5.2f})" for v in variants]
        print(f"{k:28s} " + " ".join(f"{c:>30s}" for c in cells), flush=True)
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--workloads", nargs="*", default=["lstm_fit", "lenet_steps", "lenet_steady"])
    ap.add_argument(
        "--baseline", default=None, help="python/ folder of another deepkern build, run as one more variant"
    )
    ap.add_argument("--no-kernels", action="store_true", help="skip the quiet single-kernel table")
    ap.add_argument("--kernel-variants", nargs="*", default=None, help="variants of the kernel table")
    ap.add_argument(
        "--env",
        nargs="*",
        default=[],
        metavar="NAME=VAR=VALUE[,VAR=VALUE]",
        help="extra variants given as environment settings, e.g. 'window 5 ms=DEEPKERN_CONTENTION_WINDOW_US=5000'",
    )
    harness.add_args(ap)
    args = ap.parse_args()
    harness.apply_args(args)
    for spec in args.env:
        name, _, settings = spec.partition("=")
        VARIANTS[name] = dict(kv.split("=", 1) for kv in settings.split(","))
        if name not in args.variants:
            args.variants.append(name)
    if args.mode != "interleaved":
        print("note: --mode has no effect here (each workload runs alone in its own process)")
    variants = list(args.variants) + ([BASELINE] if args.baseline else [])
    print(f"busy-machine benchmark on {machine_description()}; {os.cpu_count()} cores; median of {args.repeats}")
    print(
        f"{'workload':12s} {'threading':28s} {'quiet s':>9s} {'busy s':>9s} {'busy/quiet':>11s}"
        "   one-thread windows quiet / busy   host steal quiet / busy"
    )
    rows = []
    for workload in args.workloads:
        for variant in variants:
            DETECTOR.clear()
            quiet, steal_q = measure(workload, variant, False, args.repeats, args.baseline)
            dq = statistics.median(DETECTOR) if DETECTOR else None
            DETECTOR.clear()
            busy, steal_b = measure(workload, variant, True, args.repeats, args.baseline)
            db = statistics.median(DETECTOR) if DETECTOR else None
            rows.append(
                {
                    "workload": workload,
                    "variant": variant,
                    "quiet_s": quiet,
                    "busy_s": busy,
                    "one_thread_windows": [dq, db],
                    "host_steal": [steal_q, steal_b],
                }
            )
            det = f"{dq:.2f} / {db:.2f}" if dq is not None and db is not None else "-"
            steal = f"{100 * steal_q:.1f}% / {100 * steal_b:.1f}%"
            print(
                f"{workload:12s} {variant:28s} {quiet:9.3f} {busy:9.3f} {busy / quiet:11.2f}   {det:>30s}   {steal}",
                flush=True,
            )
    kernels = None
    if not args.no_kernels:
        kv = args.kernel_variants or ["default", "contention detection off", "every region threaded", "1 thread"]
        kv = kv + ([BASELINE] if args.baseline else [])
        kernels = kernels_table(kv, max(3, args.repeats), args.baseline)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": machine_description(), "rows": rows, "kernels": kernels}, f, indent=1)


if __name__ == "__main__":
    main()
