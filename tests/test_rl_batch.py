"""rl.batch_train: R runs in lock-step reproduce the sequential semantics (exactly for R = 1)."""

import numpy as np
import pytest
from deepkern import rl

try:
    import gymnasium as gym
except ImportError:  # only the tests on Gymnasium's own environments skip
    gym = None
needs_gym = pytest.mark.skipif(gym is None, reason="gymnasium is not installed")

CASES = [
    (rl.CliffWalking, "sarsa", dict()),
    (rl.CliffWalking, "q_learning", dict()),
    (rl.CliffWalking, "expected_sarsa", dict()),
    (lambda: rl.FrozenLake(), "q_learning", dict(gamma=0.95, epsilon=0.5, epsilon_decay=0.99, epsilon_min=0.05)),
    (lambda: rl.FrozenLake(), "sarsa", dict(gamma=0.95, epsilon=0.3, initial_q=0.5)),
    (lambda: rl.FrozenLake(), "sarsa", dict(gamma=0.9, epsilon=0.6, epsilon_decay=0.97, max_steps=6)),  # truncations
    (lambda: rl.GridWorld(shape=(1, 3), slip=0.4), "sarsa", dict(alpha=0.7, max_steps=4)),  # bumps: s' == s
    (lambda: rl.FrozenLake(map_name="8x8"), "expected_sarsa", dict(gamma=0.9, epsilon=0.3, max_steps=60)),
    (lambda: rl.WindyGridworld(king_moves=True, stochastic_wind=True), "sarsa", dict(max_steps=300)),
    (
        lambda: rl.GridWorld(shape=(4, 5), start=None, terminals=[0, 19], walls=[7], slip=0.2),
        "q_learning",
        dict(alpha=0.2, gamma=0.9),
    ),
]
CLS = {"sarsa": rl.SARSA, "q_learning": rl.QLearning, "expected_sarsa": rl.ExpectedSARSA}


@pytest.mark.parametrize("below", [0, 8], ids=["vectorised", "scalar-tail"])
@pytest.mark.parametrize("make,kind,kw", CASES)
def test_one_run_equals_sequential_bit_for_bit(make, kind, kw, below):
    kw = dict(dict(alpha=0.5, gamma=1.0, epsilon=0.1), **kw)
    max_steps = kw.pop("max_steps", None)
    env = make()
    agent = CLS[kind](env.observation_space.n, env.action_space.n, seed=21, **kw)
    returns, lengths = rl.train(env, agent, 80, max_steps=max_steps, seed=5, return_lengths=True)
    b_ret, b_len, b_q = rl.batch_train(
        make(),
        kind,
        1,
        80,
        max_steps=max_steps,
        seed=21,
        env_seed=5,
        return_lengths=True,
        return_q=True,
        sequential_below=below,
        **kw,
    )
    assert b_ret.shape == (1, 80) and b_q.shape == (1,) + agent.q.shape
    np.testing.assert_array_equal(b_ret[0], returns)
    np.testing.assert_array_equal(b_len[0], lengths)
    np.testing.assert_array_equal(b_q[0], agent.q)


@needs_gym
@pytest.mark.parametrize("name,kind", [("CliffWalking-v1", "sarsa"), ("FrozenLake-v1", "q_learning")])
def test_gymnasium_env_in_batch_equals_sequential_gymnasium(name, kind):
    """batch_train on gymnasium.make(...) (model + TimeLimit read from it) == train on the same env."""
    g = gym.make(name)
    agent = CLS[kind](g.observation_space.n, g.action_space.n, alpha=0.5, gamma=0.95, epsilon=0.2, seed=8)
    returns = rl.train(g, agent, 60, seed=3)
    batch = rl.batch_train(
        gym.make(name), kind, 1, 60, alpha=0.5, gamma=0.95, epsilon=0.2, seed=8, env_seed=3, sequential_below=0
    )
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
    seq = np.array(
        [rl.train(env, rl.QLearning(48, 4, 0.5, 1.0, 0.1, seed=1000 + i), episodes, seed=i) for i in range(40)]
    )
    for lo, hi in [(0, 5), (5, 20), (20, 60)]:
        mb, ms = batch[:, lo:hi].mean(1), seq[:, lo:hi].mean(1)
        se = np.sqrt(mb.var() / mb.size + ms.var() / ms.size)
        assert abs(mb.mean() - ms.mean()) < 4.5 * se + 1e-9, (lo, hi, mb.mean(), ms.mean(), se)
    # and the runs are different from each other (independent draws)
    assert len({tuple(r) for r in batch[:, :10]}) > 300


def test_scalar_tail_gives_the_same_statistics():
    """Finishing stragglers with the scalar code changes which draws go to which run, not the law."""
    env = rl.CliffWalking()
    a = rl.batch_train(env, "sarsa", 300, 25, seed=0, sequential_below=0)
    b = rl.batch_train(env, "sarsa", 60, 25, seed=1, sequential_below=10**6)  # everything scalar
    ma, mb = a.mean(1), b.mean(1)
    assert abs(ma.mean() - mb.mean()) < 4.5 * np.sqrt(ma.var() / 300 + mb.var() / 60)


def test_runs_are_reproducible_and_seed_dependent():
    a = rl.batch_train(rl.FrozenLake(), "sarsa", 50, 40, gamma=0.9, seed=4, env_seed=4)
    b = rl.batch_train(rl.FrozenLake(), "sarsa", 50, 40, gamma=0.9, seed=4, env_seed=4)
    c = rl.batch_train(rl.FrozenLake(), "sarsa", 50, 40, gamma=0.9, seed=5, env_seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("A", [2, 4, 8, 11])  # 11: beyond the bit-pattern tables
def test_egreedy_batch_draws_like_the_agent(A):
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    ag = rl.QLearning(6, A, epsilon=0.4, seed=rng_a)
    ag.q[:] = np.random.default_rng(A).integers(0, 3, (6, A))  # many ties
    ag.q[0] = 0.0
    states = np.tile(np.arange(6), 40)
    seq = [ag.act(int(s)) for s in states]
    batch = []
    for s in states:  # one at a time: the draw pattern of act
        batch.append(int(rl.batch.egreedy_batch(ag.q[[s]].T.copy(), np.array([0.4]), rng_b)[0]))
    assert seq == batch
    row = np.zeros(A)
    row[[0, A - 1]] = 2.0  # a two-way tie at both ends
    acts = rl.batch.egreedy_batch(np.tile(row[:, None], (1, 40000)), np.full(40000, 0.4), np.random.default_rng(0))
    expected = np.full(A, 0.4 / A)
    expected[[0, A - 1]] += 0.3
    np.testing.assert_allclose(np.bincount(acts, minlength=A) / 40000, expected, atol=0.012)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
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
        (dict(sequential_below=-1), ValueError, "sequential_below"),
        (dict(env=object()), TypeError, "env"),
    ],
)
def test_bad_input(kw, exc, match):
    args = dict(env=rl.CliffWalking(), agent="sarsa", runs=2, episodes=2)
    args.update(kw)
    with pytest.raises(exc, match=match):
        rl.batch_train(**args)


@needs_gym
def test_time_limit_read_from_the_wrapper_only():
    g = gym.make("FrozenLake-v1")
    assert rl.tabular_model(g).time_limit == 100  # TimeLimit wrapper
    assert rl.tabular_model(g.unwrapped).time_limit is None  # the bare env never truncates
    assert rl.tabular_model(rl.FrozenLake(max_episode_steps=7)).time_limit == 7
    _, lengths = rl.batch_train(g, "q_learning", 20, 30, epsilon=1.0, return_lengths=True)
    assert lengths.max() <= 100


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 4),
    cols=st.integers(2, 5),
    slip=st.sampled_from([0.0, 0.3, 1.0]),
    kind=st.sampled_from(["q_learning", "sarsa", "expected_sarsa"]),
    alpha=st.floats(0.05, 1.0),
    gamma=st.floats(0.0, 1.0),
    epsilon=st.floats(0.0, 1.0),
    decay=st.sampled_from([1.0, 0.9]),
    max_steps=st.sampled_from([None, 1, 7]),
    init=st.sampled_from([0.0, 1.0, -2.0]),
    seed=st.integers(0, 2**31),
)
def test_property_one_run_equals_sequential(
    rows, cols, slip, kind, alpha, gamma, epsilon, decay, max_steps, init, seed
):
    """Random grid worlds and hyperparameters: batch (vectorised, runs=1) == train, bit for bit."""

    def make():
        return rl.GridWorld(
            shape=(rows, cols),
            start=None,
            terminals=[rows * cols - 1],
            slip=slip,
            rewards={0: 1.0},
            max_episode_steps=50,
        )

    kw = dict(alpha=alpha, gamma=gamma, epsilon=epsilon, epsilon_decay=decay, initial_q=init)
    env = make()
    agent = CLS[kind](env.observation_space.n, 4, seed=seed, **kw)
    returns, lengths = rl.train(env, agent, 15, max_steps=max_steps, seed=seed + 1, return_lengths=True)
    b_ret, b_len, b_q = rl.batch_train(
        make(),
        kind,
        1,
        15,
        max_steps=max_steps,
        seed=seed,
        env_seed=seed + 1,
        return_lengths=True,
        return_q=True,
        sequential_below=0,
        **kw,
    )
    np.testing.assert_array_equal(b_ret[0], returns)
    np.testing.assert_array_equal(b_len[0], lengths)
    np.testing.assert_array_equal(b_q[0], agent.q)
