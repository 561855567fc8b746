"""Adam/AdamW's numpy update runs in scratch buffers: bit-identical to the one-line array form."""

import deepkern as dk
import numpy as np
import pytest


def reference_adam(w, g, st, lr, b1, b2, eps, wd, amsgrad, decoupled):
    """The textbook array form, the operations and types the optimizer had before the scratch buffers."""
    if wd and decoupled:
        w *= 1 - lr * wd
    elif wd:
        g = g + wd * w
    if "m" not in st:
        st["m"], st["v"], st["t"] = np.zeros_like(w), np.zeros_like(w), 0
    st["t"] += 1
    t, m, v = st["t"], st["m"], st["v"]
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    if amsgrad:
        vmax = st.setdefault("vmax", np.zeros_like(w))
        np.maximum(vmax, v, out=vmax)
        v = vmax
    denom = np.sqrt(v) / np.sqrt(1 - b2**t) + eps
    w -= (lr / (1 - b1**t)) * (m / denom)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.05])
@pytest.mark.parametrize("cls", [dk.optim.Adam, dk.optim.AdamW])
def test_adam_matches_the_array_form_bit_for_bit(dtype, amsgrad, wd, cls, rng):
    shapes = [(7, 5), (300,), (1,), (16, 3, 3, 3)]  # different sizes share the scratch buffers
    params = [dk.nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
    ref = [p.value.copy() for p in params]
    states = [dict() for _ in params]
    opt = cls(params, lr=3e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd, amsgrad=amsgrad)
    for _ in range(6):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g.copy()
        opt.step()
        for w, g, st in zip(ref, grads, states):
            reference_adam(w, g, st, 3e-3, 0.8, 0.95, 1e-6, wd, amsgrad, cls is dk.optim.AdamW)
        for p, w, g0 in zip(params, ref, grads):
            assert p.value.dtype == dtype
            np.testing.assert_array_equal(p.value, w)
            np.testing.assert_array_equal(p.grad, g0)  # the gradient is not modified
