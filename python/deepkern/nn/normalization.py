"""LayerNorm over the last axis (PyTorch's nn.LayerNorm(dim) with elementwise affine) and BatchNorm2D
(PyTorch's nn.BatchNorm2d: per-channel batch statistics, running statistics for inference)."""

import numpy as np

from ._base import Layer, Parameter, export_arrays, to_numpy, xp_of
from ._checks import as_input, float_dtype, positive_int


class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis of x (..., dim).

    var is the biased variance (divides by dim), as in PyTorch. weight starts at ones, bias at
    zeros; 2*dim parameters.
    """

    def __init__(self, dim, eps=1e-5, dtype=np.float32):
        self.dim = positive_int("LayerNorm", "dim", dim)
        if not float(eps) > 0:
            raise ValueError(f"LayerNorm: 'eps' must be > 0, got {eps!r}")
        self.eps = float(eps)
        dt = float_dtype("LayerNorm", dtype)
        self.weight = Parameter(np.ones(self.dim, dt), "weight")
        self.bias = Parameter(np.zeros(self.dim, dt), "bias")
        self._cache = None

    def forward(self, x, training=True):
        self.check_input(x)
        W = self.weight.value
        xp = xp_of(W)
        x = as_input("LayerNorm", x, xp, W.dtype)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm.forward: 'x' has shape {tuple(x.shape)}; expected (..., {self.dim})")
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        rstd = 1.0 / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * rstd
        self._cache = (xhat, rstd) if training else None
        return xhat * W + self.bias.value

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("LayerNorm.backward called before forward(x, training=True)")
        xhat, rstd = self._cache
        xp = xp_of(xhat)
        dy = xp.asarray(dy, dtype=xhat.dtype)
        if dy.shape != xhat.shape:
            raise ValueError(f"LayerNorm.backward: 'dy' has shape {tuple(dy.shape)}; expected {tuple(xhat.shape)}")
        lead = tuple(range(dy.ndim - 1))
        self.weight.accumulate((dy * xhat).sum(axis=lead))
        self.bias.accumulate(dy.sum(axis=lead))
        g = dy * self.weight.value
        return rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def torch_state_dict(self):
        return export_arrays(weight=self.weight, bias=self.bias)

    def load_torch_state(self, prefix, state):
        k = (prefix + ".") if prefix else ""
        self.weight.assign(state[k + "weight"], f"LayerNorm.load_torch_state: '{k}weight'")
        self.bias.assign(state[k + "bias"], f"LayerNorm.load_torch_state: '{k}bias'")


class BatchNorm2D(Layer):
    """PyTorch's nn.BatchNorm2d: x (N, C, H, W), statistics per channel over (N, H, W).

    Training (``training=True``, or None in train() mode): y = (x - mean) / sqrt(var + eps) * weight
    + bias with the batch's mean and biased variance; the running statistics are updated as
    running = (1 - momentum) * running + momentum * batch, with the *unbiased* batch variance
    (momentum=None: a cumulative average over the batches seen, via num_batches_tracked).
    Inference (eval() mode or ``training=False``): the running statistics are used, or the
    batch's when track_running_stats=False. affine=False: no weight and bias (0 parameters).
    Buffers running_mean, running_var, num_batches_tracked are in state_dict() as in PyTorch.

    >>> bn = dk.nn.BatchNorm2D(3)
    >>> y = bn(np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2))   # training: batch statistics
    >>> bn.running_mean.round(4)                                       # 0.9 * 0 + 0.1 * batch mean
    array([0.75, 1.15, 1.55], dtype=float32)
    >>> bn.eval().training
    False
    """

    _buffers = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=np.float32):
        self.num_features = positive_int("BatchNorm2D", "num_features", num_features)
        if not float(eps) > 0:
            raise ValueError(f"BatchNorm2D: 'eps' must be > 0, got {eps!r}")
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNorm2D: 'momentum' must be in [0, 1] or None, got {momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dt = float_dtype("BatchNorm2D", dtype)
        C = self.num_features
        self.weight = Parameter(np.ones(C, dt), "weight") if self.affine else None
        self.bias = Parameter(np.zeros(C, dt), "bias") if self.affine else None
        if self.track_running_stats:
            self.running_mean = np.zeros(C, dt)
            self.running_var = np.ones(C, dt)
            self.num_batches_tracked = np.zeros((), np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self._dtype = dt
        self._cache = None

    def _set_dtype(self, dtype):
        super()._set_dtype(dtype)
        if self.running_mean is not None:
            self.running_mean = self.running_mean.astype(dtype)
            self.running_var = self.running_var.astype(dtype)

    def _xp(self):
        return xp_of(
            self.running_mean
            if self.running_mean is not None
            else (self.weight.value if self.weight is not None else np.empty(0))
        )

    def forward(self, x, training=None):
        training = self._mode(training)
        if self.weight is not None:
            self.check_input(x)
        xp, dt = self._xp(), self.dtype
        if self.weight is None and self.running_mean is None:
            xp = xp_of(x)
        x = as_input("BatchNorm2D", x, xp, dt)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2D.forward: 'x' has shape {tuple(x.shape)}; expected (N, {self.num_features}, H, W)"
            )
        n = x.shape[0] * x.shape[2] * x.shape[3]
        use_batch = training or self.running_mean is None
        if use_batch:
            if n < 2 and training:
                raise ValueError(
                    f"BatchNorm2D.forward: 'x' of shape {tuple(x.shape)} has 1 value per channel; "
                    "training needs more than 1 (as in PyTorch)"
                )
            mean = x.mean(axis=(0, 2, 3))
            xc = x - mean[:, None, None]
            var = (xc * xc).mean(axis=(0, 2, 3))
            if training and self.running_mean is not None:
                self.num_batches_tracked = self.num_batches_tracked + 1
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1))
                self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(dt)
                self.running_var = ((1 - m) * self.running_var + m * unbiased).astype(dt)
        else:
            mean, var = self.running_mean, self.running_var
            xc = x - mean[:, None, None]
        rstd = 1.0 / xp.sqrt(var + self.eps)
        xhat = xc * rstd[:, None, None]
        self._cache = (xhat, rstd, use_batch) if training else None
        if self.weight is None:
            return xhat
        return xhat * self.weight.value[:, None, None] + self.bias.value[:, None, None]

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("BatchNorm2D.backward called before forward(x, training=True)")
        xhat, rstd, use_batch = self._cache
        xp = xp_of(xhat)
        dy = xp.asarray(dy, dtype=xhat.dtype)
        if dy.shape != xhat.shape:
            raise ValueError(f"BatchNorm2D.backward: 'dy' has shape {tuple(dy.shape)}; expected {tuple(xhat.shape)}")
        axes = (0, 2, 3)
        if self.weight is not None:
            self.weight.accumulate((dy * xhat).sum(axis=axes))
            self.bias.accumulate(dy.sum(axis=axes))
            g = dy * self.weight.value[:, None, None]
        else:
            g = dy
        r = rstd[:, None, None]
        if not use_batch:
            return g * r
        return r * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def torch_state_dict(self):
        out = {}
        if self.affine:
            out["weight"] = to_numpy(self.weight.value).copy()
            out["bias"] = to_numpy(self.bias.value).copy()
        if self.track_running_stats:
            out["running_mean"] = to_numpy(self.running_mean).copy()
            out["running_var"] = to_numpy(self.running_var).copy()
            out["num_batches_tracked"] = np.array(int(to_numpy(self.num_batches_tracked)), np.int64)
        return out

    def load_torch_state(self, prefix, state):
        k = (prefix + ".") if prefix else ""
        where = "BatchNorm2D.load_torch_state"
        if self.affine:
            self.weight.assign(state[k + "weight"], f"{where}: '{k}weight'")
            self.bias.assign(state[k + "bias"], f"{where}: '{k}bias'")
        if self.track_running_stats:
            xp = self._xp()
            for name in ("running_mean", "running_var"):
                a = to_numpy(state[k + name])
                if a.shape != (self.num_features,):
                    raise ValueError(f"{where}: '{k}{name}': got shape {a.shape}, expected ({self.num_features},)")
                setattr(self, name, xp.array(a, dtype=self.dtype))  # a copy: never alias the source
            if k + "num_batches_tracked" in state:
                self.num_batches_tracked = np.array(int(to_numpy(state[k + "num_batches_tracked"])), np.int64)
