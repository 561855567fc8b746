"""PyTorch's other pooling arguments: dilation, ceil_mode, count_include_pad, divisor_override,
return_indices on the layer, and unbatched (C, H, W) input; against the reference, PyTorch and
finite differences, on random shapes."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, numeric_grad
from reference import avg_pool2d_backward_ref, avg_pool2d_ref, max_pool2d_backward_ref, max_pool2d_ref


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _torch_out(n, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    o = (n + 2 * p - eff + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def random_cases(seed, count, dilation):
    """(shape, k, s, p, d, ceil_mode) that PyTorch accepts: odd and prime sizes, stride > kernel,
    padding up to kernel // 2, rectangular windows, rows wide enough for the vector blocks."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        sh, sw = (int(v) for v in rng.integers(1, 5, 2))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        dh, dw = (int(v) for v in rng.integers(1, 4, 2)) if dilation else (1, 1)
        H = int(rng.integers(1, 14))
        W = int(rng.choice([int(rng.integers(1, 14)), int(rng.integers(30, 90))]))
        ceil_mode = bool(rng.integers(0, 2))
        if min(_torch_out(H, kh, sh, ph, dh, ceil_mode), _torch_out(W, kw, sw, pw, dw, ceil_mode)) < 1:
            continue
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), H, W)
        cases.append((shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode))
    return cases


MAX_CASES = random_cases(1, 40, dilation=True) + [
    ((1, 1, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), True),  # 2x2/s2 with a ceil window: not the tiling fast path
    ((2, 3, 7, 9), (2, 2), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 9, 70), (3, 3), (1, 2), (1, 1), (2, 3), False),  # dilated vector blocks
    ((1, 1, 1, 1), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 1, 6, 6), (3, 3), (3, 3), (1, 1), (2, 2), True),
]


@pytest.mark.parametrize("case", MAX_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_dilation_ceil_mode(case, dtype, rng):
    shape, k, s, p, d, ceil_mode = case
    x = rng.standard_normal(shape).astype(dtype)
    x_before = x.copy()
    (y, idx), ctx = dk.max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True, return_ctx=True)
    y_ref, idx_ref = max_pool2d_ref(x, k, s, p, d, ceil_mode)
    assert_close(y, y_ref, dtype, what="y vs reference")
    np.testing.assert_array_equal(idx, idx_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx,) = dk.max_pool2d_backward(ctx, dy)
    assert_close(dx, max_pool2d_backward_ref(shape, idx_ref, dy), dtype, what="dx vs reference")
    np.testing.assert_array_equal(x, x_before)

    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(xt, k, s, p, d, ceil_mode, return_indices=True)
    yt.backward(torch.tensor(dy))
    assert y.shape == tuple(yt.shape)
    assert_close(y, yt, dtype, what="y vs torch")
    np.testing.assert_array_equal(idx, it.numpy())
    assert_close(dx, xt.grad, dtype, what="dx vs torch")


# count_include_pad alternates; every third pair of cases has a divisor_override
AVG_CASES = [
    (shape, k, s, p, ceil_mode, i % 2 == 0, (None, None, 3 + i % 5)[(i // 2) % 3])
    for i, (shape, k, s, p, _, ceil_mode) in enumerate(random_cases(2, 36, dilation=False))
] + [
    ((1, 1, 5, 5), (2, 2), (2, 2), (0, 0), True, True, None),  # 2x2/s2 whose last window is clipped
    ((2, 2, 8, 8), (2, 2), (2, 2), (0, 0), False, True, 3),  # 2x2/s2 with a divisor other than 4
    ((2, 2, 6, 40), (3, 3), (1, 1), (1, 1), False, False, None),  # vector blocks, per-window divisors
    ((1, 2, 7, 53), (2, 3), (1, 3), (1, 1), True, True, None),
]


@pytest.mark.parametrize("case", AVG_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_ceil_mode_count_include_pad_divisor(case, dtype, rng):
    shape, k, s, p, ceil_mode, cip, div = case
    x = rng.standard_normal(shape).astype(dtype)
    y, ctx = dk.avg_pool2d(x, k, s, p, ceil_mode, cip, div, return_ctx=True)
    assert_close(y, avg_pool2d_ref(x, k, s, p, ceil_mode, cip, div), dtype, what="y vs reference")
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx,) = dk.avg_pool2d_backward(ctx, dy)
    assert_close(dx, avg_pool2d_backward_ref(shape, k, s, p, dy, ceil_mode, cip, div), dtype, what="dx vs reference")

    xt = torch.tensor(x, requires_grad=True)
    yt = F.avg_pool2d(xt, k, s, p, ceil_mode, cip, div)
    yt.backward(torch.tensor(dy))
    assert y.shape == tuple(yt.shape)
    assert_close(y, yt, dtype, what="y vs torch")
    assert_close(dx, xt.grad, dtype, what="dx vs torch")


# finite differences cost two forwards per input element: the small cases
@pytest.mark.parametrize("case", [c for c in MAX_CASES if np.prod(c[0]) <= 600][:12])
def test_max_pool_new_gradients_by_finite_differences(case, rng):
    shape, k, s, p, d, ceil_mode = case
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 7.0  # a unique max per window
    y, ctx = dk.max_pool2d(x, k, s, p, d, ceil_mode, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    (dx,) = dk.max_pool2d_backward(ctx, dy)
    num = numeric_grad(lambda z: dk.max_pool2d(z, k, s, p, d, ceil_mode), x, dy, eps=1e-4)
    assert_close(dx, num, np.float64, rtol=1e-7, atol=1e-8, what="max_pool2d finite differences")


@pytest.mark.parametrize("case", [c for c in AVG_CASES if np.prod(c[0]) <= 600][:12])
def test_avg_pool_new_gradients_by_finite_differences(case, rng):
    shape, k, s, p, ceil_mode, cip, div = case
    x = rng.standard_normal(shape)
    y, ctx = dk.avg_pool2d(x, k, s, p, ceil_mode, cip, div, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    (dx,) = dk.avg_pool2d_backward(ctx, dy)
    num = numeric_grad(lambda z: dk.avg_pool2d(z, k, s, p, ceil_mode, cip, div), x, dy, eps=1e-5)
    assert_close(dx, num, np.float64, rtol=1e-7, atol=1e-8, what="avg_pool2d finite differences")


def test_dilated_max_pool_with_ties_nan_and_inf_matches_torch(rng):
    """Dilated windows on wide rows (vector blocks) and narrow ones, full of ties, NaNs and -inf."""
    for W, s in ((77, 1), (77, 2), (9, 1), (40, 3)):
        x = np.round(rng.standard_normal((2, 2, 9, W)) * 1.5).astype(np.float32)
        x[rng.random(x.shape) < 0.02] = np.nan
        x[1, 1] = -np.inf
        y, idx = dk.max_pool2d(x, 3, s, 1, 2, True, return_indices=True)
        yt, it = F.max_pool2d(torch.tensor(x), 3, s, 1, 2, True, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(idx, it.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unbatched_input_as_torch(dtype, rng):
    x = rng.standard_normal((3, 11, 13)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    (y, idx), ctx = dk.max_pool2d(x, 3, 2, 1, 2, True, return_indices=True, return_ctx=True)
    yt, it = F.max_pool2d(xt, 3, 2, 1, 2, True, return_indices=True)
    assert y.shape == tuple(yt.shape) == (3, 5, 6) and idx.shape == y.shape
    assert_close(y, yt, dtype)
    np.testing.assert_array_equal(idx, it.numpy())
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx,) = dk.max_pool2d_backward(ctx, dy)
    yt.backward(torch.tensor(dy))
    assert dx.shape == x.shape
    assert_close(dx, xt.grad, dtype)
    with pytest.raises(ValueError, match="'dy' has shape"):
        dk.max_pool2d_backward(ctx, dy[None])

    xt.grad = None
    y, ctx = dk.avg_pool2d(x, 3, 2, 1, True, False, return_ctx=True)
    yt = F.avg_pool2d(xt, 3, 2, 1, True, False)
    assert y.shape == tuple(yt.shape) == (3, 6, 7)
    assert_close(y, yt, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    (dx,) = dk.avg_pool2d_backward(ctx, dy)
    yt.backward(torch.tensor(dy))
    assert dx.shape == x.shape
    assert_close(dx, xt.grad, dtype)


def test_layers_take_pytorch_arguments(rng):
    x = rng.standard_normal((2, 3, 10, 11))
    xt = torch.tensor(x, requires_grad=True)
    layer = dk.nn.MaxPool2D(3, 2, 1, dilation=2, return_indices=True, ceil_mode=True)
    tl = torch.nn.MaxPool2d(3, 2, 1, dilation=2, return_indices=True, ceil_mode=True)
    (y, idx), (yt, it) = layer.forward(x), tl(xt)
    assert_close(y, yt, np.float64)
    np.testing.assert_array_equal(idx, it.numpy())
    assert layer.output_shape(x.shape[1:]) == tuple(yt.shape[1:])
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    assert_close(layer.backward(dy), xt.grad, np.float64)

    xt.grad = None
    layer = dk.nn.AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False, divisor_override=None)
    tl = torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
    y, yt = layer.forward(x), tl(xt)
    assert_close(y, yt, np.float64)
    assert layer.output_shape(x.shape[1:]) == tuple(yt.shape[1:])
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    assert_close(layer.backward(dy), xt.grad, np.float64)

    layer = dk.nn.AvgPool2D(2, divisor_override=3)
    assert_close(layer.forward(x[0]), torch.nn.AvgPool2d(2, divisor_override=3)(torch.tensor(x[0])), np.float64)
    assert dk.nn.MaxPool2D(2).forward(x[0]).shape == (3, 5, 5)


X4 = np.zeros((1, 1, 4, 4), np.float32)


@pytest.mark.parametrize(
    "fn, kwargs, exc, match",
    [
        (dk.max_pool2d, dict(dilation=0), ValueError, "'dilation' must be >= 1"),
        (dk.max_pool2d, dict(dilation=(1, 2, 3)), TypeError, "'dilation' must be an int or a pair"),
        (dk.max_pool2d, dict(dilation=4), ValueError, "dilated extent"),
        (dk.max_pool2d, dict(ceil_mode=1), TypeError, "'ceil_mode' must be a bool"),
        (dk.avg_pool2d, dict(ceil_mode="yes"), TypeError, "'ceil_mode' must be a bool"),
        (dk.avg_pool2d, dict(count_include_pad=None), TypeError, "'count_include_pad' must be a bool"),
        (dk.avg_pool2d, dict(divisor_override=0), ValueError, "'divisor_override' must be None or a positive int"),
        (dk.avg_pool2d, dict(divisor_override=2.0), ValueError, "'divisor_override' must be None or a positive int"),
        (dk.avg_pool2d, dict(divisor_override=True), ValueError, "'divisor_override' must be None or a positive int"),
    ],
)
def test_new_arguments_bad_input(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(X4, 2, **kwargs)


def test_layer_bad_arguments():
    with pytest.raises(TypeError, match="'return_indices' must be a bool"):
        dk.nn.MaxPool2D(2, return_indices="no")
    with pytest.raises(TypeError, match="'ceil_mode' must be a bool"):
        dk.nn.MaxPool2D(2, ceil_mode=None)
    with pytest.raises(ValueError, match="'divisor_override'"):
        dk.nn.AvgPool2D(2, divisor_override=-1)
    with pytest.raises(ValueError, match="'x' must be a 4-D .* or 3-D"):
        dk.nn.MaxPool2D(2).forward(np.zeros((4, 4)))


ISA_SCRIPT = """
import numpy as np, deepkern as dk, sys
sys.path.insert(0, 'tests')
from reference import max_pool2d_ref, avg_pool2d_ref
rng = np.random.default_rng(5)
for shape, k, s, p, d, c in [((2, 3, 37, 71), (3, 3), (1, 1), (1, 1), (2, 2), True), ((1, 2, 9, 64), (2, 3), (2, 2), (0, 1), (3, 1), True),
                             ((2, 2, 11, 67), (3, 3), (2, 2), (1, 1), (1, 2), False), ((1, 1, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), True)]:
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(shape).astype(dt)
        y, idx = dk.max_pool2d(x, k, s, p, d, c, return_indices=True)
        yr, ir = max_pool2d_ref(x, k, s, p, d, c)
        assert np.array_equal(idx, ir) and np.allclose(y, yr), (shape, dt)
        for cip, div in ((True, None), (False, None), (True, 5)):
            ya = dk.avg_pool2d(x, k, s, p, c, cip, div)
            assert np.allclose(ya, avg_pool2d_ref(x, k, s, p, c, cip, div), rtol=1e-5, atol=1e-6), (shape, dt, cip, div)
print(dk._cpu.isa())
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_every_simd_path_handles_the_new_arguments(isa):
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


class _CudaLike:
    name = "cuda"


def test_cuda_refuses_what_its_kernels_lack_and_takes_the_rest():
    """The CUDA pooling kernels read the twelve original fields; dilation, ceil_mode windows past the
    padded input, count_include_pad=False with padding and divisor_override are CPU-only for now."""
    from deepkern.functional.pooling import _kernel_params, _pool_params

    cuda_fields = ("N", "C", "H", "W", "Ho", "Wo", "kh", "kw", "sh", "sw", "ph", "pw")
    x = np.zeros((2, 3, 9, 9), np.float32)
    ok = _pool_params("max_pool2d", x, 3, 2, 1, 1, True)  # ceil_mode that adds no window: same as floor
    kp = _kernel_params("max_pool2d", _CudaLike(), ok)
    assert tuple(kp[f] for f in cuda_fields) == (2, 3, 9, 9, 5, 5, 3, 3, 2, 2, 1, 1)
    ok = _pool_params("avg_pool2d", x, 3, 3, 0, 1, False, False)  # count_include_pad=False without padding
    kp = _kernel_params("avg_pool2d", _CudaLike(), ok)
    assert (kp["Ho"], kp["Wo"]) == (3, 3)
    for op, args, what in [
        ("max_pool2d", (3, 2, 1, 2, False), "dilation"),
        ("max_pool2d", (2, 2, 0, 1, True), "ceil_mode"),
        ("avg_pool2d", (3, 2, 1, 1, False, False), "count_include_pad=False"),
        ("avg_pool2d", (3, 2, 1, 1, False, True, 4), "divisor_override"),
    ]:
        p = _pool_params(op, x, *args)
        with pytest.raises(NotImplementedError, match=f"{op}: {what}.* is CPU-only for now"):
            _kernel_params(op, _CudaLike(), p)
