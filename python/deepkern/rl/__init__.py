"""Tabular reinforcement learning: grid worlds, Q-learning, SARSA, planning."""
__all__ = []
