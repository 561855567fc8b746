"""Side-by-side timing of deepkern and PyTorch on a CUDA GPU, in one process, on the same inputs.

    from gpu_harness import GpuCase, run_gpu_cases
    run_gpu_cases([GpuCase("max_pool2d 2x2 fwd+bwd", "64x128x112x112 f32", dk_fn, torch_fn,
                           bytes=..., ceiling="copy")],
                  json_path="out/pooling_cuda.json", title="pooling, GPU")

Each call is timed with CUDA events on its library's current stream (cupy.cuda.Event for
deepkern, torch.cuda.Event for the peer), after warm-up; the figure is the median of the repeats.
mode="interleaved" (default): dk, peer, dk, peer, ... one call per sample, so drift (clocks,
temperature) hits both alike. mode="blocks": each library alone, `block_calls` back-to-back calls
per sample (the queue stays full: launch gaps hidden). Percentages are of the H100 figures in
CEILINGS. Importing needs neither cupy nor torch; timing raises GpuUnavailable without them.
"""

import json
import os
import platform
import statistics
from dataclasses import dataclass, field
from typing import Callable, Optional

# H100 ceilings measured with PyTorch 2.11 (median of 20 runs); value, unit.
CEILINGS = {
    "copy": (2990.0, "GB/s"),  # device-to-device copy, bytes read + written
    "tc_fp16": (770.0, "TFLOP/s"),  # bf16 matmul 8192^3 (the fp16 tensor-core rate is the same)
    "tc_tf32": (420.0, "TFLOP/s"),  # TF32 matmul 8192^3
    "fp32": (51.0, "TFLOP/s"),  # plain FP32 matmul 8192^3
}
MODES = ("interleaved", "blocks")


class GpuUnavailable(RuntimeError):
    """Timing was asked for where cupy / torch CUDA / a device is missing."""


@dataclass
class GpuCase:
    op: str
    shape: str
    deepkern: Callable[[], object]
    peer: Optional[Callable[[], object]] = None
    bytes: float = 0.0  # bytes moved by one call (for GB/s)
    flops: float = 0.0  # floating-point operations of one call (for TFLOP/s)
    ceiling: Optional[str] = None  # key of CEILINGS for the "% of ceiling" column
    peer_name: str = "torch"
    other_peers: dict = field(default_factory=dict)  # {name: fn}, e.g. {"cudnn": fn}: timed, ratio reported
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------- clocks (one per library)
class CupyClock:
    """CUDA events on cupy's current stream (deepkern launches there)."""

    def __init__(self):
        try:
            import cupy as cp

            if cp.cuda.runtime.getDeviceCount() < 1:
                raise GpuUnavailable("gpu_harness: cupy sees no CUDA device")
        except ImportError as e:
            raise GpuUnavailable(f"gpu_harness: timing deepkern needs cupy with a CUDA device ({e})") from e
        except GpuUnavailable:
            raise
        except Exception as e:  # cupy's CUDARuntimeError when no driver / device
            raise GpuUnavailable(f"gpu_harness: cupy cannot reach a CUDA device ({e})") from e
        self.cp = cp

    def event(self):
        return self.cp.cuda.Event()

    def record(self, ev):
        ev.record(self.cp.cuda.get_current_stream())

    def elapsed_ms(self, start, end):
        end.synchronize()
        return self.cp.cuda.get_elapsed_time(start, end)

    def sync(self):
        self.cp.cuda.get_current_stream().synchronize()


class TorchClock:
    """CUDA events on torch's current stream."""

    def __init__(self):
        try:
            import torch
        except ImportError as e:
            raise GpuUnavailable(f"gpu_harness: timing the peer needs torch with CUDA ({e})") from e
        if not torch.cuda.is_available():
            raise GpuUnavailable("gpu_harness: torch.cuda.is_available() is False (CPU build or no device)")
        self.torch = torch

    def event(self):
        return self.torch.cuda.Event(enable_timing=True)

    def record(self, ev):
        ev.record()

    def elapsed_ms(self, start, end):
        end.synchronize()
        return start.elapsed_time(end)

    def sync(self):
        self.torch.cuda.synchronize()


def _sample(fn, clock, calls):
    start, end = clock.event(), clock.event()
    clock.record(start)
    for _ in range(calls):
        fn()
    clock.record(end)
    return clock.elapsed_ms(start, end) / calls


def time_gpu(fns, clocks, repeats=20, warmup=3, mode="interleaved", block_calls=10):
    """{name: [ms per call, one per repeat]} for {name: fn}, each timed on clocks[name]."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if repeats < 1 or warmup < 0 or block_calls < 1:
        raise ValueError(
            f"repeats >= 1, warmup >= 0, block_calls >= 1 expected, got {repeats}, {warmup}, {block_calls}"
        )
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        clocks[name].sync()
    times = {name: [] for name in fns}
    if mode == "interleaved":
        for _ in range(repeats):
            for name, fn in fns.items():
                times[name].append(_sample(fn, clocks[name], 1))
    else:
        for name, fn in fns.items():
            for _ in range(repeats):
                times[name].append(_sample(fn, clocks[name], block_calls))
            clocks[name].sync()
    return times


# ---------------------------------------------------------------- pure parts: stats, rows, table, JSON
def summarize(ms):
    """Median, min, max and spread (max-min over median) of per-call milliseconds."""
    if not ms:
        raise ValueError("summarize: no samples")
    med = statistics.median(ms)
    return {
        "median_ms": med,
        "min_ms": min(ms),
        "max_ms": max(ms),
        "n": len(ms),
        "spread": (max(ms) - min(ms)) / med if med > 0 else 0.0,
    }


def make_row(case, times):
    """One result row from {name: [ms]} with 'deepkern', optionally the peer and other peers."""
    dk = summarize(times["deepkern"])
    t = dk["median_ms"] / 1e3
    row = {
        "op": case.op,
        "shape": case.shape,
        "deepkern_ms": dk["median_ms"],
        "deepkern_stats": dk,
        "peer": case.peer_name if case.peer is not None else None,
        "peer_ms": None,
        "speedup": None,
        "gb_per_s": case.bytes / t / 1e9 if case.bytes and t > 0 else None,
        "tflop_per_s": case.flops / t / 1e12 if case.flops and t > 0 else None,
        "peer_tflop_per_s": None,
        "ceiling": case.ceiling,
        "pct_of_ceiling": None,
        "other_peers": {},
        **case.extra,
    }
    if case.peer is not None:
        p = summarize(times[case.peer_name])
        row["peer_ms"], row["peer_stats"] = p["median_ms"], p
        row["speedup"] = p["median_ms"] / dk["median_ms"] if dk["median_ms"] > 0 else None
        if case.flops and p["median_ms"] > 0:
            row["peer_tflop_per_s"] = case.flops / (p["median_ms"] / 1e3) / 1e12
    for name in case.other_peers:
        o = summarize(times[name])
        row["other_peers"][name] = {"ms": o["median_ms"], "speedup": o["median_ms"] / dk["median_ms"], "stats": o}
    if case.ceiling is not None:
        if case.ceiling not in CEILINGS:
            raise ValueError(f"{case.op}: unknown ceiling {case.ceiling!r} (known: {', '.join(CEILINGS)})")
        value, unit = CEILINGS[case.ceiling]
        rate = row["gb_per_s"] if unit == "GB/s" else row["tflop_per_s"]
        row["pct_of_ceiling"] = 100.0 * rate / value if rate is not None else None
    return row


def _fmt(v, f):
    return (f % v) if v is not None else "-"


def format_table(rows, gpu="", title=""):
    head = (
        f"{'op':36s} {'shape':26s} {'deepkern ms':>11s} {'peer ms':>9s} {'speedup':>8s} {'GB/s':>8s} "
        f"{'TFLOP/s':>8s} {'% ceil':>7s}  others"
    )
    lines = []
    if title or gpu:
        lines.append(f"== {title}  ({gpu})" if gpu else f"== {title}")
    lines += [head, "-" * len(head)]
    for r in rows:
        others = ", ".join(f"{n} {o['ms']:.3f} ms ({o['speedup']:.2f}x)" for n, o in r["other_peers"].items())
        pct = _fmt(r["pct_of_ceiling"], "%6.1f%%") + (f" {r['ceiling']}" if r["pct_of_ceiling"] is not None else "")
        lines.append(
            f"{r['op']:36s} {r['shape']:26s} {r['deepkern_ms']:11.3f} {_fmt(r['peer_ms'], '%9.3f'):>9s} "
            f"{_fmt(r['speedup'], '%7.2fx'):>8s} {_fmt(r['gb_per_s'], '%8.1f'):>8s} "
            f"{_fmt(r['tflop_per_s'], '%8.1f'):>8s} {pct:>7s}  {others}".rstrip()
        )
    return "\n".join(lines)


def write_json(path, rows, gpu="", title="", mode="interleaved", repeats=None, extra=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    doc = {
        "gpu": gpu,
        "host": platform.node(),
        "title": title,
        "mode": mode,
        "repeats": repeats,
        "ceilings": {k: {"value": v, "unit": u} for k, (v, u) in CEILINGS.items()},
        "ceilings_note": "H100, PyTorch 2.11, median of 20 runs",
        "rows": rows,
        **(extra or {}),
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return doc


def gpu_name():
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import cupy as cp

        name = cp.cuda.runtime.getDeviceProperties(0)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001  (no cupy or no device: the name is only a label)
        return "unknown GPU"


# ---------------------------------------------------------------- the whole run
def run_gpu_cases(
    cases, json_path=None, repeats=20, warmup=3, title="", mode="interleaved", block_calls=10, clocks=None, gpu=None
):
    """Times every case, prints the table, writes JSON; returns the rows. clocks: {"cupy": .., "torch": ..}
    (default: CUDA event clocks, which raise GpuUnavailable without cupy, torch CUDA or a device)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if clocks is None:
        clocks = {"cupy": CupyClock(), "torch": TorchClock()}
    gpu = gpu or gpu_name()
    rows = []
    print(format_table([], gpu, title + f" [{mode}]"))
    for c in cases:
        fns = {"deepkern": c.deepkern}
        per = {"deepkern": clocks["cupy"]}
        if c.peer is not None:
            fns[c.peer_name], per[c.peer_name] = c.peer, clocks["torch"]
        for name, fn in c.other_peers.items():
            fns[name], per[name] = fn, clocks["torch"]
        rows.append(make_row(c, time_gpu(fns, per, repeats=repeats, warmup=warmup, mode=mode, block_calls=block_calls)))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    if json_path:
        write_json(json_path, rows, gpu=gpu, title=title, mode=mode, repeats=repeats)
    return rows
