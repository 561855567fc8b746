"""Sequential: whole-model gradients, fit/predict/evaluate, summary, save/load, PyTorch
state_dict loading, device handling."""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, numeric_grad
from nn_gradcheck import check_layer_grads

nn = dk.nn
torch = pytest.importorskip("torch")


def small_cnn(dtype=np.float64, seed=0):
    return nn.Sequential(
        [
            nn.Conv2D(1, 2, 3, padding=1, seed=seed, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(2, 3, 2, seed=seed + 1, dtype=dtype),
            nn.Tanh(),
            nn.AvgPool2D(2, stride=1),
            nn.Flatten(),
            nn.Dense(3 * 1 * 1, 4, seed=seed + 2, dtype=dtype),
            nn.Sigmoid(),
            nn.Dense(4, 3, seed=seed + 3, dtype=dtype),
        ],
        input_shape=(1, 6, 6),
    )


def test_whole_model_gradients(rng):
    model = small_cnn()
    for p in model.parameters():
        if p.name == "bias":
            p.value[:] = rng.standard_normal(p.shape) * 0.1
    check_layer_grads(model, rng.standard_normal((2, 1, 6, 6)), rng)


def test_whole_model_loss_gradient(rng):
    model = nn.Sequential(
        [nn.Dense(5, 6, dtype=np.float64, seed=1), nn.Tanh(), nn.Dropout(0.0), nn.Dense(6, 3, dtype=np.float64, seed=2)]
    )
    x, y = rng.standard_normal((7, 5)), rng.integers(0, 3, 7)
    loss = nn.SoftmaxCrossEntropy()
    model.zero_grad()
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())
    for name, p in model.named_parameters():
        orig = p.value

        def f(w, p=p):
            p.value = w
            return loss.forward(model.forward(x), y)

        num = numeric_grad(f, orig, 1.0)
        p.value = orig
        assert_close(p.grad, num, rtol=1e-6, atol=1e-8, what=name)


def test_embedding_model_backward_stops_at_indices(rng):
    model = nn.Sequential([nn.Embedding(10, 4, dtype=np.float64), nn.Flatten(), nn.Dense(12, 2, dtype=np.float64)])
    idx = rng.integers(0, 10, (5, 3))
    y = model.forward(idx)
    assert model.backward(np.ones_like(y)) is None
    assert model[0].weight.grad is not None
    check_layer_grads(model, idx, rng, check_dx=False)


def test_summary_counts_and_shapes(capsys):
    model = nn.Sequential(
        [
            nn.Conv2D(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Flatten(),
            nn.Dense(256, 120),
            nn.ReLU(),
            nn.Dense(120, 84),
            nn.ReLU(),
            nn.Dense(84, 10),
        ]
    )
    text = model.summary(input_shape=(1, 28, 28))
    assert text in capsys.readouterr().out
    counts = [6 * 1 * 25 + 6, 16 * 6 * 25 + 16, 256 * 120 + 120, 120 * 84 + 84, 84 * 10 + 10]
    for c in counts:
        assert f"{c:,}" in text
    assert f"Total params: {sum(counts):,}" in text
    assert model.num_params() == sum(counts) == 44426
    for shape in [
        "(None, 6, 24, 24)",
        "(None, 6, 12, 12)",
        "(None, 16, 8, 8)",
        "(None, 16, 4, 4)",
        "(None, 256)",
        "(None, 10)",
    ]:
        assert shape in text
    # without an input shape: '?' before any forward, real shapes after one
    m2 = nn.Sequential([nn.Conv2D(1, 2, 3), nn.Flatten()])
    assert "?" in m2.summary(print_fn=None)
    m2.forward(np.zeros((3, 1, 5, 5)))
    assert "(None, 18)" in m2.summary(print_fn=None)


def test_summary_falls_back_to_a_forward_pass():
    class Twice(nn.Layer):  # a layer that does not implement output_shape
        def forward(self, x, training=True):
            return np.concatenate([x, x], axis=1)

    model = nn.Sequential([nn.Dense(3, 4), Twice()], input_shape=(3,))
    assert "(None, 8)" in model.summary(print_fn=None)


def _toy_data(rng, n=300):
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x.astype(np.float32), y


def test_fit_history_and_learning(rng):
    x, y = _toy_data(rng)
    model = nn.Sequential([nn.Dense(4, 16, seed=0), nn.ReLU(), nn.Dense(16, 3, seed=1)])
    opt = dk.optim.Adam(model.parameters(), lr=0.02)
    h = model.fit(
        x, y, nn.SoftmaxCrossEntropy(), opt, epochs=15, batch_size=32, validation_split=0.2, progress=False, seed=0
    )
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in h.values())
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["val_accuracy"][-1] > 0.85
    ev = model.evaluate(x[-60:], y[-60:], nn.SoftmaxCrossEntropy())
    assert abs(ev["loss"] - h["val_loss"][-1]) < 1e-5 and abs(ev["accuracy"] - h["val_accuracy"][-1]) < 1e-12
    assert model.history is h


def test_fit_is_reproducible_with_seeds(rng):
    x, y = _toy_data(rng, 100)
    hs = []
    for _ in range(2):
        model = nn.Sequential([nn.Dense(4, 8, seed=3), nn.Tanh(), nn.Dense(8, 3, seed=4)])
        hs.append(
            model.fit(
                x,
                y,
                "cross_entropy",
                dk.optim.SGD(model, lr=0.1, momentum=0.9),
                epochs=3,
                batch_size=10,
                progress=False,
                seed=5,
            )
        )
    assert hs[0] == hs[1]


def test_fit_regression_validation_data_and_scheduler(rng):
    x = rng.standard_normal((128, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = nn.Sequential([nn.Dense(3, 1, dtype=np.float64)])
    opt = dk.optim.SGD(model, lr=0.1)
    sched = dk.optim.StepLR(opt, step_size=2, gamma=0.5)
    h = model.fit(
        x, y, nn.MSE(), opt, epochs=5, batch_size=16, validation_data=(x[:32], y[:32]), scheduler=sched, progress=False
    )
    assert set(h) == {"loss", "val_loss", "lr"}
    assert h["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert h["val_loss"][-1] < 1e-2


def test_fit_early_stopping_restores_best(rng):
    x, y = _toy_data(rng, 200)
    model = nn.Sequential([nn.Dense(4, 3, seed=0)])
    es = dk.optim.EarlyStopping(patience=2, restore_best=True)
    # a learning rate this large makes the validation loss bounce, so training stops early
    h = model.fit(
        x,
        y,
        nn.SoftmaxCrossEntropy(),
        dk.optim.SGD(model, lr=50.0),
        epochs=40,
        batch_size=200,
        validation_split=0.25,
        early_stopping=es,
        progress=False,
        shuffle=False,
    )
    n = len(h["loss"])
    assert n < 40 and es.stopped_epoch == n - 1
    assert es.best == min(h["val_loss"]) and es.best_epoch == int(np.argmin(h["val_loss"]))
    ev = model.evaluate(x[150:], y[150:], nn.SoftmaxCrossEntropy())
    assert abs(ev["loss"] - es.best) < 1e-5  # the restored parameters are the best epoch's


def test_fit_early_stopping_on_training_loss_without_validation(rng):
    x, y = _toy_data(rng, 64)
    model = nn.Sequential([nn.Dense(4, 3, seed=0)])
    es = dk.optim.EarlyStopping(patience=1, min_delta=10.0)  # nothing improves by 10: stops after 2 epochs
    h = model.fit(
        x,
        y,
        nn.SoftmaxCrossEntropy(),
        dk.optim.SGD(model, lr=0.01),
        epochs=10,
        batch_size=16,
        early_stopping=es,
        progress=False,
    )
    assert len(h["loss"]) == 2


def test_fit_with_progress_bar_and_binary_accuracy(rng, capsys):
    x = rng.standard_normal((64, 2))
    y = (x[:, :1] > 0).astype(np.float64)
    model = nn.Sequential([nn.Dense(2, 1, seed=0), nn.Sigmoid()])
    h = model.fit(x, y, nn.BinaryCrossEntropy(), "adam", epochs=2, batch_size=16, progress=True)
    assert set(h) == {"loss", "accuracy"}


def test_predict_batches_and_inference_mode(rng):
    model = nn.Sequential([nn.Dense(4, 5, seed=0), nn.Dropout(0.5, seed=1), nn.Dense(5, 2, seed=2)])
    x = rng.standard_normal((23, 4)).astype(np.float32)
    a = model.predict(x)
    b = model.predict(x, batch_size=5)
    assert a.shape == (23, 2)
    assert_close(b, a)
    assert_close(model.predict(x), a)  # Dropout is off: deterministic


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(epochs=0), ValueError, "epochs"),
        (dict(validation_split=1.5), ValueError, "validation_split"),
        (dict(validation_split=0.2, validation_data=(np.zeros((2, 4)), np.zeros(2, int))), ValueError, "validation"),
        (dict(loss="nope"), ValueError, "loss"),
        (dict(optimizer="nope"), ValueError, "optimizer"),
        (dict(y=np.zeros(5, int)), ValueError, "samples"),
    ],
)
def test_fit_bad_arguments(kwargs, exc, match, rng):
    model = nn.Sequential([nn.Dense(4, 3)])
    args = dict(
        x=np.zeros((10, 4)),
        y=np.zeros(10, int),
        loss=nn.SoftmaxCrossEntropy(),
        optimizer=dk.optim.SGD(model),
        epochs=1,
        batch_size=4,
        progress=False,
    )
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        model.fit(**args)


def test_save_load_round_trip(tmp_path, rng):
    model = small_cnn(dtype=np.float32)
    model.add(nn.Dropout(0.25))
    x = rng.standard_normal((3, 1, 6, 6)).astype(np.float32)
    path = str(tmp_path / "model.npz")
    model.save(path)
    loaded = nn.Sequential.load(path)
    assert [type(l) for l in loaded] == [type(l) for l in model]
    assert loaded[0].padding == (1, 1) and loaded[-1].p == 0.25 and loaded.input_shape == (1, 6, 6)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n1 == n2 and p1.value.dtype == p2.value.dtype
    m64 = small_cnn(dtype=np.float32).astype(np.float64)
    m64.save(path)
    assert nn.Sequential.load(path).parameters()[0].value.dtype == np.float64


def test_load_rejects_foreign_npz(tmp_path):
    path = str(tmp_path / "x.npz")
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="__config__"):
        nn.Sequential.load(path)


def test_state_dict_round_trip(rng):
    a, b = small_cnn(seed=0), small_cnn(seed=10)
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((2, 1, 6, 6))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ValueError, match="missing"):
        b.load_state_dict({})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_load_torch_state_dict_cnn(dtype, rng):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 5),
    )
    model = nn.Sequential(
        [
            nn.Conv2D(1, 4, 3, padding=1, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(4, 6, 3, stride=2, dtype=dtype),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dense(6, 8, dtype=dtype),
            nn.Tanh(),
            nn.Dense(8, 5, dtype=dtype),
        ]
    )
    model.load_torch_state_dict(tm.state_dict())
    x = rng.standard_normal((3, 1, 6, 6))
    ref = tm.double()(torch.tensor(x)).detach().numpy()
    assert_close(model.predict(x.astype(dtype)), ref, dtype=dtype)
    assert model[0].weight.value.dtype == dtype


def test_load_torch_state_dict_named_modules_and_errors(rng):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(3, 4)
            self.fc2 = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    net = Net().double()
    model = nn.Sequential([nn.Dense(3, 4, dtype=np.float64), nn.ReLU(), nn.Dense(4, 2, dtype=np.float64)])
    model.load_torch_state_dict(net.state_dict())
    x = rng.standard_normal((5, 3))
    assert_close(model.predict(x), net(torch.tensor(x)).detach().numpy())
    with pytest.raises(ValueError, match="shape"):
        nn.Sequential([nn.Dense(3, 5), nn.ReLU(), nn.Dense(5, 2)]).load_torch_state_dict(net.state_dict())
    with pytest.raises(ValueError, match="layers with parameters"):
        nn.Sequential([nn.Dense(3, 4)]).load_torch_state_dict(net.state_dict())
    model2 = nn.Sequential([nn.Dense(3, 4, dtype=np.float64), nn.ReLU(), nn.Dense(4, 2, dtype=np.float64)])
    model2.load_torch_state_dict(net.state_dict(), prefixes=["fc1", "fc2"])
    assert_close(model2.predict(x), model.predict(x))


class _FakeGpuArray:
    """Looks like a cupy array to deepkern's type check (its module name starts with 'cupy')."""

    __module__ = "cupy._core.core"
    shape = (2, 3)


def test_device_mixing_raises_clear_error():
    model = nn.Sequential([nn.Dense(3, 2)])
    assert model.device == "cpu"
    with pytest.raises(TypeError, match="cupy array.*numpy array|to\\('cuda'\\)"):
        model.forward(_FakeGpuArray())
    with pytest.raises(TypeError, match="cupy array"):
        nn.Dense(3, 2).forward(_FakeGpuArray())


def test_to_cpu_is_a_no_op_and_cuda_without_cupy_is_a_clear_error():
    model = small_cnn(dtype=np.float32)
    w = model.parameters()[0].value
    assert model.to("cpu") is model and model.parameters()[0].value is w
    with pytest.raises(ValueError, match="device"):
        model.to("tpu")
    try:
        import cupy  # noqa: F401

        has_cupy = dk.cuda_available()
    except Exception:
        has_cupy = False
    if not has_cupy:
        with pytest.raises(RuntimeError, match="cupy|CUDA|cuda"):
            model.to("cuda")
            model.forward(np.zeros((1, 1, 6, 6)))


@pytest.mark.cuda
def test_model_trains_on_gpu(rng):  # pragma: no cover - runs only where a GPU is lent
    import cupy as cp

    x, y = _toy_data(rng, 128)
    model = nn.Sequential([nn.Dense(4, 16, seed=0), nn.ReLU(), nn.Dense(16, 3, seed=1)]).to("cuda")
    assert isinstance(model.parameters()[0].value, cp.ndarray)
    h = model.fit(
        cp.asarray(x),
        cp.asarray(y),
        nn.SoftmaxCrossEntropy(),
        dk.optim.Adam(model, lr=0.02),
        epochs=5,
        batch_size=32,
        progress=False,
    )
    assert h["loss"][-1] < h["loss"][0]
    with pytest.raises(TypeError, match="numpy array"):
        model.forward(x)
    model.to("cpu")
    assert isinstance(model.parameters()[0].value, np.ndarray)


def test_sequential_with_lstm_torch_state_summary_and_save(tmp_path, rng):
    """Integration with the recurrent layers: torch weights (two LSTM biases summed), summary's
    4(H(I+H)+H) count, save/load round trip."""

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(11, 5)
            self.lstm = torch.nn.LSTM(5, 6, num_layers=2, batch_first=True)
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, idx):
            y, _ = self.lstm(self.emb(idx))
            return self.fc(y[:, -1])

    torch.manual_seed(0)
    net = TorchNet().double()
    model = nn.Sequential(
        [
            nn.Embedding(11, 5, dtype=np.float64),
            nn.LSTM(5, 6, num_layers=2, dtype=np.float64),
            nn.Dense(6, 3, dtype=np.float64),
        ]
    )
    model.load_torch_state_dict(net.state_dict())
    idx = rng.integers(0, 11, (4, 7))
    assert_close(model.predict(idx), net(torch.tensor(idx)).detach().numpy(), rtol=1e-9, atol=1e-11)
    text = model.summary(input_shape=(7,), print_fn=None)
    lstm_count = 4 * (6 * (5 + 6) + 6) + 4 * (6 * (6 + 6) + 6)
    assert model[1].num_params() == lstm_count and f"{lstm_count:,}" in text
    assert "(None, 7, 5)" in text and "(None, 6)" in text and "(None, 3)" in text
    path = str(tmp_path / "lstm.npz")
    model.save(path)
    loaded = nn.Sequential.load(path)
    np.testing.assert_array_equal(loaded.predict(idx), model.predict(idx))


def test_nested_containers_parameters_zero_grad_and_save(tmp_path, rng):
    class Pair(nn.Layer):  # a composite layer holding a list of layers
        def __init__(self, n):
            self.parts = [nn.Dense(n, n, seed=0), nn.Dense(n, n, seed=1)]

        def forward(self, x, training=True):
            return self.parts[1].forward(self.parts[0].forward(x, training), training)

        def backward(self, dy):
            return self.parts[0].backward(self.parts[1].backward(dy))

    inner = nn.Sequential([nn.Dense(3, 3, seed=2), nn.Tanh()])
    model = nn.Sequential([inner, Pair(3)])
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "0.0.weight",
        "0.0.bias",
        "1.parts.0.weight",
        "1.parts.0.bias",
        "1.parts.1.weight",
        "1.parts.1.bias",
    ]
    assert model.num_params() == 3 * 12
    x = rng.standard_normal((4, 3)).astype(np.float32)
    model.backward(np.ones_like(model.forward(x)))
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    path = str(tmp_path / "nested.npz")
    model.save(path)
    np.testing.assert_array_equal(nn.Sequential.load(path).predict(x), model.predict(x))


@pytest.mark.parametrize("first", ["conv", "dense"])
def test_train_step_skips_only_the_unused_input_gradient(first, rng, monkeypatch):
    """train_step and fit do not compute the gradient of the model's input (the first layer skips
    dx); the parameter updates are bit for bit those of a step that does, and backward() called
    directly still returns the input's gradient."""

    def build():
        if first == "conv":
            layers = [nn.Conv2D(2, 3, 3, seed=1), nn.ReLU(), nn.Flatten(), nn.Dense(3 * 4 * 4, 5, seed=2)]
        else:
            layers = [nn.Dense(2 * 6 * 6, 7, seed=1), nn.ReLU(), nn.Dense(7, 5, seed=2)]
        return nn.Sequential(layers)

    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    if first == "dense":
        x = x.reshape(4, -1)
    y = rng.integers(0, 5, 4)
    a, b = build(), build()
    loss_a, loss_b = nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy()
    opt_a, opt_b = dk.optim.SGD(a, lr=0.1, momentum=0.9), dk.optim.SGD(b, lr=0.1, momentum=0.9)
    for _ in range(3):
        a.train_step(x, y, loss_a, opt_a)
        b.zero_grad()
        loss_b.forward(b.forward(x, training=True), y)
        dx = b.backward(loss_b.backward())
        assert dx is not None and dx.shape == x.shape
        opt_b.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.value, pb.value, err_msg=name)
    assert a.layers[0]._input_grad_unused is False  # the flag is only set during the call
    if first == "conv":  # and the first Conv2D really skips dx in train_step
        import deepkern.nn.conv as conv_layer

        seen = []
        real = conv_layer._conv2d_backward
        monkeypatch.setattr(
            conv_layer,
            "_conv2d_backward",
            lambda ctx, dy, input_grad, outs=None: seen.append(input_grad) or real(ctx, dy, input_grad, outs),
        )
        a.train_step(x, y, loss_a, opt_a)
        a.fit(x, y, loss_a, opt_a, epochs=1, batch_size=4, progress=False)
        assert seen == [False, False]


def test_fit_and_train_step_call_a_subclass_backward_without_input_grad(rng):
    """A Sequential subclass that overrides backward(dy) (the documented one-argument form) still
    trains: fit/train_step pass input_grad only to Sequential's own backward."""

    class Logged(nn.Sequential):
        calls = 0

        def backward(self, dy):
            type(self).calls += 1
            return super().backward(dy)

    model = Logged([nn.Dense(4, 6, seed=1), nn.ReLU(), nn.Dense(6, 3, seed=2)])
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)
    opt = dk.optim.SGD(model, lr=0.1)
    model.train_step(x, y, nn.SoftmaxCrossEntropy(), opt)
    model.fit(x, y, "cross_entropy", opt, epochs=1, batch_size=4, progress=False)
    assert Logged.calls == 3


def test_a_first_layer_subclass_that_uses_super_backward_still_gets_dx(rng):
    """Only Conv2D and Dense themselves skip dx in fit/train_step: a subclass whose backward uses
    what super().backward() returns is given the gradient as before."""

    class ScaledConv(nn.Conv2D):
        def backward(self, dy):
            dx = super().backward(dy)
            return dx * 2.0  # would fail on None

    model = nn.Sequential([ScaledConv(1, 2, 3, seed=0), nn.Flatten(), nn.Dense(2 * 4 * 4, 3, seed=1)])
    x = rng.standard_normal((5, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    model.fit(x, y, nn.SoftmaxCrossEntropy(), dk.optim.SGD(model, lr=0.1), epochs=1, batch_size=5, progress=False)
    model.train_step(x, y, nn.SoftmaxCrossEntropy(), dk.optim.SGD(model, lr=0.1))
