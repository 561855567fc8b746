"""conv2d remembers its checked geometry per (shapes, stride, padding, dilation, groups): a cached
combination must still reject arguments equal to it but of another type, and callers get copies."""

import deepkern as dk
import numpy as np
import pytest
from deepkern.functional.conv import _conv_params


def test_cached_geometry_still_rejects_lookalikes():
    x, w = np.ones((2, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32)
    dk.conv2d(x, w, None, 1, 1)  # caches stride 1, padding 1
    with pytest.raises(TypeError, match="stride"):
        dk.conv2d(x, w, None, True, 1)  # True == 1 and hashes alike
    with pytest.raises(TypeError, match="padding"):
        dk.conv2d(x, w, None, 1, 1.0)
    with pytest.raises(ValueError, match="groups"):
        dk.conv2d(x, w, None, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="channels"):
        dk.conv2d(np.ones((2, 2, 5, 5), np.float32), w, None, 1, 1)


def test_cached_params_are_copies():
    x, w = np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3))
    p1, e1 = _conv_params("conv2d", x, w, None, 1, 0, 1)
    p1["Ho"] = -7
    p2, e2 = _conv_params("conv2d", x, w, None, 1, 0, 1)
    assert p2["Ho"] == 4 and e1 == e2 == (0, 0)
    y = dk.conv2d(x, w)
    assert y.shape == (1, 3, 4, 4) and np.all(y == 18.0)
