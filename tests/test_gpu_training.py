"""Whole models training on the GPU path (cupy arrays, deepkern's CUDA kernels) against the same
models on numpy: a small CNN, an LSTM language model and a Transformer layer each train a few
steps; losses and parameters must match. Also dk.bptt, save/load and the main job on the device.

Marked `cuda`: on a GPU with real cupy and deepkern._cuda, or in CI on the SIMT simulator with
the cupy stand-in (DEEPKERN_CUDA_SIM=1); skipped where neither is present (conftest.py).
"""

import os
import subprocess
import sys

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close

nn = dk.nn
pytestmark = pytest.mark.cuda

# Skip for a kernel another branch delivers (removed when it merges).

TOL = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _host(a):
    assert type(a).__module__.split(".")[0] == "cupy", f"expected a device array, got {type(a).__name__}"
    return a.get()


def _twin(make):
    """(model on numpy, the same model moved to the GPU) with identical parameters."""
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    return a, b.to("cuda")


def _train_both(cp, make, x, y, loss, make_opt, steps, dtype):
    """`steps` train_step calls on both twins on one batch (so the loss must fall); returns the models."""
    cpu, gpu = _twin(make)
    oc, og = make_opt(cpu.parameters()), make_opt(gpu.parameters())
    lc, lg = [], []
    xg, yg = cp.asarray(x), cp.asarray(y)
    for _ in range(steps):
        lc.append(cpu.train_step(x, y, loss(), oc))
        lg.append(gpu.train_step(xg, yg, loss(), og))
    tol = TOL[dtype]
    np.testing.assert_allclose(
        np.asarray(lg, np.float64), np.asarray(lc, np.float64), rtol=tol["rtol"] * 10, err_msg="losses"
    )
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert_close(_host(pg.value), pc.value, dtype, what=f"{name} after {steps} steps", **tol)
        assert_close(_host(pg.grad), pc.grad, dtype, what=f"grad of {name}", **tol)
    assert lc[-1] < lc[0], "the loss did not go down"
    return cpu, gpu


def _lm(dtype, V=13, E=6, H=10):
    return lambda: nn.Sequential(
        [
            nn.Embedding(V, E, seed=0, dtype=dtype),
            nn.LSTM(E, H, num_layers=2, return_sequences=True, seed=1, dtype=dtype),
            nn.Dense(H, V, seed=2, dtype=dtype),
        ]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_language_model_trains_like_numpy(cp, rng, dtype):
    V, B, T, steps = 13, 5, 7, 4
    x = rng.integers(0, V, (B, T))
    y = np.roll(x, -1, axis=1)  # next token
    _train_both(cp, _lm(dtype, V), x, y, nn.SoftmaxCrossEntropy, lambda p: dk.optim.Adam(p, lr=0.02), steps, dtype)


def test_lstm_language_model_fit_bptt_save_load_on_device(cp, rng, tmp_path):
    V, dtype = 11, np.float64
    x = rng.integers(0, V, (12, 6))
    y = np.roll(x, -1, axis=1)
    cpu, gpu = _twin(_lm(dtype, V))
    hc = cpu.fit(
        x, y, "cross_entropy", dk.optim.SGD(cpu.parameters(), lr=0.5), epochs=2, batch_size=4, progress=False, seed=3
    )
    hg = gpu.fit(
        cp.asarray(x),
        cp.asarray(y),
        "cross_entropy",
        dk.optim.SGD(gpu.parameters(), lr=0.5),
        epochs=2,
        batch_size=4,
        progress=False,
        seed=3,
    )
    np.testing.assert_allclose(hg["loss"], hc["loss"], rtol=1e-9)
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert_close(_host(pg.value), pc.value, dtype, what=name, **TOL[dtype])

    # truncated BPTT through the LSTM layer on the device, against numpy
    lc = nn.LSTM(4, 5, return_sequences=True, seed=4, dtype=dtype)
    lg = nn.LSTM(4, 5, return_sequences=True, seed=4, dtype=dtype).to("cuda")
    xs, tgt = rng.standard_normal((3, 8, 4)), rng.standard_normal((3, 8, 5))
    rc = dk.bptt(lc, xs, nn.MSE(), target=tgt, truncate=3)
    rg = dk.bptt(lg, cp.asarray(xs), nn.MSE(), target=cp.asarray(tgt), truncate=3)
    assert float(rg.loss) == pytest.approx(float(rc.loss), rel=1e-10)
    assert_close(_host(rg.dx), rc.dx, dtype, what="bptt dx", **TOL[dtype])
    for pc, pg in zip(lc.parameters(), lg.parameters()):
        assert_close(_host(pg.grad), pc.grad, dtype, what="bptt grad", **TOL[dtype])

    # save from the device, load on the CPU and back
    gpu.save(tmp_path / "lm.npz")
    loaded = nn.Sequential.load(tmp_path / "lm.npz")
    ref = cpu.predict(x[:3])
    assert_close(loaded.predict(x[:3]), ref, dtype, what="loaded on the CPU", **TOL[dtype])
    assert_close(
        _host(loaded.to("cuda").predict(cp.asarray(x[:3]))), ref, dtype, what="loaded to the GPU", **TOL[dtype]
    )


def _cnn(dtype):
    return lambda: nn.Sequential(
        [
            nn.Conv2D(1, 4, 3, padding=1, seed=0, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(4, 6, 3, padding=1, seed=1, dtype=dtype),
            nn.ReLU(),
            nn.AvgPool2D(2),
            nn.Flatten(),
            nn.Dense(6 * 2 * 2, 10, seed=2, dtype=dtype),
        ]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_cnn_trains_like_numpy(cp, rng, dtype):
    steps, B = 3, 6
    x = rng.standard_normal((B, 1, 8, 8)).astype(dtype)
    y = rng.integers(0, 10, B)
    _train_both(
        cp, _cnn(dtype), x, y, nn.SoftmaxCrossEntropy, lambda p: dk.optim.SGD(p, lr=0.1, momentum=0.9), steps, dtype
    )


def _transformer(dtype, dim=8, classes=5):
    return lambda: nn.Sequential(
        [
            nn.TransformerEncoderLayer(dim, 2, 16, seed=0, dtype=dtype),
            nn.Dense(dim, classes, seed=1, dtype=dtype),
        ]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transformer_layer_trains_like_numpy(cp, rng, dtype):
    steps, B, T, dim = 3, 4, 6, 8
    x = rng.standard_normal((B, T, dim)).astype(dtype)
    y = rng.integers(0, 5, (B, T))
    # SGD, not Adam: the key projection's bias has a gradient that is zero in exact arithmetic (softmax
    # ignores a shift shared by all keys), and Adam's g / sqrt(v) turns its rounding noise, which differs
    # between any two correct implementations, into full-size steps of either sign.
    _train_both(
        cp,
        _transformer(dtype, dim),
        x,
        y,
        nn.SoftmaxCrossEntropy,
        lambda p: dk.optim.SGD(p, lr=0.1, momentum=0.9),
        steps,
        dtype,
    )


def test_main_job_runs_on_the_device():
    """`python -m deepkern --device cuda` end to end (on the simulator: it reaches the kernels and runs,
    on 64 images and a few episodes so that it stays a smoke test)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    if env.get("DEEPKERN_CUDA_SIM") == "1":
        inherited = [os.path.abspath(d) for d in env.get("PYTHONPATH", "").split(os.pathsep) if d]
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "cupy_standin")] + inherited)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepkern",
            "--device",
            "cuda",
            "--epochs",
            "1",
            "--episodes",
            "5",
            "--subset",
            "64",
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "CNN on cuda" in r.stdout and "test accuracy" in r.stdout, r.stdout[-3000:]


def test_dense_multiplies_with_deepkerns_cuda_gemm(cp, rng, monkeypatch):
    """On the device path the layers' matrix products run deepkern's CUDA GEMM, not cupy.matmul (cuBLAS)."""
    from deepkern.nn import _matmul

    calls = []
    real = _matmul._device_gemm

    def spy(*args):
        r = real(*args)
        calls.append(r is not None)
        return r

    monkeypatch.setattr(_matmul, "_device_gemm", spy)
    cpu, gpu = _twin(lambda: nn.Dense(7, 5, seed=3, dtype=np.float32))
    x, dy = rng.standard_normal((4, 3, 7)).astype(np.float32), rng.standard_normal((4, 3, 5)).astype(np.float32)
    y = gpu.forward(cp.asarray(x))
    dx = gpu.backward(cp.asarray(dy))
    assert calls and all(calls), calls  # forward, weight gradient, input gradient
    assert_close(_host(y), cpu.forward(x), np.float32, what="y")
    assert_close(_host(dx), cpu.backward(dy), np.float32, what="dx")
    assert_close(_host(gpu.weight.grad), cpu.weight.grad, np.float32, what="dW")
