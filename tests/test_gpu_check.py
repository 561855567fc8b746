"""tools/gpu_check.sh --dry-run on this machine (no GPU): every step that needs none runs (test
collection of the cuda and sanitize subsets, the benchmarks' argument parsing, the static check
where _cuda is built, summary.json), so the script is proven before a device is lent."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "gpu_check.sh")

FAKE_BENCH = """
import argparse, sys
ap = argparse.ArgumentParser()
ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
ap.add_argument("--json")
args = ap.parse_args()
sys.exit(3)  # reached only without --help: the dry run must not time anything
"""


def _run(tmp_path, *args, **env):
    e = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e.update(env)
    return subprocess.run(
        ["bash", SCRIPT, *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=300, check=False
    )


def _summary(tmp_path):
    with open(tmp_path / "out" / "summary.json") as f:
        return json.load(f)


def test_dry_run(tmp_path):
    (tmp_path / "bench_fake.py").write_text(FAKE_BENCH)
    (tmp_path / "bench_cpu_only.py").write_text("raise SystemExit(4)\n")  # no --device: not called
    r = _run(tmp_path, "--dry-run", GPU_CHECK_BENCHES=str(tmp_path / "bench_*.py"))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = _summary(tmp_path)
    assert doc["dry_run"] is True and doc["ok"] is True
    st = {s["name"]: s for s in doc["steps"]}
    assert list(st)[:2] == ["gpu_info", "build"]
    assert st["gpu_info"]["status"] == st["build"]["status"] == "skipped"
    assert st["env"]["status"] == "ok"
    assert st["cuda_tests"]["status"] == "ok"
    log = (tmp_path / "out" / "cuda_tests.log").read_text()
    assert "test_pooling_cuda.py::test_gpu_pooling_matches_cpu" in log
    assert st["sanitize_cases"]["status"] == "ok"
    log = (tmp_path / "out" / "sanitize_cases.log").read_text()
    assert "test_gpu_pooling_matches_cpu[max-float32-case1]" in log
    assert "case0]" not in log  # only the sanitize-marked cases
    for tool in ("memcheck", "racecheck", "synccheck"):
        assert st[f"sanitize_{tool}"]["status"] == "skipped"
    assert (
        st["bench_fake"]["status"] == "ok"
        and "--device {cpu,cuda}" in (tmp_path / "out" / "bench_fake.log").read_text()
    )
    assert "bench_cpu_only" not in st
    assert st["static_check"]["status"] in ("ok", "skipped")  # skipped where no _cuda was built
    if st["static_check"]["status"] == "ok":
        with open(tmp_path / "out" / "static_check.json") as f:
            assert json.load(f)["problems"] == []


def test_budget_spent_skips_everything(tmp_path):
    r = _run(tmp_path, "--dry-run", GPU_CHECK_BUDGET_S="0")
    assert r.returncode == 0, r.stdout + r.stderr
    steps = _summary(tmp_path)["steps"]
    assert {s["status"] for s in steps} == {"skipped"}
    assert any(s["note"] == "budget spent" for s in steps)


def test_only_selected_steps_run(tmp_path):
    r = _run(tmp_path, "--dry-run", GPU_CHECK_ONLY="env,gpu")
    assert r.returncode == 0, r.stdout + r.stderr
    st = {s["name"]: s for s in _summary(tmp_path)["steps"]}
    assert st["env"]["status"] == "ok"
    assert st["cuda_tests"]["status"] == "skipped" and st["cuda_tests"]["note"] == "not in GPU_CHECK_ONLY"


def test_bad_argument(tmp_path):
    r = _run(tmp_path, "--fast")
    assert r.returncode == 2 and "usage: bash tools/gpu_check.sh [--dry-run]" in r.stderr


@pytest.mark.parametrize("status,rc", [("ok", 0), ("skipped", 0), ("failed", 1), ("timeout", 1), ("empty", 1)])
def test_summary_exit_code(tmp_path, status, rc):
    tsv = tmp_path / "steps.tsv"
    tsv.write_text(
        f"env\tok\t0\t1\tenv.txt\t\ncuda_tests\t{status}\t{rc if status != 'skipped' else ''}\t3\tcuda.log\t\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "gpu_check_summary.py"),
            str(tsv),
            str(tmp_path / "summary.json"),
            "--seconds",
            "4",
            "--budget",
            "540",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == rc, r.stdout + r.stderr
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["problems"] == ([] if rc == 0 else ["cuda_tests"])
    assert doc["steps"][1]["seconds"] == 3 and doc["seconds"] == 4


def test_summary_flags_a_suite_that_only_skipped(tmp_path):
    (tmp_path / "steps.tsv").write_text("cuda_tests\tok\t0\t9\tcuda_tests.log\t\n")
    (tmp_path / "cuda_tests.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="5" failures="0" errors="0" skipped="5"/></testsuites>'
    )
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tools", "gpu_check_summary.py"),
            str(tmp_path / "steps.tsv"),
            str(tmp_path / "summary.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1 and "every test skipped" in r.stdout
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["steps"][0]["junit"] == {"tests": 5, "failures": 0, "errors": 0, "skipped": 5}


def _stub(path, body):
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def test_gpu_path_plumbing_with_stand_ins(tmp_path):
    """The real (non-dry) path with stand-ins for nvidia-smi, compute-sanitizer and pip: the steps,
    their command lines and statuses, without a GPU. env must fail (no device here), which is
    what makes a GPU run whose cuda tests only skipped count as a failure."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir / "nvidia-smi", 'echo "name, driver_version"; echo "Stand-in H100, 0"\n')
    _stub(
        bin_dir / "compute-sanitizer",
        'echo "stand-in compute-sanitizer $*"\n'
        "while [ $# -gt 0 ]; do case $1 in --tool|--error-exitcode|--target-processes|--print-limit) shift 2;;"
        ' *) break;; esac; done\nexec "$@"\n',
    )
    _stub(
        bin_dir / "python",
        f'if [ "$1 $2" = "-m pip" ]; then echo "stand-in pip $*"; exit 0; fi\nexec {sys.executable} "$@"\n',
    )
    path = str(bin_dir) + os.pathsep + os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    r = _run(
        tmp_path,
        PATH=path,
        PYTHON=str(bin_dir / "python"),
        GPU_CHECK_BENCHES=str(tmp_path / "none_*.py"),
        GPU_CHECK_ONLY="gpu,build,env,cuda,sanitize_racecheck",
    )
    assert r.returncode == 1, r.stdout + r.stderr
    st = {s["name"]: s for s in _summary(tmp_path)["steps"]}
    assert st["gpu_info"]["status"] == "ok" and st["build"]["status"] == "ok"
    build = (tmp_path / "out" / "build.log").read_text()
    assert "-m pip install --no-build-isolation --no-deps" in build
    assert "--config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES=90" in build
    assert st["env"]["status"] == "failed"  # cuda_available() is False here
    assert st["cuda_tests"]["status"] == "empty" and st["cuda_tests"]["note"] == "every test skipped"
    assert st["cuda_tests"]["junit"]["tests"] > 0
    log = (tmp_path / "out" / "sanitize_racecheck.log").read_text()  # one tool: the loop is the same for all
    assert "stand-in compute-sanitizer --tool racecheck --error-exitcode 99" in log
    assert "-m cuda and sanitize" in log and st["sanitize_racecheck"]["status"] == "ok"
    assert st["sanitize_memcheck"]["note"] == st["static_check"]["note"] == "not in GPU_CHECK_ONLY"
    assert set(_summary(tmp_path)["problems"]) >= {"env", "cuda_tests"}
