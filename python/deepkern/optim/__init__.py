"""Optimizers, gradient clipping, learning-rate schedules and early stopping."""

from .clip import clip_grad_norm, clip_grad_norm_, clip_grad_value, clip_grad_value_
from .early_stopping import EarlyStopping
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSProp, RMSprop
from .schedules import CosineAnnealingLR, ExponentialLR, StepLR

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSProp",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "clip_grad_norm",
    "clip_grad_value",
    "clip_grad_norm_",
    "clip_grad_value_",
    "StepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "EarlyStopping",
]
