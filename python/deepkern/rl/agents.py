"""Q-table agents: QLearning, SARSA, ExpectedSARSA.

Each agent draws from its own numpy Generator in a fixed pattern per act(): one uniform u
(explore if u < epsilon), then one more uniform only if it explores (action = floor(u' * A)) or
if the greedy action is tied (the floor(u' * k)-th of the k tied actions). rl.batch_train draws
in the same pattern, which is why a batch of one run reproduces a sequential run exactly.

The training loop drives all three uniformly (see rl.train):
    on-policy (SARSA, needs_next_action=True):  a' = act(s'), then update(s, a, r, s', terminated, a')
    otherwise:                                 update(s, a, r, s', terminated), then act(s') next step
"""

import numpy as np

from ._checks import check_index, check_int, check_real, make_rng


def _is_flag(x):
    return x is True or x is False or isinstance(x, np.bool_)


class TabularAgent:
    """Shared machinery: the Q table, epsilon-greedy acting, epsilon decay, greedy policy.

    n_states, n_actions: sizes of the Q table. alpha in (0, 1], gamma in [0, 1], epsilon in [0, 1].
    seed: None, an int or a numpy Generator. epsilon_decay in (0, 1]: epsilon is multiplied by it
    at the end of each episode (end_episode()), never below epsilon_min. initial_q: the starting
    value of every Q entry (optimistic values encourage exploration).
    """

    needs_next_action = False

    def __init__(
        self,
        n_states,
        n_actions,
        alpha=0.5,
        gamma=1.0,
        epsilon=0.1,
        seed=None,
        *,
        epsilon_decay=1.0,
        epsilon_min=0.0,
        initial_q=0.0,
    ):
        name = type(self).__name__
        self.n_states = check_int(name, "n_states", n_states, low=1)
        self.n_actions = check_int(name, "n_actions", n_actions, low=1)
        self.alpha = check_real(name, "alpha", alpha, 0.0, 1.0, low_open=True)
        self.gamma = check_real(name, "gamma", gamma, 0.0, 1.0)
        self.epsilon = check_real(name, "epsilon", epsilon, 0.0, 1.0)
        self.epsilon_decay = check_real(name, "epsilon_decay", epsilon_decay, 0.0, 1.0, low_open=True)
        self.epsilon_min = check_real(name, "epsilon_min", epsilon_min, 0.0, 1.0)
        if self.epsilon_min > self.epsilon:
            raise ValueError(
                f"{name}: argument 'epsilon_min' ({self.epsilon_min}) must not exceed 'epsilon' ({self.epsilon})"
            )
        self.initial_q = check_real(name, "initial_q", initial_q, -np.inf, np.inf)
        self.rng = make_rng(name, seed)
        self.q = np.full((self.n_states, self.n_actions), self.initial_q, dtype=np.float64)

    # ---- acting -------------------------------------------------------------------------------
    def act(self, s):
        """Epsilon-greedy action in state s, ties among greedy actions broken at random."""
        s = check_index(f"{type(self).__name__}.act", "state", s, self.n_states)
        rng = self.rng
        if rng.random() < self.epsilon:
            return int(rng.random() * self.n_actions)
        row = self.q[s].tolist()  # a Python list is faster than numpy for a handful of actions
        m = max(row)
        if row.count(m) == 1:
            return row.index(m)
        best = [i for i, v in enumerate(row) if v == m]
        return best[int(rng.random() * len(best))]

    def greedy_action(self, s):
        """argmax_a Q(s, a), lowest index on ties (deterministic)."""
        s = check_index(f"{type(self).__name__}.greedy_action", "state", s, self.n_states)
        return int(np.argmax(self.q[s]))

    def greedy_policy(self):
        """Int array (n_states,): the greedy action of every state, lowest index on ties."""
        return np.argmax(self.q, axis=1)

    def values(self):
        """V(s) = max_a Q(s, a), shape (n_states,)."""
        return self.q.max(axis=1)

    def policy_probs(self):
        """The epsilon-greedy policy as an (n_states, n_actions) matrix of probabilities."""
        best = self.q == self.q.max(axis=1, keepdims=True)
        return self.epsilon / self.n_actions + (1.0 - self.epsilon) * best / best.sum(axis=1, keepdims=True)

    def end_episode(self):
        """Called by rl.train after every episode: applies the epsilon decay."""
        self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)

    # ---- learning -----------------------------------------------------------------------------
    def _next_value(self, s_next, a_next):
        raise NotImplementedError

    def update(self, s, a, r, s_next, terminated=False, a_next=None, *, done=None, next_action=None):
        """One TD update of Q(s, a) from the transition (s, a, r, s_next); returns the TD error.
        terminated=True means s_next is terminal: the target is r alone. A truncated (time-limit)
        transition is not terminal: it bootstraps. a_next: the next action actually taken
        (SARSA needs it unless terminated; the others ignore it).

        Also accepted: the keywords done= (for terminated) and next_action= (for a_next), and the
        textbook SARSA order update(s, a, r, s_next, a_next, terminated) with a bool terminated."""
        name = type(self).__name__ + ".update"
        if done is not None:
            terminated = done
        if next_action is not None:
            a_next = next_action
        if _is_flag(a_next) and not _is_flag(terminated):  # (s, a, r, s', a', terminated)
            terminated, a_next = a_next, terminated
        if not _is_flag(terminated):
            if self.needs_next_action and a_next is None:
                raise TypeError(
                    f"{name}: argument 'terminated' got {terminated!r}; pass terminated as a bool and "
                    "the next action as a_next (or in the order s, a, r, s_next, a_next, terminated)"
                )
            if terminated not in (0, 1):
                raise TypeError(f"{name}: argument 'terminated' must be a bool, got {terminated!r}")
        s = check_index(name, "state", s, self.n_states)
        a = check_index(name, "action", a, self.n_actions)
        s_next = check_index(name, "s_next", s_next, self.n_states)
        bootstrap = 0.0 if terminated else self.gamma * self._next_value(s_next, a_next)
        q = self.q
        delta = r + bootstrap - q[s, a]
        q[s, a] += self.alpha * delta
        return float(delta)

    def __repr__(self):
        return (
            f"{type(self).__name__}(n_states={self.n_states}, n_actions={self.n_actions}, alpha={self.alpha}, "
            f"gamma={self.gamma}, epsilon={self.epsilon})"
        )


class QLearning(TabularAgent):
    """Off-policy TD control: target r + gamma * max_a Q(s', a) (Sutton & Barto 6.5)."""

    def _next_value(self, s_next, a_next):
        return self.q[s_next].max()


class SARSA(TabularAgent):
    """On-policy TD control: target r + gamma * Q(s', a'), a' the action actually taken next (6.4)."""

    needs_next_action = True

    def _next_value(self, s_next, a_next):
        if a_next is None:
            raise ValueError(
                "SARSA.update: argument 'a_next' (the next action taken) is required unless terminated=True"
            )
        a_next = check_index("SARSA.update", "a_next", a_next, self.n_actions)
        return self.q[s_next, a_next]


class ExpectedSARSA(TabularAgent):
    """Target r + gamma * sum_a pi(a|s') Q(s', a) under the agent's epsilon-greedy policy (6.6).
    The greedy share (1 - epsilon) goes to max Q whatever the ties, so the expectation is
    epsilon * mean_a Q(s', a) + (1 - epsilon) * max_a Q(s', a)."""

    def _next_value(self, s_next, a_next):
        row = self.q[s_next]
        return self.epsilon * (row.sum() / self.n_actions) + (1.0 - self.epsilon) * row.max()


AGENTS = {
    "q_learning": QLearning,
    "qlearning": QLearning,
    "q-learning": QLearning,
    "sarsa": SARSA,
    "expected_sarsa": ExpectedSARSA,
    "expectedsarsa": ExpectedSARSA,
    "expected-sarsa": ExpectedSARSA,
}
