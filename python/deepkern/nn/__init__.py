"""Layers, losses and models built on the functional kernels (numpy or cupy)."""
from ._base import Layer, Parameter

__all__ = ["Layer", "Parameter"]
