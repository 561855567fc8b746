"""Weight initialisers (numpy generators; the arrays move to the GPU with Layer.to).

fan_in / fan_out follow PyTorch: a (out, in) matrix has fan_in = in; a (K, C, kh, kw) kernel has
fan_in = C*kh*kw and fan_out = K*kh*kw.
"""

import numpy as np


def fans(shape):
    if len(shape) < 2:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def initialize(kind, shape, rng, dtype):
    """kind: 'glorot_uniform' (Xavier), 'glorot_normal', 'he_uniform' (Kaiming, gain sqrt(2)),
    'he_normal', 'torch' (PyTorch's default for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    'zeros', 'normal' (N(0, 1), PyTorch's Embedding default), 'orthogonal'."""
    fan_in, fan_out = fans(shape)
    if kind == "glorot_uniform":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-a, a, shape)
    elif kind == "glorot_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), shape)
    elif kind == "he_uniform":
        a = np.sqrt(6.0 / fan_in)
        w = rng.uniform(-a, a, shape)
    elif kind == "he_normal":
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    elif kind == "torch":
        a = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-a, a, shape)
    elif kind == "zeros":
        w = np.zeros(shape)
    elif kind == "normal":
        w = rng.normal(0.0, 1.0, shape)
    elif kind == "orthogonal":
        rows, cols = shape[0], int(np.prod(shape[1:]))
        m = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(m)
        q = q * np.sign(np.diag(r))
        w = (q if rows >= cols else q.T).reshape(shape)
    elif kind == "identity":
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"initialize: 'identity' needs a square matrix, got shape {shape}")
        w = np.eye(shape[0])
    else:
        raise ValueError(
            f"initialize: unknown init {kind!r}; expected one of glorot_uniform, glorot_normal, he_uniform, "
            "he_normal, torch, zeros, normal, orthogonal, identity"
        )
    return np.ascontiguousarray(w, dtype=dtype)
