"""Plots: learning curves, policy arrows, value heat map written as PNG files."""

import numpy as np
import pytest
from deepkern import rl


def test_smooth():
    np.testing.assert_allclose(rl.smooth([1.0, 2.0, 3.0, 4.0], window=2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(rl.smooth([[0.0, 2.0], [2.0, 4.0]], window=1), [1.0, 3.0])
    with pytest.raises(ValueError, match="window"):
        rl.smooth([1.0], window=0)
    with pytest.raises(ValueError, match="returns"):
        rl.smooth(np.zeros((2, 2, 2)))


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    env = rl.CliffWalking()
    curves = {
        "Sarsa": rl.batch_train(env, "sarsa", 5, 30, seed=0),
        "Q-learning": rl.batch_train(env, "q_learning", 5, 30, seed=0),
    }
    V, policy = rl.value_iteration(env, gamma=1.0)
    paths = [tmp_path / n for n in ("curves.png", "policy.png", "values.png", "lake.png")]
    rl.plot_learning_curves(curves, window=10, path=paths[0], ylim=(-100, 0))
    rl.plot_policy(policy, env, path=paths[1], values=V, skip=range(37, 48))
    rl.plot_values(V, env, path=paths[2])
    lake = rl.FrozenLake()
    rl.plot_policy(rl.value_iteration(lake, gamma=0.99)[1], lake, path=paths[3])
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close("all")


def test_plot_bad_input():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="shape"):
        rl.plot_values(np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        rl.plot_values(np.zeros(10), shape=(3, 3))
    with pytest.raises(ValueError, match="policy"):
        rl.plot_policy(np.zeros(48), rl.CliffWalking())
    with pytest.raises(TypeError, match="curves"):
        rl.plot_learning_curves([1, 2, 3])


def test_book_figures(tmp_path):
    pytest.importorskip("matplotlib")
    fig, curves = rl.book.figure_6_4(tmp_path / "fig64.png", runs=4, episodes=20)
    assert curves["Sarsa"].shape == (4, 20)
    fig, ends = rl.book.figure_6_3(tmp_path / "fig63.png")
    assert 120 < ends.size < 200 and ends[-1] <= 8000
    for name in ("fig64.png", "fig63.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    import matplotlib.pyplot as plt

    plt.close("all")
