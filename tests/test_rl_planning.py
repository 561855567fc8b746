"""Value iteration, policy iteration and policy evaluation on any env with P."""

import numpy as np
import pytest
from deepkern import rl

try:
    import gymnasium as gym
except ImportError:  # only the tests on Gymnasium's own environments skip
    gym = None
needs_gym = pytest.mark.skipif(gym is None, reason="gymnasium is not installed")

ENVS = {
    "frozen4": lambda: rl.FrozenLake(),
    "frozen8": lambda: rl.FrozenLake(map_name="8x8"),
    "frozen_det": lambda: rl.FrozenLake(is_slippery=False),
    "grid_slip": lambda: rl.GridWorld(
        shape=(5, 6),
        start=(4, 0),
        terminals=[(0, 5), (2, 3)],
        walls=[(1, 1), (3, 2)],
        rewards={(0, 5): 5.0, (2, 3): -5.0},
        step_reward=-0.1,
        slip=0.3,
    ),
    "cliff": lambda: rl.CliffWalking(),
    "windy_sto": lambda: rl.WindyGridworld(stochastic_wind=True),
}


def _q(env, V, gamma):
    return rl.model.expected_q(rl.tabular_model(env), V, gamma)


@pytest.mark.parametrize("name", sorted(ENVS))
@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_value_iteration_matches_policy_iteration(name, gamma):
    env = ENVS[name]()
    V1, p1 = rl.value_iteration(env, gamma=gamma, theta=1e-12)
    V2, p2 = rl.policy_iteration(env, gamma=gamma, theta=1e-10)
    np.testing.assert_allclose(V1, V2, rtol=0, atol=1e-8)
    assert p1.shape == p2.shape == (env.observation_space.n,) and p1.dtype.kind == "i"
    # both greedy in the optimal Q (equal up to ties) and Bellman-optimal
    Q = _q(env, V2, gamma)
    rows = np.arange(len(p1))
    np.testing.assert_allclose(Q[rows, p1], Q.max(1), atol=1e-7)
    np.testing.assert_allclose(Q[rows, p2], Q.max(1), atol=1e-7)
    np.testing.assert_allclose(Q.max(1), V2, atol=1e-9)
    np.testing.assert_allclose(rl.policy_evaluation(env, p1, gamma), V2, atol=1e-7)


def test_hand_checked_corridor():
    # 1x3 corridor, goal on the right: V = [-2, -1, 0] with gamma 1; with a +10 goal and gamma 0.9:
    # V(1) = 10, V(0) = -1 + 0.9 * 10 = 8.
    env = rl.GridWorld(shape=(1, 3), terminals=[(0, 2)])
    for solve in (rl.value_iteration, rl.policy_iteration):
        V, policy = solve(env, gamma=1.0)
        np.testing.assert_allclose(V, [-2.0, -1.0, 0.0], atol=1e-9)
        assert policy[:2].tolist() == [1, 1]
    V, policy = rl.value_iteration(rl.GridWorld(shape=(1, 3), terminals=[2], rewards={2: 10.0}), gamma=0.9)
    np.testing.assert_allclose(V, [8.0, 10.0, 0.0], atol=1e-9)


def test_hand_checked_slippery_step():
    # 1x2 grid, goal right, slip 0.5: "right" reaches the goal with p 0.5 (up/down slips stay put).
    # V = -1 + 0.5 * gamma * V  ->  V = -1 / (1 - 0.5 gamma)
    env = rl.GridWorld(shape=(1, 2), terminals=[1], slip=0.5)
    for gamma in (0.5, 1.0):
        V, policy = rl.value_iteration(env, gamma=gamma, theta=1e-13)
        assert V[0] == pytest.approx(-1.0 / (1 - 0.5 * gamma), abs=1e-9)
        assert policy[0] == 1


def test_example_4_1_random_policy_values():
    """Figure 4.1: the equiprobable random policy on the 4x4 grid, gamma = 1."""
    env = rl.GridWorld(shape=(4, 4), start=None, terminals=[(0, 0), (3, 3)])
    V = rl.policy_evaluation(env, np.full((16, 4), 0.25), gamma=1.0)
    expected = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]
    np.testing.assert_allclose(V.reshape(4, 4), expected, atol=1e-9)
    Vs, _ = rl.value_iteration(env, gamma=1.0)
    rows, cols = np.divmod(np.arange(16), 4)
    np.testing.assert_allclose(Vs, -np.minimum(rows + cols, 6 - rows - cols), atol=1e-12)


@needs_gym
def test_cliff_optimal_values_and_gymnasium_env():
    V, policy = rl.value_iteration(rl.CliffWalking(), gamma=1.0)
    assert V[36] == -13
    Vg, pg = rl.value_iteration(gym.make("CliffWalking-v1"), gamma=1.0)  # P found through the wrappers
    np.testing.assert_array_equal(V, Vg)
    np.testing.assert_array_equal(policy, pg)
    path = rl.rollout(gym.make("CliffWalking-v1"), pg, max_steps=100)
    assert len(path) - 1 == 13
    Vf, pf = rl.policy_iteration(gym.make("FrozenLake-v1"), gamma=0.99)
    np.testing.assert_allclose(Vf, rl.policy_iteration(rl.FrozenLake(), gamma=0.99)[0], atol=1e-12)
    assert 0.5 < Vf[0] < 0.6  # the 4x4 slippery lake's optimal start value at gamma 0.99 (~0.54)


def test_frozen_lake_known_policy():
    """The well-known optimal policy and values of the slippery 4x4 lake at gamma 0.99."""
    V, policy = rl.value_iteration(rl.FrozenLake(), gamma=0.99, theta=1e-12)
    assert policy.tolist() == [0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0]
    np.testing.assert_allclose(
        V[[0, 4, 8, 9, 10, 13, 14]], [0.542, 0.558, 0.592, 0.643, 0.615, 0.742, 0.863], atol=6e-4
    )


def test_errors():
    with pytest.raises(TypeError, match="env"):
        rl.value_iteration(object(), gamma=0.9)
    with pytest.raises(ValueError, match="gamma"):
        rl.value_iteration(rl.FrozenLake(), gamma=1.1)
    with pytest.raises(ValueError, match="theta"):
        rl.value_iteration(rl.FrozenLake(), theta=0)
    with pytest.raises(ValueError, match="gamma"):
        rl.policy_iteration(rl.FrozenLake(), gamma=-1)
    with pytest.raises(ValueError, match="theta"):
        rl.policy_iteration(rl.FrozenLake(), theta=-1.0)
    with pytest.raises(ValueError, match="initial_policy|policy"):
        rl.policy_iteration(rl.FrozenLake(), initial_policy=np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="policy"):
        rl.policy_evaluation(rl.FrozenLake(), np.zeros(15, dtype=np.int64))
    with pytest.raises(ValueError, match="policy"):
        rl.policy_evaluation(rl.FrozenLake(), np.full((16, 4), 0.3))
    # gamma = 1 and a policy that never ends: unbounded values, said so
    with pytest.raises(ValueError, match="gamma"):
        rl.policy_evaluation(rl.CliffWalking(), np.zeros(48, dtype=np.int64), gamma=1.0)
    walled = rl.GridWorld(shape=(3, 3), start=(0, 0), terminals=[(2, 2)], walls=[(1, 2), (2, 1)])
    with pytest.raises(RuntimeError, match="value_iteration"):
        rl.value_iteration(walled, gamma=1.0, max_iterations=200)


def test_policy_iteration_undiscounted_zero_step_cost():
    """gamma = 1 with no step cost: equal-valued actions include never-ending loops; policy
    iteration changes an action only when strictly better, so it stays proper and terminates."""
    lake8 = rl.FrozenLake(map_name="8x8")
    V1, _ = rl.value_iteration(lake8, gamma=1.0)
    V2, p2 = rl.policy_iteration(lake8, gamma=1.0)
    np.testing.assert_allclose(V2, V1, atol=1e-7)
    path = rl.rollout(
        rl.FrozenLake(is_slippery=False), rl.policy_iteration(rl.FrozenLake(is_slippery=False), gamma=1.0)[1]
    )
    assert path[-1] == 15 and len(path) - 1 == 6
