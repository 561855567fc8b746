"""Q-table agents: epsilon-greedy acting, the three TD targets, decay, seeds, bad input."""

import numpy as np
import pytest
from deepkern import rl

AGENTS = [rl.QLearning, rl.SARSA, rl.ExpectedSARSA]


def test_egreedy_frequencies_and_random_ties():
    ag = rl.QLearning(3, 4, alpha=0.5, gamma=1.0, epsilon=0.2, seed=0)
    ag.q[0] = [0.0, 1.0, 0.0, 0.0]
    ag.q[1] = [2.0, 0.0, 2.0, 2.0]  # a three-way tie
    n = 20000
    c0 = np.bincount([ag.act(0) for _ in range(n)], minlength=4) / n
    np.testing.assert_allclose(c0, [0.05, 0.85, 0.05, 0.05], atol=0.01)
    c1 = np.bincount([ag.act(1) for _ in range(n)], minlength=4) / n
    np.testing.assert_allclose(c1, [0.05 + 0.8 / 3, 0.05, 0.05 + 0.8 / 3, 0.05 + 0.8 / 3], atol=0.012)
    greedy = rl.SARSA(3, 4, epsilon=0.0, seed=1)  # all-zero row: uniform over the tie
    c2 = np.bincount([greedy.act(2) for _ in range(n)], minlength=4) / n
    np.testing.assert_allclose(c2, 0.25, atol=0.012)
    np.testing.assert_allclose(ag.policy_probs()[1], c1, atol=0.012)


@pytest.mark.parametrize("cls", AGENTS)
def test_update_targets_by_hand(cls):
    ag = cls(4, 3, alpha=0.5, gamma=0.9, epsilon=0.3, seed=0)
    ag.q[:] = np.arange(12.0).reshape(4, 3)
    q0 = ag.q.copy()
    expected_next = {rl.QLearning: 11.0, rl.SARSA: 9.0, rl.ExpectedSARSA: 0.3 * 10.0 + 0.7 * 11.0}[cls]
    td = ag.update(1, 2, -1.0, 3, False, 0)  # SARSA's next action: 0 -> Q(3, 0) = 9
    target = -1.0 + 0.9 * expected_next
    assert td == pytest.approx(target - 5.0)
    assert ag.q[1, 2] == pytest.approx(5.0 + 0.5 * (target - 5.0))
    changed = ag.q != q0
    assert changed.sum() == 1 and changed[1, 2]
    ag.update(0, 0, 2.0, 3, True)  # terminal: target is the reward alone
    assert ag.q[0, 0] == pytest.approx(0.0 + 0.5 * 2.0)


def test_update_argument_forms():
    def fresh(cls):
        ag = cls(4, 3, alpha=0.5, gamma=0.9, epsilon=0.0, seed=0)
        ag.q[:] = np.arange(12.0).reshape(4, 3)
        return ag

    ref = fresh(rl.SARSA)
    ref.update(1, 2, -1.0, 3, False, 0)
    for call in (
        lambda ag: ag.update(1, 2, -1.0, 3, 0, False),  # textbook order s, a, r, s', a', done
        lambda ag: ag.update(1, 2, -1.0, 3, done=False, next_action=0),
        lambda ag: ag.update(1, 2, -1.0, 3, np.False_, np.int64(0)),
    ):
        ag = fresh(rl.SARSA)
        call(ag)
        np.testing.assert_array_equal(ag.q, ref.q)
    ql = fresh(rl.QLearning)
    ql.update(1, 2, -1.0, 3, 1)  # an int 0/1 flag is fine where no next action is needed
    assert ql.q[1, 2] == pytest.approx(5.0 + 0.5 * (-1.0 - 5.0))
    with pytest.raises(TypeError, match="terminated"):
        fresh(rl.SARSA).update(1, 2, -1.0, 3, 2)  # ambiguous: is 2 the next action?
    with pytest.raises(TypeError, match="terminated"):
        fresh(rl.QLearning).update(1, 2, -1.0, 3, "no")


def test_sarsa_needs_next_action():
    ag = rl.SARSA(2, 2, seed=0)
    assert ag.needs_next_action and not rl.QLearning.needs_next_action
    with pytest.raises(ValueError, match="a_next"):
        ag.update(0, 1, -1.0, 1, False)
    with pytest.raises(ValueError, match="a_next"):
        ag.update(0, 1, -1.0, 1, False, 2)


@pytest.mark.parametrize("cls", AGENTS)
def test_only_visited_pairs_change_in_an_episode(cls):
    """Record every (s, a) of one episode with a wrapper; nothing else may move."""
    env = rl.CliffWalking()
    ag = cls(48, 4, alpha=0.5, gamma=1.0, epsilon=0.1, seed=2)
    rl.train(env, ag, 20, seed=0)  # non-trivial Q first
    visited = set()
    update = ag.update

    def spy(s, a, *rest):
        visited.add((s, a))
        return update(s, a, *rest)

    ag.update = spy
    before = ag.q.copy()
    rl.train(env, ag, 1)
    changed = set(zip(*np.nonzero(ag.q != before)))
    assert changed and changed <= visited


@pytest.mark.parametrize("cls", AGENTS)
def test_seeds_reproduce(cls):
    def run(seed):
        env = rl.FrozenLake()
        ag = cls(16, 4, alpha=0.3, gamma=0.95, epsilon=0.3, seed=seed)
        return rl.train(env, ag, 200, seed=seed), ag.q

    r1, q1 = run(11)
    r2, q2 = run(11)
    r3, q3 = run(12)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(q1, q2)
    assert not np.array_equal(q1, q3)


def test_epsilon_decay_greedy_policy_values():
    ag = rl.QLearning(3, 2, epsilon=0.5, epsilon_decay=0.5, epsilon_min=0.1, seed=0)
    ag.end_episode()
    assert ag.epsilon == 0.25
    ag.end_episode()
    ag.end_episode()
    assert ag.epsilon == 0.1
    ag.q[:] = [[1.0, 2.0], [3.0, 3.0], [-1.0, -5.0]]
    np.testing.assert_array_equal(ag.greedy_policy(), [1, 0, 0])
    assert ag.greedy_policy().dtype.kind == "i"
    np.testing.assert_array_equal(ag.values(), [2.0, 3.0, -1.0])
    assert rl.SARSA(2, 2, initial_q=5.0).q.tolist() == [[5.0, 5.0], [5.0, 5.0]]


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=1.5), ValueError, "alpha"),
        (dict(alpha="0.1"), TypeError, "alpha"),
        (dict(gamma=-0.1), ValueError, "gamma"),
        (dict(gamma=1.01), ValueError, "gamma"),
        (dict(epsilon=-0.01), ValueError, "epsilon"),
        (dict(epsilon=1.2), ValueError, "epsilon"),
        (dict(epsilon=float("nan")), ValueError, "epsilon"),
        (dict(epsilon_decay=0.0), ValueError, "epsilon_decay"),
        (dict(epsilon=0.1, epsilon_min=0.2), ValueError, "epsilon_min"),
        (dict(seed=-3), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
    ],
)
@pytest.mark.parametrize("cls", AGENTS)
def test_bad_hyperparameters(cls, kw, exc, match):
    with pytest.raises(exc, match=match):
        cls(4, 2, **kw)


@pytest.mark.parametrize("cls", AGENTS)
def test_bad_sizes_and_indices(cls):
    with pytest.raises(ValueError, match="n_states"):
        cls(0, 2)
    with pytest.raises(TypeError, match="n_actions"):
        cls(3, 2.0)
    ag = cls(3, 2, seed=0)
    with pytest.raises(ValueError, match="state"):
        ag.act(3)
    with pytest.raises(TypeError, match="state"):
        ag.act(0.5)
    with pytest.raises(ValueError, match="action"):
        ag.update(0, 2, 0.0, 1, True)
    with pytest.raises(ValueError, match="s_next"):
        ag.update(0, 1, 0.0, -1, True)
