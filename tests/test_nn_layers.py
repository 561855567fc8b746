"""Layers: forward against plain numpy / torch, backward by finite differences (float64),
shapes, init, bad input."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close
from nn_gradcheck import check_layer_grads

nn = dk.nn
torch = pytest.importorskip("torch")
HAS_CONV = hasattr(dk, "conv2d")
needs_conv = pytest.mark.skipif(not HAS_CONV, reason="dk.conv2d not in this build yet")


@pytest.mark.parametrize(
    "shape,fin,fout,bias", [((4, 3), 3, 5, True), ((1, 1), 1, 1, True), ((2, 3, 7), 7, 2, True), ((6, 4), 4, 3, False)]
)
def test_dense_forward_and_grads(shape, fin, fout, bias, rng):
    layer = nn.Dense(fin, fout, bias=bias, seed=1, dtype=np.float64)
    if bias:
        layer.bias.value[:] = rng.standard_normal(fout)
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    ref = x @ layer.weight.value.T + (layer.bias.value if bias else 0)
    assert_close(y, ref, what="Dense forward")
    check_layer_grads(layer, x, rng)
    assert layer.num_params() == fin * fout + (fout if bias else 0)


def test_dense_matches_torch_linear(rng):
    lin = torch.nn.Linear(6, 4).double()
    layer = nn.Dense(6, 4, dtype=np.float64)
    layer.load_torch_state("", {"weight": lin.weight.detach().numpy(), "bias": lin.bias.detach().numpy()})
    x = rng.standard_normal((5, 6))
    xt = torch.tensor(x, requires_grad=True)
    yt = lin(xt)
    dy = rng.standard_normal((5, 4))
    yt.backward(torch.tensor(dy))
    assert_close(layer.forward(x), yt.detach().numpy())
    assert_close(layer.backward(dy), xt.grad.numpy())
    assert_close(layer.weight.grad, lin.weight.grad.numpy())
    assert_close(layer.bias.grad, lin.bias.grad.numpy())


def test_dense_grads_accumulate(rng):
    layer = nn.Dense(3, 2, dtype=np.float64)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dy)
    g1 = layer.weight.grad.copy()
    layer.forward(x)
    layer.backward(dy)
    assert_close(layer.weight.grad, 2 * g1)
    layer.zero_grad()
    assert layer.weight.grad is None


def test_dense_float32_default_and_int_input():
    layer = nn.Dense(3, 2)
    assert layer.weight.value.dtype == np.float32
    y = layer.forward(np.array([[1, 2, 3]]))
    assert y.dtype == np.float32 and y.shape == (1, 2)


@pytest.mark.parametrize("init", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "torch", "orthogonal"])
def test_init_scale_and_seed(init):
    a = nn.Dense(400, 300, init=init, seed=3, dtype=np.float64).weight.value
    b = nn.Dense(400, 300, init=init, seed=3, dtype=np.float64).weight.value
    c = nn.Dense(400, 300, init=init, seed=4, dtype=np.float64).weight.value
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    expected_std = {
        "glorot_uniform": np.sqrt(2 / 700),
        "glorot_normal": np.sqrt(2 / 700),
        "he_uniform": np.sqrt(2 / 400),
        "he_normal": np.sqrt(2 / 400),
        "torch": np.sqrt(1 / 1200),
        "orthogonal": np.sqrt(1 / 400),
    }[init]
    assert abs(a.std() / expected_std - 1) < 0.05


def test_manual_seed_makes_models_reproducible():
    nn.manual_seed(7)
    a = nn.Dense(5, 5).weight.value.copy()
    nn.manual_seed(7)
    b = nn.Dense(5, 5).weight.value.copy()
    np.testing.assert_array_equal(a, b)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize(
    "cls,ref",
    [
        (nn.ReLU, lambda x: np.maximum(x, 0)),
        (nn.Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh, np.tanh),
        (nn.LeakyReLU, lambda x: np.where(x > 0, x, 0.01 * x)),
        (nn.Softmax, _softmax),
    ],
)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5, 5), (1,)])
def test_activations(cls, ref, shape, rng):
    layer = cls()
    x = rng.standard_normal(shape) * 2
    assert_close(layer.forward(x), ref(x))
    check_layer_grads(layer, x, rng)


def test_sigmoid_extreme_inputs_finite():
    y = nn.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])


def test_flatten(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = nn.Flatten()
    assert layer.forward(x).shape == (2, 60)
    check_layer_grads(layer, x, rng)


def test_dropout_inverted_and_identity_at_inference(rng):
    layer = nn.Dropout(0.3, seed=0)
    x = rng.standard_normal((200, 100)) + 3.0
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    assert_close(y[kept], x[kept] / 0.7)
    dy = rng.standard_normal(x.shape)
    assert_close(layer.backward(dy), dy * kept / 0.7)
    assert abs(y.mean() / x.mean() - 1) < 0.02  # expectation preserved
    np.testing.assert_array_equal(nn.Dropout(0.0).forward(x), x)
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.0)


def test_dropout_gradient_by_finite_differences(rng):
    class FixedMaskDropout(nn.Dropout):  # the same mask on every forward, so differences are defined
        def forward(self, x, training=True):
            self._rng = np.random.default_rng(123)
            return super().forward(x, training)

    check_layer_grads(FixedMaskDropout(0.4), rng.standard_normal((5, 6)), rng)


def test_embedding_forward_and_grads(rng):
    layer = nn.Embedding(7, 3, seed=0, dtype=np.float64)
    idx = rng.integers(0, 7, (4, 5))
    idx[0, :3] = 2  # repeated index: its gradient must add up
    y = layer.forward(idx)
    assert_close(y, layer.weight.value[idx])
    dy = rng.standard_normal(y.shape)
    assert layer.backward(dy) is None
    ref = np.zeros((7, 3))
    for (i, j), k in np.ndenumerate(idx):
        ref[k] += dy[i, j]
    assert_close(layer.weight.grad, ref)
    check_layer_grads(nn.Embedding(5, 2, dtype=np.float64), rng.integers(0, 5, (3, 2)), rng, check_dx=False)
    empty = nn.Embedding(7, 3)
    assert empty.forward(np.zeros((0, 4), np.int64)).shape == (0, 4, 3)
    assert empty.backward(np.zeros((0, 4, 3), np.float32)) is None
    np.testing.assert_array_equal(empty.weight.grad, 0)
    with pytest.raises(ValueError, match="indices"):
        layer.forward(np.array([0, 7]))
    with pytest.raises(TypeError, match="integer"):
        layer.forward(np.array(["a"]))


def test_embedding_loads_torch(rng):
    emb = torch.nn.Embedding(6, 4)
    layer = nn.Embedding(6, 4)
    layer.load_torch_state("e", {"e.weight": emb.weight.detach().numpy()})
    idx = np.array([[0, 5, 2]])
    assert_close(layer.forward(idx), emb(torch.tensor(idx)).detach().numpy())


def test_onehot(rng):
    layer = nn.OneHot(4)
    y = layer.forward(np.array([[0, 3], [2, 1]]))
    assert y.shape == (2, 2, 4) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(-1), [[0, 3], [2, 1]])
    assert y.sum() == 4
    assert layer.backward(np.ones_like(y)) is None
    with pytest.raises(ValueError, match="indices"):
        layer.forward(np.array([4]))
    with pytest.raises(ValueError, match="integer"):
        layer.forward(np.array([0.5]))


@pytest.mark.parametrize("cls,tcls", [(nn.MaxPool2D, torch.nn.MaxPool2d), (nn.AvgPool2D, torch.nn.AvgPool2d)])
@pytest.mark.parametrize("k,s,p,shape", [(2, None, 0, (2, 3, 6, 6)), (3, 2, 1, (1, 2, 7, 5)), (2, 1, 0, (2, 1, 3, 4))])
def test_pool_layers(cls, tcls, k, s, p, shape, rng):
    layer = cls(k, s, p)
    x = rng.standard_normal(shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = tcls(k, s, p)(xt)
    y = layer.forward(x)
    assert_close(y, yt.detach().numpy())
    assert layer.output_shape(shape[1:]) == y.shape[1:]
    check_layer_grads(layer, x, rng)


@needs_conv
@pytest.mark.parametrize(
    "cin,cout,k,s,p,d,shape",
    [(2, 3, 3, 1, 1, 1, (2, 2, 5, 5)), (1, 2, (2, 3), 2, 0, 1, (1, 1, 6, 7)), (3, 1, 3, 1, 2, 2, (1, 3, 5, 4))],
)
def test_conv2d_layer(cin, cout, k, s, p, d, shape, rng):
    layer = nn.Conv2D(cin, cout, k, stride=s, padding=p, dilation=d, seed=0, dtype=np.float64)
    layer.bias.value[:] = rng.standard_normal(cout)
    conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d).double()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(layer.weight.value))
        conv.bias.copy_(torch.tensor(layer.bias.value))
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    assert_close(y, conv(torch.tensor(x)).detach().numpy())
    assert layer.output_shape(shape[1:]) == y.shape[1:]
    check_layer_grads(layer, x, rng)
    kh, kw = (k, k) if isinstance(k, int) else k
    assert layer.num_params() == cout * cin * kh * kw + cout


def test_conv2d_param_count_and_shape_checks():
    layer = nn.Conv2D(3, 8, 5)
    assert layer.num_params() == 8 * 3 * 5 * 5 + 8
    assert layer.weight.value.shape == (8, 3, 5, 5)
    assert nn.Conv2D(3, 8, 5, bias=False).num_params() == 8 * 3 * 25
    with pytest.raises(ValueError, match="x"):
        layer.forward(np.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match="x"):
        layer.forward(np.zeros((8, 8)))
    assert layer.forward(np.zeros((3, 8, 8))).shape == (8, 4, 4)  # unbatched (C, H, W), as in PyTorch


@pytest.mark.parametrize(
    "fn,exc,match",
    [
        (lambda: nn.Dense(3, 2).forward(np.zeros((4, 5))), ValueError, "in_features"),
        (lambda: nn.Dense(0, 2), ValueError, "in_features"),
        (lambda: nn.Dense(3, 2.5), ValueError, "out_features"),
        (lambda: nn.Dense(3, 2, dtype=np.int32), TypeError, "dtype"),
        (lambda: nn.Dense(3, 2, init="nope"), ValueError, "init"),
        (lambda: nn.Dense(3, 2).forward(np.array(["a", "b", "c"])), TypeError, "x"),
        (lambda: nn.Dense(3, 2).backward(np.zeros((1, 2))), RuntimeError, "before forward"),
        (lambda: nn.ReLU().backward(np.zeros(2)), RuntimeError, "before forward"),
        (lambda: nn.Conv2D(3, 2, 0), ValueError, "kernel_size"),
        (lambda: nn.MaxPool2D(2).forward(np.zeros((2, 3))), ValueError, "x"),
        (lambda: nn.Embedding(3, 0), ValueError, "dim"),
    ],
)
def test_layer_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_backward_shape_mismatch():
    layer = nn.Dense(3, 2)
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.zeros((4, 3)))


def test_inference_forward_keeps_no_cache():
    layer = nn.Dense(3, 2)
    layer.forward(np.zeros((4, 3)), training=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((4, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_grad_adds_in_order_like_add_at(dtype, rng):
    """The C++ scatter-add (csrc/cpu/embedding/scatter_add.h) sums repeated indices left to right:
    bit for bit np.add.at, for float32 too (where the summation order shows in the last bits)."""
    layer = nn.Embedding(50, 33, seed=0, dtype=dtype)
    idx = rng.integers(0, 50, (16, 40))
    idx[:, :10] = 3  # one row gathers 160 terms
    layer.forward(idx)
    dy = rng.standard_normal((16, 40, 33)).astype(dtype)
    dy0 = dy.copy()
    layer.backward(dy)
    ref = np.zeros((50, 33), dtype)
    np.add.at(ref, idx.reshape(-1), dy.reshape(-1, 33))
    np.testing.assert_array_equal(layer.weight.grad, ref)
    np.testing.assert_array_equal(dy, dy0)


def test_scatter_add_kernel_guards_its_indices():
    from deepkern import _cpu

    g = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"idx: expected row indices in \[0, 4\)"):
        _cpu.scatter_add_rows(g, np.array([0, 4]), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="rows: expected 2 columns"):
        _cpu.scatter_add_rows(g, np.array([0]), np.ones((1, 3), np.float32))
    with pytest.raises(TypeError, match="rows: dtype"):
        _cpu.scatter_add_rows(g, np.array([0]), np.ones((1, 2), np.float64))
