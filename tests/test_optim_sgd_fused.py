"""SGD's numpy update runs fused in C++ (csrc/cpu/optim/sgd.cpp): bit-identical to the array form
(the rule as torch.optim.SGD states it, one numpy operation at a time), for every branch of the rule,
for contiguous parameters (the fused pass) and strided ones (the array form)."""

import deepkern as dk
import numpy as np
import pytest
from deepkern import _cpu


def reference_sgd(w, g, st, lr, momentum, dampening, weight_decay, nesterov):
    """The array form, operation by operation (Python floats, rounded to w's dtype by numpy)."""
    if weight_decay:
        g = g + weight_decay * w
    if momentum:
        buf = st.get("momentum_buffer")
        if buf is None:
            buf = st["momentum_buffer"] = g.copy()
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    w -= lr * g


RULES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, weight_decay=0.01),
    dict(lr=0.03, momentum=0.8, dampening=0.3, weight_decay=0.1),
    dict(lr=0.07, momentum=0.9, nesterov=True, weight_decay=1e-3),
    dict(lr=0.02, weight_decay=0.2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: ",".join(f"{k}={v}" for k, v in r.items()))
def test_sgd_matches_the_array_form_bit_for_bit(dtype, rule, rng, monkeypatch):
    fused_calls = []
    kernel = _cpu.sgd_update
    monkeypatch.setattr(_cpu, "sgd_update", lambda *a: fused_calls.append(a[0].size) or kernel(*a))
    shapes = [(7, 5), (300,), (1,), (16, 3, 3, 3), ((1 << 15) + 3,)]  # the last crosses chunks (and threads)
    base = rng.standard_normal((40, 6)).astype(dtype)
    params = [dk.nn.Parameter(base[:, ::2])]  # strided: the array form
    params += [dk.nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
    assert not params[0].value.flags.c_contiguous
    ref = [p.value.copy() for p in params]
    states = [dict() for _ in params]
    opt = dk.optim.SGD(params, **rule)
    full = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, **rule}
    for step in range(5):
        grads = [rng.standard_normal(p.value.shape).astype(dtype) for p in params]
        if step == 2:
            grads[2][11] = np.nan  # NaN stays where it lands, in both forms
        for p, g in zip(params, grads):
            p.grad = g.copy()
        opt.step()
        for w, g, st in zip(ref, grads, states):
            reference_sgd(w, g, st, **full)
        for i, (p, w, g0) in enumerate(zip(params, ref, grads)):
            assert p.value.dtype == dtype
            np.testing.assert_array_equal(p.value, w, err_msg=f"parameter {i}, step {step}")
            np.testing.assert_array_equal(p.grad, g0)  # the gradient is not modified
            if full["momentum"]:
                np.testing.assert_array_equal(opt.state[i]["momentum_buffer"], states[i]["momentum_buffer"])
    assert np.isnan(params[2].value[11]) and np.isfinite(np.delete(params[2].value, 11)).all()
    assert sorted(set(fused_calls)) == sorted(int(np.prod(s)) for s in shapes)  # every contiguous one fused


def test_sgd_with_a_numpy_learning_rate_keeps_numpy_promotion(rng):
    """A numpy float64 lr (as a scheduler may compute one) promotes the array form to float64 before
    the result is cast back: the optimizer keeps that form, so its result is numpy's own."""
    w0 = rng.standard_normal(1000).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32)
    p = dk.nn.Parameter(w0.copy())
    opt = dk.optim.SGD([p], lr=0.1)
    opt.lr = np.float64(0.1) / 3
    p.grad = g.copy()
    opt.step()
    want = w0.copy()
    want -= np.float64(0.1) / 3 * g
    np.testing.assert_array_equal(p.value, want)


def test_sgd_fused_kernel_rejects_bad_arrays():
    w = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="g: expected 4 elements"):
        _cpu.sgd_update(w, np.zeros(3, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="buf: dtype"):
        _cpu.sgd_update(w, w.copy(), np.zeros(4), 0.1, 0.9, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="momentum needs 'buf'"):
        _cpu.sgd_update(w, w.copy(), None, 0.1, 0.9, 0.0, 0.0, False, True)
    ro = w.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="w: output array is read-only"):
        _cpu.sgd_update(ro, w.copy(), None, 0.1, 0.0, 0.0, 0.0, False, False)
