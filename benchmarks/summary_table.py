"""One markdown table per benchmark family from a quiet_run.sh output folder: every case's speedup
(torch time / deepkern time) in each harness mode, bold below the target, and each library's rate
as a share of the machine's SGEMM rate where the case reports GFLOP/s.

    python benchmarks/summary_table.py benchmarks/out/quiet --gemm-rate 125 [--target 1.2]

--gemm-rate is deepkern's 2-thread SGEMM rate on this machine in GFLOP/s (1024^3, as RESULTS.md
states it per machine); without it the share column is left out. Reads every *.json the
quiet_run.sh tables wrote (the harness's {"machine", "title", "modes", "rows"} files and
bench_attention's {"rows"}).
"""

import argparse
import glob
import json
import os
from collections import OrderedDict


def load_tables(folder):
    """(title, machine, rows) per JSON file in the folder, in file-name order."""
    tables = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict) or not data.get("rows"):
            continue
        name = os.path.splitext(os.path.basename(path))[0]
        tables.append((data.get("title", name), data.get("machine", ""), data["rows"]))
    return tables


def cases(rows):
    """Rows grouped by case (op, shape) in first-seen order: {case: {mode: row}}."""
    grouped = OrderedDict()
    for row in rows:
        grouped.setdefault((row["op"], row["shape"]), {})[row.get("mode", "interleaved")] = row
    return grouped


def ratio_cell(row, target):
    if row is None or row.get("speedup") is None:
        return "-"
    text = f"{row['speedup']:.2f}x"
    return f"**{text}**" if row["speedup"] < target else text


def share_cell(row, gemm_rate):
    if row is None or not row.get("gflop_per_s") or not row.get("peer_gflop_per_s"):
        return "-"
    return f"{100 * row['gflop_per_s'] / gemm_rate:.0f}% / {100 * row['peer_gflop_per_s'] / gemm_rate:.0f}%"


def markdown(title, machine, rows, target, gemm_rate):
    grouped = cases(rows)
    modes = []
    for by_mode in grouped.values():
        modes += [m for m in by_mode if m not in modes]
    head = ["case"] + modes
    if gemm_rate:
        head.append("GEMM rate dk / torch (" + ("blocks" if "blocks" in modes else modes[0]) + ")")
    lines = [f"#### {title}", ""] + ([machine, ""] if machine else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (op, shape), by_mode in grouped.items():
        cells = [f"{op} {shape}"] + [ratio_cell(by_mode.get(m), target) for m in modes]
        if gemm_rate:
            cells.append(share_cell(by_mode.get("blocks") or by_mode.get(modes[0]), gemm_rate))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a quiet_run.sh output folder")
    ap.add_argument("--gemm-rate", type=float, default=None, help="2-thread SGEMM GFLOP/s of this machine")
    ap.add_argument("--target", type=float, default=1.2, help="speedup below which a cell is bold")
    args = ap.parse_args()
    tables = load_tables(args.folder)
    if not tables:
        raise SystemExit(f"summary_table.py: no benchmark JSON in {args.folder!r}")
    for title, machine, rows in tables:
        print(markdown(title, machine, rows, args.target, args.gemm_rate))


if __name__ == "__main__":
    main()
