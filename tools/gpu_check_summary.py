#!/usr/bin/env python3
"""Turns tools/gpu_check.sh's steps.tsv into summary.json and a short table; exit 1 when a step
failed, timed out or collected no tests (skipped steps are listed, not failures)."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

FIELDS = ("name", "status", "rc", "seconds", "log", "note")
BAD = ("failed", "timeout", "empty")


def read_steps(path):
    steps = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            parts = (line.rstrip("\n").split("\t") + [""] * len(FIELDS))[: len(FIELDS)]
            s = dict(zip(FIELDS, parts))
            s["rc"] = int(s["rc"]) if s["rc"] else None
            s["seconds"] = int(s["seconds"] or 0)
            steps.append(s)
    return steps


def git_commit():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
        return r.stdout.strip() or None
    except OSError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps")
    ap.add_argument("json_path")
    ap.add_argument("--dry-run", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--budget", type=int, default=0)
    args = ap.parse_args(argv)
    steps = read_steps(args.steps)
    out_dir = os.path.dirname(os.path.abspath(args.json_path))
    outputs = sorted(f for f in os.listdir(out_dir) if f.endswith((".json", ".xml")) and f != os.path.basename(args.json_path))
    bad = [s["name"] for s in steps if s["status"] in BAD]
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "commit": git_commit(), "dry_run": bool(args.dry_run), "seconds": args.seconds,
           "budget_s": args.budget, "ok": not bad, "problems": bad, "steps": steps, "outputs": outputs}
    with open(args.json_path, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"\n== gpu_check{' (dry run)' if args.dry_run else ''}: {args.seconds} s of {args.budget} s budget")
    for s in steps:
        rc = "" if s["rc"] is None else f"rc {s['rc']}"
        print(f"  {s['name']:28s} {s['status']:8s} {rc:7s} {s['seconds']:4d} s  {s['note'] or s['log']}")
    print(f"  -> {args.json_path}" + (f"; problems: {', '.join(bad)}" if bad else "; all steps ok or skipped"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
