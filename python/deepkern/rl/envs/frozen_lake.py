"""FrozenLake: Gymnasium's FrozenLake-v1 model (same maps, numbering, action order, slip rule)."""

import numpy as np

from .._checks import check_real
from .base import GridEnv, move

MAPS = {
    "4x4": ["SFFF", "FHFH", "FFFH", "HFFG"],
    "8x8": ["SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"],
}


class FrozenLake(GridEnv):
    """Start S, frozen F, hole H, goal G. Actions 0 left, 1 down, 2 right, 3 up (Gymnasium's order).
    Reaching G pays 1 and ends the episode; falling in H ends it with 0. H and G are absorbing.
    is_slippery=True: the move goes the intended way with probability success_rate and to each
    perpendicular direction with (1 - success_rate) / 2 (Gymnasium's rule and defaults).
    desc: a list of equal-length strings (overrides map_name).
    """

    action_deltas = ((0, -1), (1, 0), (0, 1), (-1, 0))
    action_names = ("left", "down", "right", "up")

    def __init__(self, desc=None, map_name="4x4", is_slippery=True, success_rate=1.0 / 3.0, max_episode_steps=None):
        if desc is None:
            if map_name not in MAPS:
                raise ValueError(f"FrozenLake: argument 'map_name' must be one of {sorted(MAPS)}, got {map_name!r}")
            desc = MAPS[map_name]
        if isinstance(desc, str) or not all(isinstance(row, str) for row in desc) or len(desc) == 0:
            raise TypeError("FrozenLake: argument 'desc' must be a list of strings such as ['SFFF', 'FHFH', ...]")
        if len({len(row) for row in desc}) != 1 or len(desc[0]) == 0:
            raise ValueError("FrozenLake: argument 'desc' rows must all have the same, non-zero length")
        grid = np.array([list(row) for row in desc])
        if not set(np.unique(grid)) <= set("SFHG") or (grid == "S").sum() == 0:
            raise ValueError("FrozenLake: argument 'desc' may hold only S, F, H, G and needs at least one S")
        self.desc = grid
        self.is_slippery = bool(is_slippery)
        self.success_rate = check_real("FrozenLake", "success_rate", success_rate, 0.0, 1.0)
        fail = (1.0 - self.success_rate) / 2.0
        nrow, ncol = shape = grid.shape
        self.nrow, self.ncol = nrow, ncol
        P = {}
        for s in range(nrow * ncol):
            cell = divmod(s, ncol)
            P[s] = {}
            for a in range(4):
                if grid[cell] in "GH":
                    P[s][a] = [(1.0, s, 0.0, True)]
                    continue
                dirs = (
                    [((a - 1) % 4, fail), (a, self.success_rate), ((a + 1) % 4, fail)]
                    if self.is_slippery
                    else [(a, 1.0)]
                )
                outs = []
                for b, p in dirs:
                    nxt = move(shape, cell, self.action_deltas[b])
                    letter = grid[nxt]
                    outs.append((p, nxt[0] * ncol + nxt[1], 1.0 if letter == "G" else 0.0, letter in "GH"))
                P[s][a] = outs
        isd = (grid == "S").ravel().astype(np.float64)
        super().__init__(shape, P, isd / isd.sum(), max_episode_steps)

    def _cell_chars(self):
        return self.desc.copy()
