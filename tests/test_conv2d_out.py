"""conv2d's out= (checks, aliasing, results identical to a fresh y), the backward's private dx/dw/db
buffers, and nn.Conv2D's reuse of its y, dx, dw, db buffers across steps (never overwriting an array
the caller still holds)."""

import deepkern as dk
import numpy as np
import pytest
from deepkern.functional.conv import _conv2d_backward
from deepkern.nn._workspace import Workspace
from helpers import assert_close
from reference import conv2d_backward_ref, conv2d_ref

# x shape, w shape, stride, padding, dilation, groups
CASES = [
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1),
    ((3, 5, 7, 9), (6, 5, 2, 3), (2, 1), (1, 0), 1, 1),  # odd sizes, stride and padding per axis
    ((1, 4, 11, 6), (4, 2, 3, 3), 1, 2, (2, 1), 2),  # dilation, groups
    ((6, 9, 10), (3, 6, 3, 1), 2, 0, 1, 1),  # unbatched CHW
    ((2, 3, 6, 7), (5, 3, 2, 4), 1, "same", 1, 1),  # even kernel, padding='same': extra zeros after
    ((2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 1, 4),  # depthwise
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _ref_padding(w_shape, padding, dilation):
    """Reference padding (symmetric) and extra zeros after, as PyTorch's 'same'."""
    if padding != "same":
        return _pair(padding), (0, 0)
    (dh, dw), (kh, kw) = _pair(dilation), w_shape[2:]
    th, tw = dh * (kh - 1), dw * (kw - 1)
    return (th // 2, tw // 2), (th - th // 2 - th // 2, tw - tw // 2 - tw // 2)


def _ref(x, w, b, dy, stride, padding, dilation, groups):
    """(y, dx, dw, db) of the float64 reference, batched."""
    x4 = x[None] if x.ndim == 3 else x
    (ph, pw), (eh, ew) = _ref_padding(w.shape, padding, dilation)
    xp = np.pad(x4.astype(np.float64), ((0, 0), (0, 0), (0, eh), (0, ew)))
    s, d = _pair(stride), _pair(dilation)
    y = conv2d_ref(xp, w, b, s, (ph, pw), d, groups)
    dy4 = dy.reshape(y.shape)
    dx, dw, db = conv2d_backward_ref(xp, w, dy4, b is not None, s, (ph, pw), d, groups)
    return y, dx[:, :, : x4.shape[2], : x4.shape[3]], dw, db


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_out_and_grad_buffers_give_the_fresh_results(case, dtype, bias, rng):
    xs, ws, s, p, d, g = case
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    given = [a.copy() for a in (x, w) + ((b,) if bias else ())]
    y_ref, ctx = dk.conv2d(x, w, b, s, p, d, g, return_ctx=True)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref, dw_ref, db_ref = dk.conv2d_backward(ctx, dy)

    out = np.full(y_ref.shape, np.nan, dtype)  # poisoned: every element must be written
    y, ctx = dk.conv2d(x, w, b, s, p, d, g, out=out, return_ctx=True)
    assert y is out
    np.testing.assert_array_equal(y, y_ref)
    outs = {"dx": np.full(x.shape, np.nan, dtype), "dw": np.full(w.shape, np.nan, dtype)}
    if bias:
        outs["db"] = np.full(b.shape, np.nan, dtype)
    dx, dw, db = _conv2d_backward(ctx, dy, True, outs)
    assert dx is outs["dx"] and dw is outs["dw"] and (db is outs["db"] if bias else db is None)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(dw, dw_ref)
    if bias:
        np.testing.assert_array_equal(db, db_ref)
    for a, a0 in zip((x, w) + ((b,) if bias else ()), given):
        np.testing.assert_array_equal(a, a0)  # inputs never modified

    ry, rdx, rdw, rdb = _ref(x, w, b, dy, s, p, d, g)
    assert_close(y.reshape(ry.shape), ry, dtype, what="y")
    assert_close(dx.reshape(rdx.shape), rdx, dtype, what="dx")
    assert_close(dw, rdw, dtype, what="dw")
    if bias:
        assert_close(db, rdb, dtype, what="db")


def test_grad_buffers_without_input_grad_and_float16(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y, ctx = dk.conv2d(x, w, np.zeros(4, np.float32), return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _, dw_ref, db_ref = dk.conv2d_backward(ctx, dy)
    dw_out = np.full(w.shape, np.nan, np.float32)
    dx, dw, db = _conv2d_backward(ctx, dy, False, {"dw": dw_out, "dx": np.empty(x.shape, np.float32)})
    assert dx is None and dw is dw_out and db is not None
    np.testing.assert_array_equal(dw, dw_ref)
    np.testing.assert_array_equal(db, db_ref)
    # float16 on the CPU computes in float32: y goes through a float32 buffer into out
    x16, w16 = x.astype(np.float16), w.astype(np.float16)
    out16 = np.full((2, 4, 4, 4), np.nan, np.float16)
    assert dk.conv2d(x16, w16, out=out16) is out16
    np.testing.assert_array_equal(out16, dk.conv2d(x16, w16))


X = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8) / 100
W = np.ones((4, 3, 3, 3), np.float32)
B = np.ones(4, np.float32)
Y_SHAPE = (2, 4, 6, 6)


def _read_only():
    a = np.empty(Y_SHAPE, np.float32)
    a.flags.writeable = False
    return a


BAD_OUT = [
    (
        lambda: np.empty((2, 4, 6, 5), np.float32),
        ValueError,
        r"'out' has shape \(2, 4, 6, 5\); expected \(2, 4, 6, 6\)",
    ),
    (lambda: np.empty(Y_SHAPE[1:], np.float32), ValueError, "'out' has shape"),
    (lambda: np.empty(Y_SHAPE, np.float64), ValueError, "'out' has dtype float64; expected float32"),
    (lambda: np.empty(Y_SHAPE, np.float64), TypeError, "'out' has dtype float64; expected float32"),
    (lambda: np.empty((2, 4, 6, 12), np.float32)[..., ::2], ValueError, "'out' must be C-contiguous"),
    (lambda: np.empty((6, 6, 4, 2), np.float32).T, ValueError, "'out' must be C-contiguous"),
    (_read_only, ValueError, "'out' is read-only"),
    (lambda: [[0.0]], TypeError, "'out' must be a numpy array"),
    (lambda: memoryview(bytearray(4 * 288)), TypeError, "'out' must be a numpy array"),
]


@pytest.mark.parametrize("make,exc,match", BAD_OUT)
def test_bad_out_is_rejected_naming_out(make, exc, match):
    x0 = X.copy()
    with pytest.raises(exc, match=match):
        dk.conv2d(X, W, B, out=make())
    np.testing.assert_array_equal(X, x0)


def test_out_overlapping_an_input_is_rejected():
    ny = int(np.prod(Y_SHAPE))
    for name in ("x", "w", "b"):
        x, w, b = X.copy(), W.copy(), B.copy()
        big = np.zeros(ny + {"x": x, "w": w, "b": b}[name].size, np.float32)
        src = big[-{"x": x, "w": w, "b": b}[name].size :]
        if name == "x":
            src[...] = x.ravel()
            x = src.reshape(x.shape)
        elif name == "w":
            src[...] = w.ravel()
            w = src.reshape(w.shape)
        else:
            src[...] = b
            b = src
        keep = (x.copy(), w.copy(), b.copy())
        out = big[1 : ny + 1].reshape(Y_SHAPE)  # ends inside the input
        with pytest.raises(ValueError, match=f"'out' overlaps the input '{name}'"):
            dk.conv2d(x, w, b, out=out)
        for a, a0 in zip((x, w, b), keep):
            np.testing.assert_array_equal(a, a0)


def test_out_overlapping_an_input_that_was_copied_is_rejected():
    """x given as a strided view is copied before the kernel, but out must still not share its memory."""
    base = np.zeros((2, 3, 8, 16), np.float32)
    base[..., ::2] = X
    x = base[..., ::2]
    out = base.reshape(-1)[: int(np.prod(Y_SHAPE))].reshape(Y_SHAPE)
    with pytest.raises(ValueError, match="'out' overlaps the input 'x'"):
        dk.conv2d(x, W, out=out)
    np.testing.assert_array_equal(x, X)


def test_grad_buffer_checks_name_the_buffer():
    y, ctx = dk.conv2d(X, W, B, return_ctx=True)
    dy = np.ones(y.shape, np.float32)
    with pytest.raises(ValueError, match="'dx out' has shape"):
        _conv2d_backward(ctx, dy, True, {"dx": np.empty((2, 3, 8, 7), np.float32)})
    with pytest.raises(ValueError, match="'dw out' has dtype"):
        _conv2d_backward(ctx, dy, True, {"dw": np.empty(W.shape, np.float64)})
    with pytest.raises(ValueError, match="'dx out' overlaps the input 'dy'"):
        big = np.ones(X.size, np.float32)
        _conv2d_backward(ctx, big[: dy.size].reshape(dy.shape), True, {"dx": big.reshape(X.shape)})


# -- nn.Conv2D: buffers reused across steps ---------------------------------------------------------


def _conv_step(layer, x, dy):
    y = layer.forward(x)
    return y, layer.backward(dy)


@pytest.mark.parametrize(
    "kwargs",
    [dict(padding=1), dict(padding="same", kernel_size=2), dict(padding=1, padding_mode="reflect"), dict(groups=3)],
)
def test_conv_layer_reuses_buffers_nobody_holds(kwargs, rng):
    kw = dict(kernel_size=3, seed=0)
    kw.update(kwargs)
    layer = dk.nn.Conv2D(3, 6, **kw)
    x = rng.standard_normal((4, 3, 9, 10)).astype(np.float32)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    y_ref, dx_ref = y.copy(), dx.copy()
    grad_ref = layer.weight.grad.copy()
    del y, dx
    ids = None
    for _ in range(3):
        layer.zero_grad()
        y, dx = _conv_step(layer, x, dy)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(dx, dx_ref)
        np.testing.assert_array_equal(layer.weight.grad, grad_ref)
        now = (id(y), id(layer._ws._bufs["dw"][0]), id(layer._ws._bufs["db"][0]))
        if "padding_mode" not in kwargs:  # there dx is a fresh crop of the padded input's gradient
            now += (id(dx),)
        assert ids is None or now == ids  # nothing held: the same buffers come back
        ids = now
        del y, dx


@pytest.mark.parametrize("hold", ["y", "y view", "dx", "dx view", "y memoryview"])
def test_conv_layer_never_overwrites_an_array_the_caller_holds(hold, rng):
    layer = dk.nn.Conv2D(2, 3, 3, padding=1, seed=0)
    xs = [rng.standard_normal((2, 2, 5, 6)).astype(np.float32) for _ in range(4)]
    dys = [rng.standard_normal((2, 3, 5, 6)).astype(np.float32) for _ in range(4)]
    y1, dx1 = _conv_step(layer, xs[0], dys[0])
    y1_val, dx1_val = y1.copy(), dx1.copy()
    kept = {
        "y": y1,
        "y view": y1[1, :, 2:],
        "dx": dx1,
        "dx view": dx1[:, 1],
        "y memoryview": memoryview(y1),
    }[hold]
    del y1, dx1
    for x, dy in zip(xs[1:], dys[1:]):
        y, dx = _conv_step(layer, x, dy)
        ref_y, ctx = dk.conv2d(x, layer.weight.value, layer.bias.value, padding=1, return_ctx=True)
        np.testing.assert_array_equal(y, ref_y)
        np.testing.assert_array_equal(dx, dk.conv2d_backward(ctx, dy)[0])
        del y, dx
    expected = {
        "y": y1_val,
        "y view": y1_val[1, :, 2:],
        "dx": dx1_val,
        "dx view": dx1_val[:, 1],
        "y memoryview": y1_val,
    }[hold]
    np.testing.assert_array_equal(np.asarray(kept), expected)


def _cnn(seed):
    dk.nn.manual_seed(seed)
    return dk.nn.Sequential(
        [
            dk.nn.Conv2D(2, 4, 3, padding=1, seed=seed),
            dk.nn.ReLU(),
            dk.nn.Conv2D(4, 5, 3, padding=1, seed=seed + 1),
            dk.nn.ReLU(),
            dk.nn.MaxPool2D(2),
            dk.nn.Flatten(),
            dk.nn.Dense(5 * 4 * 5, 3, seed=seed + 2),
        ],
        input_shape=(2, 8, 10),
    )


def test_model_with_reused_buffers_trains_exactly_as_with_fresh_ones(rng):
    """Adam over several steps: a model whose layers reuse buffers lands on the same weights, bit for
    bit, as one whose workspaces keep nothing (a fresh buffer every call); the input is untouched."""
    reused, fresh = _cnn(3), _cnn(3)
    for layer in fresh.layers:
        if hasattr(layer, "_ws"):
            layer._ws = Workspace(keep=0)
    for a, b in zip(reused.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    x = rng.standard_normal((6, 2, 8, 10)).astype(np.float32)
    x0 = x.copy()
    labels = rng.integers(0, 3, 6)
    opts = [dk.optim.Adam(m.parameters(), lr=1e-2) for m in (reused, fresh)]
    conv2 = reused.layers[2]
    ids = []
    for _ in range(5):
        losses = [m.train_step(x, labels, dk.nn.SoftmaxCrossEntropy(), o) for m, o in zip((reused, fresh), opts)]
        assert losses[0] == losses[1]
        ids.append([id(b) for name in ("y", "dx", "dw", "db") for b in conv2._ws._bufs[name]])
    for a, b in zip(reused.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(x, x0)
    assert ids[2] == ids[3] == ids[4]  # steady state: the same buffers step after step
    assert all(
        len(fresh_layer._ws._bufs.get("y", [])) == 0 for fresh_layer in fresh.layers if hasattr(fresh_layer, "_ws")
    )


# -- the CUDA path (real GPU, or the SIMT simulator with the cupy stand-in) -------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("bias", [True, False])
def test_gpu_out_grad_buffers_and_layer_reuse(bias, rng):
    cp = pytest.importorskip("cupy")
    x = cp.asarray(rng.standard_normal((2, 3, 6, 7)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = cp.asarray(rng.standard_normal(4).astype(np.float32)) if bias else None
    y_ref, ctx = dk.conv2d(x, w, b, 1, 1, return_ctx=True)
    dy = cp.asarray(rng.standard_normal(y_ref.shape).astype(np.float32))
    grads_ref = dk.conv2d_backward(ctx, dy)
    out = cp.full(y_ref.shape, np.nan, dtype=np.float32)
    y, ctx = dk.conv2d(x, w, b, 1, 1, out=out, return_ctx=True)
    assert y is out
    np.testing.assert_array_equal(cp.asnumpy(y), cp.asnumpy(y_ref))
    outs = {"dx": cp.full(x.shape, np.nan, dtype=np.float32), "dw": cp.full(w.shape, np.nan, dtype=np.float32)}
    if bias:
        outs["db"] = cp.full((4,), np.nan, dtype=np.float32)
    grads = _conv2d_backward(ctx, dy, True, outs)
    for name, g, r in zip(("dx", "dw", "db"), grads, grads_ref):
        if r is None:
            assert g is None
            continue
        assert g is outs[name]
        np.testing.assert_array_equal(cp.asnumpy(g), cp.asnumpy(r))
    with pytest.raises(TypeError, match="'out' must be a cupy array"):
        dk.conv2d(x, w, b, 1, 1, out=np.empty(y_ref.shape, np.float32))
    with pytest.raises(TypeError, match="'out' must be a numpy array"):
        dk.conv2d(cp.asnumpy(x), cp.asnumpy(w), None, 1, 1, out=cp.empty(y_ref.shape, dtype=np.float32))
    big = cp.zeros(x.size + y_ref.size, dtype=np.float32)
    big[: x.size] = x.reshape(-1)
    with pytest.raises(ValueError, match="'out' overlaps the input 'x'"):
        dk.conv2d(big[: x.size].reshape(x.shape), w, b, 1, 1, out=big[8 : 8 + y_ref.size].reshape(y_ref.shape))
    with pytest.raises(ValueError, match="'out' has dtype float16"):
        dk.conv2d(x, w, b, 1, 1, out=cp.empty(y_ref.shape, dtype=np.float16))

    layer = dk.nn.Conv2D(3, 4, 3, padding=1, bias=bias).to("cuda")
    layer.weight.value[...] = w
    if bias:
        layer.bias.value[...] = b
    held = None
    for step in range(3):
        layer.zero_grad()
        yl = layer.forward(x)
        dxl = layer.backward(dy)
        np.testing.assert_array_equal(cp.asnumpy(yl), cp.asnumpy(y_ref))
        np.testing.assert_array_equal(cp.asnumpy(dxl), cp.asnumpy(grads_ref[0]))
        np.testing.assert_array_equal(cp.asnumpy(layer.weight.grad), cp.asnumpy(grads_ref[1]))
        if step == 0:
            held, held_val = yl, cp.asnumpy(yl).copy()
        del yl, dxl
    np.testing.assert_array_equal(cp.asnumpy(held), held_val)


def test_conv_layer_unbatched_input_and_new_shapes(rng):
    """A CHW sample, then batches of other sizes: each step's results are the functional op's."""
    layer = dk.nn.Conv2D(3, 2, (2, 3), stride=(1, 2), padding=(1, 0), seed=0)
    for shape in [(3, 7, 9), (3, 7, 9), (4, 3, 7, 9), (1, 3, 7, 9), (4, 3, 7, 9)]:
        x = rng.standard_normal(shape).astype(np.float32)
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = layer.backward(dy)
        ref, ctx = dk.conv2d(x, layer.weight.value, layer.bias.value, (1, 2), (1, 0), return_ctx=True)
        np.testing.assert_array_equal(y, ref)
        np.testing.assert_array_equal(dx, dk.conv2d_backward(ctx, dy)[0])
        del y, dx
