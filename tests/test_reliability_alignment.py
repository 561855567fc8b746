"""Misaligned arrays (numpy allows them: np.frombuffer at an odd byte offset) reach no kernel: the
Python layer copies them (_validate.kernel_layout) and the bindings refuse any that slip through."""

import deepkern as dk
import numpy as np
import pytest
from deepkern import _cpu


def misaligned(values):
    """A C-contiguous copy of `values` whose data starts one byte past an aligned address."""
    values = np.ascontiguousarray(values)
    buf = np.zeros(values.nbytes + values.itemsize, np.uint8)
    a = np.frombuffer(buf.data, dtype=values.dtype, count=values.size, offset=1).reshape(values.shape)
    a[...] = values
    assert not a.flags.aligned and a.flags.c_contiguous
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_ops_accept_misaligned_inputs(dtype, rng):
    x = rng.standard_normal((2, 3, 9, 10)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    mx, mw = misaligned(x), misaligned(w)
    y, ctx = dk.conv2d(mx, mw, padding=1, return_ctx=True)
    np.testing.assert_array_equal(y, dk.conv2d(x, w, padding=1))
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(
        dk.conv2d_backward(ctx, misaligned(dy)), dk.conv2d_backward(dk.conv2d(x, w, padding=1, return_ctx=True)[1], dy)
    ):
        if want is not None:
            np.testing.assert_array_equal(got, want)
    for k, s, p in [(2, 2, 0), (3, 2, 1)]:
        y, ctx = dk.max_pool2d(mx, k, s, p, return_ctx=True)
        np.testing.assert_array_equal(y, dk.max_pool2d(x, k, s, p))
        np.testing.assert_array_equal(
            dk.max_pool2d_backward(ctx, misaligned(y))[0],
            dk.max_pool2d_backward(dk.max_pool2d(x, k, s, p, return_ctx=True)[1], y)[0],
        )
        np.testing.assert_array_equal(dk.avg_pool2d(mx, k, s, p), dk.avg_pool2d(x, k, s, p))
    q = x.reshape(6, 9, 10)
    np.testing.assert_array_equal(
        dk.scaled_dot_product_attention(misaligned(q), misaligned(q), misaligned(q)),
        dk.scaled_dot_product_attention(q, q, q),
    )
    T, B, I, H = 4, 2, 5, 3
    xs = rng.standard_normal((T, B, I)).astype(dtype)
    w_ih = rng.standard_normal((4 * H, I)).astype(dtype)
    w_hh = rng.standard_normal((4 * H, H)).astype(dtype)
    got = dk.lstm(misaligned(xs), None, None, misaligned(w_ih), misaligned(w_hh))
    for g, r in zip(got, dk.lstm(xs, None, None, w_ih, w_hh)):
        np.testing.assert_array_equal(g, r)


def test_layers_accept_misaligned_inputs(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dense = dk.nn.Dense(6, 3, seed=0)
    np.testing.assert_array_equal(dense.forward(misaligned(x)), dense.forward(x))
    relu = dk.nn.ReLU()
    y = relu.forward(misaligned(x))
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(relu.backward(misaligned(x)), np.where(x > 0, x, 0))


def test_bindings_refuse_misaligned_arrays():
    a = misaligned(np.ones((4, 4), np.float32))
    c = np.empty((4, 4), np.float32)
    with pytest.raises(ValueError, match="aligned"):
        _cpu.gemm(a, np.ones((4, 4), np.float32), c)
    with pytest.raises(ValueError, match="aligned"):
        _cpu.gemm(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32), misaligned(c))
