"""Side-by-side timing of deepkern and a peer (PyTorch) in one process, on the same inputs.

    from harness import Case, run_cases
    run_cases([Case("max_pool2d fwd+bwd", "32x64x64x64 f32", dk_fn, torch_fn, bytes=..., flops=...)],
              json_path="out/pooling.json")

Each case's two functions run interleaved (dk, peer, dk, peer, ...) after warm-up, so drift in
the machine's state (frequency, other load) hits both alike; the figure is the median.
"""

import json
import os
import platform
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


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def run_cases(cases, json_path=None, repeats=20, warmup=3, title="", sync=None):
    rows = []
    hdr = f"{'op':32s} {'shape':28s} {'deepkern ms':>12s} {'peer ms':>10s} {'speedup':>8s} {'GB/s':>8s} {'GFLOP/s':>9s}"
    if title:
        print(f"\n== {title}  ({machine_description()})")
    print(hdr)
    print("-" * len(hdr))
    for c in cases:
        t_dk, t_peer = time_interleaved(c.deepkern, c.peer, repeats=repeats, warmup=warmup, sync=sync)
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
            peer_gflop_per_s=(c.flops / t_peer / 1e9 if (c.flops and t_peer) else None),
            **c.extra,
        )
        rows.append(row)
        fmt = lambda v, f: (f % v) if v is not None else "-"  # noqa: E731
        print(
            f"{c.op:32s} {c.shape:28s} {t_dk * 1e3:12.3f} {fmt(row['peer_ms'], '%10.3f'):>10s} "
            f"{fmt(speedup, '%7.2fx'):>8s} {fmt(gbs, '%8.1f'):>8s} {fmt(gfs, '%9.1f'):>9s}"
        )
    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as f:
            json.dump({"machine": machine_description(), "title": title, "rows": rows}, f, indent=1)
    return rows


def torch_threads(n):
    """Pin torch's intra-op threads (imported lazily: torch is a benchmark-only dependency)."""
    import torch

    torch.set_num_threads(n)
    return torch
