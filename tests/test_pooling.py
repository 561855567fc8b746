"""max_pool2d / avg_pool2d forward and backward on the CPU: reference, PyTorch, finite differences."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, numeric_grad
from reference import avg_pool2d_backward_ref, avg_pool2d_ref, max_pool2d_backward_ref, max_pool2d_ref

# (N, C, H, W, kernel, stride, padding): odd sizes, primes, stride > kernel, padding = kernel//2, rectangular.
SHAPES = [
    (1, 1, 1, 1, 1, 1, 0),
    (2, 3, 8, 8, 2, 2, 0),
    (2, 3, 7, 9, 2, 2, 0),  # odd sizes on the 2x2 fast path: the last row/column belongs to no window
    (1, 1, 7, 5, 3, 2, 1),
    (3, 2, 13, 11, (3, 2), (2, 1), (1, 1)),
    (2, 5, 9, 9, 2, 3, 1),  # stride > kernel
    (1, 4, 6, 17, (1, 5), (1, 2), (0, 2)),
    (2, 3, 5, 5, 5, 1, 2),  # kernel = input, padding = kernel // 2
    (1, 2, 31, 29, 4, 3, 2),
    (4, 1, 3, 3, 3, 1, 0),
    (1, 7, 2, 2, (2, 1), None, 0),  # stride defaults to kernel
    # Rows wide enough for the vector blocks of the generic max path (>= 16 float / 8 double columns
    # whose windows avoid the padding), at strides 1-4; the last block overlaps the one before it.
    (2, 3, 9, 70, 3, 2, 1),
    (1, 2, 7, 53, (2, 3), (1, 3), (0, 1)),
    (1, 1, 5, 80, (1, 4), 4, (0, 2)),
    (2, 2, 6, 40, 3, 1, 0),
]


def _pair(v, default=None):
    if v is None:
        return default
    return (v, v) if isinstance(v, int) else tuple(v)


def _params(case):
    N, C, H, W, k, s, p = case
    k2 = _pair(k)
    return (N, C, H, W), k, s, p, k2, _pair(s, k2), _pair(p)


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_matches_reference_and_torch(case, dtype, rng):
    shape, k, s, p, k2, s2, p2 = _params(case)
    x = rng.standard_normal(shape).astype(dtype)
    x_before = x.copy()
    (y, idx), ctx = dk.max_pool2d(x, k, s, p, return_indices=True, return_ctx=True)
    assert y.dtype == dtype and idx.dtype == np.int64
    y_ref, idx_ref = max_pool2d_ref(x, k2, s2, p2)
    assert_close(y, y_ref, dtype, what="y vs reference")
    np.testing.assert_array_equal(idx, idx_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx,) = dk.max_pool2d_backward(ctx, dy)
    assert dx.dtype == dtype
    assert_close(dx, max_pool2d_backward_ref(shape, idx_ref, dy), dtype, what="dx vs reference")
    np.testing.assert_array_equal(x, x_before)

    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, k, s if s is not None else k, p, return_indices=True)
    yt.backward(torch.tensor(dy))
    assert_close(y, yt, dtype, what="y vs torch")
    np.testing.assert_array_equal(idx, it.numpy())
    assert_close(dx, xt.grad, dtype, what="dx vs torch")


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_matches_reference_and_torch(case, dtype, rng):
    shape, k, s, p, k2, s2, p2 = _params(case)
    x = rng.standard_normal(shape).astype(dtype)
    y, ctx = dk.avg_pool2d(x, k, s, p, return_ctx=True)
    assert y.dtype == dtype
    assert_close(y, avg_pool2d_ref(x, k2, s2, p2), dtype, what="y vs reference")
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx,) = dk.avg_pool2d_backward(ctx, dy)
    assert_close(dx, avg_pool2d_backward_ref(shape, k2, s2, p2, dy), dtype, what="dx vs reference")

    xt = torch.tensor(x, requires_grad=True)
    yt = F.avg_pool2d(xt, k, s if s is not None else k, p, count_include_pad=True)
    yt.backward(torch.tensor(dy))
    assert_close(y, yt, dtype, what="y vs torch")
    assert_close(dx, xt.grad, dtype, what="dx vs torch")


@pytest.mark.parametrize("case", [(2, 2, 5, 6, 2, 2, 0), (1, 2, 7, 5, 3, 2, 1), (1, 1, 6, 6, (2, 3), (1, 2), (1, 1))])
def test_pool_gradients_by_finite_differences(case, rng):
    shape, k, s, p, *_ = _params(case)
    # distinct values so the max is unique and the max-pool is differentiable at x
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 7.0
    for fwd, bwd in ((dk.max_pool2d, dk.max_pool2d_backward), (dk.avg_pool2d, dk.avg_pool2d_backward)):
        y, ctx = fwd(x, k, s, p, return_ctx=True)
        dy = rng.standard_normal(y.shape)
        (dx,) = bwd(ctx, dy)
        num = numeric_grad(lambda z: fwd(z, k, s, p), x, dy, eps=1e-4)  # noqa: B023
        assert_close(dx, num, np.float64, rtol=1e-7, atol=1e-8, what=f"{fwd.__name__} finite differences")


def test_max_pool_gradient_goes_only_to_the_max_unit():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]]]], dtype=np.float32)
    y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
    (dx,) = dk.max_pool2d_backward(ctx, np.array([[[[10.0]]]], dtype=np.float32))
    np.testing.assert_array_equal(dx, [[[[0, 10], [0, 0]]]])


def test_overlapping_windows_accumulate_gradient():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0  # the centre is the max of all four 2x2 windows (stride 1)
    y, ctx = dk.max_pool2d(x, 2, stride=1, return_ctx=True)
    (dx,) = dk.max_pool2d_backward(ctx, np.ones_like(y))
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


def test_nan_propagates_like_torch():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan  # two NaNs in one window: the last one's index, as PyTorch
    x[0, 0, 3, 3] = -np.inf
    y, idx = dk.max_pool2d(x, 2, return_indices=True)
    yt, it = F.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt.numpy()))
    np.testing.assert_array_equal(idx, it.numpy())
    assert_close(dk.avg_pool2d(x, 2), F.avg_pool2d(torch.tensor(x), 2), np.float32)


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_rows_with_ties_nan_and_inf_match_torch(stride, dtype, rng):
    """The vector-block path on data full of ties (first max wins), NaNs (the last NaN wins) and
    all--inf windows (the first in-bounds position is kept), against PyTorch's values and indices."""
    x = np.round(rng.standard_normal((2, 3, 8, 16 * stride + 23)) * 1.5).astype(dtype)
    x[rng.random(x.shape) < 0.02] = np.nan
    x[0, 1] = -np.inf
    x[1, 2, :, 5:40] = -np.inf
    y, idx = dk.max_pool2d(x, 3, stride, 1, return_indices=True)
    yt, it = F.max_pool2d(torch.tensor(x), 3, stride, 1, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())  # NaN == NaN here
    np.testing.assert_array_equal(idx, it.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2x2_stride2_every_row_width(dtype, rng):
    """The 2x2/s2 path blocks output rows by register width (scalar, 2-wide, half and full blocks, an
    overlapping last block): every width from 1 to 20 output columns, odd input sizes, ties and
    NaNs, forward values and indices and both backward passes against PyTorch."""
    for W in range(2, 42):
        x = np.round(rng.standard_normal((2, 2, 5, W)) * 1.5).astype(dtype)
        x[rng.random(x.shape) < 0.03] = np.nan
        (y, idx), ctx = dk.max_pool2d(x, 2, return_indices=True, return_ctx=True)
        yt, it = F.max_pool2d(torch.tensor(x), 2, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy(), err_msg=f"W={W}")
        np.testing.assert_array_equal(idx, it.numpy(), err_msg=f"W={W}")
        dy = rng.standard_normal(y.shape).astype(dtype)
        (dx,) = dk.max_pool2d_backward(ctx, dy)
        np.testing.assert_array_equal(dx, max_pool2d_backward_ref(x.shape, it.numpy(), dy), err_msg=f"W={W}")
        xa = np.nan_to_num(x)
        ya, actx = dk.avg_pool2d(xa, 2, return_ctx=True)
        H2, W2 = 2 * (x.shape[2] // 2), 2 * (W // 2)
        a, b = xa[:, :, 0:H2:2, 0:W2:2], xa[:, :, 0:H2:2, 1:W2:2]
        c, d = xa[:, :, 1:H2:2, 0:W2:2], xa[:, :, 1:H2:2, 1:W2:2]
        # the generic path's (and PyTorch's) order of operations, so its rounding: (((0 + a) + b) + c) + d, then * 1/4
        np.testing.assert_array_equal(ya, ((((0 + a) + b) + c) + d) * dtype(0.25), err_msg=f"W={W}")
        (dxa,) = dk.avg_pool2d_backward(actx, dy)
        np.testing.assert_array_equal(
            dxa, avg_pool2d_backward_ref(x.shape, (2, 2), (2, 2), (0, 0), dy).astype(dtype), err_msg=f"W={W}"
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_of_negative_zeros_is_positive_zero_as_torch(dtype):
    """A window of -0.0s averages to +0.0 as in PyTorch (its sum starts from 0), on the 2x2/s2
    path (scalar, half and full vector blocks) as on the generic one; the 2x2 blocks gave -0.0."""
    for W in (2, 6, 10, 18, 34):
        x = np.full((1, 2, 3, W), -0.0, dtype)
        for k, s in ((2, 2), (2, 1), (3, 2)):
            if W < k:
                continue
            y = dk.avg_pool2d(x, k, s)
            yt = F.avg_pool2d(torch.tensor(x), k, s).numpy()
            np.testing.assert_array_equal(np.signbit(y), np.signbit(yt), err_msg=f"W={W} k={k} s={s}")


def test_all_minus_inf_window_and_padding():
    x = np.full((1, 1, 3, 3), -np.inf, dtype=np.float32)
    y, idx = dk.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    yt, it = F.max_pool2d(torch.tensor(x), 3, 1, 1, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(idx, it.numpy())


def test_dtypes_layouts_and_inputs_untouched(rng):
    x64 = rng.standard_normal((2, 3, 8, 10))
    ref = max_pool2d_ref(x64, (2, 2), (2, 2), (0, 0))[0]
    # non-contiguous view, integer input (-> float64), float16 (-> computed in float32, returned float16), list
    xt = np.ascontiguousarray(x64.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not xt.flags.c_contiguous
    assert_close(dk.max_pool2d(xt, 2), ref, np.float64)
    xi = (x64 * 10).astype(np.int32)
    yi = dk.max_pool2d(xi, 2)
    assert yi.dtype == np.float64
    assert_close(yi, max_pool2d_ref(xi, (2, 2), (2, 2), (0, 0))[0], np.float64)
    xh = x64.astype(np.float16)
    yh = dk.avg_pool2d(xh, 2)
    assert yh.dtype == np.float16
    assert_close(yh, avg_pool2d_ref(xh, (2, 2), (2, 2), (0, 0)), np.float16)
    yl = dk.max_pool2d(x64[:1, :1].tolist(), 2)
    assert_close(yl, ref[:1, :1], np.float64)
    ro = x64.copy()
    ro.flags.writeable = False
    assert_close(dk.max_pool2d(ro, 2), ref, np.float64)


def test_empty_batch_gives_empty_output():
    y, ctx = dk.max_pool2d(np.zeros((0, 3, 4, 4), np.float32), 2, return_ctx=True)
    assert y.shape == (0, 3, 2, 2)
    (dx,) = dk.max_pool2d_backward(ctx, y)
    assert dx.shape == (0, 3, 4, 4)


def test_threads_give_identical_results(rng):
    x = rng.standard_normal((4, 8, 33, 31)).astype(np.float32)
    before = dk.get_num_threads()
    try:
        dk.set_num_threads(1)
        y1 = dk.avg_pool2d(x, 3, 2, 1)
        dk.set_num_threads(2)
        y2 = dk.avg_pool2d(x, 3, 2, 1)
    finally:
        dk.set_num_threads(before)
    np.testing.assert_array_equal(y1, y2)
    with pytest.raises(ValueError, match="n must be a positive int"):
        dk.set_num_threads(0)


X4 = np.zeros((1, 1, 4, 4), np.float32)

BAD_INPUTS = [
    (dict(x=np.zeros((4, 4)), kernel_size=2), ValueError, "'x' must be a 4-D"),
    (dict(x=np.zeros((1, 1, 1, 4, 4)), kernel_size=2), ValueError, "'x' must be a 4-D"),
    (dict(x=X4, kernel_size=5), ValueError, "larger than the padded input"),
    (dict(x=X4, kernel_size=0), ValueError, "'kernel_size' must be >= 1"),
    (dict(x=X4, kernel_size=-2), ValueError, "'kernel_size' must be >= 1"),
    (dict(x=X4, kernel_size=2, stride=0), ValueError, "'stride' must be >= 1"),
    (dict(x=X4, kernel_size=2, padding=-1), ValueError, "'padding' must be >= 0"),
    (dict(x=X4, kernel_size=2, padding=2), ValueError, "at most half"),
    (dict(x=X4, kernel_size=(2, 2, 2)), TypeError, "'kernel_size' must be an int or a pair"),
    (dict(x=X4, kernel_size=2.0), TypeError, "'kernel_size' must be an int or a pair"),
    (dict(x=X4, kernel_size=True), TypeError, "'kernel_size' must be an int or a pair"),
    (dict(x=np.zeros((1, 1, 4, 4), np.complex64), kernel_size=2), TypeError, "'x' has dtype complex64"),
    (dict(x=np.array([[[["a"]]]], dtype=object), kernel_size=1), TypeError, "'x' has dtype object"),
    (dict(x=np.zeros((1, 1, 0, 4), np.float32), kernel_size=1), ValueError, "larger than the padded input"),
]


@pytest.mark.parametrize("fn", [dk.max_pool2d, dk.avg_pool2d])
@pytest.mark.parametrize("kwargs, exc, match", BAD_INPUTS)
def test_bad_input_raises_clear_errors(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(**kwargs)


def test_backward_rejects_wrong_dy_and_ctx():
    y, ctx = dk.max_pool2d(X4, 2, return_ctx=True)
    with pytest.raises(ValueError, match="'dy' has shape"):
        dk.max_pool2d_backward(ctx, np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(TypeError, match="'dy' has dtype"):
        dk.max_pool2d_backward(ctx, np.zeros((1, 1, 2, 2), np.complex64))
    _, actx = dk.avg_pool2d(X4, 2, return_ctx=True)
    with pytest.raises(TypeError, match="'ctx' must come from max_pool2d"):
        dk.max_pool2d_backward(actx, y)
    with pytest.raises(TypeError, match="'ctx' must come from avg_pool2d"):
        dk.avg_pool2d_backward(ctx, y)


ISA_SCRIPT = """
import numpy as np, deepkern as dk, sys
sys.path.insert(0, 'tests')
from reference import max_pool2d_ref, avg_pool2d_ref
rng = np.random.default_rng(5)
for shape, k, s, p in [((2, 3, 37, 41), (3, 3), (1, 1), (1, 1)), ((1, 2, 64, 70), (2, 2), (2, 2), (0, 0)), ((2, 1, 9, 7), (2, 2), (2, 2), (0, 0)),
                       ((2, 2, 20, 19), (3, 2), (3, 3), (1, 0)), ((2, 2, 11, 67), (3, 3), (2, 2), (1, 1)),
                       ((1, 2, 6, 75), (2, 3), (1, 3), (0, 1))]:
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(shape).astype(dt)
        y, idx = dk.max_pool2d(x, k, s, p, return_indices=True)
        yr, ir = max_pool2d_ref(x, k, s, p)
        assert np.array_equal(idx, ir) and np.allclose(y, yr), (shape, dt)
        assert np.allclose(dk.avg_pool2d(x, k, s, p), avg_pool2d_ref(x, k, s, p), rtol=1e-5, atol=1e-6)
print(dk._cpu.isa())
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_every_simd_path_is_correct(isa):
    """Each ISA copy of the kernels, forced with DEEPKERN_CPU_ISA (skipped if the CPU lacks it)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, DEEPKERN_CPU_ISA=isa)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", ISA_SCRIPT], env=env, cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = out.stdout.strip()
    if got != isa:
        pytest.skip(f"this CPU cannot run {isa} (best available: {got})")
