"""CliffWalking: Sutton & Barto Example 6.6, numbered and ordered exactly as Gymnasium's
CliffWalking-v1 (its P is entry-for-entry the same)."""

import numpy as np

from .base import GridEnv, move


class CliffWalking(GridEnv):
    """4x12 grid; start (3, 0) = state 36, goal (3, 11) = state 47; actions 0 up, 1 right,
    2 down, 3 left. Every move costs -1; stepping onto the cliff (3, 1..10) costs -100 and sends
    the agent back to the start (the episode goes on). Reaching the goal ends the episode.

    As in Gymnasium, P is defined for every cell, the cliff and goal included (they are never
    occupied), and is_slippery=True makes each move go to the intended or one of the two
    perpendicular directions with probability 1/3 each.
    """

    def __init__(self, is_slippery=False, max_episode_steps=None):
        shape = (4, 12)
        self.is_slippery = bool(is_slippery)
        self.start_state = 36
        self.goal_state = 47
        cliff = {(3, c) for c in range(1, 11)}
        P = {}
        for s in range(48):
            cell = divmod(s, 12)
            P[s] = {}
            for a in range(4):
                dirs = [(a - 1) % 4, a, (a + 1) % 4] if self.is_slippery else [a]
                outs = []
                for b in dirs:
                    nxt = move(shape, cell, self.action_deltas[b])
                    p = 1.0 / len(dirs)
                    if nxt in cliff:
                        outs.append((p, self.start_state, -100.0, False))
                    else:
                        outs.append((p, nxt[0] * 12 + nxt[1], -1.0, nxt == (3, 11)))
                P[s][a] = outs
        isd = np.zeros(48)
        isd[self.start_state] = 1.0
        super().__init__(shape, P, isd, max_episode_steps)

    def _cell_chars(self):
        chars = super()._cell_chars()
        chars[3, 1:11] = "C"
        chars[3, 0] = "S"
        chars[3, 11] = "G"
        return chars
