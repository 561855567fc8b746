"""Optimizers, gradient clipping, learning-rate schedules and early stopping."""
__all__ = []
