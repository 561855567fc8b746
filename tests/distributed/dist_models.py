"""Models and data shared by the distributed worker and the single-process references in
tests/test_distributed.py (same seeds on both sides, so both start from the same weights)."""

import deepkern as dk
import numpy as np

nn = dk.nn


def mlp(dtype=np.float64, seed=0):
    nn.manual_seed(seed)
    return nn.Sequential([nn.Dense(5, 16), nn.Tanh(), nn.Dense(16, 12), nn.ReLU(), nn.Dense(12, 3)]).astype(dtype)


def cnn(dtype=np.float64, seed=0):
    nn.manual_seed(seed)
    return nn.Sequential(
        [
            nn.Conv2D(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(4, 6, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dense(6 * 2 * 2, 3),
        ]
    ).astype(dtype)


def lstm_lm(dtype=np.float64, seed=0):
    nn.manual_seed(seed)
    return nn.Sequential([nn.Embedding(11, 6), nn.LSTM(6, 8, return_sequences=True), nn.Dense(8, 11)]).astype(dtype)


MODELS = {"mlp": mlp, "cnn": cnn, "lstm": lstm_lm}


def data(kind, n, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "mlp":
        return rng.normal(size=(n, 5)).astype(dtype), rng.integers(0, 3, n)
    if kind == "cnn":
        return rng.normal(size=(n, 1, 8, 8)).astype(dtype), rng.integers(0, 3, n)
    seq = rng.integers(0, 11, (n, 7))
    return seq[:, :-1], seq[:, 1:]


def optimizer(name, model):
    if name == "sgd":
        return dk.optim.SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return dk.optim.Adam(model, lr=0.01)


# (model, samples, global batch, optimizer, epochs): 37 = uneven last batch (5 over 2 or 3 ranks),
# 33 with batch 8 = a last batch of 1, so some ranks have no sample in it
TRAIN_CASES = [
    ("mlp", 37, 8, "sgd", 3),
    ("mlp", 33, 8, "adam", 3),
    ("cnn", 29, 6, "adam", 2),
    ("lstm", 23, 5, "sgd", 2),
]


def fit_extras(k, o):
    """Extra fit arguments for TRAIN_CASES[k]: the first case also clips, schedules and stops early."""
    if k != 0:
        return {}
    return dict(
        clip_norm=0.5,
        scheduler=dk.optim.StepLR(o, step_size=1, gamma=0.7),
        early_stopping=dk.optim.EarlyStopping(patience=1, min_delta=0.07),
    )


def params(model):
    return [p.value for p in model.parameters()]
