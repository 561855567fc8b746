"""rl.batch_train: R runs in lock-step reproduce the sequential semantics (exactly for R = 1)."""
import numpy as np
import pytest

from deepkern import rl

gym = pytest.importorskip("gymnasium")

CASES = [
    (rl.CliffWalking, "sarsa", dict()),
    (rl.CliffWalking, "q_learning", dict()),
    (rl.CliffWalking, "expected_sarsa", dict()),
    (lambda: rl.FrozenLake(), "q_learning", dict(gamma=0.95, epsilon=0.5, epsilon_decay=0.99, epsilon_min=0.05)),
    (lambda: rl.FrozenLake(), "sarsa", dict(gamma=0.95, epsilon=0.3, initial_q=0.5)),
    (lambda: rl.FrozenLake(map_name="8x8"), "expected_sarsa", dict(gamma=0.9, epsilon=0.3, max_steps=60)),
    (lambda: rl.WindyGridworld(king_moves=True, stochastic_wind=True), "sarsa", dict(max_steps=300)),
    (lambda: rl.GridWorld(shape=(4, 5), start=None, terminals=[0, 19], walls=[7], slip=0.2), "q_learning",
     dict(alpha=0.2, gamma=0.9)),
]
CLS = {"sarsa": rl.SARSA, "q_learning": rl.QLearning, "expected_sarsa": rl.ExpectedSARSA}


@pytest.mark.parametrize("make,kind,kw", CASES)
def test_one_run_equals_sequential_bit_for_bit(make, kind, kw):
    kw = dict(dict(alpha=0.5, gamma=1.0, epsilon=0.1), **kw)
    max_steps = kw.pop("max_steps", None)
    env = make()
    agent = CLS[kind](env.observation_space.n, env.action_space.n, seed=21, **kw)
    returns, lengths = rl.train(env, agent, 80, max_steps=max_steps, seed=5, return_lengths=True)
    b_ret, b_len, b_q = rl.batch_train(make(), kind, 1, 80, max_steps=max_steps, seed=21, env_seed=5,
                                       return_lengths=True, return_q=True, **kw)
    assert b_ret.shape == (1, 80) and b_q.shape == (1,) + agent.q.shape
    np.testing.assert_array_equal(b_ret[0], returns)
    np.testing.assert_array_equal(b_len[0], lengths)
    np.testing.assert_array_equal(b_q[0], agent.q)


@pytest.mark.parametrize("name,kind", [("CliffWalking-v1", "sarsa"), ("FrozenLake-v1", "q_learning")])
def test_gymnasium_env_in_batch_equals_sequential_gymnasium(name, kind):
    """batch_train on gymnasium.make(...) (model + TimeLimit read from it) == train on the same env."""
    g = gym.make(name)
    agent = CLS[kind](g.observation_space.n, g.action_space.n, alpha=0.5, gamma=0.95, epsilon=0.2, seed=8)
    returns = rl.train(g, agent, 60, seed=3)
    batch = rl.batch_train(gym.make(name), kind, 1, 60, alpha=0.5, gamma=0.95, epsilon=0.2, seed=8, env_seed=3)
    np.testing.assert_array_equal(batch[0], returns)


def test_env_factory_and_agent_class():
    a = rl.batch_train(rl.CliffWalking, rl.QLearning, 3, 5, seed=0, env_seed=1)
    b = rl.batch_train(rl.CliffWalking(), "Q_Learning", 3, 5, seed=0, env_seed=1)
    np.testing.assert_array_equal(a, b)
    assert rl.batch_train(rl.CliffWalking(), "sarsa", 4, 0).shape == (4, 0)


def test_many_runs_match_sequential_statistically():
    """Mean learning curves of 400 batch runs and of 40 sequential runs agree within their noise."""
    env = rl.CliffWalking()
    episodes = 60
    batch = rl.batch_train(env, "q_learning", 400, episodes, seed=123)
    seq = np.array([rl.train(env, rl.QLearning(48, 4, 0.5, 1.0, 0.1, seed=1000 + i), episodes, seed=i)
                    for i in range(40)])
    for lo, hi in [(0, 5), (5, 20), (20, 60)]:
        mb, ms = batch[:, lo:hi].mean(1), seq[:, lo:hi].mean(1)
        se = np.sqrt(mb.var() / mb.size + ms.var() / ms.size)
        assert abs(mb.mean() - ms.mean()) < 4.5 * se + 1e-9, (lo, hi, mb.mean(), ms.mean(), se)
    # and the runs are different from each other (independent draws)
    assert len({tuple(r) for r in batch[:, :10]}) > 300


def test_runs_are_reproducible_and_seed_dependent():
    a = rl.batch_train(rl.FrozenLake(), "sarsa", 50, 40, gamma=0.9, seed=4, env_seed=4)
    b = rl.batch_train(rl.FrozenLake(), "sarsa", 50, 40, gamma=0.9, seed=4, env_seed=4)
    c = rl.batch_train(rl.FrozenLake(), "sarsa", 50, 40, gamma=0.9, seed=5, env_seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_egreedy_batch_draws_like_the_agent():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    ag = rl.QLearning(5, 4, epsilon=0.4, seed=rng_a)
    ag.q[:] = [[0, 0, 0, 0], [1, 2, 2, 0], [3, 1, 1, 1], [0, 0, 5, 5], [1, 1, 1, 9]]
    states = np.tile(np.arange(5), 40)
    seq = [ag.act(int(s)) for s in states]
    batch = []
    for s in states:  # one at a time: the draw pattern of act
        batch.append(int(rl.batch.egreedy_batch(ag.q[[s]].T.copy(), np.array([0.4]), rng_b)[0]))
    assert seq == batch
    acts = rl.batch.egreedy_batch(np.tile(ag.q[[1]].T, (1, 40000)), np.full(40000, 0.4), np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(acts, minlength=4) / 40000, [0.1, 0.4, 0.4, 0.1], atol=0.01)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(agent="td0"), ValueError, "agent"),
    (dict(agent=3), TypeError, "agent"),
    (dict(runs=0), ValueError, "runs"),
    (dict(episodes=-2), ValueError, "episodes"),
    (dict(alpha=0.0), ValueError, "alpha"),
    (dict(gamma=2.0), ValueError, "gamma"),
    (dict(epsilon=-1.0), ValueError, "epsilon"),
    (dict(epsilon_decay=1.5), ValueError, "epsilon_decay"),
    (dict(epsilon_min=0.5), ValueError, "epsilon_min"),
    (dict(max_steps=0), ValueError, "max_steps"),
    (dict(env=object()), TypeError, "env"),
])
def test_bad_input(kw, exc, match):
    args = dict(env=rl.CliffWalking(), agent="sarsa", runs=2, episodes=2)
    args.update(kw)
    with pytest.raises(exc, match=match):
        rl.batch_train(**args)
