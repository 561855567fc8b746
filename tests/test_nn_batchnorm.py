"""BatchNorm2D (running statistics, momentum, affine, train/eval) and the train()/eval() switch
that Dropout and BatchNorm2D obey: the float64 reference, PyTorch, finite differences."""

import deepkern as dk
import numpy as np
import pytest
import torch
from helpers import assert_close
from nn_gradcheck import check_layer_grads
from reference.norm import batch_norm2d

nn = dk.nn
SHAPES = [(1, 1, 1, 2), (2, 3, 4, 5), (3, 1, 7, 1), (5, 6, 3, 3), (1, 4, 2, 9)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "momentum,affine,track",
    [(0.1, True, True), (None, True, True), (0.7, False, True), (0.1, True, False), (0.1, False, False)],
)
def test_matches_reference_and_torch_over_steps(shape, momentum, affine, track, rng):
    N, C, H, W = shape
    bn = nn.BatchNorm2D(C, eps=1e-3, momentum=momentum, affine=affine, track_running_stats=track, dtype=np.float64)
    tb = torch.nn.BatchNorm2d(C, eps=1e-3, momentum=momentum, affine=affine, track_running_stats=track).double()
    if affine:
        with torch.no_grad():
            tb.weight.uniform_(0.5, 1.5)
            tb.bias.uniform_(-1, 1)
    bn.load_state_dict(tb.state_dict())
    rm = None if not track else np.zeros(C)
    rv = None if not track else np.ones(C)
    for step in range(3):
        x = rng.standard_normal(shape) * 3 + 1
        dy = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = tb(xt)
        yt.backward(torch.tensor(dy))
        bn.zero_grad()
        y = bn(x)
        dx = bn.backward(dy)
        w = bn.weight.value if affine else None
        b = bn.bias.value if affine else None
        ref, rm, rv = batch_norm2d(x, w, b, rm, rv, True, momentum, 1e-3, step)
        assert_close(y, ref, rtol=1e-10, atol=1e-12, what="y vs reference")
        assert_close(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12, what="y vs torch")
        assert_close(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11, what="dx vs torch")
        if affine:
            assert_close(bn.weight.grad, tb.weight.grad.numpy(), rtol=1e-9, atol=1e-11, what="dweight")
            assert_close(bn.bias.grad, tb.bias.grad.numpy(), rtol=1e-9, atol=1e-11, what="dbias")
            tb.weight.grad = tb.bias.grad = None
        if track:
            assert_close(bn.running_mean, rm, rtol=1e-10, atol=1e-12, what="running_mean")
            assert_close(bn.running_var, rv, rtol=1e-10, atol=1e-12, what="running_var")
            assert int(bn.num_batches_tracked) == step + 1
    bn.eval()
    tb.eval()
    x = rng.standard_normal(shape)
    ref = batch_norm2d(
        x, bn.weight.value if affine else None, bn.bias.value if affine else None, rm, rv, False, momentum, 1e-3
    )[0]
    assert_close(bn(x), ref, rtol=1e-10, atol=1e-12, what="eval vs reference")
    assert_close(bn(x), tb(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12, what="eval vs torch")
    # the state loads into a fresh torch module (strict) and gives the same eval output
    t2 = torch.nn.BatchNorm2d(C, eps=1e-3, momentum=momentum, affine=affine, track_running_stats=track).double()
    t2.load_state_dict({k: torch.from_numpy(v) for k, v in bn.state_dict().items()})
    t2.eval()
    assert_close(bn(x), t2(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12, what="exported state")


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 2, 1, 3)])
def test_finite_differences(shape, rng):
    bn = nn.BatchNorm2D(shape[1], dtype=np.float64)
    bn.weight.value[:] = rng.uniform(0.5, 1.5, shape[1])
    bn.bias.value[:] = rng.standard_normal(shape[1])
    check_layer_grads(bn, rng.standard_normal(shape), rng)


def test_float32_default_and_inputs_untouched(rng):
    bn = nn.BatchNorm2D(3)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    x0 = x.copy()
    y = bn(x)
    assert y.dtype == np.float32 and bn.running_mean.dtype == np.float32
    np.testing.assert_array_equal(x, x0)
    tb = torch.nn.BatchNorm2d(3)
    assert_close(y, tb(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5, what="float32 vs torch")
    assert bn.num_params() == 6


@pytest.mark.parametrize(
    "bad,match",
    [
        (lambda: nn.BatchNorm2D(0), "num_features"),
        (lambda: nn.BatchNorm2D(3, eps=0), "eps"),
        (lambda: nn.BatchNorm2D(3, momentum=1.5), "momentum"),
        (lambda: nn.BatchNorm2D(3).forward(np.zeros((2, 4, 3, 3))), "'x' has shape"),
        (lambda: nn.BatchNorm2D(3).forward(np.zeros((3, 3, 3))), "'x' has shape"),
        (lambda: nn.BatchNorm2D(3).forward(np.zeros((1, 3, 1, 1))), "more than 1"),
        (lambda: nn.BatchNorm2D(3).backward(np.zeros((1, 3, 1, 1))), "before forward"),
        (lambda: nn.BatchNorm2D(3).load_state_dict({"weight": np.ones(3)}), "missing"),
        (
            lambda: nn.BatchNorm2D(3).load_state_dict(
                {"weight": np.ones(4), "bias": np.ones(3), "running_mean": np.ones(3), "running_var": np.ones(3)}
            ),
            "shape",
        ),
    ],
)
def test_bad_input(bad, match):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=match):
        bad()


def test_train_eval_switch_reaches_every_layer_and_explicit_argument_wins(rng):
    model = nn.Sequential(
        [
            nn.Conv2D(2, 3, 3, padding=1, dtype=np.float64),
            nn.BatchNorm2D(3, dtype=np.float64),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(0.5, seed=1),
            nn.Dense(48, 2, dtype=np.float64),
        ]
    )
    x = rng.standard_normal((4, 2, 4, 4))
    assert all(layer.training for layer in model) and model.training
    assert model.eval() is model
    assert not any(layer.training for layer in model) and not model.training
    y1, y2 = model.forward(x), model.forward(x)  # eval: no dropout, running statistics: deterministic
    np.testing.assert_array_equal(y1, y2)
    assert int(model[1].num_batches_tracked) == 0
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones_like(y1))  # inference keeps nothing for backward
    y3 = model.forward(x, training=True)  # explicit wins: dropout and batch statistics
    assert int(model[1].num_batches_tracked) == 1 and not np.allclose(y3, y1)
    model.backward(np.ones_like(y3))
    drop = nn.Dropout(0.5, seed=0)
    drop.eval()
    np.testing.assert_array_equal(drop(x), x)
    assert not np.array_equal(drop(x, training=True), x)
    drop.train()
    assert not np.array_equal(drop(x), x)
    np.testing.assert_array_equal(drop(x, training=False), x)
    model.train()
    assert all(layer.training for layer in model)
    t = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, dtype=np.float64).eval()
    assert not t.dropout1.training and not t.self_attn.training
    z = rng.standard_normal((2, 3, 8))
    np.testing.assert_array_equal(t(z), t(z))


def test_save_load_keeps_running_statistics(rng, tmp_path):
    model = nn.Sequential([nn.Conv2D(2, 3, 3, dtype=np.float64), nn.BatchNorm2D(3, dtype=np.float64), nn.ReLU()])
    x = rng.standard_normal((4, 2, 5, 5))
    for _ in range(3):
        model.forward(x, training=True)
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    model.save(tmp_path / "m.npz")
    back = nn.Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back[1].running_var, model[1].running_var)
    assert int(back[1].num_batches_tracked) == 3
    np.testing.assert_array_equal(back.eval().forward(x), model.eval().forward(x))
