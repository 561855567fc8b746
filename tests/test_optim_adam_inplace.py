"""Adam/AdamW's numpy update runs fused in C++ (csrc/cpu/optim/adam.cpp): bit-identical to the
one-line array form, for contiguous parameters (the fused pass) and strided ones (the array form)."""

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_fused_and_array_forms_agree_on_strided_and_odd_parameters(dtype, rng):
    """A parameter built from a strided view takes the array form; a contiguous one the fused pass;
    both land on the reference bit for bit. Large sizes cross the fused loop's chunks (and threads)."""
    base = rng.standard_normal((40, 6)).astype(dtype)
    shapes = [(1 << 15) + 3, (5,)]
    params = [dk.nn.Parameter(base[:, ::2]), *[dk.nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]]
    assert not params[0].value.flags.c_contiguous
    ref = [p.value.copy() for p in params]
    states = [dict() for _ in params]
    opt = dk.optim.Adam(params, lr=1e-2, amsgrad=True)
    for _ in range(4):
        grads = [rng.standard_normal(p.value.shape).astype(dtype) for p in params]
        grads[1][7] = np.nan  # NaN stays where it lands, in both forms
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        for w, g, st in zip(ref, grads, states):
            reference_adam(w, g, st, 1e-2, 0.9, 0.999, 1e-8, 0.0, True, False)
        for p, w in zip(params, ref):
            np.testing.assert_array_equal(p.value, w)
    assert np.isnan(params[1].value[7]) and np.isfinite(np.delete(params[1].value, 7)).all()


def test_adam_fused_kernel_rejects_bad_arrays():
    from deepkern import _cpu

    w = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="g: expected 4 elements"):
        _cpu.adam_update(w, np.zeros(3, np.float32), w.copy(), w.copy(), None, 0.9, 0.99, 1e-3, 1.0, 1e-8)
    with pytest.raises(TypeError, match="m: dtype"):
        _cpu.adam_update(w, w.copy(), np.zeros(4), w.copy(), None, 0.9, 0.99, 1e-3, 1.0, 1e-8)
    ro = w.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="w: output array is read-only"):
        _cpu.adam_update(ro, w.copy(), w.copy(), w.copy(), None, 0.9, 0.99, 1e-3, 1.0, 1e-8)
