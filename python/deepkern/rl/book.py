"""Sutton & Barto's chapter-6 figures, reproduced with batch_train (matplotlib needed).

from deepkern.rl import book
book.figure_6_4("cliff.png")    # Example 6.6: Sarsa vs Q-learning on the cliff
book.figure_6_3("windy.png")    # Example 6.5: episodes vs time steps on the windy gridworld
"""

import numpy as np

from .batch import batch_train
from .envs import CliffWalking, WindyGridworld
from .plots import _pyplot, _save, plot_learning_curves


def figure_6_4(path=None, runs=200, episodes=500, seed=0):
    """Sum of rewards per episode for Sarsa and Q-learning (epsilon 0.1, alpha 0.5), averaged
    over `runs` runs and smoothed over 10 episodes. -> (Figure, {label: (runs, episodes) returns})."""
    env = CliffWalking()
    curves = {
        "Sarsa": batch_train(env, "sarsa", runs, episodes, alpha=0.5, epsilon=0.1, seed=seed),
        "Q-learning": batch_train(env, "q_learning", runs, episodes, alpha=0.5, epsilon=0.1, seed=seed + 1),
    }
    fig = plot_learning_curves(
        curves, window=10, path=path, ylim=(-100, 0), title=f"Cliff walking (Example 6.6), mean of {runs} runs"
    )
    return fig, curves


def figure_6_3(path=None, steps=8000, seed=0):
    """Episodes completed against time steps for one epsilon-greedy Sarsa run (epsilon 0.1,
    alpha 0.5) on the windy gridworld. -> (Figure, cumulative steps at the end of each episode)."""
    _, lengths = batch_train(WindyGridworld(), "sarsa", 1, 400, alpha=0.5, epsilon=0.1, seed=seed, return_lengths=True)
    ends = np.cumsum(lengths[0])
    ends = ends[ends <= steps]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(np.concatenate([[0], ends]), np.arange(ends.size + 1))
    ax.set_xlabel("Time steps")
    ax.set_ylabel("Episodes")
    ax.set_title(f"Windy gridworld (Example 6.5): {ends.size} episodes in {steps} steps")
    _save(fig, path)
    return fig, ends
