"""End to end: a small CNN built from deepkern.nn learns scikit-learn's 8x8 digits to >= 97%."""

import deepkern as dk
import numpy as np
import pytest

nn = dk.nn
datasets = pytest.importorskip("sklearn.datasets")
model_selection = pytest.importorskip("sklearn.model_selection")


@pytest.fixture
def one_thread():
    # The shared test machine is oversubscribed; OpenMP's spinning threads then slow small kernels
    # several-fold. Threading is exercised by the kernel tests; here one thread keeps this fast.
    old = dk.get_num_threads()
    dk.set_num_threads(1)
    yield
    dk.set_num_threads(old)


def test_cnn_learns_digits(one_thread):
    d = datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    xtr, xte, ytr, yte = model_selection.train_test_split(
        x, d.target, test_size=0.25, random_state=0, stratify=d.target
    )
    model = nn.Sequential(
        [
            nn.Conv2D(1, 16, 3, padding=1, seed=0),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(16, 32, 3, padding=1, seed=1),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Flatten(),
            nn.Dense(128, 64, init="he_normal", seed=2),
            nn.ReLU(),
            nn.Dense(64, 10, seed=3),
        ]
    )
    epochs = 20
    opt = dk.optim.Adam(model, lr=3e-3)
    h = model.fit(
        xtr,
        ytr,
        nn.SoftmaxCrossEntropy(),
        opt,
        epochs=epochs,
        batch_size=32,
        progress=False,
        seed=0,
        validation_data=(xte, yte),
        scheduler=dk.optim.CosineAnnealingLR(opt, epochs),
    )
    acc = float((model.predict(xte).argmax(axis=1) == yte).mean())
    assert acc >= 0.97, f"test accuracy {acc:.3f}; history {h['val_accuracy']}"
    assert abs(acc - h["val_accuracy"][-1]) < 1e-12
    assert h["accuracy"][-1] > 0.97
