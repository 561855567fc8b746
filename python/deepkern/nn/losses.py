"""Losses: forward(pred, target) -> Python float (mean over the batch), backward() -> dpred.

SoftmaxCrossEntropy takes logits on the LAST axis, (..., C), and targets either as integer class
labels (...) or as probabilities/one-hot (..., C); it is PyTorch's CrossEntropyLoss (mean
reduction) with the class axis moved last, so (B, T, C) sequence logits work directly.
MSE is PyTorch's MSELoss (mean over all elements). BinaryCrossEntropy is BCELoss on probabilities
(logs clamped at -100 like PyTorch), or BCEWithLogitsLoss with from_logits=True.
"""

import numpy as np

from .. import _cpu
from .._backend import get_array_module, is_cupy_array
from ._base import where_is


def _arrays(name, pred, target):
    if is_cupy_array(pred) != is_cupy_array(target):
        raise TypeError(f"{name}: 'pred' is {where_is(pred)} but 'target' is {where_is(target)}")
    xp = get_array_module(pred, target)
    p = xp.asarray(pred)
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    return xp, p, xp.asarray(target)


class Loss:
    def __call__(self, pred, target):
        return self.forward(pred, target)

    def backward(self):
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Mean cross-entropy of softmax(logits) against labels or target distributions.

    The last forward's probabilities are kept in `.probs`."""

    def __init__(self):
        self._grad = None
        self.probs = None

    def forward(self, pred, target):
        name = "SoftmaxCrossEntropy"
        xp, z, t = _arrays(name, pred, target)
        if z.ndim < 1:
            raise ValueError(f"{name}: 'pred' must be logits of shape (..., C), got shape {tuple(z.shape)}")
        C = z.shape[-1]
        n = max(int(np.prod(z.shape[:-1])), 1)
        if t.shape == z.shape[:-1] and xp is np and z.dtype in (np.float32, np.float64) and z.size:
            labels = _labels(name, xp, t, C)
            # one fused pass in C++ (csrc/cpu/loss/softmax_xent.h): the same quantities as below
            zc = np.ascontiguousarray(z).reshape(-1, C)
            probs, grad = np.empty_like(zc), np.empty_like(zc)
            loss = _cpu.softmax_xent(zc, labels, probs, grad, n) / n
            self._grad = grad.reshape(z.shape)
            self.probs = probs.reshape(z.shape)
            return loss
        m = z.max(axis=-1, keepdims=True)
        probs = z - m
        xp.exp(probs, out=probs)
        s = probs.sum(axis=-1, keepdims=True)
        probs /= s
        log_s = xp.log(s)
        if t.shape == z.shape[:-1]:
            labels = _labels(name, xp, t, C)
            # Labels pick one log-probability per row: no dense one-hot is built.
            rows = xp.arange(labels.size)
            picked = z.reshape(-1, C)[rows, labels] - m.reshape(-1) - log_s.reshape(-1)
            loss = -float(picked.sum()) / n
            grad = probs.copy().reshape(-1, C)
            grad[rows, labels] -= 1
            grad /= n
            self._grad = grad.reshape(z.shape)
        elif t.shape == z.shape:
            target = t.astype(z.dtype)
            logp = (z - m) - log_s
            loss = -float((target * logp).sum()) / n
            # d/dz of the mean: (softmax * sum(target) - target) / n
            self._grad = (probs * target.sum(axis=-1, keepdims=True) - target) / n
        else:
            raise ValueError(
                f"{name}: 'target' has shape {tuple(t.shape)}; expected integer labels {tuple(z.shape[:-1])} "
                f"or probabilities {tuple(z.shape)} for 'pred' of shape {tuple(z.shape)}"
            )
        self.probs = probs
        return loss


def _labels(name, xp, t, C):
    """Integer class labels as a flat int64 array, checked to lie in [0, C)."""
    if t.dtype.kind == "f" and not bool((t == xp.round(t)).all()):
        raise ValueError(f"{name}: 'target' of shape {tuple(t.shape)} must hold integer class labels")
    labels = xp.ascontiguousarray(t.astype(np.int64, copy=False).reshape(-1))
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= C):
        raise ValueError(f"{name}: class labels must lie in [0, {C}), got [{int(labels.min())}, {int(labels.max())}]")
    return labels


class MSE(Loss):
    """Mean squared error over all elements (PyTorch's MSELoss)."""

    def __init__(self):
        self._grad = None

    def forward(self, pred, target):
        xp, p, t = _arrays("MSE", pred, target)
        if t.shape != p.shape:
            raise ValueError(
                f"MSE: 'target' has shape {tuple(t.shape)}; expected {tuple(p.shape)} (the shape of 'pred')"
            )
        d = p - t.astype(p.dtype)
        self._grad = d * (2.0 / max(d.size, 1))
        return float((d * d).mean())


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy. pred: probabilities in [0, 1] (after Sigmoid; logs clamped at
    -100 like PyTorch's BCELoss), or logits with from_logits=True (BCEWithLogitsLoss, stable)."""

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)
        self._grad = None

    def forward(self, pred, target):
        name = "BinaryCrossEntropy"
        xp, p, t = _arrays(name, pred, target)
        if t.shape != p.shape:
            raise ValueError(
                f"{name}: 'target' has shape {tuple(t.shape)}; expected {tuple(p.shape)} (the shape of 'pred')"
            )
        t = t.astype(p.dtype)
        n = max(p.size, 1)
        if self.from_logits:
            # log(1 + exp(-|z|)) + max(z, 0) - z*t, stable for any z
            loss = (xp.maximum(p, 0) - p * t + xp.log1p(xp.exp(-xp.abs(p)))).sum() / n
            sig = 1.0 / (1.0 + xp.exp(-p))
            self._grad = (sig - t) / n
        else:
            if p.size and (float(p.min()) < 0 or float(p.max()) > 1):
                raise ValueError(f"{name}: 'pred' must be probabilities in [0, 1] (or pass from_logits=True)")
            with np.errstate(divide="ignore"):
                logp = xp.maximum(xp.log(p), -100.0)
                log1mp = xp.maximum(xp.log1p(-p), -100.0)
            loss = -(t * logp + (1 - t) * log1mp).sum() / n
            # PyTorch clamps the denominator p(1-p) at 1e-12 in BCELoss's backward.
            self._grad = (p - t) / xp.maximum(p * (1 - p), 1e-12) / n
        return float(loss)

    def __repr__(self):
        return f"BinaryCrossEntropy(from_logits={self.from_logits})"
