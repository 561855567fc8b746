"""Finite-difference gradient checks for the sequence layers' tests (float64)."""

import contextlib

import deepkern as dk
import numpy as np
from helpers import assert_close

# Central differences with eps=1e-6 carry ~1e-9 relative error of their own (truncation and
# rounding), so the comparison bound is that of finite differences, not the kernels' 1e-10.
FD_RTOL = 1e-6
FD_ATOL = 1e-8


def _as_tuple(a):
    return tuple(a) if isinstance(a, (tuple, list)) else (a,)


def contract(out, dy):
    """sum(out * dy) over matching (possibly tuple) structures; None entries in dy count as zero."""
    total = 0.0
    for o, d in zip(_as_tuple(out), _as_tuple(dy)):
        if d is not None:
            total += float(np.sum(np.asarray(o, np.float64) * d))
    return total


def fd(f, arr, eps=1e-6):
    """d f() / d arr by central differences, perturbing arr in place (restored afterwards)."""
    g = np.zeros(arr.shape)
    flat, gf = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * eps)
    return g


def random_like_output(rng, out):
    return (
        tuple(rng.standard_normal(np.shape(o)) for o in out)
        if isinstance(out, tuple)
        else rng.standard_normal(np.shape(out))
    )


@contextlib.contextmanager
def one_thread():
    """Finite differences call a kernel thousands of times on tiny arrays: one thread avoids the
    OpenMP fork/join cost on a loaded machine (results do not depend on the thread count)."""
    n = dk.get_num_threads()
    dk.set_num_threads(1)
    try:
        yield
    finally:
        dk.set_num_threads(n)


def gradcheck(forward, backward, inputs, params, rng, what="", dy=None, input_grads=None):
    with one_thread():
        return _gradcheck(forward, backward, inputs, params, rng, what, dy, input_grads)


def _gradcheck(forward, backward, inputs, params, rng, what, dy, input_grads):
    """Check backward against finite differences of sum(forward(*inputs) * dy).

    forward(*inputs) -> array or tuple; backward(dy) -> grad of the inputs (array or tuple, None
    allowed where an input gets none); params: the Parameters whose .grad backward accumulates.
    input_grads, if given, maps the index of an input to a callable returning its analytic grad
    (for gradients a layer reports elsewhere, e.g. .state_grad).
    """
    out = forward(*inputs)
    dy = random_like_output(rng, out) if dy is None else dy
    for p in params:
        p.zero_grad()
    forward(*inputs)
    got = backward(dy)
    got = list(_as_tuple(got))
    analytic_params = [None if p.grad is None else p.grad.copy() for p in params]
    extra = {i: f() for i, f in (input_grads or {}).items()}
    loss = lambda: contract(forward(*inputs), dy)  # noqa: E731
    for i, x in enumerate(inputs):
        if not isinstance(x, np.ndarray):
            continue
        a = extra[i] if i in extra else (got[i] if i < len(got) else None)
        if a is None:
            continue
        assert_close(a, fd(loss, x), np.float64, rtol=FD_RTOL, atol=FD_ATOL, what=f"{what} d input {i}")
    for p, a in zip(params, analytic_params):
        assert a is not None, f"{what}: no gradient accumulated for {p.name}"
        assert_close(a, fd(loss, p.value), np.float64, rtol=FD_RTOL, atol=FD_ATOL, what=f"{what} d {p.name}")
    return dy
