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


def junit_counts(path):
    """tests / failures / errors / skipped of a pytest --junitxml file (None when absent)."""
    if not os.path.exists(path):
        return None
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    return {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}


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
    for s in steps:  # a cuda suite that only skipped proves nothing
        counts = junit_counts(os.path.join(out_dir, s["name"] + ".xml"))
        if counts is not None:
            s["junit"] = counts
            if s["status"] == "ok" and counts["tests"] == counts["skipped"]:
                s["status"], s["note"] = "empty", "every test skipped"
    bad = [s["name"] for s in steps if s["status"] in BAD]
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "commit": git_commit(), "dry_run": bool(args.dry_run), "seconds": args.seconds,
           "budget_s": args.budget, "ok": not bad, "problems": bad, "steps": steps, "outputs": outputs}
    with open(args.json_path, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"\n== gpu_check{' (dry run)' if args.dry_run else ''}: {args.seconds} s of {args.budget} s budget")
    for s in steps:
        rc = "" if s["rc"] is None else f"rc {s['rc']}"
        j = s.get("junit")
        tests = f"  [{j['tests']} tests, {j['failures']} failed, {j['errors']} errors, {j['skipped']} skipped]" if j else ""
        print(f"  {s['name']:28s} {s['status']:8s} {rc:7s} {s['seconds']:4d} s  {s['note'] or s['log']}{tests}")
    print(f"  -> {args.json_path}" + (f"; problems: {', '.join(bad)}" if bad else "; all steps ok or skipped"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
