"""fit on a user's bad day: non-finite losses stop with the epoch and batch, non-finite data is
refused when asked, and progress bars appear only on a terminal (a log gets one line per epoch)."""

import io
import sys

import numpy as np
import pytest
from deepkern import nn, optim


def _model(seed=0):
    nn.manual_seed(seed)
    return nn.Sequential([nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3)])


def _data(rng, n=40):
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


def test_nonfinite_loss_stops_with_epoch_and_batch(rng):
    x, y = _data(rng)
    x[17, 2] = np.nan  # lands in some batch of the first epoch
    model = _model()
    with pytest.raises(FloatingPointError, match=r"epoch 1/3, batch \d+/5"):
        model.fit(
            x,
            y,
            nn.SoftmaxCrossEntropy(),
            optim.SGD(model.parameters(), lr=0.1),
            epochs=3,
            batch_size=8,
            progress=False,
        )


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_diverging_training_stops(rng):
    x, y = _data(rng)
    model = _model()
    with pytest.raises(FloatingPointError, match=r"loss became (nan|inf)"):
        model.fit(
            x * 1e3,
            y,
            nn.SoftmaxCrossEntropy(),
            optim.SGD(model.parameters(), lr=1e30),
            epochs=20,
            batch_size=8,
            progress=False,
        )


def test_opt_out_trains_on_regardless(rng):
    x, y = _data(rng)
    x[3, 0] = np.inf
    model = _model()
    h = model.fit(
        x,
        y,
        nn.SoftmaxCrossEntropy(),
        optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        batch_size=8,
        progress=False,
        stop_on_nonfinite=False,
    )
    assert len(h["loss"]) == 2 and not np.isfinite(h["loss"][0])


@pytest.mark.parametrize("where", ["x", "y", "validation x"])
def test_check_finite_refuses_bad_data_up_front(rng, where):
    x, y = _data(rng)
    vx, vy = _data(rng, 10)
    y = y.astype(np.float32)[:, None] * np.ones((1, 3), np.float32)  # float targets can hold NaN too
    vy = vy.astype(np.float32)[:, None] * np.ones((1, 3), np.float32)
    {"x": x, "y": y, "validation x": vx}[where][5, 1] = np.nan
    model = _model()
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=rf"'{where}' holds non-finite values.*sample 5"):
        model.fit(
            x, y, nn.MSE(), "sgd", epochs=1, batch_size=8, validation_data=(vx, vy), progress=False, check_finite=True
        )
    for p, b in zip(model.parameters(), before):  # refused before any step
        np.testing.assert_array_equal(p.value, b)


def test_progress_must_be_auto_true_or_false(rng):
    x, y = _data(rng)
    with pytest.raises(ValueError, match="'progress' must be 'auto', True or False"):
        _model().fit(x, y, nn.SoftmaxCrossEntropy(), "sgd", progress="yes")


def test_progress_auto_in_a_log_is_one_line_per_epoch(rng, capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal, like a redirected log
    x, y = _data(rng)
    _model().fit(x, y, nn.SoftmaxCrossEntropy(), "sgd", epochs=3, batch_size=8)
    out = capsys.readouterr().out.splitlines()
    assert sys.stderr.getvalue() == ""  # no bar text at all
    assert [ln.split(":")[0] for ln in out] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]


def test_progress_auto_on_a_terminal_draws_a_bar(rng, capsys, monkeypatch):
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    x, y = _data(rng)
    _model().fit(x, y, nn.SoftmaxCrossEntropy(), "sgd", epochs=1, batch_size=8)
    assert "epoch 1/1" in term.getvalue()  # tqdm's bar, with its description
