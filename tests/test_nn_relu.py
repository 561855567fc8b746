"""nn.ReLU's C++ kernel (deepkern._cpu.relu_*) against PyTorch, special values included."""

import deepkern as dk
import numpy as np
import pytest
import torch

SPECIAL = [-np.inf, -1.5, -0.0, 0.0, np.nan, 2.5, np.inf, -1e-45, 1e-45]


def _torch_relu(x, dy):
    xt = torch.tensor(x, requires_grad=True)
    y = torch.relu(xt)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 100_003])  # 100_003: the multi-threaded path, with a ragged last chunk
def test_relu_matches_torch_bitwise_with_special_values(dtype, n, rng):
    x = rng.standard_normal(n).astype(dtype)
    dy = rng.standard_normal(n).astype(dtype)
    k = min(n, len(SPECIAL))
    x[:k] = np.array(SPECIAL[:k], dtype)
    dy[rng.random(n) < 0.1] = np.inf  # an inf gradient at an inactive unit must still give 0
    dy[rng.random(n) < 0.05] = np.nan
    x_before, dy_before = x.copy(), dy.copy()
    layer = dk.nn.ReLU()
    y = layer.forward(x)
    dx = layer.backward(dy)
    y_t, dx_t = _torch_relu(x, dy)
    assert y.dtype == dtype and dx.dtype == dtype
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_t))  # -0.0 stays -0.0, as torch
    np.testing.assert_array_equal(dx, dx_t)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)


def test_relu_non_contiguous_and_float16_paths(rng):
    base = rng.standard_normal((6, 8, 10)).astype(np.float32)
    x = base[:, ::2, 1::3]  # a strided view
    dy = rng.standard_normal((6, 8, 10)).astype(np.float32)[:, 1::2, 1::3]
    layer = dk.nn.ReLU()
    y_t, dx_t = _torch_relu(np.ascontiguousarray(x), np.ascontiguousarray(dy))
    np.testing.assert_array_equal(layer.forward(x), y_t)
    np.testing.assert_array_equal(layer.backward(dy), dx_t)
    h = np.array(SPECIAL, np.float16)  # float16 takes the array-op path: same semantics
    g = np.ones_like(h)
    g[0] = np.inf
    y16 = layer.forward(h)
    dx16 = layer.backward(g)
    y_t, dx_t = _torch_relu(h.astype(np.float32), g.astype(np.float32))
    assert y16.dtype == np.float16
    np.testing.assert_array_equal(y16.astype(np.float32), y_t)
    np.testing.assert_array_equal(dx16.astype(np.float32), dx_t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_relu_keeps_0d_shape(dtype):
    # a 0-d input gives a 0-d output and takes a 0-d gradient, as every other elementwise layer
    # (np.ascontiguousarray made it shape (1,), and the backward then refused the 0-d dy)
    layer = dk.nn.ReLU()
    for v, g in ((-2.0, 0.0), (3.0, 1.5)):
        y = layer.forward(np.array(v, dtype))
        dx = layer.backward(np.array(1.5, dtype))
        assert y.shape == () and dx.shape == () and y.dtype == dtype
        assert float(y) == max(v, 0.0) and float(dx) == g


def test_relu_threads_give_identical_bits(rng):
    x = rng.standard_normal(300_000).astype(np.float32)
    before = dk.get_num_threads()
    out = []
    try:
        for t in (1, 2, 3):
            dk.set_num_threads(t)
            layer = dk.nn.ReLU()
            out.append((layer.forward(x), layer.backward(x)))
    finally:
        dk.set_num_threads(before)
    for y, dx in out[1:]:
        np.testing.assert_array_equal(y, out[0][0])
        np.testing.assert_array_equal(dx, out[0][1])


def test_relu_kernel_rejects_wrong_buffers():
    from deepkern import _cpu

    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="active"):
        _cpu.relu_forward(x, np.empty(4, np.float32), np.empty(3, np.bool_))
    with pytest.raises(TypeError, match="active"):
        _cpu.relu_backward(x, np.empty(4, np.float32), np.empty(4, np.float32))
    with pytest.raises(TypeError, match="dtype"):
        _cpu.relu_forward(x, np.empty(4, np.float64), np.empty(4, np.bool_))
