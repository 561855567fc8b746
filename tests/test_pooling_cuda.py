"""Pooling on the GPU (cupy in, cupy out): against the CPU backend and PyTorch CUDA.

Marked `cuda`: skipped where no GPU, cupy and deepkern._cuda are present (see conftest.py).
"""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, assert_rel_norm
from test_pooling import SHAPES, _params

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


# Small cases (2x2, overlapping 3x2 windows with padding, stride > kernel) that tools/gpu_check.sh
# also runs under compute-sanitizer memcheck / racecheck / synccheck.
SANITIZE = (1, 4, 5)
CASES = [pytest.param(c, marks=pytest.mark.sanitize) if i in SANITIZE else c for i, c in enumerate(SHAPES)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_gpu_pooling_matches_cpu(cp, case, dtype, kind, rng):
    shape, k, s, p, *_ = _params(case)
    fwd = dk.max_pool2d if kind == "max" else dk.avg_pool2d
    bwd = dk.max_pool2d_backward if kind == "max" else dk.avg_pool2d_backward
    x = rng.standard_normal(shape).astype(dtype)
    dy_shape = fwd(x, k, s, p).shape
    dy = rng.standard_normal(dy_shape).astype(dtype)
    y_cpu, ctx_cpu = fwd(x.astype(np.float64), k, s, p, return_ctx=True)
    (dx_cpu,) = bwd(ctx_cpu, dy.astype(np.float64))

    xg = cp.asarray(x)
    y, ctx = fwd(xg, k, s, p, return_ctx=True)
    assert isinstance(y, cp.ndarray) and y.dtype == dtype
    (dx,) = bwd(ctx, cp.asarray(dy))
    assert isinstance(dx, cp.ndarray) and dx.dtype == dtype
    if dtype == np.float16:
        assert_rel_norm(y, y_cpu, 1e-2, what="y")
        if kind == "avg":
            assert_rel_norm(dx, dx_cpu, 1e-2, what="dx")
    else:
        assert_close(y, y_cpu, dtype, what="y")
        assert_close(dx, dx_cpu, dtype, what="dx")
    if kind == "max" and dtype != np.float16:
        _, idx = dk.max_pool2d(xg, k, s, p, return_indices=True)
        _, idx_cpu = dk.max_pool2d(x, k, s, p, return_indices=True)
        np.testing.assert_array_equal(idx.get(), idx_cpu)


@pytest.mark.parametrize("case", SHAPES[:6])
def test_gpu_pooling_matches_torch_cuda(cp, case, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    import torch.nn.functional as F

    shape, k, s, p, *_ = _params(case)
    x = cp.asarray(rng.standard_normal(shape).astype(np.float32))
    (y, idx), ctx = dk.max_pool2d(x, k, s, p, return_indices=True, return_ctx=True)
    xt = torch.as_tensor(x, device="cuda").clone().requires_grad_(True)
    yt, it = F.max_pool2d(xt, k, s if s is not None else k, p, return_indices=True)
    dy = cp.asarray(rng.standard_normal(y.shape).astype(np.float32))
    yt.backward(torch.as_tensor(dy, device="cuda"))
    (dx,) = dk.max_pool2d_backward(ctx, dy)
    assert_close(y, yt.detach().cpu().numpy(), np.float32)
    np.testing.assert_array_equal(idx.get(), it.cpu().numpy())
    assert_close(dx, xt.grad.cpu().numpy(), np.float32)


def test_gpu_inputs_untouched_and_noncontiguous(cp, rng):
    x = cp.asarray(rng.standard_normal((2, 3, 9, 8)).astype(np.float32))
    before = x.copy()
    xt = x.transpose(0, 1, 3, 2)
    y = dk.avg_pool2d(xt, 3, 2, 1)
    assert_close(y, dk.avg_pool2d(cp.asnumpy(xt), 3, 2, 1), np.float32)
    assert bool((x == before).all())


def test_mixing_numpy_and_cupy_is_a_type_error(cp):
    x = cp.zeros((1, 1, 4, 4), cp.float32)
    y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
    with pytest.raises(TypeError, match="'dy' is a ndarray \\(CPU\\) but the forward ran on the GPU"):
        dk.max_pool2d_backward(ctx, np.zeros((1, 1, 2, 2), np.float32))
    assert dk.get_array_module(x) is cp
