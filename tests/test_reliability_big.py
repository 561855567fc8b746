"""Big tensors: an op over more than 2**31 elements (64-bit indexing).

Skipped unless DEEPKERN_BIG_TESTS=1 (needs ~11 GB of free memory and ~1 minute on 2 cores;
CI has 24 GiB shared with everything else). Run:
    DEEPKERN_BIG_TESTS=1 PYTHONPATH=python python3 -m pytest -q tests/test_reliability_big.py
The cheap half of the story (an allocation that cannot fit is numpy's MemoryError and the library
keeps working) runs in CI, in test_reliability_badinput.py.
"""

import os

import deepkern as dk
import numpy as np
import pytest

BIG = os.environ.get("DEEPKERN_BIG_TESTS") == "1"


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.slow
@pytest.mark.skipif(not BIG, reason="set DEEPKERN_BIG_TESTS=1 (needs ~11 GB free)")
def test_avg_pool2d_over_more_than_2_to_31_elements_in_one_plane():
    """One (46341 x 46341) float32 plane = 2**31 + 4633 elements, so every flat in-plane index
    past 2**31 (the last ~2 rows) overflows int32. x[i, j] = a[i] + b[j] with small integers, so
    each 2x2 average is exact in float32 and the whole output can be checked exactly."""
    H = W = 46341
    assert H * W > 2**31
    need = H * W * 4 + (H // 2) * (W // 2) * 4 + 2**30
    if _available_bytes() < need:
        pytest.skip(f"needs {need / 2**30:.1f} GiB available, have {_available_bytes() / 2**30:.1f}")
    a = (np.arange(H) % 7).astype(np.float32)
    b = (np.arange(W) % 5).astype(np.float32)
    x = np.empty((1, 1, H, W), np.float32)
    for r0 in range(0, H, 4096):  # fill in blocks: no 8 GB temporaries
        x[0, 0, r0 : r0 + 4096] = a[r0 : r0 + 4096, None] + b[None, :]
    y = dk.avg_pool2d(x, 2)
    Ho, Wo = H // 2, W // 2
    assert y.shape == (1, 1, Ho, Wo) and y.dtype == np.float32
    ra = (a[0 : 2 * Ho : 2] + a[1 : 2 * Ho : 2]) * np.float32(0.5)
    rb = (b[0 : 2 * Wo : 2] + b[1 : 2 * Wo : 2]) * np.float32(0.5)
    for r0 in range(0, Ho, 2048):
        want = ra[r0 : r0 + 2048, None] + rb[None, :]
        got = y[0, 0, r0 : r0 + 2048]
        assert np.array_equal(got, want), f"rows {r0}..{r0 + 2048}: max error {np.max(np.abs(got - want))}"
    del x, y
    # and the library still works on small inputs afterwards
    assert np.array_equal(dk.avg_pool2d(np.ones((1, 1, 2, 2), np.float32), 2), np.ones((1, 1, 1, 1), np.float32))
