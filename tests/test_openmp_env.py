"""deepkern's OpenMP default (a bounded spin) applies to its own runtime only and yields to the user."""

import os
import subprocess
import sys

from deepkern import _openmp_env


def test_defaults_yield_to_the_user():
    assert _openmp_env.defaults({}) == {
        "GOMP_SPINCOUNT": _openmp_env.SPIN_COUNT,
        "KMP_BLOCKTIME": _openmp_env.BLOCKTIME_MS,
    }
    assert _openmp_env.defaults({"OMP_WAIT_POLICY": "ACTIVE"}) == {}
    assert _openmp_env.defaults({"GOMP_SPINCOUNT": "5"}) == {"KMP_BLOCKTIME": _openmp_env.BLOCKTIME_MS}


def test_environment_is_restored_after_import():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    code = "import os, deepkern; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None"]


def test_libgomp_sees_the_bounded_spin():
    """The spin count reaches the runtime: libgomp's GOMP_SPINCOUNT parsing is visible through
    OMP_DISPLAY_ENV, which prints the settings it read when it was loaded."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    env["OMP_DISPLAY_ENV"] = "VERBOSE"
    out = subprocess.run([sys.executable, "-c", "import deepkern"], env=env, capture_output=True, text=True, check=True)
    shown = out.stderr + out.stdout
    if "GOMP_SPINCOUNT" not in shown:  # not libgomp (e.g. LLVM's libomp): nothing more to check here
        return
    line = next(ln for ln in shown.splitlines() if "GOMP_SPINCOUNT" in ln)
    assert f"'{_openmp_env.SPIN_COUNT}'" in line, line
