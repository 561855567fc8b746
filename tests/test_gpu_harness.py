"""benchmarks/gpu_harness.py on the CPU: its stats, rows, table and JSON, and the timing loop's
call order driven by a fake event clock; importing it needs neither cupy nor torch CUDA."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("gpu_harness", os.path.join(ROOT, "benchmarks", "gpu_harness.py"))
gh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gh)


class FakeClock:
    """Events stamped with a shared fake time in ms; calls advance it by their cost."""

    def __init__(self, world):
        self.world = world

    def event(self):
        return {}

    def record(self, ev):
        ev["t"] = self.world["now"]

    def elapsed_ms(self, start, end):
        return end["t"] - start["t"]

    def sync(self):
        self.world["syncs"] += 1


def _fn(world, name, cost_ms):
    def call():
        world["log"].append(name)
        world["now"] += cost_ms

    return call


def _world():
    return {"now": 0.0, "log": [], "syncs": 0}


def test_interleaved_order_and_medians():
    w = _world()
    fns = {"deepkern": _fn(w, "dk", 2.0), "torch": _fn(w, "pt", 3.0)}
    clk = FakeClock(w)
    t = gh.time_gpu(fns, {"deepkern": clk, "torch": clk}, repeats=4, warmup=2)
    assert w["log"] == ["dk", "dk", "pt", "pt"] + ["dk", "pt"] * 4
    assert t == {"deepkern": [2.0] * 4, "torch": [3.0] * 4}


def test_blocks_mode_runs_each_library_alone():
    w = _world()
    fns = {"deepkern": _fn(w, "dk", 1.0), "torch": _fn(w, "pt", 4.0)}
    clk = FakeClock(w)
    t = gh.time_gpu(fns, {"deepkern": clk, "torch": clk}, repeats=2, warmup=1, mode="blocks", block_calls=3)
    assert w["log"] == ["dk", "pt"] + ["dk"] * 6 + ["pt"] * 6
    assert t == {"deepkern": [1.0, 1.0], "torch": [4.0, 4.0]}


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        gh.time_gpu({}, {}, mode="fast")
    with pytest.raises(ValueError, match="repeats >= 1"):
        gh.time_gpu({}, {}, repeats=0)
    with pytest.raises(ValueError, match="no samples"):
        gh.summarize([])


def test_summarize():
    s = gh.summarize([3.0, 1.0, 2.0, 10.0])
    assert s == {"median_ms": 2.5, "min_ms": 1.0, "max_ms": 10.0, "n": 4, "spread": 9.0 / 2.5}


def test_row_rates_speedup_and_ceiling():
    case = gh.GpuCase(
        "conv fwd",
        "32x128x56x56",
        lambda: None,
        lambda: None,
        flops=2e12,
        ceiling="fp32",
        other_peers={"cudnn": lambda: None},
        extra={"dtype": "float32"},
    )
    row = gh.make_row(case, {"deepkern": [40.0, 50.0, 60.0], "torch": [100.0], "cudnn": [25.0]})
    assert row["deepkern_ms"] == 50.0 and row["peer_ms"] == 100.0
    assert row["speedup"] == pytest.approx(2.0)
    assert row["tflop_per_s"] == pytest.approx(40.0)  # 2e12 flop in 50 ms
    assert row["peer_tflop_per_s"] == pytest.approx(20.0)
    assert row["pct_of_ceiling"] == pytest.approx(100 * 40.0 / 51.0)
    assert row["other_peers"]["cudnn"]["speedup"] == pytest.approx(0.5)
    assert row["gb_per_s"] is None and row["dtype"] == "float32"

    copy = gh.GpuCase("pool", "s", lambda: None, bytes=2.99e9, ceiling="copy")
    row = gh.make_row(copy, {"deepkern": [2.0]})
    assert row["peer_ms"] is None and row["speedup"] is None
    assert row["gb_per_s"] == pytest.approx(1495.0) and row["pct_of_ceiling"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="unknown ceiling 'h200'"):
        gh.make_row(gh.GpuCase("x", "s", lambda: None, bytes=1, ceiling="h200"), {"deepkern": [1.0]})


def test_run_cases_table_and_json(tmp_path, capsys):
    w = _world()
    clk = FakeClock(w)
    cases = [
        gh.GpuCase(
            "max_pool2d 2x2 fwd+bwd",
            "64x128x112x112 f32",
            _fn(w, "dk", 0.5),
            _fn(w, "pt", 1.5),
            bytes=2990e9 * 0.5e-3,
            ceiling="copy",
        ),
        gh.GpuCase(
            "sdpa fwd",
            "4x16x4096x64 f16",
            _fn(w, "dk2", 2.0),
            _fn(w, "pt2", 2.0),
            flops=1e12,
            ceiling="tc_fp16",
            other_peers={"cudnn": _fn(w, "cudnn", 1.0)},
        ),
    ]
    path = tmp_path / "out" / "gpu.json"
    rows = gh.run_gpu_cases(
        cases,
        json_path=str(path),
        repeats=3,
        warmup=1,
        title="test",
        gpu="NVIDIA H100 fake",
        clocks={"cupy": clk, "torch": clk},
    )
    out = capsys.readouterr().out
    assert "== test [interleaved]  (NVIDIA H100 fake)" in out
    assert "max_pool2d 2x2 fwd+bwd" in out and "3.00x" in out and "100.0% copy" in out
    assert "cudnn 1.000 ms (0.50x)" in out
    doc = json.loads(path.read_text())
    assert doc["gpu"] == "NVIDIA H100 fake" and doc["mode"] == "interleaved" and doc["repeats"] == 3
    assert doc["ceilings"]["copy"] == {"value": 2990.0, "unit": "GB/s"}
    assert [r["op"] for r in doc["rows"]] == ["max_pool2d 2x2 fwd+bwd", "sdpa fwd"]
    assert doc["rows"][1]["tflop_per_s"] == pytest.approx(500.0) and rows[1]["speedup"] == pytest.approx(1.0)


def test_import_safe_without_cupy_or_torch():
    code = (
        "import sys; sys.modules['cupy'] = None; sys.modules['torch'] = None\n"
        f"sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r})\n"
        "import gpu_harness as gh\n"
        "for clock in (gh.CupyClock, gh.TorchClock):\n"
        "    try:\n"
        "        clock()\n"
        "    except gh.GpuUnavailable as e:\n"
        "        print('unavailable:', e)\n"
        "try:\n"
        "    gh.run_gpu_cases([gh.GpuCase('x', 's', lambda: None)])\n"
        "except gh.GpuUnavailable as e:\n"
        "    print('run:', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "unavailable: gpu_harness: timing deepkern needs cupy with a CUDA device" in r.stdout
    assert "unavailable: gpu_harness: timing the peer needs torch with CUDA" in r.stdout
    assert "run: gpu_harness: timing deepkern needs cupy" in r.stdout
