"""An LSTM forecaster on a real series: yearly sunspot numbers 1700-2008 (statsmodels ships them).

The model reads the last 24 years and predicts the next one (one step ahead). The last 60 years
are held out; the LSTM is compared on them with the naive forecast "next year = this year" (the
baseline any forecaster must beat) by RMSE and MAE, and the forecast is plotted against the truth.

    python examples/lstm_forecast.py [--quick]
"""

import deepkern as dk
import numpy as np
from _common import Timer, cli, pyplot, save  # first: sets thread env vars before numpy loads

nn = dk.nn


def load_sunspots():
    try:
        import statsmodels.api as sm
    except ImportError:
        raise SystemExit(  # noqa: B904
            "this example needs statsmodels (it ships the sunspots data): pip install 'deepkern[examples]'"
        )
    d = sm.datasets.sunspots.load_pandas().data
    return d["YEAR"].to_numpy().astype(int), d["SUNACTIVITY"].to_numpy().astype(np.float64)


def windows(series, w):
    """(N, w, 1) inputs and (N, 1) next values from a 1-D series."""
    x = np.lib.stride_tricks.sliding_window_view(series[:-1], w)
    return x[..., None].astype(np.float32), series[w:, None].astype(np.float32)


def main(quick=False, out_dir="examples/out"):
    dk.set_num_threads(1)
    nn.manual_seed(0)
    years, s = load_sunspots()
    W, n_test = 24, 60
    scale = s[:-n_test].max()  # scale by the training part only
    z = s / scale
    x, y = windows(z, W)  # target year of row i: years[W + i]
    xtr, ytr, xte, yte = x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]  # noqa: F841
    model = nn.Sequential([nn.LSTM(1, 32, seed=0), nn.Dense(32, 1, seed=1)])
    epochs = 5 if quick else 300
    opt = dk.optim.Adam(model, lr=1e-2)
    stop = dk.optim.EarlyStopping(patience=40, restore_best=True)
    with Timer() as t:
        h = model.fit(
            xtr,
            ytr,
            nn.MSE(),
            opt,
            epochs=epochs,
            batch_size=32,
            validation_split=0.15,
            early_stopping=stop,
            progress=False,
            seed=0,
            clip_norm=1.0,
        )
    pred = model.predict(xte)[:, 0].astype(np.float64) * scale
    truth = s[-n_test:]
    naive = s[-n_test - 1 : -1]  # last observed value
    rmse = lambda p: float(np.sqrt(np.mean((p - truth) ** 2)))  # noqa: E731
    mae = lambda p: float(np.mean(np.abs(p - truth)))  # noqa: E731
    res = {
        "lstm_rmse": rmse(pred),
        "naive_rmse": rmse(naive),
        "lstm_mae": mae(pred),
        "naive_mae": mae(naive),
        "epochs": len(h["loss"]),
        "seconds": t.seconds,
    }
    print(
        f"trained {len(h['loss'])} epochs in {t.seconds:.1f} s ({model.num_params()} parameters); "
        f"held-out years {years[-n_test]}-{years[-1]}"
    )
    print(f"  one-step-ahead RMSE: LSTM {res['lstm_rmse']:.2f}   naive last value {res['naive_rmse']:.2f}")
    print(f"  one-step-ahead MAE:  LSTM {res['lstm_mae']:.2f}   naive last value {res['naive_mae']:.2f}")
    print(
        "  the LSTM "
        + ("beats" if res["lstm_rmse"] < res["naive_rmse"] else "does NOT beat")
        + " the naive forecast on held-out data"
    )

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    ax = axes[0]
    ax.plot(years, s, color="0.75", label="sunspot number (training part)")
    ax.plot(years[-n_test:], truth, "k-", label="truth (held out)")
    ax.plot(years[-n_test:], pred, "-", color="tab:red", label=f"LSTM one step ahead (RMSE {res['lstm_rmse']:.1f})")
    ax.plot(
        years[-n_test:],
        naive,
        "--",
        color="tab:blue",
        alpha=0.7,
        label=f"naive: last value (RMSE {res['naive_rmse']:.1f})",
    )
    ax.axvline(years[-n_test] - 0.5, color="0.5", lw=0.8)
    ax.set(xlabel="year", ylabel="yearly mean sunspot number", title="LSTM forecaster on statsmodels' sunspots")
    ax.legend(loc="upper left", fontsize=8)
    axes[1].semilogy(h["loss"], label="train")
    axes[1].semilogy(h["val_loss"], label="validation")
    axes[1].set(xlabel="epoch", ylabel="MSE (scaled series)", title="training")
    axes[1].legend()
    save(fig, out_dir, "lstm_forecast.png")
    return res


if __name__ == "__main__":
    main(**cli(__doc__))
