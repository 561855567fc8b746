"""Weights both ways for every layer with a PyTorch twin: state_dict() loads into the torch module
(strict) and load_state_dict() takes the torch module's state_dict; outputs and gradients then
agree. (LSTM/GRU, BatchNorm2D and MultiHeadAttention have their own files; here the rest and
Sequential.)"""

import deepkern as dk
import numpy as np
import pytest
import torch
from helpers import assert_close

nn = dk.nn
R, A = 1e-9, 1e-11


def _roundtrip(ours, twin, x, rng, grad_names):
    """twin -> ours, compare; ours (perturbed) -> twin, compare; gradients too."""
    with torch.no_grad():
        for p in twin.parameters():
            p.uniform_(-0.7, 0.7)
    ours.load_state_dict(twin.state_dict())
    xt = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    yt = twin(xt)
    yt = yt[0] if isinstance(yt, tuple) else yt
    y = ours(x)
    assert_close(y, yt, rtol=R, atol=A, what=f"{type(ours).__name__} after load_state_dict")
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    ours.zero_grad()
    dx = ours.backward(dy)
    if xt.requires_grad:
        assert_close(dx, xt.grad, rtol=R, atol=A, what="dx")
    mine = dict(ours.named_parameters())
    for tname, oname in grad_names.items():
        assert_close(mine[oname].grad, dict(twin.named_parameters())[tname].grad, rtol=R, atol=A, what=f"d{tname}")
    for p in ours.parameters():  # ours -> twin
        p.value[...] = rng.uniform(-0.7, 0.7, p.shape)
    sd = ours.state_dict()
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})  # strict
    y2 = twin(torch.tensor(x))
    assert_close(ours(x), y2[0] if isinstance(y2, tuple) else y2, rtol=R, atol=A, what="after state_dict export")


def test_dense(rng):
    _roundtrip(
        nn.Dense(5, 3, dtype=np.float64),
        torch.nn.Linear(5, 3).double(),
        rng.standard_normal((4, 5)),
        rng,
        {"weight": "weight", "bias": "bias"},
    )
    _roundtrip(
        nn.Dense(2, 7, bias=False, dtype=np.float64),
        torch.nn.Linear(2, 7, bias=False).double(),
        rng.standard_normal((3, 2)),
        rng,
        {"weight": "weight"},
    )


def test_conv2d(rng):
    _roundtrip(
        nn.Conv2D(3, 4, 3, stride=2, padding=1, dtype=np.float64),
        torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).double(),
        rng.standard_normal((2, 3, 7, 6)),
        rng,
        {"weight": "weight", "bias": "bias"},
    )


def test_embedding(rng):
    _roundtrip(
        nn.Embedding(10, 4, dtype=np.float64),
        torch.nn.Embedding(10, 4).double(),
        rng.integers(0, 10, (3, 5)),
        rng,
        {"weight": "weight"},
    )


def test_layer_norm(rng):
    _roundtrip(
        nn.LayerNorm(6, dtype=np.float64),
        torch.nn.LayerNorm(6).double(),
        rng.standard_normal((2, 3, 6)),
        rng,
        {"weight": "weight", "bias": "bias"},
    )


def test_transformer_encoder_layer(rng):
    ours = nn.TransformerEncoderLayer(8, 2, 16, dtype=np.float64)
    twin = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double()
    _roundtrip(
        ours,
        twin,
        rng.standard_normal((2, 5, 8)),
        rng,
        {
            "linear1.weight": "linear1.weight",
            "norm2.bias": "norm2.bias",
            "self_attn.in_proj_weight": "self_attn.in_proj_weight",
            "self_attn.out_proj.weight": "self_attn.out_proj_weight",
        },
    )


def test_simple_rnn(rng):
    class Last(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(3, 5, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0][:, -1]

    twin = Last().double()
    ours = nn.SimpleRNN(3, 5, dtype=np.float64)
    with torch.no_grad():
        for p in twin.parameters():
            p.uniform_(-0.7, 0.7)
    ours.load_state_dict({k.split(".", 1)[1]: v for k, v in twin.state_dict().items()})
    x = rng.standard_normal((2, 4, 3))
    assert_close(ours(x), twin(torch.tensor(x)), rtol=R, atol=A, what="SimpleRNN")
    twin.rnn.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def test_sequential_with_batchnorm_both_ways(rng):
    twin = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 4),
    ).double()
    ours = nn.Sequential(
        [
            nn.Conv2D(2, 3, 3, padding=1, dtype=np.float64),
            nn.BatchNorm2D(3, dtype=np.float64),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Flatten(),
            nn.Dense(12, 4, dtype=np.float64),
        ]
    )
    x = rng.standard_normal((5, 2, 4, 4))
    twin(torch.tensor(x))  # move the running statistics off their initial values
    ours.load_state_dict(twin.state_dict())
    for mode in ("train", "eval"):
        getattr(twin, mode)()
        getattr(ours, mode)()
        xt = torch.tensor(x, requires_grad=True)
        yt = twin(xt)
        y = ours.forward(x)
        assert_close(y, yt, rtol=R, atol=A, what=f"Sequential {mode}")
        if mode == "train":
            dy = rng.standard_normal(y.shape)
            yt.backward(torch.tensor(dy))
            ours.zero_grad()
            assert_close(ours.backward(dy), xt.grad, rtol=R, atol=A, what="dx")
            assert_close(ours[0].weight.grad, twin[0].weight.grad, rtol=R, atol=A, what="conv dW")
    sd = ours.state_dict()
    assert set(sd) == set(twin.state_dict())
    fresh = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 4),
    ).double()
    fresh.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
    fresh.eval()
    assert_close(ours.forward(x), fresh(torch.tensor(x)), rtol=R, atol=A, what="exported Sequential")


def test_early_stopping_roundtrip_and_bad_state():
    m = nn.Sequential([nn.Dense(3, 4), nn.ReLU(), nn.LSTM(4, 2)])
    sd = m.state_dict()
    m.load_state_dict(sd)
    with pytest.raises(ValueError, match="unexpected key"):
        m.load_state_dict({"fc.weight": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="layer 0: .*missing"):
        m.load_state_dict({"0.weight": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="shape"):
        nn.Dense(3, 4).load_state_dict({"weight": np.zeros((3, 4)), "bias": np.zeros(4)})
    with pytest.raises(TypeError, match="dict"):
        nn.Dense(3, 4).load_state_dict([1, 2])


def test_transformer_encoder_layer_unbatched(rng):
    ours = nn.TransformerEncoderLayer(6, 3, 10, dtype=np.float64, seed=0)
    twin = torch.nn.TransformerEncoderLayer(6, 3, 10, dropout=0.0, batch_first=True).double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((5, 6))  # (L, E)
    xt = torch.tensor(x, requires_grad=True)
    yt = twin(xt)
    y = ours(x)
    assert y.shape == (5, 6)
    assert_close(y, yt, rtol=R, atol=A, what="unbatched out")
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    assert_close(ours.backward(dy), xt.grad, rtol=R, atol=A, what="unbatched dx")
