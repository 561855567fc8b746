import os

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
    """A fresh generator per test, seeded from the test's name so failures reproduce."""
    seed = abs(hash(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)
