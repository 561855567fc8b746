"""Pooling's out= buffers (checks, aliasing, identical results) and the pooling and ReLU layers' reuse of
their output/gradient buffers across steps (never overwriting an array the caller still holds)."""

import deepkern as dk
import numpy as np
import pytest
from reference import avg_pool2d_backward_ref, avg_pool2d_ref, max_pool2d_backward_ref, max_pool2d_ref

CASES = [  # x shape, kernel, stride, padding
    ((2, 3, 8, 8), 2, 2, 0),
    ((2, 3, 7, 9), 3, 2, 1),
    ((3, 5, 6), 2, 1, 0),  # unbatched CHW
    ((1, 2, 13, 40), (2, 3), (1, 3), (1, 1)),
]


def _run(kind, x, k, s, p, out=None, dx_out=None):
    fwd = dk.max_pool2d if kind == "max" else dk.avg_pool2d
    bwd = dk.max_pool2d_backward if kind == "max" else dk.avg_pool2d_backward
    y, ctx = fwd(x, k, s, p, return_ctx=True, out=out)
    dy = np.linspace(-1, 1, y.size).reshape(y.shape).astype(x.dtype)
    (dx,) = bwd(ctx, dy, out=dx_out)
    return y, dy, dx


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_results_identical_and_returned(case, kind, dtype, rng):
    shape, k, s, p = case
    x = rng.standard_normal(shape).astype(dtype)
    x0 = x.copy()
    y_ref, dy, dx_ref = _run(kind, x, k, s, p)
    out = np.full(y_ref.shape, 7.0, dtype)
    dx_out = np.full(x.shape, 7.0, dtype)
    y, _, dx = _run(kind, x, k, s, p, out=out, dx_out=dx_out)
    assert y is out and dx is dx_out
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(x, x0)
    # and against the float64 reference, batched
    x4 = (x[None] if x.ndim == 3 else x).astype(np.float64)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    kk, ss, pp = pair(k), pair(s), pair(p)
    if kind == "max":
        ref, idx = max_pool2d_ref(x4, kk, ss, pp)
        dref = max_pool2d_backward_ref(x4.shape, idx, dy.reshape(ref.shape))
    else:
        ref = avg_pool2d_ref(x4, kk, ss, pp)
        dref = avg_pool2d_backward_ref(x4.shape, kk, ss, pp, dy.reshape(ref.shape))
    tol = 1e-6 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx.reshape(dref.shape), dref, rtol=tol, atol=tol)


def test_out_rejects_wrong_shape_dtype_layout_kind(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="'out' has shape"):
        dk.max_pool2d(x, 2, out=np.empty((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="'out' has dtype float64; expected float32"):
        dk.avg_pool2d(x, 2, out=np.empty((2, 3, 4, 4), np.float64))
    with pytest.raises(ValueError, match="'out' must be C-contiguous"):
        dk.max_pool2d(x, 2, out=np.empty((2, 3, 4, 8), np.float32)[..., ::2])
    ro = np.empty((2, 3, 4, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="'out' is read-only"):
        dk.max_pool2d(x, 2, out=ro)
    with pytest.raises(TypeError, match="'out' must be a numpy array"):
        dk.max_pool2d(x, 2, out=[[0.0]])
    y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
    with pytest.raises(ValueError, match="'out' has shape"):
        dk.max_pool2d_backward(ctx, np.ones_like(y), out=np.empty((2, 3, 8, 7), np.float32))
    _, actx = dk.avg_pool2d(x, 2, return_ctx=True)
    with pytest.raises(ValueError, match="'out' has dtype"):
        dk.avg_pool2d_backward(actx, np.ones_like(y), out=np.empty(x.shape, np.float64))


def test_out_overlapping_an_input_is_rejected(rng):
    big = rng.standard_normal(2 * 3 * 8 * 8 + 2 * 3 * 4 * 4).astype(np.float32)
    x = big[: 2 * 3 * 8 * 8].reshape(2, 3, 8, 8)
    x0 = x.copy()
    with pytest.raises(ValueError, match="'out' overlaps the input 'x'"):
        dk.max_pool2d(x, 2, out=big[-2 * 3 * 4 * 4 - 8 : -8].reshape(2, 3, 4, 4))
    with pytest.raises(ValueError, match="'out' overlaps the input 'x'"):
        dk.avg_pool2d(x, 2, out=x.reshape(-1)[:96].reshape(2, 3, 4, 4))
    np.testing.assert_array_equal(x, x0)
    y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
    dy_big = np.ones(x.size, np.float32)
    dy = dy_big[: y.size].reshape(y.shape)
    with pytest.raises(ValueError, match="'out' overlaps the input 'dy'"):
        dk.max_pool2d_backward(ctx, dy, out=dy_big.reshape(x.shape))


def _step(layer, x, dy):
    y = layer.forward(x)
    return y, layer.backward(dy)


@pytest.mark.parametrize("make", [lambda: dk.nn.MaxPool2D(2), lambda: dk.nn.AvgPool2D(3, 2, 1)])
def test_layer_reuses_buffers_nobody_holds(make, rng):
    layer = make()
    x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    y, dx = _step(layer, x, np.ones(layer.output_shape(x.shape[1:]), np.float32)[None].repeat(4, 0))
    y_id, dx_id = id(y), id(dx)
    y_ref, dx_ref = y.copy(), dx.copy()
    del y, dx
    for _ in range(3):  # nothing held: the same buffers come back, with the same values
        y, dx = _step(layer, x, np.ones(y_ref.shape, np.float32))
        assert id(y) == y_id and id(dx) == dx_id
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(dx, dx_ref)
        del y, dx


@pytest.mark.parametrize("hold", ["array", "view", "memoryview", "dx"])
def test_layer_never_overwrites_an_array_the_caller_holds(hold, rng):
    layer = dk.nn.MaxPool2D(2)
    x1 = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    x2 = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    dy1 = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    y1, dx1 = _step(layer, x1, dy1)
    y1_val, dx1_val = y1.copy(), dx1.copy()
    kept = {"array": y1, "view": y1[1:, :, 2], "memoryview": memoryview(y1), "dx": dx1[0]}[hold]
    del y1, dx1
    keep_dx = hold == "dx"
    for x in (x2, x1, x2):
        y, dx = _step(layer, x, -dy1)
        np.testing.assert_array_equal(y, dk.max_pool2d(x, 2))
        del y, dx
    if keep_dx:
        np.testing.assert_array_equal(kept, dx1_val[0])
    elif hold == "memoryview":
        np.testing.assert_array_equal(np.asarray(kept), y1_val)
    else:
        np.testing.assert_array_equal(kept, y1_val[1:, :, 2] if hold == "view" else y1_val)


def test_layer_in_a_model_keeps_results_identical_and_stops_allocating(rng):
    dk.nn.manual_seed(0)
    model = dk.nn.Sequential(
        [dk.nn.Conv2D(1, 4, 3, padding=1, seed=0), dk.nn.MaxPool2D(2), dk.nn.Flatten(), dk.nn.Dense(256, 3, seed=1)],
        input_shape=(1, 16, 16),
    )
    x = rng.standard_normal((5, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    loss = dk.nn.SoftmaxCrossEntropy()
    pool = model.layers[1]
    grads, ids = [], []
    for _ in range(4):
        model.zero_grad()
        out = model.forward(x)
        loss.forward(out, y)
        model.backward(loss.backward())
        grads.append([p.grad.copy() for p in model.parameters()])
        ids.append((id(pool._ctx.indices), [id(b) for b in pool._ws._bufs["dx"]]))
    for g in grads[1:]:
        for a, b in zip(g, grads[0]):
            np.testing.assert_array_equal(a, b)
    assert ids[2] == ids[3]  # steady state: the same indices and dx buffers step after step
    assert len(pool._ws._bufs["y"]) <= 2


def test_layer_returned_indices_are_fresh_each_call(rng):
    layer = dk.nn.MaxPool2D(2, return_indices=True)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    _, i1 = layer.forward(x)
    i1_val = i1.copy()
    _, i2 = layer.forward(-x)
    assert i1 is not i2
    np.testing.assert_array_equal(i1, i1_val)


def test_relu_reuses_free_buffers_and_keeps_held_ones(rng):
    relu = dk.nn.ReLU()
    x1 = rng.standard_normal((3, 5, 7)).astype(np.float32)
    x2 = rng.standard_normal((3, 5, 7)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 7)).astype(np.float32)
    y, dx = relu.forward(x1), relu.backward(dy)
    ids = (id(y), id(dx))
    del y, dx
    y, dx = relu.forward(x1), relu.backward(dy)
    assert (id(y), id(dx)) == ids  # nothing held: the same buffers again
    held_y, held_dx = y, dx
    del y, dx
    y2, dx2 = relu.forward(x2), relu.backward(-dy)
    assert y2 is not held_y and dx2 is not held_dx
    np.testing.assert_array_equal(held_y, np.maximum(x1, 0))
    np.testing.assert_array_equal(held_dx, np.where(x1 > 0, dy, 0))
    np.testing.assert_array_equal(y2, np.maximum(x2, 0))
    np.testing.assert_array_equal(dx2, np.where(x2 > 0, -dy, 0))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_gpu_out_and_layer_reuse(kind, dtype, rng):
    cp = pytest.importorskip("cupy")
    x = cp.asarray(rng.standard_normal((2, 3, 8, 10)).astype(dtype))
    fwd = dk.max_pool2d if kind == "max" else dk.avg_pool2d
    bwd = dk.max_pool2d_backward if kind == "max" else dk.avg_pool2d_backward
    y_ref, ctx = fwd(x, 2, return_ctx=True)
    dy = cp.ones_like(y_ref)
    (dx_ref,) = bwd(ctx, dy)
    out, dx_out = cp.empty_like(y_ref), cp.empty_like(x)
    y, ctx = fwd(x, 2, return_ctx=True, out=out)
    (dx,) = bwd(ctx, dy, out=dx_out)
    assert y is out and dx is dx_out
    np.testing.assert_array_equal(cp.asnumpy(y), cp.asnumpy(y_ref))
    np.testing.assert_array_equal(cp.asnumpy(dx), cp.asnumpy(dx_ref))
    with pytest.raises(TypeError, match="'out' must be a cupy array"):
        fwd(x, 2, out=np.empty(y_ref.shape, dtype))
    with pytest.raises(ValueError, match="'out' overlaps the input 'x'"):
        fwd(x, 2, out=x.reshape(-1)[: y_ref.size].reshape(y_ref.shape))
    layer = (dk.nn.MaxPool2D if kind == "max" else dk.nn.AvgPool2D)(2)
    for _ in range(3):
        yl = layer.forward(x)
        dxl = layer.backward(dy)
        np.testing.assert_array_equal(cp.asnumpy(yl), cp.asnumpy(y_ref))
        np.testing.assert_array_equal(cp.asnumpy(dxl), cp.asnumpy(dx_ref))
        del yl, dxl


def test_out_overlapping_an_input_that_was_copied_is_rejected(rng):
    """x given as a strided view is copied before the kernel; out must still not share its memory."""
    base = rng.standard_normal((2, 3, 8, 16)).astype(np.float32)
    x = base[..., ::2]
    x0 = x.copy()
    out = base.reshape(-1)[: 2 * 3 * 4 * 4].reshape(2, 3, 4, 4)
    for fn in (dk.max_pool2d, dk.avg_pool2d):
        with pytest.raises(ValueError, match="'out' overlaps the input 'x'"):
            fn(x, 2, out=out)
    np.testing.assert_array_equal(x, x0)
