"""Side-by-side timing of deepkern and a peer (PyTorch) in one process, on the same inputs.

    from harness import Case, run_cases
    run_cases([Case("max_pool2d fwd+bwd", "32x64x64x64 f32", dk_fn, torch_fn, bytes=..., flops=...)],
              json_path="out/pooling.json")

Two ways to time a pair (`--mode`, which every bench_*.py script takes through add_args/apply_args):
- interleaved (the default, as training runs): dk, peer, dk, peer, ... one call per sample after
  warm-up, so drift in the machine's state hits both alike and each library's allocations churn
  the allocator and page tables the other one sees;
- blocks: all of deepkern's calls, then all of the peer's (each library alone in a quiet process:
  its freed buffers are still in the allocator's hands on the next call).
`--mode both` prints one table per mode. The figure is the median. Every table's title line states
the machine: CPU model, the ISA path deepkern picked, logical CPUs, threads of each library. The
"flt" columns are each library's median minor page faults per call (getrusage ru_minflt): the
first touches of fresh memory, which a big newly allocated result costs on every call.
"""

import json
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Case:
    op: str
    shape: str
    deepkern: Callable[[], object]
    peer: Optional[Callable[[], object]] = None
    bytes: float = 0.0  # bytes moved by one call (for GB/s)
    flops: float = 0.0  # floating-point operations of one call (for GFLOP/s)
    peer_name: str = "torch"
    extra: dict = field(default_factory=dict)


def _time_once(fn, sync=None):
    t0 = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - t0


MODES = ("interleaved", "blocks")
_mode = ["interleaved"]  # the modes apply_args chose; each_mode() walks them


def add_args(ap):
    """The timing options every benchmark script shares (argparse parser)."""
    ap.add_argument(
        "--mode",
        default="interleaved",
        choices=MODES + ("both",),
        help="interleaved: dk, peer, dk, ... per call (as training runs); blocks: each library alone; both",
    )


def apply_args(args):
    _mode[:] = list(MODES) if args.mode == "both" else [args.mode]


def modes():
    return list(_mode)


def each_mode():
    """Yields each chosen mode, making it the one time_pair uses meanwhile."""
    chosen = list(_mode)
    try:
        for m in chosen:
            _mode[:] = [m]
            yield m
    finally:
        _mode[:] = chosen


def time_pair(fn_a, fn_b, repeats=20, warmup=3, min_time=0.0, sync=None, mode=None):
    """Median seconds of fn_a and fn_b (fn_b may be None) in `mode` (default: the first chosen)."""
    mode = mode or _mode[0]
    if mode == "interleaved" or fn_b is None:
        return time_interleaved(fn_a, fn_b, repeats, warmup, min_time, sync)
    if mode != "blocks":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    ta, _ = time_interleaved(fn_a, None, repeats, warmup, min_time, sync)
    tb, _ = time_interleaved(fn_b, None, repeats, warmup, min_time, sync)
    return ta, tb


def cpu_time_pair(fn_a, fn_b, repeats=9, warmup=2, mode=None):
    """Best process CPU seconds of fn_a and fn_b in `mode` (for 1-thread runs, where CPU time is
    the work done and does not grow when the scheduler takes the core away)."""
    mode = mode or _mode[0]

    def best(fns):
        for _ in range(warmup):
            for fn in fns:
                fn()
        ts = [[] for _ in fns]
        for _ in range(repeats):
            for fn, t in zip(fns, ts):
                t0 = time.process_time()
                fn()
                t.append(time.process_time() - t0)
        return [min(t) for t in ts]

    if mode == "interleaved":
        return tuple(best([fn_a, fn_b]))
    return best([fn_a])[0], best([fn_b])[0]


def time_interleaved(fn_a, fn_b, repeats=20, warmup=3, min_time=0.0, sync=None):
    """Median seconds of fn_a and fn_b (fn_b may be None), called alternately."""
    for _ in range(warmup):
        fn_a()
        if fn_b is not None:
            fn_b()
    ta, tb = [], []
    t_start = time.perf_counter()
    while len(ta) < repeats or (time.perf_counter() - t_start) < min_time:
        ta.append(_time_once(fn_a, sync))
        if fn_b is not None:
            tb.append(_time_once(fn_b, sync))
        if len(ta) >= 10 * repeats:
            break
    return statistics.median(ta), (statistics.median(tb) if tb else None)


def _threads():
    """deepkern's ISA path and thread count, and torch's threads when torch is loaded."""
    import sys

    parts = []
    dk = sys.modules.get("deepkern")
    if dk is not None:
        try:
            parts.append(f"deepkern ISA {dk._cpu.isa()}, {dk.get_num_threads()} dk threads")
        except Exception:  # pragma: no cover - a build without the CPU module
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            cap = torch.backends.cpu.get_cpu_capability()  # ATen's vector path (ATEN_CPU_CAPABILITY caps it)
        except Exception:  # pragma: no cover - an older torch
            cap = "?"
        parts.append(f"{torch.get_num_threads()} torch threads (ATen {cap})")
    return ", ".join(parts)


def machine_description():
    """CPU model with its family/model numbers (a VM may name only "AMD EPYC": family 25 is Zen 3/4,
    26 is Zen 5, with very different vector throughput), logical CPUs, OS, and the libraries' threads."""
    cpu = platform.processor() or platform.machine()
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in info:
                    info[key] = value.strip()
                if not line.strip():
                    break  # the first processor's block is enough
    except OSError:
        pass
    if "model name" in info:
        cpu = info["model name"]
        if "cpu family" in info:
            cpu += f" (family {info['cpu family']} model {info.get('model', '?')})"
    desc = f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"
    extra = _threads()
    return f"{desc}; {extra}" if extra else desc


def run_cases(cases, json_path=None, repeats=20, warmup=3, title="", sync=None):
    """One table per chosen mode (apply_args); rows carry their mode; the JSON holds them all."""
    rows = []
    for mode in modes():
        rows += _run_table(cases, repeats, warmup, f"{title} [{mode}]" if title else f"[{mode}]", sync, mode)
    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump({"machine": machine_description(), "title": title, "modes": modes(), "rows": rows}, f, indent=1)
    return rows


def _minflt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _counted(fn, faults):
    """fn, appending each call's minor page faults (first touches of fresh memory) to `faults`."""
    if fn is None:
        return None

    def call():
        f0 = _minflt()
        r = fn()
        faults.append(_minflt() - f0)
        return r

    return call


def _run_table(cases, repeats, warmup, title, sync, mode):
    rows = []
    hdr = (
        f"{'op':32s} {'shape':28s} {'deepkern ms':>12s} {'peer ms':>10s} {'speedup':>8s} {'GB/s':>8s} {'GFLOP/s':>9s}"
        f" {'dk flt':>7s} {'peer flt':>8s}"
    )
    print(f"\n== {title}  ({machine_description()})")
    print(hdr)
    print("-" * len(hdr))
    for c in cases:
        f_dk, f_peer = [], []
        t_dk, t_peer = time_pair(
            _counted(c.deepkern, f_dk), _counted(c.peer, f_peer), repeats=repeats, warmup=warmup, sync=sync, mode=mode
        )
        flt_dk = statistics.median(f_dk[warmup:] or f_dk)
        flt_peer = statistics.median(f_peer[warmup:] or f_peer) if f_peer else None
        speedup = (t_peer / t_dk) if t_peer else None
        gbs = c.bytes / t_dk / 1e9 if c.bytes else None
        gfs = c.flops / t_dk / 1e9 if c.flops else None
        row = dict(
            op=c.op,
            shape=c.shape,
            deepkern_ms=t_dk * 1e3,
            peer=c.peer_name,
            peer_ms=(t_peer * 1e3 if t_peer else None),
            speedup=speedup,
            gb_per_s=gbs,
            gflop_per_s=gfs,
            mode=mode,
            minflt_per_call=flt_dk,
            peer_minflt_per_call=flt_peer,
            peer_gflop_per_s=(c.flops / t_peer / 1e9 if (c.flops and t_peer) else None),
            **c.extra,
        )
        rows.append(row)
        fmt = lambda v, f: (f % v) if v is not None else "-"  # noqa: E731
        print(
            f"{c.op:32s} {c.shape:28s} {t_dk * 1e3:12.3f} {fmt(row['peer_ms'], '%10.3f'):>10s} "
            f"{fmt(speedup, '%7.2fx'):>8s} {fmt(gbs, '%8.1f'):>8s} {fmt(gfs, '%9.1f'):>9s}"
            f" {flt_dk:7.0f} {fmt(flt_peer, '%8.0f'):>8s}"
        )
    return rows


def torch_threads(n):
    """Pin torch's intra-op threads (imported lazily: torch is a benchmark-only dependency)."""
    import torch

    torch.set_num_threads(n)
    return torch
