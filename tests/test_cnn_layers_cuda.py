"""nn.Conv2D (plain, grouped, depthwise), nn.MaxPool2D and nn.AvgPool2D train on cupy (the GPU kernels)
and give the numbers they give on numpy: the same model, weights and batches, a few SGD steps, losses
and weights compared."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, to_numpy

pytestmark = pytest.mark.cuda


def _model(seed):
    nn = dk.nn
    return nn.Sequential(
        [
            nn.Conv2D(2, 4, 3, padding=1, seed=seed),  # 3x3 pad 1
            nn.ReLU(),
            nn.MaxPool2D(2),  # windows tile the input: the vector kernels
            nn.Conv2D(4, 5, (3, 2), stride=(1, 2), padding=(1, 0), seed=seed + 1),
            nn.AvgPool2D(3, stride=2, padding=1),  # overlapping windows: the gather kernels
            nn.MaxPool2D((2, 1), stride=1),  # stride < window: overlapping max
            nn.Flatten(),
            nn.Dense(5, 3, seed=seed + 2),
        ]
    )


def test_cnn_trains_on_cupy_like_on_numpy(rng):
    cp = pytest.importorskip("cupy")
    cpu, gpu = _model(7), _model(7).to("cuda")
    loss_cpu, loss_gpu = dk.nn.SoftmaxCrossEntropy(), dk.nn.SoftmaxCrossEntropy()
    opt_cpu = dk.optim.SGD(cpu.parameters(), lr=0.1, momentum=0.9)
    opt_gpu = dk.optim.SGD(gpu.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for step in range(4):
        x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
        t = rng.integers(0, 3, 3)
        pair = []
        for model, loss, opt, xs, ts in (
            (cpu, loss_cpu, opt_cpu, x, t),
            (gpu, loss_gpu, opt_gpu, cp.asarray(x), cp.asarray(t)),
        ):
            opt.zero_grad()
            y = model.forward(xs)
            pair.append(float(loss.forward(y, ts)))
            model.backward(loss.backward())
            opt.step()
        losses.append(pair)
        assert abs(pair[0] - pair[1]) <= 1e-4 * max(1.0, abs(pair[0])), f"step {step}: loss {pair}"
    for pc, pg in zip(cpu.parameters(), gpu.parameters()):
        assert isinstance(pg.value, cp.ndarray)
        assert_close(to_numpy(pg.value), pc.value, np.float32, what="parameter after training")
    assert losses[-1][0] != losses[0][0]  # it did train


def _grouped_model(seed):
    nn = dk.nn
    return nn.Sequential(
        [
            nn.Conv2D(4, 6, 3, padding=1, groups=2, seed=seed),  # grouped: the GEMM core, grid z per group
            nn.ReLU(),
            nn.Conv2D(6, 12, (3, 2), stride=(2, 1), padding=1, groups=6, seed=seed + 1),  # depthwise, multiplier 2
            nn.ReLU(),
            nn.Conv2D(12, 4, 1, groups=4, seed=seed + 2),  # grouped 1x1
            nn.Flatten(),
            nn.Dense(4 * 4 * 9, 3, seed=seed + 3),
        ]
    )


def test_grouped_and_depthwise_cnn_trains_on_cupy_like_on_numpy(rng):
    cp = pytest.importorskip("cupy")
    cpu, gpu = _grouped_model(11), _grouped_model(11).to("cuda")
    loss_cpu, loss_gpu = dk.nn.SoftmaxCrossEntropy(), dk.nn.SoftmaxCrossEntropy()
    opt_cpu = dk.optim.SGD(cpu.parameters(), lr=0.05, momentum=0.9)
    opt_gpu = dk.optim.SGD(gpu.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(3):
        x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
        t = rng.integers(0, 3, 2)
        pair = []
        for model, loss, opt, xs, ts in (
            (cpu, loss_cpu, opt_cpu, x, t),
            (gpu, loss_gpu, opt_gpu, cp.asarray(x), cp.asarray(t)),
        ):
            opt.zero_grad()
            pair.append(float(loss.forward(model.forward(xs), ts)))
            model.backward(loss.backward())
            opt.step()
        losses.append(pair)
        assert abs(pair[0] - pair[1]) <= 1e-4 * max(1.0, abs(pair[0])), f"step {step}: loss {pair}"
    for pc, pg in zip(cpu.parameters(), gpu.parameters()):
        assert isinstance(pg.value, cp.ndarray)
        assert_close(to_numpy(pg.value), pc.value, np.float32, what="parameter after training")
    assert losses[-1][0] != losses[0][0]  # it did train
