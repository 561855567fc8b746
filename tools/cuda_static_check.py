#!/usr/bin/env python3
"""Static figures of every CUDA kernel in a built deepkern._cuda, from cuobjdump (no GPU needed).

    python tools/cuda_static_check.py [BINARY ...] [--table csrc/cuda/kernels.toml] [--markdown] [--json PATH]

Per kernel and sm arch: registers, stack, static shared and local memory, sm_90 occupancy
(cuda_occupancy.h, tools/cuda_occupancy.cpp) and whether the SASS holds HMMA, LDSM, LDGSTS, LDL/STL
or double-precision instructions. Exit 1 with one line per problem when a kernel is not in the
table, a hot kernel uses local memory, a tensor-core kernel lacks HMMA (or LDSM / LDGSTS where
marked), or a kernel cannot launch on sm_90 at its block size. BINARY defaults to the _cuda module
of the deepkern that `python` imports (no import: found by path). See docs/CUDA_STATIC.md.
"""
import argparse
import datetime
import fnmatch
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_TABLE = os.path.join(REPO, "csrc", "cuda", "kernels.toml")
MARKS = {"pattern": str, "block": int, "dynamic_smem": int, "hot": bool, "tensor_core": bool, "ldsm": bool,
         "ldgsts": bool}
# SASS opcodes whose presence is reported; DOUBLE: the fp64 arithmetic units.
WATCH = ("HMMA", "LDSM", "LDGSTS", "LDL", "STL")
DOUBLE = ("DADD", "DMUL", "DFMA", "DSETP", "DMNMX", "DMMA")


class CheckError(Exception):
    """A problem with the inputs (tool missing, table malformed), not with a kernel."""


# ------------------------------------------------------------------ finding tools and binaries
def find_cuobjdump(explicit=None):
    if explicit:
        return explicit
    env = os.environ.get("CUOBJDUMP")
    if env:
        return env
    spec = importlib.util.find_spec("nvidia")  # PyPI nvidia-cuda-cuobjdump installs nvidia/cu*/bin/cuobjdump
    for root in (spec.submodule_search_locations if spec and spec.submodule_search_locations else []):
        hits = sorted(glob.glob(os.path.join(root, "cu*", "bin", "cuobjdump")) +
                      glob.glob(os.path.join(root, "cuda_cuobjdump", "bin", "cuobjdump")))
        if hits:
            return hits[-1]
    found = shutil.which("cuobjdump")
    if found:
        return found
    nvcc = shutil.which("nvcc")  # a full toolkit has it next to nvcc
    if nvcc and os.path.exists(os.path.join(os.path.dirname(os.path.realpath(nvcc)), "cuobjdump")):
        return os.path.join(os.path.dirname(os.path.realpath(nvcc)), "cuobjdump")
    raise CheckError("cuobjdump not found: pip install nvidia-cuda-cuobjdump (the test extra), or set CUOBJDUMP")


def find_cuda_module():
    spec = importlib.util.find_spec("deepkern")
    if spec is None or not spec.submodule_search_locations:
        raise CheckError("deepkern is not importable: pass the _cuda .so path")
    for root in spec.submodule_search_locations:
        hits = [p for p in glob.glob(os.path.join(root, "_cuda.*.so")) if "_cuda_sim" not in p]
        if hits:
            return min(hits)
    raise CheckError(f"no deepkern/_cuda*.so next to {spec.origin}: build with DEEPKERN_CUDA=ON")


def cuda_include_dir():
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(os.path.join(os.environ["CUDA_HOME"], "include"))
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), "include"))
    candidates.append("/usr/local/cuda/include")
    for c in candidates:
        if os.path.exists(os.path.join(c, "cuda_occupancy.h")):
            return c
    return None


def nvcc_version():
    nvcc = shutil.which("nvcc")
    if not nvcc:
        return None
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"release ([\d.]+), (V[\d.]+)", out)
    return f"{m.group(1)} ({m.group(2)})" if m else out.strip().splitlines()[-1]


# ------------------------------------------------------------------ parsing cuobjdump
def run_cuobjdump(cuobjdump, binary, what):
    r = subprocess.run([cuobjdump, what, binary], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise CheckError(f"{cuobjdump} {what} {binary} failed: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def parse_res_usage(text):
    """{(mangled, arch): {regs, stack, shared, local}} from `cuobjdump -res-usage` (ELF sections only)."""
    out, arch, in_elf, fn = {}, None, False, None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Fatbin elf code"):
            in_elf, arch = True, None
        elif s.startswith("Fatbin ptx code"):
            in_elf = False
        elif s.startswith("arch = "):
            arch = s.split("=", 1)[1].strip()
        elif in_elf and s.startswith("Function ") and s.endswith(":"):
            fn = s[len("Function "):-1].strip()
        elif in_elf and fn and s.startswith("REG:"):
            f = dict(re.findall(r"(\w+(?:\[\d+\])?):(\d+)", s))
            fig = {"regs": int(f.get("REG", 0)), "stack": int(f.get("STACK", 0)), "shared": int(f.get("SHARED", 0)),
                   "local": int(f.get("LOCAL", 0))}
            merge(out, (fn, arch), fig)
            fn = None
    return out


_INSN = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T\d]+\s+)?([A-Z][A-Z0-9_]*)")


def parse_sass(text):
    """{(mangled, arch): {opcode: count}} for the watched opcodes, from `cuobjdump -sass`."""
    out, arch, fn = {}, None, None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("arch = "):
            arch, fn = s.split("=", 1)[1].strip(), None
        elif s.startswith("code for "):
            arch, fn = s.split()[-1], None
        elif s.startswith("Function :"):
            fn = s.split(":", 1)[1].strip()
            out.setdefault((fn, arch), {})
        elif fn:
            m = _INSN.search(line)
            if m and (m.group(1) in WATCH or m.group(1) in DOUBLE):
                counts = out[(fn, arch)]
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return out


def merge(table, key, fig):
    """One kernel can sit in several translation units (a template instantiated twice): keep the worst."""
    if key in table:
        table[key] = {k: max(v, table[key].get(k, 0)) for k, v in fig.items()}
    else:
        table[key] = dict(fig)


def demangle(names):
    names = list(names)
    tool = shutil.which("c++filt") or shutil.which("cu++filt")
    if not tool or not names:
        return {n: n for n in names}
    r = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True, check=False)
    lines = r.stdout.splitlines()
    return dict(zip(names, lines)) if r.returncode == 0 and len(lines) == len(names) else {n: n for n in names}


def short_name(demangled):
    """'void dk::cuda::pooling::max_fwd_kernel<float>(dk::Pool2dParams, ...)' -> 'pooling::max_fwd_kernel<float>'."""
    s = demangled.replace("(anonymous namespace)::", "")
    depth = 0
    for i, ch in enumerate(s):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            s = s[:i]
            break
    return s.removeprefix("void ").removeprefix("dk::cuda::")


# ------------------------------------------------------------------ marks, occupancy, rules
def load_table(path):
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CheckError(f"kernel table {path}: {e}")
    entries = data.get("kernel", [])
    for i, e in enumerate(entries):
        for k, v in e.items():
            if k not in MARKS:
                raise CheckError(f"kernel table {path}, entry {i + 1}: unknown key '{k}' (known: {', '.join(MARKS)})")
            if not isinstance(v, MARKS[k]) or (MARKS[k] is int and isinstance(v, bool)):
                raise CheckError(f"kernel table {path}, entry {i + 1}: '{k}' must be {MARKS[k].__name__}, got {v!r}")
        for k in ("pattern", "block"):
            if k not in e:
                raise CheckError(f"kernel table {path}, entry {i + 1}: '{k}' is required")
        if not 1 <= e["block"] <= 1024:
            raise CheckError(f"kernel table {path}, entry {i + 1}: block must be 1..1024, got {e['block']}")
    return entries


def match(entries, name):
    for e in entries:
        if fnmatch.fnmatchcase(name, e["pattern"]):
            return e
    return None


def occupancy_sm90(requests, workdir):
    """[(block, regs, static_smem, dyn_smem)] -> [dict] via tools/cuda_occupancy.cpp; None without a toolkit."""
    inc, gxx = cuda_include_dir(), shutil.which("g++") or shutil.which("c++")
    if not requests or not inc or not gxx:
        return None
    exe = os.path.join(workdir, "cuda_occupancy")
    r = subprocess.run([gxx, "-O1", "-std=c++17", "-I", inc, os.path.join(HERE, "cuda_occupancy.cpp"), "-o", exe],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise CheckError(f"compiling tools/cuda_occupancy.cpp failed:\n{r.stderr}")
    stdin = "".join(f"{b} {r_} {s} {d}\n" for b, r_, s, d in requests)
    out = subprocess.run([exe], input=stdin, capture_output=True, text=True, check=True).stdout.splitlines()
    res = []
    for line in out:
        blocks, warps, pct, limiter = line.split()
        res.append({"blocks_per_sm": int(blocks), "warps_per_sm": int(warps), "occupancy_pct": float(pct),
                    "limiter": limiter})
    return res


def analyse(binaries, table_path, cuobjdump):
    entries = load_table(table_path)
    res, sass = {}, {}
    for b in binaries:
        if not os.path.exists(b):
            raise CheckError(f"no such binary: {b}")
        for key, fig in parse_res_usage(run_cuobjdump(cuobjdump, b, "-res-usage")).items():
            merge(res, key, fig)
        for key, counts in parse_sass(run_cuobjdump(cuobjdump, b, "-sass")).items():
            merge(sass, key, counts)
    if not res:
        raise CheckError(f"no kernels (no ELF code) in {', '.join(binaries)}")
    names = demangle(sorted({fn for fn, _ in res}))
    rows = []
    for (fn, arch), fig in sorted(res.items(), key=lambda kv: (short_name(names[kv[0][0]]), kv[0][1])):
        name = short_name(names[fn])
        mark = match(entries, name)
        counts = sass.get((fn, arch), {})
        rows.append({"kernel": name, "mangled": fn, "arch": arch, **fig,
                     "block": mark["block"] if mark else None,
                     "dynamic_smem": mark.get("dynamic_smem", 0) if mark else 0,
                     "marks": {k: v for k, v in (mark or {}).items() if k not in ("pattern", "block")},
                     "listed": mark is not None,
                     **{op.lower(): counts.get(op, 0) for op in WATCH},
                     "fp64_ops": sum(counts.get(op, 0) for op in DOUBLE)})
    with tempfile.TemporaryDirectory() as tmp:
        todo = [r for r in rows if r["arch"] == "sm_90" and r["block"]]
        occ = occupancy_sm90([(r["block"], r["regs"], r["shared"], r["dynamic_smem"]) for r in todo], tmp)
    for r in rows:
        r["sm90_occupancy"] = None
    if occ is not None:
        for r, o in zip(todo, occ):
            r["sm90_occupancy"] = o
    used = {r["kernel"] for r in rows if r["listed"]}
    stale = [e["pattern"] for e in entries if not any(fnmatch.fnmatchcase(k, e["pattern"]) for k in used)]
    return rows, problems(rows, table_path), stale, occ is not None


def problems(rows, table_path):
    errs = []
    for r in rows:
        where = f"{r['kernel']} [{r['arch']}]"
        m = r["marks"]
        if not r["listed"]:
            errs.append(f"{where}: not in {os.path.relpath(table_path, REPO)}; add a [[kernel]] entry (pattern, block, marks)")
            continue
        if m.get("hot") and (r["local"] or r["stack"] or r["ldl"] or r["stl"]):
            errs.append(f"{where}: marked hot but uses local memory (LOCAL {r['local']} B, STACK {r['stack']} B, "
                        f"{r['ldl']} LDL, {r['stl']} STL): spills or a run-time indexed array")
        for mark, op in (("tensor_core", "hmma"), ("ldsm", "ldsm"), ("ldgsts", "ldgsts")):
            if m.get(mark) and not r[op]:
                errs.append(f"{where}: marked {mark} but its SASS has no {op.upper()}")
        o = r.get("sm90_occupancy")
        if o is not None and o["blocks_per_sm"] == 0:
            errs.append(f"{where}: cannot launch on sm_90 with {r['block']} threads ({o['limiter']}: {r['regs']} regs, "
                        f"{r['shared'] + r['dynamic_smem']} B shared)")
    return errs


# ------------------------------------------------------------------ output
COLUMNS = ("kernel", "arch", "block", "regs", "stack", "shared B", "local B", "sm_90 blocks/SM", "sm_90 occ.",
           "HMMA", "LDSM", "LDGSTS", "LDL/STL", "fp64", "marks")


def row_cells(r):
    o = r["sm90_occupancy"]
    marks = ",".join(k if v is True else f"{k}={v}" for k, v in r["marks"].items() if v) or "-"
    return (r["kernel"], r["arch"], str(r["block"] or "-"), str(r["regs"]), str(r["stack"]), str(r["shared"]),
            str(r["local"]), str(o["blocks_per_sm"]) if o else "-", f"{o['occupancy_pct']:.0f}%" if o else "-",
            str(r["hmma"]), str(r["ldsm"]), str(r["ldgsts"]), f"{r['ldl']}/{r['stl']}", str(r["fp64_ops"]),
            marks if r["listed"] else "NOT LISTED")


def format_text(rows):
    cells = [COLUMNS] + [row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i]) for i in range(len(c)))
             for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_markdown(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in rows:
        cells = list(row_cells(r))
        cells[0] = f"`{cells[0]}`"  # template arguments would read as HTML tags
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binaries", nargs="*", help="_cuda .so, .o or .cubin files (default: deepkern's _cuda)")
    ap.add_argument("--table", default=DEFAULT_TABLE, help="kernel marks (default csrc/cuda/kernels.toml)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table (for benchmarks/RESULTS.md)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures and problems as JSON")
    ap.add_argument("--cuobjdump", help="cuobjdump to use (default: PyPI nvidia-cuda-cuobjdump, $CUOBJDUMP, PATH)")
    args = ap.parse_args(argv)
    try:
        binaries = args.binaries or [find_cuda_module()]
        rows, errs, stale, have_occ = analyse(binaries, args.table, find_cuobjdump(args.cuobjdump))
    except CheckError as e:
        print(f"cuda_static_check: {e}", file=sys.stderr)
        return 2
    date = datetime.date.today().isoformat()
    nvcc = nvcc_version()
    if args.markdown:
        print(f"{date}, nvcc {nvcc or 'unknown'}, {', '.join(os.path.basename(b) for b in binaries)}\n")
        print(format_markdown(rows))
    else:
        print(f"== CUDA kernels: static figures ({date}, nvcc {nvcc or 'unknown'}; {', '.join(binaries)})")
        print(format_text(rows))
    if not have_occ:
        print("note: no cuda_occupancy.h or g++ found, sm_90 occupancy not computed", file=sys.stderr)
    for p in stale:
        print(f"note: table pattern '{p}' matches no kernel", file=sys.stderr)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"date": date, "nvcc": nvcc, "binaries": binaries, "table": args.table, "kernels": rows,
                       "problems": errs, "stale_patterns": stale}, f, indent=1)
    if errs:
        print(f"\ncuda_static_check: {len(errs)} problem(s):", file=sys.stderr)
        for e in errs:
            print("  " + e, file=sys.stderr)
        return 1
    print(f"cuda_static_check: {len(rows)} kernel images OK", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
