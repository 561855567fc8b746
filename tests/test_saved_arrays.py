"""Arrays a forward saves by reference: changing one in place before the backward raises
RuntimeError naming it (python/deepkern/_saved.py), instead of returning wrong gradients."""

import deepkern as dk
import numpy as np
import pytest
from deepkern import _cpu

# ---- the fingerprint itself ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8])
@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 33, 1001])
def test_fingerprint_changes_with_any_single_element(rng, dtype, n):
    a = (rng.standard_normal(n) * 100).astype(dtype)
    fp = _cpu.fingerprint(a)
    assert _cpu.fingerprint(a.copy()) == fp  # content, not address
    size = a.itemsize
    for i in range(n):
        b = a.copy()
        bit = int(rng.integers(8 * size))
        b.view(np.uint8)[i * size + bit // 8] ^= np.uint8(1 << (bit % 8))  # one flipped bit in element i
        assert _cpu.fingerprint(b) != fp, f"element {i} of {n}, bit {bit}"


def test_fingerprint_sees_swaps_and_length(rng):
    a = rng.standard_normal(64).astype(np.float32)
    b = a.copy()
    b[[3, 40]] = b[[40, 3]]
    assert _cpu.fingerprint(b) != _cpu.fingerprint(a)
    z = np.zeros(16, np.float32)
    assert _cpu.fingerprint(z) != _cpu.fingerprint(np.zeros(17, np.float32))  # zeros padding the tail
    assert _cpu.fingerprint(np.zeros(0, np.float32)) == _cpu.fingerprint(np.zeros(0, np.float64))


def test_fingerprint_is_independent_of_thread_count(rng):
    a = rng.standard_normal(300_001).astype(np.float32)  # above the size where it goes parallel
    before = dk.get_num_threads()
    try:
        fps = set()
        for t in (1, 2, 3):
            dk.set_num_threads(t)
            fps.add(_cpu.fingerprint(a))
    finally:
        dk.set_num_threads(before)
    assert len(fps) == 1
    b = a.copy()
    b[150_000] = np.nextafter(b[150_000], np.inf)  # one ulp, in the middle of the second thread's half
    assert _cpu.fingerprint(b) != _cpu.fingerprint(a)


def test_fingerprint_rejects_non_contiguous():
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu.fingerprint(np.zeros((4, 4), np.float32)[:, ::2])


# ---- every op that saves arrays the caller can reach ------------------------------------------


def _conv(rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y, ctx = dk.conv2d(x, w, padding=1, return_ctx=True)
    return {"x": x, "w": w}, lambda: dk.conv2d_backward(ctx, np.ones_like(y))


def _lstm(rng):
    T, B, I, H = 3, 2, 5, 4
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32)
    (y, hT, cT), ctx = dk.lstm(x, None, None, w_ih, w_hh, return_ctx=True)
    return {"w_ih": w_ih, "w_hh": w_hh}, lambda: dk.lstm_backward(ctx, np.ones_like(y))


def _lstm_cell(rng):
    B, I, H = 2, 5, 4
    x = rng.standard_normal((B, I))
    w_ih = rng.standard_normal((4 * H, I))
    w_hh = rng.standard_normal((4 * H, H))
    (h1, c1), ctx = dk.lstm_cell(x, None, None, w_ih, w_hh, return_ctx=True)
    return {"w_ih": w_ih, "w_hh": w_hh}, lambda: dk.lstm_cell_backward(ctx, np.ones_like(h1), None)


def _sdpa(rng):
    q, k, v = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(3))
    out, ctx = dk.scaled_dot_product_attention(q, k, v, return_ctx=True)
    return {"q": q, "k": k, "v": v, "out": out}, lambda: dk.scaled_dot_product_attention_backward(
        ctx, np.ones_like(out)
    )


def _max_pool(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    (y, idx), ctx = dk.max_pool2d(x, 2, return_indices=True, return_ctx=True)
    return {"indices": idx}, lambda: dk.max_pool2d_backward(ctx, np.ones_like(y))


OPS = {"conv2d": _conv, "lstm": _lstm, "lstm_cell": _lstm_cell, "sdpa": _sdpa, "max_pool2d": _max_pool}
CASES = [(op, name) for op, make in OPS.items() for name in make(np.random.default_rng(0))[0]]


@pytest.mark.parametrize("op,name", CASES)
def test_in_place_change_before_backward_raises(rng, op, name):
    arrays, backward = OPS[op](rng)
    reference = [None if g is None else g.copy() for g in backward()]  # unchanged: runs, and may run again
    a = arrays[name]
    flat = a.reshape(-1)
    i = int(rng.integers(flat.size))
    old = flat[i].copy()
    flat[i] = old + 1
    with pytest.raises(RuntimeError, match=f"'{name}'.*modified in place"):
        backward()
    flat[i] = old  # restored bit for bit: the backward is right again
    for got, want in zip(backward(), reference):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got, want)


def test_converted_inputs_are_private_copies(rng):
    """An input the forward had to convert (dtype, layout, list) is a copy: changing the caller's
    original changes nothing, so the backward runs and is right."""
    x = rng.integers(-3, 3, (2, 3, 7, 6))  # int64 -> float64 copy
    w_big = rng.standard_normal((4, 3, 3, 6))
    w = w_big[:, :, :, ::2]  # non-contiguous -> copy
    y, ctx = dk.conv2d(x, w, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    want = dk.conv2d_backward(ctx, dy)
    x += 1
    w_big[...] = 0
    got = dk.conv2d_backward(ctx, dy)
    for g, r in zip(got[:2], want[:2]):
        np.testing.assert_array_equal(g, r)


def test_pool_indices_not_returned_are_not_checked(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
    assert not ctx._fingerprints
    x[...] = 0  # max pooling's backward needs only the indices, which are private here
    (dx,) = dk.max_pool2d_backward(ctx, np.ones_like(y))
    assert dx.sum() == y.size


def test_layer_input_changed_between_forward_and_backward(rng):
    layer = dk.nn.Conv2D(3, 4, 3)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y = layer.forward(x)
    x *= 2
    with pytest.raises(RuntimeError, match="'x'.*modified in place"):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("cls", [dk.nn.Sigmoid, dk.nn.Tanh, dk.nn.Softmax])
def test_activation_output_changed_before_backward_raises(cls, rng):
    """Sigmoid, Tanh and Softmax return the array their backward reads: a caller computing, say,
    the gradient in place on the model's output (out -= target) would get wrong gradients."""
    layer = cls()
    x = rng.standard_normal((4, 5))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    want = layer.backward(dy)  # unchanged: fine, and repeatable
    old = y.copy()
    y -= 0.5
    with pytest.raises(RuntimeError, match=f"{cls.__name__}.backward: its output 'y'.*modified in place"):
        layer.backward(dy)
    y[...] = old  # restored bit for bit
    np.testing.assert_array_equal(layer.backward(dy), want)


def test_dense_input_changed_before_backward_raises(rng):
    layer = dk.nn.Dense(5, 3, seed=0)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = layer.forward(x)
    x[1, 2] += 1.0  # e.g. the next batch loaded into the same buffer too early
    with pytest.raises(RuntimeError, match="Dense.backward: its input 'x'.*modified in place"):
        layer.backward(np.ones_like(y))
    x64 = rng.standard_normal((4, 5))  # float64 into a float32 layer: converted, a private copy
    y = layer.forward(x64)
    want = layer.backward(np.ones_like(y))
    x64[...] = 0
    layer.weight.grad = None
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), want)
