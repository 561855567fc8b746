"""benchmarks/summary_table.py: the RESULTS tables from a folder of harness JSON files."""

import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "summary_table.py")
_spec = importlib.util.spec_from_file_location("summary_table", SCRIPT)
st = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(st)


def _row(op, mode, speedup, dk_gflops=None, peer_gflops=None):
    return {
        "op": op,
        "shape": "8x8",
        "mode": mode,
        "speedup": speedup,
        "gflop_per_s": dk_gflops,
        "peer_gflop_per_s": peer_gflops,
    }


def test_one_line_per_case_with_each_mode_and_bold_below_target(tmp_path):
    rows = [
        _row("conv fwd", "interleaved", 1.5, 60.0, 40.0),
        _row("conv fwd", "blocks", 1.1, 50.0, 45.0),
        _row("pool", "interleaved", 7.0),
        _row("pool", "blocks", 6.0),
    ]
    (tmp_path / "conv.json").write_text(json.dumps({"machine": "M", "title": "conv", "modes": [], "rows": rows}))
    tables = st.load_tables(str(tmp_path))
    text = st.markdown(*tables[0], target=1.2, gemm_rate=100.0)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0] == "| case | interleaved | blocks | GEMM rate dk / torch (blocks) |"
    assert lines[1] == "| conv fwd 8x8 | 1.50x | **1.10x** | 50% / 45% |"
    assert lines[2] == "| pool 8x8 | 7.00x | 6.00x | - |"


def test_an_empty_folder_is_an_error(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "no benchmark JSON" in proc.stderr
