"""A small CNN on scikit-learn's digits: the data split, the model and a timed training loop.

Used by the main job (`python -m deepkern`) and by examples/cnn_digits.py. The data ship with
scikit-learn (nothing is downloaded). `device="cuda"` moves the model and the data to cupy arrays;
everything else is the same code, because every deepkern layer is array-module agnostic.
"""

import time

import numpy as np

from .. import _backend, nn, optim
from ..nn.training import _progress_bar


def load_digits_split(test_size=0.25, seed=0):
    """(x_train, x_test, y_train, y_test): images scaled to [0, 1] as float32 NCHW (N, 1, 8, 8),
    integer labels; a stratified split."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ImportError("the digits demo needs scikit-learn: pip install 'deepkern[examples]'") from None
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, d.target.astype(np.int64), test_size=test_size, random_state=seed, stratify=d.target)


def build_cnn(seed=0, channels=(16, 32), hidden=64):
    """conv3x3(1->c1)-ReLU-maxpool2 - conv3x3(c1->c2)-ReLU-maxpool2 - dense(c2*2*2 -> hidden)-ReLU - dense(10)."""
    c1, c2 = channels
    return nn.Sequential(
        [
            nn.Conv2D(1, c1, 3, padding=1, seed=seed),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(c1, c2, 3, padding=1, seed=seed + 1),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Flatten(),
            nn.Dense(c2 * 4, hidden, init="he_normal", seed=seed + 2),
            nn.ReLU(),
            nn.Dense(hidden, 10, seed=seed + 3),
        ],
        input_shape=(1, 8, 8),
    )


def require_device(device):
    """'cpu' or 'cuda'; for 'cuda' a clear RuntimeError unless cupy and deepkern's CUDA module work."""
    device = nn._base.normalize_device(device)
    if device == "cuda" and not _backend.cuda_available():
        why = (
            "deepkern was built without its CUDA module (no nvcc at install time)"
            if _backend._cuda is None
            else "cupy is not installed"
            if _backend._cupy() is None
            else "no CUDA device is visible"
        )
        raise RuntimeError(
            f"--device cuda: {why}. Install deepkern on a machine with the CUDA toolkit "
            f"(DEEPKERN_CUDA=ON) and cupy (pip install 'deepkern[cuda]'), or use --device cpu."
        )
    return device


def _progress(total, desc, enabled):
    """A bar only on a terminal ('auto') or when forced (True): see nn.training._progress_bar."""
    return _progress_bar(enabled, total, desc)


def train_cnn(model, data, epochs=10, batch_size=32, lr=3e-3, seed=0, device="cpu", progress="auto", print_fn=print):
    """Adam with a cosine learning-rate schedule. data = (x_train, x_test, y_train, y_test) numpy.

    Returns a dict: 'loss', 'train_acc', 'test_acc', 'epoch_time' (per-epoch lists, seconds),
    'test_pred' (numpy predictions on x_test after the last epoch)."""
    device = require_device(device)
    xtr, xte, ytr, yte = data
    if device == "cuda":
        import cupy as xp

        model.to("cuda")
    else:
        xp = np
    xtr_d, xte_d, ytr_d = xp.asarray(xtr), xp.asarray(xte), xp.asarray(ytr)
    loss = nn.SoftmaxCrossEntropy()
    opt = optim.Adam(model, lr=lr)
    sched = optim.CosineAnnealingLR(opt, epochs)
    rng = np.random.default_rng(seed)
    hist = {"loss": [], "train_acc": [], "test_acc": [], "epoch_time": []}
    n = len(xtr)
    for epoch in range(epochs):
        bar = _progress(n, f"epoch {epoch + 1}/{epochs}", progress)
        order = rng.permutation(n)
        t0 = time.perf_counter()
        total, correct = 0.0, 0
        for s in range(0, n, batch_size):
            idx = xp.asarray(order[s : s + batch_size])
            xb, yb = xtr_d[idx], ytr_d[idx]
            model.zero_grad()
            out = model.forward(xb, training=True)
            total += loss.forward(out, yb) * len(idx)
            model.backward(loss.backward(), input_grad=False)  # nothing needs d(loss)/d(images)
            opt.step()
            correct += int((out.argmax(axis=1) == yb).sum())
            if bar is not None:
                bar.update(len(idx))
        pred = model.predict(xte_d).argmax(axis=1)
        pred = pred.get() if device == "cuda" else pred
        dt = time.perf_counter() - t0  # the epoch's training plus one test-set evaluation
        if bar is not None:
            bar.close()
        sched.step()
        hist["loss"].append(total / n)
        hist["train_acc"].append(correct / n)
        hist["test_acc"].append(float((pred == yte).mean()))
        hist["epoch_time"].append(dt)
        if print_fn is not None:
            print_fn(
                f"  epoch {epoch + 1:2d}/{epochs}  loss {hist['loss'][-1]:.4f}  train acc "
                f"{hist['train_acc'][-1]:.3f}  test acc {hist['test_acc'][-1]:.3f}  {dt:.2f} s"
            )
    hist["test_pred"] = pred
    return hist
