"""pytest set-up for every test: outputs poisoned (DEEPKERN_POISON=1), the cuda tests on a real GPU,
the SIMT simulator with the cupy stand-in or skipped, and a per-test seeded rng fixture."""

import glob
import importlib.util
import os
import sys
import zlib

# Every output buffer starts as NaN / -1, so an element a kernel never wrote fails the test.
os.environ.setdefault("DEEPKERN_POISON", "1")

_STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cupy_standin")


def _real_gpu():
    """Real cupy with a visible device (never the stand-in)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _simulator_built():
    spec = importlib.util.find_spec("deepkern")  # locates the package without importing it
    dirs = spec.submodule_search_locations if spec else []
    return any(glob.glob(os.path.join(d, "_cuda_sim*")) for d in dirs)


# The `cuda` tests run on a real GPU (real cupy + deepkern._cuda) where there is one, else on the
# SIMT simulator (deepkern._cuda_sim + the cupy stand-in) where it was built, else they skip.
# Decided before deepkern is imported: the backend reads DEEPKERN_CUDA_SIM once, at import.
_sim_env = os.environ.get("DEEPKERN_CUDA_SIM", "").strip().upper()
if _sim_env in ("0", "OFF", "FALSE", "NO") or _real_gpu() or not _simulator_built():
    os.environ["DEEPKERN_CUDA_SIM"] = "0"
else:
    os.environ["DEEPKERN_CUDA_SIM"] = "1"
    sys.path.insert(0, _STANDIN)

import deepkern as dk  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from deepkern import _backend  # noqa: E402

if os.environ.get("DEEPKERN_REQUIRE_SIM") == "1" and not _backend.SIMULATOR:  # .ci/run's simulator passes
    raise pytest.UsageError("DEEPKERN_REQUIRE_SIM=1 but the cuda tests would not run on deepkern._cuda_sim")


def pytest_report_header(config):
    if _backend.SIMULATOR:
        return f"deepkern cuda tests: SIMT simulator, DEEPKERN_SIM_ORDER={os.environ.get('DEEPKERN_SIM_ORDER', 'ascending')}"
    return f"deepkern cuda tests: {'real GPU' if dk.cuda_available() else 'skipped (no GPU, no simulator)'}"


def pytest_collection_modifyitems(config, items):
    # `simt` tests check the simulator itself (its module, broken kernels): simulator runs only.
    skip_simt = pytest.mark.skip(reason="simulator tests: need deepkern._cuda_sim (DEEPKERN_CUDA_SIM=ON build)")
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU with cupy and deepkern._cuda, or deepkern._cuda_sim")
    for item in items:
        if "simt" in item.keywords and not _backend.SIMULATOR:
            item.add_marker(skip_simt)
        elif "cuda" in item.keywords and not dk.cuda_available():
            item.add_marker(skip_cuda)


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's name so failures reproduce (crc32, not
    hash(): Python randomises str hashes per process)."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
