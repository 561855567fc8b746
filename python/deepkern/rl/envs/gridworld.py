"""GridWorld: a configurable grid (size, walls, per-cell rewards, terminal cells, slip)."""

import numbers

import numpy as np

from .._checks import check_int, check_real
from .base import GridEnv, move


def _cell(shape, c, name):
    """A cell given as (row, col) or as a flat state index -> (row, col)."""
    if isinstance(c, numbers.Integral) and not isinstance(c, bool):
        s = check_int("GridWorld", name, c, 0, shape[0] * shape[1] - 1)
        return divmod(s, shape[1])
    try:
        r, col = c
    except (TypeError, ValueError):
        raise TypeError(f"GridWorld: argument '{name}' holds {c!r}; expected (row, col) or a state index") from None
    r = check_int("GridWorld", name, r, 0, shape[0] - 1)
    col = check_int("GridWorld", name, col, 0, shape[1] - 1)
    return r, col


class GridWorld(GridEnv):
    """A rows x cols grid world.

    Actions 0 up, 1 right, 2 down, 3 left (CliffWalking's order). A move off the grid or into a
    wall leaves the agent where it is. The reward of a move is `rewards.get(landing cell,
    step_reward)`. Entering a terminal cell ends the episode; terminal cells are absorbing
    (reward 0, terminated=True), as FrozenLake's holes and goal are.

    shape (or its alias size): (rows, cols), or an int for a square grid. start: a cell, or None for a uniformly random non-terminal, non-wall cell.
    terminals, walls: iterables of cells; rewards: {cell: reward}. Cells are (row, col) or flat
    state indices (row * cols + col). slip: probability that a move goes instead to one of the two
    perpendicular directions (slip / 2 each); 0 makes the world deterministic.

    The defaults are Sutton & Barto's Example 4.1 layout with one goal: 4x4, start top-left, goal
    bottom-right, -1 per step. Example 4.1 itself: GridWorld(terminals=[(0, 0), (3, 3)], start=None).
    """

    def __init__(
        self,
        shape=(4, 4),
        start=(0, 0),
        terminals=None,
        walls=(),
        rewards=None,
        step_reward=-1.0,
        slip=0.0,
        max_episode_steps=None,
        *,
        size=None,
    ):
        if size is not None:
            shape = size
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (shape, shape)
        try:
            rows, cols = shape
        except (TypeError, ValueError):
            raise TypeError(f"GridWorld: argument 'shape' must be (rows, cols), got {shape!r}") from None
        rows = check_int("GridWorld", "shape", rows, low=1)
        cols = check_int("GridWorld", "shape", cols, low=1)
        shape = (rows, cols)
        if rows * cols < 2:
            raise ValueError(f"GridWorld: argument 'shape' must hold at least 2 cells, got {shape}")
        self.step_reward = check_real("GridWorld", "step_reward", step_reward, -np.inf, np.inf)
        self.slip = check_real("GridWorld", "slip", slip, 0.0, 1.0)
        if terminals is None:
            terminals = [(rows - 1, cols - 1)]
        self.terminals = sorted({_cell(shape, c, "terminals") for c in terminals})
        self.walls = sorted({_cell(shape, c, "walls") for c in walls})
        if set(self.terminals) & set(self.walls):
            raise ValueError("GridWorld: a cell cannot be both in 'terminals' and in 'walls'")
        self.rewards = {}
        for c, r in (rewards or {}).items():
            self.rewards[_cell(shape, c, "rewards")] = check_real("GridWorld", "rewards", r, -np.inf, np.inf)

        blocked, term = set(self.walls), set(self.terminals)
        n = rows * cols
        free = [s for s in range(n) if divmod(s, cols) not in blocked and divmod(s, cols) not in term]
        if start is None:
            if not free:
                raise ValueError("GridWorld: no free cell to start from")
            isd = np.zeros(n)
            isd[free] = 1.0 / len(free)
            self.start = None
        else:
            self.start = _cell(shape, start, "start")
            if self.start in blocked:
                raise ValueError(f"GridWorld: argument 'start' {self.start} is a wall")
            isd = np.zeros(n)
            isd[self.start[0] * cols + self.start[1]] = 1.0

        P = {}
        for s in range(n):
            cell = divmod(s, cols)
            if cell in term or cell in blocked:  # absorbing (walls are never entered)
                P[s] = {a: [(1.0, s, 0.0, cell in term)] for a in range(4)}
                continue
            P[s] = {}
            for a in range(4):
                outcomes = [(1.0 - self.slip, a), (self.slip / 2, (a + 1) % 4), (self.slip / 2, (a - 1) % 4)]
                P[s][a] = []
                for p, b in outcomes:
                    if p == 0.0:
                        continue
                    nxt = move(shape, cell, self.action_deltas[b])
                    if nxt in blocked:
                        nxt = cell
                    ns = nxt[0] * cols + nxt[1]
                    P[s][a].append((p, ns, self.rewards.get(nxt, self.step_reward), nxt in term))
        super().__init__(shape, P, isd, max_episode_steps)

    def _cell_chars(self):
        chars = super()._cell_chars()
        for c in self.walls:
            chars[c] = "#"
        for c, r in self.rewards.items():
            chars[c] = "+" if r > 0 else "-"
        for c in self.terminals:
            chars[c] = "T"
        if self.start is not None:
            chars[self.start] = "S"
        return chars
