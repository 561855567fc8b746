"""Losses against torch (values and gradients, float64) and their bad-input errors."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, numeric_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_grad(fn, pred):
    t = torch.tensor(pred, requires_grad=True)
    out = fn(t)
    out.backward()
    return float(out.detach()), t.grad.numpy()


@pytest.mark.parametrize("shape", [(1, 2), (5, 3), (8, 10), (2, 7, 4), (3, 1)])
def test_softmax_cross_entropy_labels(shape, rng):
    z = rng.standard_normal(shape) * 3
    y = rng.integers(0, shape[-1], shape[:-1])
    loss = dk.nn.SoftmaxCrossEntropy()
    v = loss.forward(z, y)
    zt = np.moveaxis(z, -1, 1)  # torch wants the class axis second
    tv, tg = _torch_grad(lambda t: F.cross_entropy(t, torch.tensor(y)), zt)
    assert abs(v - tv) <= 1e-12 * max(1, abs(tv))
    assert_close(loss.backward(), np.moveaxis(tg, 1, -1), what="dz")
    assert_close(loss.probs, np.exp(z) / np.exp(z).sum(-1, keepdims=True), what="probs")


def test_softmax_cross_entropy_probabilities_and_onehot(rng):
    z = rng.standard_normal((6, 4))
    p = rng.random((6, 4))
    p /= p.sum(1, keepdims=True)
    loss = dk.nn.SoftmaxCrossEntropy()
    v = loss.forward(z, p)
    tv, tg = _torch_grad(lambda t: F.cross_entropy(t, torch.tensor(p)), z)
    assert abs(v - tv) <= 1e-12
    assert_close(loss.backward(), tg, what="dz soft targets")
    y = rng.integers(0, 4, 6)
    assert abs(loss.forward(z, np.eye(4)[y]) - dk.nn.SoftmaxCrossEntropy().forward(z, y)) <= 1e-14


def test_softmax_cross_entropy_extreme_logits_finite():
    z = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 1.0]])
    loss = dk.nn.SoftmaxCrossEntropy()
    v = loss.forward(z, np.array([0, 0]))
    assert np.isfinite(v) and abs(v - 1600.0 / 2) < 1e-9
    assert np.all(np.isfinite(loss.backward()))


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 4)])
def test_mse(shape, rng):
    p, t = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = dk.nn.MSE()
    v = loss.forward(p, t)
    tv, tg = _torch_grad(lambda x: F.mse_loss(x, torch.tensor(t)), p)
    assert abs(v - tv) <= 1e-12 * max(1, tv)
    assert_close(loss.backward(), tg, what="dpred")


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 2)])
def test_binary_cross_entropy(shape, rng):
    p = rng.uniform(0.01, 0.99, shape)
    t = (rng.random(shape) > 0.5).astype(np.float64)
    loss = dk.nn.BinaryCrossEntropy()
    v = loss.forward(p, t)
    tv, tg = _torch_grad(lambda x: F.binary_cross_entropy(x, torch.tensor(t)), p)
    assert abs(v - tv) <= 1e-12 * max(1, tv)
    assert_close(loss.backward(), tg, what="dpred")
    z = rng.standard_normal(shape) * 5
    loss = dk.nn.BinaryCrossEntropy(from_logits=True)
    v = loss.forward(z, t)
    tv, tg = _torch_grad(lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t)), z)
    assert abs(v - tv) <= 1e-12 * max(1, tv)
    assert_close(loss.backward(), tg, what="dlogits")


def test_bce_saturated_matches_torch_clamp():
    p = np.array([0.0, 1.0, 0.5, 1.0])
    t = np.array([1.0, 0.0, 1.0, 1.0])
    v = dk.nn.BinaryCrossEntropy().forward(p, t)
    tv = float(F.binary_cross_entropy(torch.tensor(p), torch.tensor(t)))
    assert abs(v - tv) <= 1e-12 * tv


def test_loss_gradients_by_finite_differences(rng):
    z = rng.standard_normal((3, 4))
    y = rng.integers(0, 4, 3)
    for loss, target in [
        (dk.nn.SoftmaxCrossEntropy(), y),
        (dk.nn.MSE(), rng.standard_normal((3, 4))),
        (dk.nn.BinaryCrossEntropy(from_logits=True), (rng.random((3, 4)) > 0.5) * 1.0),
    ]:
        loss.forward(z, target)
        g = loss.backward()
        assert_close(
            g,
            numeric_grad(lambda a: loss.forward(a, target), z, 1.0),  # noqa: B023
            rtol=1e-6,
            atol=1e-8,
            what=type(loss).__name__,  # noqa: B023
        )


class _FakeGpuArray:
    """Looks like a cupy array to deepkern's device check (module name starts with 'cupy')."""

    __module__ = "cupy._core.core"


@pytest.mark.parametrize(
    "fn,exc,match",
    [
        (lambda: dk.nn.SoftmaxCrossEntropy().forward(np.zeros((3, 4)), np.zeros((4,), int)), ValueError, "target"),
        (lambda: dk.nn.SoftmaxCrossEntropy().forward(np.zeros((3, 4)), np.array([0, 1, 4])), ValueError, "labels"),
        (lambda: dk.nn.SoftmaxCrossEntropy().forward(np.zeros((3, 4)), np.array([0.5, 1, 2])), ValueError, "integer"),
        (lambda: dk.nn.MSE().forward(np.zeros((3, 4)), np.zeros((4, 3))), ValueError, "target"),
        (lambda: dk.nn.BinaryCrossEntropy().forward(np.array([1.5]), np.array([1.0])), ValueError, "pred"),
        (lambda: dk.nn.MSE().backward(), RuntimeError, "before forward"),
        (lambda: dk.nn.MSE().forward(np.zeros(3), _FakeGpuArray()), TypeError, "target"),
    ],
)
def test_loss_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_losses_reexported():
    assert dk.nn.losses.MSE is dk.nn.MSE
    assert dk.nn.losses.SoftmaxCrossEntropy is dk.nn.SoftmaxCrossEntropy
    assert dk.nn.losses.BinaryCrossEntropy is dk.nn.BinaryCrossEntropy
