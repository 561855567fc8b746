"""Dense (fully connected), Embedding and OneHot layers."""

import numpy as np

from .. import _cpu
from .._saved import Remembered, recall
from ._base import Layer, Parameter, default_rng, export_arrays, torch_key, xp_of
from ._checks import as_input, check_backward, float_dtype, positive_int
from ._matmul import gemm
from .init import initialize


class Dense(Layer):
    """y = x @ W.T + b on the last axis of x (any leading dims: (N, in) or (B, T, in)).

    W has PyTorch's Linear layout (out_features, in_features); init 'glorot_uniform' by default
    ('he_normal' etc. via `init`); bias zeros. in*out + out parameters.
    """

    def __init__(self, in_features, out_features, bias=True, init="glorot_uniform", seed=None, dtype=np.float32):
        self.in_features = positive_int("Dense", "in_features", in_features)
        self.out_features = positive_int("Dense", "out_features", out_features)
        dt = float_dtype("Dense", dtype)
        rng = default_rng(seed)
        self.weight = Parameter(initialize(init, (self.out_features, self.in_features), rng, dt), "weight")
        self.bias = Parameter(np.zeros(self.out_features, dt), "bias") if bias else None
        self._x = None

    _input_grad_skippable = True  # backward honours _input_grad_unused (see Layer)

    def _first_param(self):  # check_input's device reference, without walking the attributes
        return self.weight

    def forward(self, x, training=True):
        self.check_input(x)
        W = self.weight.value
        xp = xp_of(W)
        given = x
        x = as_input("Dense", x, xp, W.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense.forward: 'x' has shape {tuple(x.shape)}; expected (..., {self.in_features}) "
                f"(last axis = in_features)"
            )
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        y = gemm(x2, W, trans_b=True)
        if self.bias is not None:
            y += self.bias.value
        self._x = Remembered(x2, via=given) if training else None  # the caller's x, unless converted
        self._lead = lead
        return y.reshape(lead + (self.out_features,))

    def backward(self, dy):
        check_backward("Dense", self._x, dy, self._lead + (self.out_features,) if self._x is not None else None)
        x2, W = recall("Dense", "x", self._x, what="input"), self.weight.value
        xp = xp_of(W)
        dy2 = xp.asarray(dy, dtype=W.dtype).reshape(-1, self.out_features)
        if self.weight.grad is None:
            self.weight.grad = gemm(dy2, x2, trans_a=True)
        else:
            self.weight.grad = gemm(dy2, x2, trans_a=True, out=self.weight.grad)
        if self.bias is not None:
            self.bias.accumulate(dy2.sum(axis=0))
        if self._input_grad_unused:
            return None
        return gemm(dy2, W).reshape(self._lead + (self.in_features,))

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_features,)

    def torch_state_dict(self):
        return export_arrays(weight=self.weight, bias=self.bias)

    def load_torch_state(self, prefix, state):
        for name in ("weight", "bias"):
            if getattr(self, name) is not None:
                k = torch_key(prefix, name)
                getattr(self, name).assign(state[k], f"Dense.load_torch_state: '{k}'")


def _scatter_add_rows(g, idx, rows):
    """g[idx[i]] += rows[i] for all i, in order (repeated indices add up left to right, the bits of
    np.add.at), in one C++ pass (csrc/cpu/embedding/scatter_add.h)."""
    if idx.size == 0:
        return
    _cpu.scatter_add_rows(g, np.ascontiguousarray(idx, dtype=np.int64), np.ascontiguousarray(rows))


def _as_indices(layer, x, n, xp):
    a = xp.asarray(x)
    if a.dtype.kind == "f":
        r = a.astype(np.int64)
        if bool((r != a).any()):
            raise ValueError(f"{layer}.forward: 'x' must hold integer indices, got non-integral values")
        a = r
    elif a.dtype.kind not in "iub":
        raise TypeError(f"{layer}.forward: 'x' must be an integer array of indices, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
        raise ValueError(
            f"{layer}.forward: indices must lie in [0, {n}), got values in [{int(a.min())}, {int(a.max())}]"
        )
    return a


class Embedding(Layer):
    """Integer indices (...) -> vectors (..., dim). Weight (num_embeddings, dim), init N(0, 1)
    like PyTorch. backward accumulates the weight gradient and returns None (indices have none)."""

    def __init__(self, num_embeddings, dim, init="normal", seed=None, dtype=np.float32):
        self.num_embeddings = positive_int("Embedding", "num_embeddings", num_embeddings)
        self.dim = positive_int("Embedding", "dim", dim)
        dt = float_dtype("Embedding", dtype)
        self.weight = Parameter(initialize(init, (self.num_embeddings, self.dim), default_rng(seed), dt), "weight")
        self._idx = None

    def forward(self, x, training=True):
        self.check_input(x)
        W = self.weight.value
        idx = _as_indices("Embedding", x, self.num_embeddings, xp_of(W))
        self._idx = idx if training else None
        return W[idx]

    def backward(self, dy):
        check_backward("Embedding", self._idx, dy, self._idx.shape + (self.dim,) if self._idx is not None else None)
        W = self.weight.value
        xp = xp_of(W)
        g = xp.zeros(W.shape, W.dtype)  # C order whatever W's layout
        flat = self._idx.reshape(-1)
        dy2 = xp.asarray(dy, dtype=W.dtype).reshape(-1, self.dim)
        if xp is np:
            _scatter_add_rows(g, flat, dy2)
        else:  # pragma: no cover - GPU
            import cupyx

            cupyx.scatter_add(g, flat, dy2)
        self.weight.accumulate(g)
        return None

    def output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def torch_state_dict(self):
        return export_arrays(weight=self.weight)

    def load_torch_state(self, prefix, state):
        k = torch_key(prefix, "weight")
        self.weight.assign(state[k], f"Embedding.load_torch_state: '{k}'")


class OneHot(Layer):
    """Integer labels (...) -> one-hot float vectors (..., num_classes). No parameters; backward
    returns None."""

    def __init__(self, num_classes, dtype=np.float32):
        self.num_classes = positive_int("OneHot", "num_classes", num_classes)
        self._dtype = float_dtype("OneHot", dtype)
        self._shape = None

    def forward(self, x, training=True):
        xp = xp_of(x)
        idx = _as_indices("OneHot", x, self.num_classes, xp)
        out = (idx[..., None] == xp.arange(self.num_classes)).astype(self._dtype)
        self._shape = out.shape
        return out

    def backward(self, dy):
        return None

    def output_shape(self, input_shape):
        return tuple(input_shape) + (self.num_classes,)
