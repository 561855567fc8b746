"""Gradient clipping, in place on Parameter.grad (torch.nn.utils.clip_grad_norm_ / clip_grad_value_)."""

from .._backend import get_array_module


def _grads(params):
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    return [p for p in params if p.grad is not None]


def clip_grad_norm(params, max_norm, norm_type=2.0):
    """Scale all gradients together so their global norm is at most max_norm (PyTorch: by
    max_norm/(norm+1e-6) when that is < 1). Returns the norm before clipping (a float).

    >>> import numpy as np
    >>> from deepkern import nn, optim
    >>> p = nn.Parameter(np.zeros(2)); p.grad = np.array([3.0, 4.0])
    >>> optim.clip_grad_norm([p], max_norm=1.0)
    5.0
    >>> np.round(p.grad, 4)
    array([0.6, 0.8])
    """
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm: 'max_norm' must be >= 0, got {max_norm!r}")
    ps = _grads(params)
    if not ps:
        return 0.0
    norm_type = float(norm_type)
    if norm_type == float("inf"):
        total = max(float(get_array_module(p.grad).abs(p.grad).max()) for p in ps)
    else:
        total = sum(float((get_array_module(p.grad).abs(p.grad) ** norm_type).sum()) for p in ps) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in ps:
            p.grad *= coef
    return total


def clip_grad_value(params, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value] in place.

    >>> import numpy as np
    >>> from deepkern import nn, optim
    >>> p = nn.Parameter(np.zeros(3)); p.grad = np.array([-2.0, 0.5, 9.0])
    >>> optim.clip_grad_value([p], 1.0); p.grad
    array([-1. ,  0.5,  1. ])
    """
    v = float(clip_value)
    if not v >= 0:
        raise ValueError(f"clip_grad_value: 'clip_value' must be >= 0, got {clip_value!r}")
    for p in _grads(params):
        xp = get_array_module(p.grad)
        xp.clip(p.grad, -v, v, out=p.grad)


clip_grad_norm_ = clip_grad_norm
clip_grad_value_ = clip_grad_value
