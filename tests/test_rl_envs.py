"""deepkern.rl environments: Gymnasium's API, toy-text's P, the book's layouts, bad input."""

import numpy as np
import pytest
from deepkern import rl

try:
    import gymnasium as gym
except ImportError:  # only the tests on Gymnasium's own environments skip
    gym = None
needs_gym = pytest.mark.skipif(gym is None, reason="gymnasium is not installed")


def _same_P(ours, theirs):
    assert len(ours) == len(theirs)
    for s in theirs:
        assert len(ours[s]) == len(theirs[s])
        for a in theirs[s]:
            assert len(ours[s][a]) == len(theirs[s][a]), (s, a)
            for (p, s2, r, d), (gp, gs2, gr, gd) in zip(ours[s][a], theirs[s][a]):
                assert (p, s2, r, d) == (gp, int(gs2), gr, bool(gd)), (s, a)


@needs_gym
@pytest.mark.parametrize("slippery", [False, True])
def test_cliff_walking_model_is_gymnasiums(slippery):
    env = rl.CliffWalking(is_slippery=slippery)
    g = gym.make("CliffWalking-v1", is_slippery=slippery)
    assert env.observation_space.n == g.observation_space.n == 48
    assert env.action_space.n == g.action_space.n == 4
    _same_P(env.P, g.unwrapped.P)
    assert env.reset(seed=0)[0] == 36


@needs_gym
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(is_slippery=False),
        dict(map_name="8x8"),
        dict(map_name="8x8", is_slippery=False),
        dict(desc=["SFH", "FFG"]),
        dict(success_rate=0.6),
    ],
)
def test_frozen_lake_model_is_gymnasiums(kw):
    env = rl.FrozenLake(**kw)
    g = gym.make("FrozenLake-v1", **kw)
    assert env.observation_space.n == g.observation_space.n
    _same_P(env.P, g.unwrapped.P)
    np.testing.assert_array_equal(env.initial_state_distrib, g.unwrapped.initial_state_distrib)


@needs_gym
@pytest.mark.parametrize(
    "name,ours",
    [
        ("FrozenLake-v1", lambda: rl.FrozenLake(max_episode_steps=100)),
        ("CliffWalking-v1", rl.CliffWalking),
        ("CliffWalking-v1", lambda: rl.CliffWalking(is_slippery=True)),
    ],
)
def test_same_seed_same_trajectory_as_gymnasium(name, ours):
    env = ours()
    g = gym.make(name, **({"is_slippery": True} if getattr(env, "is_slippery", False) and "Cliff" in name else {}))
    actions = np.random.default_rng(1).integers(0, 4, 400)
    for seed in (0, 5):
        o1, i1 = env.reset(seed=seed)
        o2, i2 = g.reset(seed=seed)
        assert o1 == o2 and isinstance(o1, int)
        for a in actions:
            t1, t2 = env.step(int(a)), g.step(int(a))
            assert t1[:4] == t2[:4]
            assert t1[4]["prob"] == pytest.approx(t2[4]["prob"])
            if t1[2] or t1[3]:
                assert env.reset()[0] == g.reset()[0]


def test_step_returns_gymnasium_types():
    env = rl.CliffWalking()
    s, info = env.reset(seed=3)
    assert s == 36 and isinstance(info, dict)
    s2, r, term, trunc, info = env.step(1)  # right from the start: the cliff
    assert (s2, r, term, trunc) == (36, -100.0, False, False)
    assert env.step(0)[:4] == (24, -1.0, False, False)
    assert type(env.step(np.int64(2))[2]) is bool
    assert env.unwrapped is env
    assert env.action_space.sample() in range(4)
    assert "S" in env.render() or "x" in env.render()


def test_cliff_walking_optimal_path_is_13_steps():
    env = rl.CliffWalking()
    env.reset(seed=0)
    total, steps = 0.0, [0] + [1] * 11 + [2]
    for i, a in enumerate(steps):
        s, r, term, _, _ = env.step(a)
        total += r
        assert term == (i == len(steps) - 1)
    assert s == 47 and total == -13


def test_windy_gridworld_layout_and_wind():
    env = rl.WindyGridworld()
    assert (env.observation_space.n, env.action_space.n) == (70, 4) and env.shape == (7, 10)
    assert env.reset(seed=0)[0] == 30
    # in column 3 (wind 1) moving right from (3, 3) lands on (2, 4); in column 6 (wind 2) on (1, 7)
    assert env.P[33][1] == [(1.0, 24, -1.0, False)]
    assert env.P[36][1] == [(1.0, 17, -1.0, False)]
    assert env.P[7][0] == [(1.0, 7, -1.0, False)]  # the top row clips: wind 2 + up stays put
    assert env.P[37][0] == [(1.0, 37, 0.0, True)]  # the goal is absorbing
    # moving left from (4, 8) (wind 1) lands on the goal (3, 7)
    assert env.P[48][3] == [(1.0, 37, -1.0, True)]
    V, policy = rl.value_iteration(env, gamma=1.0)
    assert V[30] == -15.0
    path = rl.rollout(env, policy, max_steps=100)
    assert len(path) - 1 == 15 and path[0] == 30 and path[-1] == 37


def test_windy_king_moves_and_stochastic_wind():
    king = rl.WindyGridworld(king_moves=True)
    assert king.action_space.n == 8
    V, _ = rl.value_iteration(king, gamma=1.0)
    assert V[30] == -7.0  # Exercise 6.9: seven king's moves
    sto = rl.WindyGridworld(stochastic_wind=True)
    outs = sto.P[33][1]
    assert [o[1] for o in outs] == [34, 24, 14] and sum(o[0] for o in outs) == pytest.approx(1.0)
    assert sto.P[30][1] == [(1.0, 31, -1.0, False)]  # no wind, no randomness


def test_gridworld_walls_rewards_terminals_slip():
    env = rl.GridWorld(
        shape=(3, 4),
        start=(2, 0),
        terminals=[(0, 3), (1, 3)],
        walls=[(1, 1)],
        rewards={(0, 3): 10.0, (1, 3): -10.0},
        step_reward=-0.5,
    )
    assert env.observation_space.n == 12 and env.reset(seed=0)[0] == 8
    assert env.P[1][2] == [(1.0, 1, -0.5, False)]  # down into the wall: stays
    assert env.P[2][1] == [(1.0, 3, 10.0, True)]
    assert env.P[6][1] == [(1.0, 7, -10.0, True)]
    assert env.P[3][0] == [(1.0, 3, 0.0, True)]  # terminals absorb
    slip = rl.GridWorld(shape=(3, 3), slip=0.2)
    outs = slip.P[4][0]  # up from the centre: up 0.8, right 0.1, left 0.1
    assert sorted((round(p, 12), s) for p, s, _, _ in outs) == [(0.1, 3), (0.1, 5), (0.8, 1)]
    uniform = rl.GridWorld(shape=(2, 2), start=None, terminals=[3])
    np.testing.assert_allclose(uniform.initial_state_distrib, [1 / 3, 1 / 3, 1 / 3, 0])


def test_gridworld_size_alias_and_square():
    assert rl.GridWorld(size=5).shape == (5, 5) == rl.GridWorld(5).shape
    assert rl.GridWorld(size=(2, 3)).observation_space.n == 6


def test_truncation_by_max_episode_steps():
    env = rl.GridWorld(shape=(1, 5), max_episode_steps=3)
    env.reset(seed=0)
    assert env.step(3)[3] is False
    assert env.step(3)[3] is False
    s, r, term, trunc, _ = env.step(3)
    assert (term, trunc) == (False, True)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: rl.GridWorld(shape=(0, 3)), ValueError, "shape"),
        (lambda: rl.GridWorld(shape="ab"), TypeError, "shape"),
        (lambda: rl.GridWorld(size=(2, 0)), ValueError, "shape"),
        (lambda: rl.GridWorld(slip=1.5), ValueError, "slip"),
        (lambda: rl.GridWorld(walls=[(9, 9)]), ValueError, "walls"),
        (lambda: rl.GridWorld(start=(1, 1), walls=[(1, 1)]), ValueError, "start"),
        (lambda: rl.GridWorld(terminals=[(0, 1)], walls=[(0, 1)]), ValueError, "terminals"),
        (lambda: rl.GridWorld(terminals=["a"]), TypeError, "terminals"),
        (lambda: rl.FrozenLake(map_name="5x5"), ValueError, "map_name"),
        (lambda: rl.FrozenLake(desc=["SFF", "FG"]), ValueError, "desc"),
        (lambda: rl.FrozenLake(desc=["SXF", "FFG"]), ValueError, "desc"),
        (lambda: rl.FrozenLake(success_rate=2), ValueError, "success_rate"),
        (lambda: rl.CliffWalking(max_episode_steps=0), ValueError, "max_episode_steps"),
    ],
)
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_actions_and_order():
    env = rl.CliffWalking()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(4)
    with pytest.raises(ValueError, match="action"):
        env.step(-1)
    with pytest.raises(TypeError, match="action"):
        env.step(1.0)
    with pytest.raises(TypeError, match="action"):
        env.step(True)
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=-1)
