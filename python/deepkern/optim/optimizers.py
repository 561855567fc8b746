"""Optimizers with torch.optim's update rules (same defaults, same order of operations), updating
Parameter.value in place from Parameter.grad. Parameters whose .grad is None are skipped, as in
PyTorch. Works on numpy and cupy parameters alike (state lives beside each parameter)."""

import numpy as np

from .. import _cpu
from .._backend import get_array_module, is_cupy_array


def _param_list(params, who):
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    params = list(params)
    if not params:
        raise ValueError(f"{who}: 'params' is empty")
    for p in params:
        if not (hasattr(p, "value") and hasattr(p, "grad")):
            raise TypeError(f"{who}: 'params' must hold deepkern.nn.Parameter objects, got {type(p).__name__}")
    return params


def _follow_device(st, w):
    """Move a parameter's state arrays to its device: after model.to('cuda'/'cpu') between steps
    the state created on the old device would otherwise be mixed with the moved parameter."""
    for k, v in st.items():
        if hasattr(v, "shape") and is_cupy_array(v) != is_cupy_array(w):
            st[k] = v.get() if is_cupy_array(v) else get_array_module(w).asarray(v)


def _nonneg(who, name, v):
    v = float(v)
    if not v >= 0.0:
        raise ValueError(f"{who}: '{name}' must be >= 0, got {v!r}")
    return v


class Optimizer:
    def __init__(self, params, lr):
        who = type(self).__name__
        self.params = _param_list(params, who)
        self.lr = _nonneg(who, "lr", lr)
        self.state = [dict() for _ in self.params]
        self.step_count = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.step_count += 1
        for p, st in zip(self.params, self.state):
            if p.grad is None:
                continue
            xp = get_array_module(p.value)
            g = p.grad
            if g.shape != p.value.shape:
                raise ValueError(f"{type(self).__name__}.step: gradient of shape {g.shape} for parameter {p!r}")
            if st:
                _follow_device(st, p.value)
            self._update(xp, p.value, g.astype(p.value.dtype, copy=False), st)

    def _update(self, xp, w, g, st):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr}, {len(self.params)} parameters)"


class SGD(Optimizer):
    """torch.optim.SGD: g += wd*w; buf = g (first step) else momentum*buf + (1-dampening)*g;
    g = g + momentum*buf (Nesterov) or buf; w -= lr*g."""

    def __init__(self, params, lr=1e-2, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
        super().__init__(params, lr)
        self.momentum = _nonneg("SGD", "momentum", momentum)
        self.weight_decay = _nonneg("SGD", "weight_decay", weight_decay)
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")

    def _update(self, xp, w, g, st):
        buf = st.get("momentum_buffer") if self.momentum else None
        hyper = (self.lr, self.momentum, self.dampening, self.weight_decay)
        if xp is np and _python_floats(*hyper) and _fused_step_applies(w, g, buf):
            # one pass in C++, the same float operations as the array form below (bit-identical)
            first = bool(self.momentum) and buf is None
            if first:
                buf = np.empty_like(w)  # the kernel writes it (= g) without reading it
            _cpu.sgd_update(w, g, buf, *hyper, self.nesterov, first)
            if first:
                st["momentum_buffer"] = buf
            return
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        w -= self.lr * g


class Adam(Optimizer):
    """torch.optim.Adam (amsgrad optional; weight_decay is L2 added to the gradient)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, lr)
        self.betas = (float(betas[0]), float(betas[1]))
        if not (0.0 <= self.betas[0] < 1.0 and 0.0 <= self.betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: 'betas' must lie in [0, 1), got {betas!r}")
        self.eps = _nonneg("Adam", "eps", eps)
        self.weight_decay = _nonneg("Adam", "weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)

    def _decay(self, w, g):
        return g + self.weight_decay * w if self.weight_decay else g

    def _update(self, xp, w, g, st):
        g = self._decay(w, g)
        b1, b2 = self.betas
        if "m" not in st:
            st["m"], st["v"], st["t"] = xp.zeros_like(w), xp.zeros_like(w), 0
        st["t"] += 1
        t, m, v = st["t"], st["m"], st["v"]
        if self.amsgrad and "vmax" not in st:
            st["vmax"] = xp.zeros_like(w)
        vmax = st["vmax"] if self.amsgrad else None
        bc1 = 1 - b1**t
        bc2 = 1 - b2**t
        if xp is np and _fused_step_applies(w, g, m, v, vmax):
            # one pass in C++, the same float operations as the array form below (bit-identical)
            _cpu.adam_update(w, g, m, v, vmax, b1, b2, self.lr / bc1, float(np.sqrt(bc2)), self.eps)
            return
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        if self.amsgrad:
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        denom = xp.sqrt(v) / np.sqrt(bc2) + self.eps
        w -= (self.lr / bc1) * (m / denom)


def _python_floats(*values):
    """The fused steps round each constant to the parameter's dtype, as numpy does with a Python
    float; a numpy float64 (an lr a scheduler computed with numpy, say) would promote the array form
    to float64 instead, so that case keeps the array form."""
    return all(type(v) is float for v in values)


def _fused_step_applies(w, *arrays):
    """The C++ step takes C-contiguous float32/float64 arrays of one dtype (parameters and their
    state always are, unless a user built a parameter from a strided view or in another dtype)."""
    if w.dtype not in (np.float32, np.float64) or not w.flags.c_contiguous or not w.flags.writeable:
        return False
    return all(a is None or (a.dtype == w.dtype and a.flags.c_contiguous) for a in arrays)


class AdamW(Adam):
    """torch.optim.AdamW: decoupled weight decay w *= 1 - lr*wd, then Adam (default wd 1e-2)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)

    def _decay(self, w, g):
        if self.weight_decay:
            w *= 1 - self.lr * self.weight_decay
        return g


class RMSProp(Optimizer):
    """torch.optim.RMSprop: sq = alpha*sq + (1-alpha)*g^2; avg = sqrt(sq [- mean(g)^2 if centered]) + eps;
    with momentum buf = momentum*buf + g/avg, w -= lr*buf; else w -= lr*g/avg."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, lr)
        self.alpha = _nonneg("RMSProp", "alpha", alpha)
        self.eps = _nonneg("RMSProp", "eps", eps)
        self.weight_decay = _nonneg("RMSProp", "weight_decay", weight_decay)
        self.momentum = _nonneg("RMSProp", "momentum", momentum)
        self.centered = bool(centered)

    def _update(self, xp, w, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if "sq" not in st:
            st["sq"] = xp.zeros_like(w)
        sq = st["sq"]
        sq *= self.alpha
        sq += (1 - self.alpha) * g * g
        if self.centered:
            ga = st.setdefault("grad_avg", xp.zeros_like(w))
            ga *= self.alpha
            ga += (1 - self.alpha) * g
            avg = xp.sqrt(sq - ga * ga) + self.eps
        else:
            avg = xp.sqrt(sq) + self.eps
        if self.momentum > 0:
            buf = st.setdefault("buf", xp.zeros_like(w))
            buf *= self.momentum
            buf += g / avg
            w -= self.lr * buf
        else:
            w -= self.lr * (g / avg)


RMSprop = RMSProp  # PyTorch's spelling


class Adagrad(Optimizer):
    """torch.optim.Adagrad: clr = lr/(1+(t-1)*lr_decay); sum += g^2; w -= clr*g/(sqrt(sum)+eps)."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr)
        self.lr_decay = _nonneg("Adagrad", "lr_decay", lr_decay)
        self.weight_decay = _nonneg("Adagrad", "weight_decay", weight_decay)
        self.initial_accumulator_value = _nonneg("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.eps = _nonneg("Adagrad", "eps", eps)

    def _update(self, xp, w, g, st):
        if "sum" not in st:
            st["sum"] = xp.full_like(w, self.initial_accumulator_value)
            st["t"] = 0
        st["t"] += 1
        if self.weight_decay:
            g = g + self.weight_decay * w
        clr = self.lr / (1 + (st["t"] - 1) * self.lr_decay)
        s = st["sum"]
        s += g * g
        w -= clr * (g / (xp.sqrt(s) + self.eps))


class Adadelta(Optimizer):
    """torch.optim.Adadelta: sq = rho*sq + (1-rho)*g^2; delta = sqrt(acc+eps)/sqrt(sq+eps)*g;
    acc = rho*acc + (1-rho)*delta^2; w -= lr*delta."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        super().__init__(params, lr)
        self.rho = _nonneg("Adadelta", "rho", rho)
        self.eps = _nonneg("Adadelta", "eps", eps)
        self.weight_decay = _nonneg("Adadelta", "weight_decay", weight_decay)

    def _update(self, xp, w, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if "sq" not in st:
            st["sq"], st["acc"] = xp.zeros_like(w), xp.zeros_like(w)
        sq, acc = st["sq"], st["acc"]
        sq *= self.rho
        sq += (1 - self.rho) * g * g
        delta = xp.sqrt(acc + self.eps) / xp.sqrt(sq + self.eps) * g
        acc *= self.rho
        acc += (1 - self.rho) * delta * delta
        w -= self.lr * delta
