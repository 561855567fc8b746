"""Tabular environments with Gymnasium's API and toy-text's transition model P[s][a]."""

from .base import GridEnv, TabularEnv
from .cliff_walking import CliffWalking
from .frozen_lake import FrozenLake
from .gridworld import GridWorld
from .windy_gridworld import WindyGridworld

__all__ = ["TabularEnv", "GridEnv", "GridWorld", "CliffWalking", "WindyGridworld", "FrozenLake"]
