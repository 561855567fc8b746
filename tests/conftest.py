import os
import zlib

# Every output buffer starts as NaN / -1, so an element a kernel never wrote fails the test.
os.environ.setdefault("DEEPKERN_POISON", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import deepkern as dk  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if dk.cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU, cupy and deepkern._cuda")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's name so failures reproduce (crc32, not
    hash(): Python randomises str hashes per process)."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
