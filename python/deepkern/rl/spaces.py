"""A tiny stand-in for gymnasium.spaces.Discrete: the environments need `n` and `sample()` only."""

import numpy as np

from ._checks import check_int, make_rng


class Discrete:
    """The integers 0 .. n-1."""

    def __init__(self, n, seed=None):
        self.n = check_int("Discrete", "n", n, low=1)
        self.np_random = make_rng("Discrete", seed)

    def seed(self, seed=None):
        self.np_random = make_rng("Discrete.seed", seed)

    def sample(self):
        return int(self.np_random.integers(self.n))

    def contains(self, x):
        return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and 0 <= x < self.n

    __contains__ = contains

    def __eq__(self, other):
        return isinstance(other, Discrete) and other.n == self.n

    def __hash__(self):
        return hash(("Discrete", self.n))

    def __repr__(self):
        return f"Discrete({self.n})"
