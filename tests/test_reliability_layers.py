"""Bad input for the layers, losses and optimizers (deepkern.nn, deepkern.optim): each row raises
the documented exception naming the class and the argument, or works. Plus, for every layer:
non-contiguous / read-only / list inputs work and stay untouched, and forward + backward are
bitwise reproducible."""

import deepkern as dk
import numpy as np
import pytest

nn = dk.nn
R = np.random.default_rng(0)


def _n(*shape):
    return R.standard_normal(shape)


ROWS = [
    # (id, call, exception, match)
    ("dense_features", lambda: nn.Dense(4, 3).forward(_n(2, 5)), ValueError, r"Dense.forward: 'x' has shape \(2, 5\)"),
    ("dense_complex", lambda: nn.Dense(4, 3).forward(_n(2, 4) + 0j), TypeError, "Dense.forward: 'x' has dtype complex"),
    ("dense_str", lambda: nn.Dense(4, 3).forward(np.full((2, 4), "a")), TypeError, "Dense.forward: 'x' has dtype"),
    ("dense_in_0", lambda: nn.Dense(0, 3), ValueError, "Dense: 'in_features' must be a positive int"),
    ("dense_in_float", lambda: nn.Dense(4.5, 3), ValueError, "Dense: 'in_features' must be a positive int"),
    ("dense_huge", lambda: nn.Dense(2**40, 2**40), (MemoryError, ValueError), "Unable to allocate|too big"),
    (
        "dense_backward_first",
        lambda: nn.Dense(4, 3).backward(np.ones((2, 3))),
        RuntimeError,
        "Dense.backward called before forward",
    ),
    (
        "embedding_negative",
        lambda: nn.Embedding(5, 3).forward(np.array([[-1, 2]])),
        ValueError,
        r"Embedding.forward: indices must lie in \[0, 5\)",
    ),
    (
        "embedding_too_big",
        lambda: nn.Embedding(5, 3).forward(np.array([[5, 2]])),
        ValueError,
        r"Embedding.forward: indices must lie in \[0, 5\)",
    ),
    (
        "embedding_float",
        lambda: nn.Embedding(5, 3).forward(np.array([[1.5, 2]])),
        ValueError,
        "Embedding.forward: 'x' must hold integer indices",
    ),
    ("onehot_too_big", lambda: nn.OneHot(4).forward(np.array([[4]])), ValueError, r"OneHot.forward: indices must lie"),
    ("dropout_p", lambda: nn.Dropout(1.5), ValueError, r"Dropout: 'p' must be in \[0, 1\)"),
    ("dropout_p_1", lambda: nn.Dropout(1.0), ValueError, r"Dropout: 'p' must be in \[0, 1\)"),
    ("conv_channels", lambda: nn.Conv2D(3, 4, 3).forward(_n(1, 2, 8, 8)), ValueError, r"Conv2D.forward: 'x' has shape"),
    ("conv_kernel_0", lambda: nn.Conv2D(3, 4, 0), ValueError, "Conv2D: 'kernel_size' must be >= 1"),
    ("maxpool_2d", lambda: nn.MaxPool2D(2).forward(_n(8, 8)), ValueError, "max_pool2d: 'x' must be a 4-D .* or 3-D"),
    (
        "lstm_features",
        lambda: nn.LSTM(4, 5).forward(_n(2, 3, 6)),
        ValueError,
        r"LSTM.forward: 'x' has shape \(2, 3, 6\)",
    ),
    (
        "lstm_1d",
        lambda: nn.LSTM(4, 5).forward(_n(4)),
        ValueError,
        r"LSTM.forward: 'x' has shape \(4,\)",
    ),  # (T, I) is unbatched
    ("lstm_no_steps", lambda: nn.LSTM(4, 5).forward(_n(2, 0, 4)), ValueError, "LSTM.forward: 'x' has no time steps"),
    ("lstm_layers_0", lambda: nn.LSTM(4, 5, num_layers=0), ValueError, "LSTM: 'num_layers' must be a positive int"),
    ("rnn_features", lambda: nn.SimpleRNN(4, 5).forward(_n(2, 3, 6)), ValueError, "SimpleRNN.forward: 'x' has shape"),
    ("layernorm_dim", lambda: nn.LayerNorm(4).forward(_n(2, 5)), ValueError, "LayerNorm.forward: 'x' has shape"),
    ("mha_divisible", lambda: nn.MultiHeadAttention(6, 4), ValueError, "MultiHeadAttention: 'dim' .* divisible"),
    (
        "mha_dim",
        lambda: nn.MultiHeadAttention(8, 2).forward(_n(2, 3, 6)),
        ValueError,
        "MultiHeadAttention.forward: 'query' has shape",
    ),
    (
        "posenc_too_long",
        lambda: nn.PositionalEncoding(8, 4).forward(_n(2, 5, 8)),
        ValueError,
        "PositionalEncoding.forward: sequence length 5 exceeds max_len 4",
    ),
    (
        "ce_label_range",
        lambda: nn.SoftmaxCrossEntropy().forward(_n(2, 3), np.array([0, 3])),
        ValueError,
        r"SoftmaxCrossEntropy: class labels must lie in \[0, 3\)",
    ),
    (
        "ce_target_shape",
        lambda: nn.SoftmaxCrossEntropy().forward(_n(2, 3), np.array([0, 1, 2])),
        ValueError,
        "SoftmaxCrossEntropy: 'target' has shape",
    ),
    ("mse_shape", lambda: nn.MSE().forward(_n(2, 3), _n(3, 2)), ValueError, "MSE: 'target' has shape"),
    ("mse_no_broadcast", lambda: nn.MSE().forward(_n(2, 3), _n(1, 3)), ValueError, "MSE: 'target' has shape"),
    (
        "bce_not_probs",
        lambda: nn.BinaryCrossEntropy().forward(np.array([1.5, -0.5]), np.array([1.0, 0.0])),
        ValueError,
        "BinaryCrossEntropy: 'pred' must be probabilities",
    ),
    ("loss_backward_first", lambda: nn.MSE().backward(), RuntimeError, "MSE.backward called before forward"),
    ("sequential_non_layer", lambda: nn.Sequential([3]), TypeError, "Sequential: layer 0 is a int"),
    ("sgd_lr", lambda: dk.optim.SGD(nn.Dense(2, 2).parameters(), lr=-1), ValueError, "SGD: 'lr' must be >= 0"),
    (
        "adam_lr_nan",
        lambda: dk.optim.Adam(nn.Dense(2, 2).parameters(), lr=float("nan")),
        ValueError,
        "Adam: 'lr' must be >= 0",
    ),
    ("sgd_no_params", lambda: dk.optim.SGD([], lr=0.1), ValueError, "SGD: 'params' is empty"),
]


@pytest.mark.parametrize("call, exc, match", [pytest.param(c, e, m, id=i) for i, c, e, m in ROWS])
def test_layer_bad_input_raises_documented_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _layers():
    """(id, make layer, make input) for every layer that maps an array to an array."""
    return [
        ("Dense", lambda: nn.Dense(6, 4), lambda: _n(3, 6)),
        ("Conv2D", lambda: nn.Conv2D(2, 3, 3, padding=1), lambda: _n(2, 2, 6, 5)),
        ("MaxPool2D", lambda: nn.MaxPool2D(2), lambda: _n(2, 2, 6, 5)),
        ("AvgPool2D", lambda: nn.AvgPool2D(2), lambda: _n(2, 2, 6, 5)),
        ("Flatten", lambda: nn.Flatten(), lambda: _n(2, 2, 3)),
        ("ReLU", lambda: nn.ReLU(), lambda: _n(3, 5)),
        ("Sigmoid", lambda: nn.Sigmoid(), lambda: _n(3, 5)),
        ("Tanh", lambda: nn.Tanh(), lambda: _n(3, 5)),
        ("LayerNorm", lambda: nn.LayerNorm(5), lambda: _n(3, 5)),
        ("SimpleRNN", lambda: nn.SimpleRNN(4, 3, return_sequences=True), lambda: _n(2, 5, 4)),
        ("LSTM", lambda: nn.LSTM(4, 3, num_layers=2, return_sequences=True), lambda: _n(2, 5, 4)),
        ("MultiHeadAttention", lambda: nn.MultiHeadAttention(8, 2, causal=True), lambda: _n(2, 5, 8)),
        ("TransformerEncoderLayer", lambda: nn.TransformerEncoderLayer(8, 2, 16), lambda: _n(2, 5, 8)),
    ]


def _fwd_bwd(layer, x):
    for p in layer.parameters():
        p.grad = None
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(np.asarray(y)) * 0.5)
    return [np.asarray(y), np.asarray(dx)] + [np.array(p.grad) for p in layer.parameters()]


@pytest.mark.parametrize("make_layer, make_x", [pytest.param(l, x, id=i) for i, l, x in _layers()])
def test_layer_layouts_inputs_untouched_and_reproducible(make_layer, make_x):
    dk.nn.manual_seed(0)
    layer = make_layer()
    x = make_x()
    want = _fwd_bwd(layer, x)
    for variant in (np.asfortranarray(x), x[..., ::-1].copy()[..., ::-1], x.tolist()):
        before = np.array(variant, copy=True)
        got = _fwd_bwd(layer, variant)
        assert np.array_equal(np.asarray(variant), before), "input modified"
        for g, w in zip(got, want):
            assert g.shape == w.shape and np.array_equal(g, w), "result differs from the contiguous call"
    ro = x.copy()
    ro.setflags(write=False)
    for g, w in zip(_fwd_bwd(layer, ro), want):
        assert np.array_equal(g, w)
