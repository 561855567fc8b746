"""Argument checks shared by deepkern.rl: every error names the function, the argument, what it
got and what was expected (ValueError for a bad value, TypeError for a bad type)."""

import numbers

import numpy as np


def check_int(where, name, x, low=None, high=None):
    """An integer (Python or numpy, not bool) with low <= x (<= high); returned as int."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{where}: argument '{name}' must be an int, got {type(x).__name__} {x!r}")
    x = int(x)
    if (low is not None and x < low) or (high is not None and x > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{where}: argument '{name}' must be in [{lo}, {hi}], got {x}")
    return x


def check_index(where, name, x, n):
    """A state or action index in [0, n). The fast path (a plain int in range) costs two compares."""
    if type(x) is not int:
        x = check_int(where, name, x)
    if x < 0 or x >= n:
        raise ValueError(f"{where}: argument '{name}' must be in [0, {n - 1}], got {x}")
    return x


def check_real(where, name, x, low, high, low_open=False, high_open=False):
    """A finite real number in the interval [low, high] (open ends where asked); returned as float."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{where}: argument '{name}' must be a real number, got {type(x).__name__} {x!r}")
    x = float(x)
    ok = np.isfinite(x)
    ok = ok and (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{where}: argument '{name}' must be in {interval}, got {x}")
    return x


def check_optional_steps(where, name, x):
    """None (no cap) or a positive int."""
    return None if x is None else check_int(where, name, x, low=1)


def make_rng(where, seed):
    """None, an int >= 0, a SeedSequence or a Generator -> numpy Generator (default_rng semantics,
    which is also how Gymnasium seeds its environments)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    check_int(where, "seed", seed, low=0)
    return np.random.default_rng(int(seed))
