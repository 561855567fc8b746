"""SoftmaxCrossEntropy's fused C++ pass (csrc/cpu/loss/softmax_xent.h) against a float64 numpy
reference and torch: class counts around the vector widths, many rows (several blocks and threads),
extreme logits, NaN/Inf propagation row by row, and the kernel's own guard on labels."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu

TOL = {np.float32: (2e-6, 1e-5), np.float64: (1e-13, 1e-12)}  # (atol on probs/grad, rtol on the loss)


def reference(z, labels):
    """float64: mean loss, probs and grad of the mean, with the max subtracted."""
    z = z.astype(np.float64).reshape(-1, z.shape[-1])
    y = labels.reshape(-1)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    p = e / s
    n = z.shape[0]
    loss = float(np.mean(np.log(s[:, 0]) - (z[np.arange(n), y] - m[:, 0])))
    g = p.copy()
    g[np.arange(n), y] -= 1
    return loss, p, g / n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (5, 15), (7, 16), (9, 17), (2048, 66), (4, 33, 31), (300, 1000)])
def test_matches_float64_reference_and_torch(shape, dtype, rng):
    C = shape[-1]
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.integers(0, C, shape[:-1])
    z0 = z.copy()
    ce = dk.nn.SoftmaxCrossEntropy()
    loss = ce.forward(z, t)
    g = ce.backward()
    assert np.array_equal(z, z0)  # input untouched
    ref_loss, ref_p, ref_g = reference(z, t)
    atol, rtol = TOL[dtype]
    assert g.shape == z.shape and g.dtype == z.dtype and ce.probs.dtype == z.dtype
    np.testing.assert_allclose(loss, ref_loss, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ce.probs.reshape(-1, C), ref_p, atol=atol)
    np.testing.assert_allclose(g.reshape(-1, C), ref_g, atol=atol / max(1, g.size // C))
    tz = torch.tensor(z.reshape(-1, C), dtype=torch.float64, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(t.reshape(-1)))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(g.reshape(-1, C), tz.grad.numpy(), atol=atol / max(1, g.size // C))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_and_non_finite_logits(dtype):
    z = np.array(
        [
            [1e4, -1e4, 0.0, 3.0],  # huge spread: finite
            [np.nan, 0.0, 1.0, 2.0],  # NaN: the whole row NaN
            [np.inf, 0.0, 1.0, 2.0],  # +inf: inf - inf = NaN, as the array form
            [-np.inf, 0.0, 1.0, 2.0],  # -inf: probability 0, finite row
            [5.0, 5.0, 5.0, 5.0],
        ],
        dtype,
    )
    t = np.array([1, 0, 1, 2, 3])
    ce = dk.nn.SoftmaxCrossEntropy()
    loss = ce.forward(z, t)
    p, g = ce.probs, ce.backward()
    assert np.isnan(loss)
    for r in (0, 3, 4):
        assert np.isfinite(p[r]).all() and np.isfinite(g[r]).all()
        np.testing.assert_allclose(p[r], reference(z[r : r + 1], t[r : r + 1])[1][0], atol=1e-6)
    assert np.isnan(p[1]).all() and np.isnan(g[1]).all()
    assert np.isnan(p[2]).any()
    assert p[3, 0] == 0
    np.testing.assert_allclose(p[4], 0.25)
    finite = dk.nn.SoftmaxCrossEntropy().forward(z[[0, 3, 4]], t[[0, 3, 4]])
    np.testing.assert_allclose(finite, reference(z[[0, 3, 4]], t[[0, 3, 4]])[0], rtol=1e-6)


def test_results_do_not_depend_on_threads(rng):
    z = rng.standard_normal((5000, 40)).astype(np.float32)
    t = rng.integers(0, 40, 5000)
    n0 = dk.get_num_threads()
    out = []
    try:
        for n in (1, 2, 3):
            dk.set_num_threads(n)
            ce = dk.nn.SoftmaxCrossEntropy()
            out.append((ce.forward(z, t), ce.backward().copy()))
    finally:
        dk.set_num_threads(n0)
    for loss, g in out[1:]:
        assert loss == out[0][0] and np.array_equal(g, out[0][1])


def test_kernel_guards_its_labels():
    z = np.zeros((2, 3), np.float32)
    p, g = np.empty_like(z), np.empty_like(z)
    with pytest.raises(ValueError, match=r"labels: expected class labels in \[0, 3\)"):
        _cpu.softmax_xent(z, np.array([0, 3]), p, g, 2)
    with pytest.raises(TypeError, match="labels: expected an int64"):
        _cpu.softmax_xent(z, np.array([0, 1], np.int32), p, g, 2)
    with pytest.raises(ValueError, match="grad: expected 6 elements"):
        _cpu.softmax_xent(z, np.array([0, 1]), p, np.empty(5, np.float32), 2)
    with pytest.raises(ValueError, match="labels must lie"):
        dk.nn.SoftmaxCrossEntropy().forward(z, np.array([0, 3]))
