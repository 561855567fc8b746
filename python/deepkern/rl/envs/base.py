"""The base of every deepkern environment: a finite MDP given by Gymnasium toy-text's model
`P[s][a] = [(prob, next_state, reward, terminated), ...]` and a start-state distribution.

step() and reset() sample exactly as Gymnasium's toy-text environments do (one uniform draw per
call, the first outcome whose cumulative probability exceeds it), and reset(seed=s) seeds with
numpy.random.default_rng(s) as Gymnasium does. So a deepkern environment and its Gymnasium
counterpart, seeded alike, produce the same trajectories; rl.batch_train relies on the same rule.
"""

import numpy as np

from .._checks import check_index, check_optional_steps, make_rng
from ..spaces import Discrete


class TabularEnv:
    """A finite MDP with Gymnasium's API.

    Attributes: P (dict of dicts, as Gymnasium toy-text), initial_state_distrib (array over states),
    observation_space / action_space (Discrete), max_episode_steps (None or int: step() reports
    truncated=True when an episode reaches it), s (the current state, None before reset()).
    """

    metadata = {"render_modes": ["ansi"]}
    spec = None
    render_mode = None

    def __init__(self, P, initial_state_distrib, max_episode_steps=None):
        name = type(self).__name__
        self.P = P
        n_states, n_actions = len(P), len(P[0])
        isd = np.asarray(initial_state_distrib, dtype=np.float64)
        if isd.shape != (n_states,) or (isd < 0).any() or not np.isclose(isd.sum(), 1.0):
            raise ValueError(
                f"{name}: 'initial_state_distrib' must be {n_states} non-negative probabilities summing to 1"
            )
        self.initial_state_distrib = isd
        self._isd_cum = np.cumsum(isd)
        self._isd_last = int(np.flatnonzero(isd > 0)[-1])
        self.observation_space = Discrete(n_states)
        self.action_space = Discrete(n_actions)
        self.max_episode_steps = check_optional_steps(name, "max_episode_steps", max_episode_steps)
        self.np_random = None
        self.s = None
        self.lastaction = None
        self._elapsed = 0

    @property
    def unwrapped(self):
        return self

    @property
    def n_states(self):
        return self.observation_space.n

    @property
    def n_actions(self):
        return self.action_space.n

    def reset(self, *, seed=None, options=None):
        """Start an episode -> (state, info). A seed re-seeds the environment's generator."""
        if seed is not None or self.np_random is None:
            self.np_random = make_rng(f"{type(self).__name__}.reset", seed)
        u = self.np_random.random()
        s = int(np.searchsorted(self._isd_cum, u, side="right"))
        self.s = min(s, self._isd_last)
        self.lastaction = None
        self._elapsed = 0
        return self.s, {"prob": 1.0}

    def step(self, action):
        """Take `action` -> (next_state, reward, terminated, truncated, info)."""
        if self.s is None:
            raise RuntimeError(f"{type(self).__name__}.step: call reset() before step()")
        a = check_index(f"{type(self).__name__}.step", "action", action, self.action_space.n)
        transitions = self.P[self.s][a]
        u = self.np_random.random()
        c = 0.0
        chosen = transitions[-1]
        for t in transitions:
            c += t[0]
            if c > u:
                chosen = t
                break
        p, s, r, terminated = chosen
        self.s = int(s)
        self.lastaction = a
        self._elapsed += 1
        truncated = (not terminated) and self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps
        return self.s, float(r), bool(terminated), truncated, {"prob": float(p)}

    def render(self):
        return f"{type(self).__name__}(state={self.s})"

    def close(self):
        pass

    def __repr__(self):
        return f"{type(self).__name__}(n_states={self.n_states}, n_actions={self.n_actions})"


class GridEnv(TabularEnv):
    """A TabularEnv laid out on a (rows, cols) grid; state = row * cols + col.

    action_deltas[a] is the (d_row, d_col) of action a, used by plots and render().
    """

    action_deltas = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left
    action_names = ("up", "right", "down", "left")

    def __init__(self, shape, P, initial_state_distrib, max_episode_steps=None):
        self.shape = tuple(int(v) for v in shape)
        super().__init__(P, initial_state_distrib, max_episode_steps)

    def to_state(self, row, col):
        return int(row) * self.shape[1] + int(col)

    def to_cell(self, s):
        return divmod(int(s), self.shape[1])

    def _cell_chars(self):
        """One character per cell for render(); subclasses mark their special cells."""
        return np.full(self.shape, ".", dtype="<U1")

    def render(self):
        """The grid as text, the agent as 'x'."""
        chars = self._cell_chars()
        if self.s is not None:
            chars[self.to_cell(self.s)] = "x"
        return "\n".join("".join(row) for row in chars)

    def __repr__(self):
        return f"{type(self).__name__}(shape={self.shape})"


def move(shape, cell, delta):
    """The cell reached from `cell` by `delta`, clipped to the grid."""
    r = min(max(cell[0] + delta[0], 0), shape[0] - 1)
    c = min(max(cell[1] + delta[1], 0), shape[1] - 1)
    return r, c
