"""train / rollout / discounted_return, with deepkern's and Gymnasium's own environments, and
the book's Examples 6.5 and 6.6 reproduced with fixed seeds."""

import numpy as np
import pytest
from deepkern import rl

try:
    import gymnasium as gym
except ImportError:  # only the tests on Gymnasium's own environments skip
    gym = None
needs_gym = pytest.mark.skipif(gym is None, reason="gymnasium is not installed")


def test_discounted_return():
    assert rl.discounted_return([1.0, 2.0, 3.0], 0.5) == pytest.approx(1 + 1 + 0.75)
    assert rl.discounted_return([1, 2, 3], 1.0) == 6.0
    assert rl.discounted_return([4.0, 9.0], 0.0) == 4.0
    assert rl.discounted_return([], 0.9) == 0.0
    np.testing.assert_allclose(rl.discounted_return([[1.0, 1.0], [0.0, 2.0]], 0.9), [1.9, 1.8])
    with pytest.raises(ValueError, match="gamma"):
        rl.discounted_return([1.0], 1.5)
    with pytest.raises(ValueError, match="rewards"):
        rl.discounted_return(3.0, 0.5)
    with pytest.raises(TypeError, match="rewards"):
        rl.discounted_return(["a"], 0.5)


def test_rollout_array_and_callable_policy():
    env = rl.CliffWalking()
    policy = np.ones(48, dtype=np.int64)
    policy[36], policy[35] = 0, 2
    path = rl.rollout(env, policy, max_steps=100)
    np.testing.assert_array_equal(path, [36] + list(range(24, 36)) + [47])
    assert path.dtype.kind == "i"
    path2, rewards = rl.rollout(env, lambda s: int(policy[s]), max_steps=100, return_rewards=True)
    np.testing.assert_array_equal(path, path2)
    assert rewards.sum() == -13 and len(rewards) == len(path) - 1


def test_rollout_cap_on_a_looping_policy():
    env = rl.CliffWalking()
    path = rl.rollout(env, np.zeros(48, dtype=np.int64), max_steps=25)  # "up" forever
    np.testing.assert_array_equal(path, [36, 24, 12] + [0] * 23)
    assert len(rl.rollout(env, np.zeros(48, dtype=np.int64), max_steps=0)) == 1


@pytest.mark.parametrize(
    "policy,exc,match",
    [
        (np.zeros(47, dtype=np.int64), ValueError, "policy"),
        (np.zeros((48, 1), dtype=np.int64), ValueError, "policy"),
        (np.full(48, 4), ValueError, "policy"),
        (np.zeros(48), TypeError, "policy"),
    ],
)
def test_rollout_bad_policy(policy, exc, match):
    with pytest.raises(exc, match=match):
        rl.rollout(rl.CliffWalking(), policy, max_steps=10)


def test_rollout_bad_max_steps():
    with pytest.raises(ValueError, match="max_steps"):
        rl.rollout(rl.CliffWalking(), np.zeros(48, dtype=np.int64), max_steps=-1)


def test_train_returns_and_lengths():
    env = rl.GridWorld(shape=(1, 4), terminals=[(0, 3)])
    ag = rl.QLearning(4, 4, alpha=1.0, gamma=1.0, epsilon=0.0, seed=0)
    returns, lengths = rl.train(env, ag, 30, seed=0, return_lengths=True)
    assert returns.shape == (30,) and lengths.dtype.kind == "i"
    np.testing.assert_array_equal(returns, -lengths)
    assert returns[-1] == -3
    capped = rl.train(rl.GridWorld(shape=(1, 4)), rl.SARSA(4, 4, epsilon=1.0, seed=0), 20, max_steps=2)
    assert (capped >= -2).all()


@pytest.mark.parametrize(
    "bad,exc,match",
    [
        (dict(episodes=-1), ValueError, "episodes"),
        (dict(episodes=2.5), TypeError, "episodes"),
        (dict(max_steps=0), ValueError, "max_steps"),
    ],
)
def test_train_bad_arguments(bad, exc, match):
    args = dict(episodes=1)
    args.update(bad)
    with pytest.raises(exc, match=match):
        rl.train(rl.CliffWalking(), rl.QLearning(48, 4), **args)


def test_train_agent_env_mismatch():
    with pytest.raises(ValueError, match="agent"):
        rl.train(rl.CliffWalking(), rl.QLearning(16, 4), 1)


@needs_gym
@pytest.mark.parametrize("cls", [rl.QLearning, rl.SARSA, rl.ExpectedSARSA])
def test_train_gymnasium_cliff_walking_unchanged(cls):
    """A real Gymnasium environment, unchanged, gives exactly the run deepkern's twin gives."""
    g = gym.make("CliffWalking-v1")
    a1 = cls(48, 4, alpha=0.5, gamma=1.0, epsilon=0.1, seed=4)
    a2 = cls(48, 4, alpha=0.5, gamma=1.0, epsilon=0.1, seed=4)
    r1 = rl.train(g, a1, 150, seed=9)
    r2 = rl.train(rl.CliffWalking(), a2, 150, seed=9)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(a1.q, a2.q)
    assert r1[-50:].mean() > -80


@needs_gym
def test_train_gymnasium_frozen_lake_learns():
    g = gym.make("FrozenLake-v1")  # slippery, TimeLimit 100
    ag = rl.QLearning(16, 4, alpha=0.1, gamma=0.99, epsilon=1.0, epsilon_decay=0.995, epsilon_min=0.05, seed=0)
    returns, lengths = rl.train(g, ag, 1500, seed=0, return_lengths=True)
    assert lengths.max() <= 100
    assert set(np.unique(returns)) <= {0.0, 1.0}
    assert returns[-300:].mean() > 0.4  # optimal success rate is about 0.74
    twin = rl.QLearning(16, 4, alpha=0.1, gamma=0.99, epsilon=1.0, epsilon_decay=0.995, epsilon_min=0.05, seed=0)
    np.testing.assert_array_equal(returns, rl.train(rl.FrozenLake(max_episode_steps=100), twin, 1500, seed=0))


# ---- Sutton & Barto Example 6.6 (cliff walking), epsilon = 0.1, alpha = 0.5 --------------------


def _cliff(cls, seed):
    env = rl.CliffWalking()
    ag = cls(48, 4, alpha=0.5, gamma=1.0, epsilon=0.1, seed=seed)
    returns = rl.train(env, ag, 500, seed=seed)
    return returns, rl.rollout(env, ag.greedy_policy(), max_steps=100)


def test_example_6_6_sarsa_safe_path():
    returns, path = _cliff(rl.SARSA, 0)
    assert -33 < returns[-200:].mean() < -19  # the book: about -25
    assert path[-1] == 47 and len(path) - 1 > 13
    rows, cols = np.divmod(path, 12)
    assert not ((rows == 2) & (cols >= 1) & (cols <= 10)).any()  # keeps off the cliff's edge


def test_example_6_6_q_learning_optimal_path():
    returns, path = _cliff(rl.QLearning, 0)
    assert -60 < returns[-200:].mean() < -40  # the book: about -50
    np.testing.assert_array_equal(path, [36] + list(range(24, 36)) + [47])  # 13 steps along the cliff


def test_example_6_6_averaged_over_runs():
    env = rl.CliffWalking()
    sarsa, q_sarsa = rl.batch_train(env, "sarsa", 100, 500, alpha=0.5, epsilon=0.1, seed=1, return_q=True)
    qlearn, q_ql = rl.batch_train(env, "q_learning", 100, 500, alpha=0.5, epsilon=0.1, seed=1, return_q=True)
    assert -28.5 < sarsa[:, 300:].mean() < -22.5
    assert -53 < qlearn[:, 300:].mean() < -47
    assert sarsa[:, 300:].mean() > qlearn[:, 300:].mean() + 15
    lengths = [len(rl.rollout(env, np.argmax(q, 1), max_steps=100)) - 1 for q in q_ql]
    assert lengths == [13] * 100


# ---- Sutton & Barto Example 6.5 (windy gridworld), SARSA epsilon = 0.1, alpha = 0.5 -----------


def test_example_6_5_episodes_in_8000_steps():
    env = rl.WindyGridworld()
    ag = rl.SARSA(70, 4, alpha=0.5, gamma=1.0, epsilon=0.1, seed=0)
    _, lengths = rl.train(env, ag, 250, seed=0, return_lengths=True)
    done = int((np.cumsum(lengths) <= 8000).sum())
    assert 145 <= done <= 190  # the book's single run: about 170
    # averaged over runs (an independent plain-Python reference gives 160 +- 8 per run)
    _, L = rl.batch_train(env, "sarsa", 200, 250, alpha=0.5, epsilon=0.1, seed=0, return_lengths=True)
    per_run = (np.cumsum(L, axis=1) <= 8000).sum(axis=1)
    assert 154 <= per_run.mean() <= 172
    # epsilon-greedy episodes settle near the shortest path (the book: about 17 steps, 15 at best)
    assert 15 < L[:, 150:].mean() < 24
    V, policy = rl.value_iteration(env, gamma=1.0)
    assert V[30] == -15
    assert len(rl.rollout(env, policy, max_steps=100)) - 1 == 15
