"""WindyGridworld: Sutton & Barto Example 6.5 (and Exercises 6.9 / 6.10 as options)."""

import numpy as np

from .base import GridEnv

KING_DELTAS = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))


class WindyGridworld(GridEnv):
    """7x10 grid, start (3, 0) = state 30, goal (3, 7) = state 37, -1 per step until the goal.

    The wind of the column the agent moves *from* (0 0 0 1 1 1 2 2 1 0) pushes it that many cells
    up; moves are clipped to the grid. The shortest path takes 15 steps.
    Actions 0 up, 1 right, 2 down, 3 left; king_moves=True adds 4 up-right, 5 down-right,
    6 down-left, 7 up-left (Exercise 6.9). stochastic_wind=True (Exercise 6.10): in a windy
    column the push is the column's wind -1, +0 or +1, each with probability 1/3.
    The goal is absorbing (reward 0, terminated=True).
    """

    WIND = (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)

    def __init__(self, king_moves=False, stochastic_wind=False, max_episode_steps=None):
        rows, cols = shape = (7, 10)
        self.king_moves = bool(king_moves)
        self.stochastic_wind = bool(stochastic_wind)
        self.action_deltas = KING_DELTAS if self.king_moves else KING_DELTAS[:4]
        self.action_names = ("up", "right", "down", "left", "up-right", "down-right", "down-left", "up-left")[
            : len(self.action_deltas)
        ]
        self.start_state, self.goal_state = 30, 37
        P = {}
        for s in range(rows * cols):
            r, c = divmod(s, cols)
            if s == self.goal_state:
                P[s] = {a: [(1.0, s, 0.0, True)] for a in range(len(self.action_deltas))}
                continue
            w = self.WIND[c]
            pushes = (
                [(1.0, w)] if (w == 0 or not self.stochastic_wind) else [(1 / 3, w - 1), (1 / 3, w), (1 / 3, w + 1)]
            )
            P[s] = {}
            for a, (dr, dc) in enumerate(self.action_deltas):
                outs = []
                for p, push in pushes:
                    nr = min(max(r + dr - push, 0), rows - 1)
                    nc = min(max(c + dc, 0), cols - 1)
                    ns = nr * cols + nc
                    outs.append((p, ns, -1.0, ns == self.goal_state))
                P[s][a] = outs
        isd = np.zeros(rows * cols)
        isd[self.start_state] = 1.0
        super().__init__(shape, P, isd, max_episode_steps)

    def _cell_chars(self):
        chars = super()._cell_chars()
        chars[3, 0] = "S"
        chars[3, 7] = "G"
        return chars
