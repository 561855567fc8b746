"""Shared test helpers: tolerances from DESIGN.md, NaN-strict comparisons, finite differences, and
running a script on one ISA copy of the CPU kernels."""

import os
import subprocess
import sys

import numpy as np

# DESIGN.md: float64 1e-10 relative; float32 1e-5..1e-4; fp16/bf16 1e-2 relative norm error.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4, np.dtype(np.float16): 1e-2}
ATOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5, np.dtype(np.float16): 1e-2}


def to_numpy(a):
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    if hasattr(a, "detach"):  # torch tensor
        return a.detach().cpu().numpy()
    return np.asarray(a)


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, what=""):
    """Elementwise |a - e| <= atol + rtol*|e|, scaled by the expected array's magnitude for atol.
    NaN never passes unless expected is NaN at the same place."""
    a = to_numpy(actual)
    e = to_numpy(expected)
    dt = np.dtype(dtype) if dtype is not None else np.dtype(a.dtype)
    rtol = RTOL.get(dt, 1e-4) if rtol is None else rtol
    atol = ATOL.get(dt, 1e-5) if atol is None else atol
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    a64 = a.astype(np.float64)
    e64 = e.astype(np.float64)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    assert np.array_equal(nan_a, nan_e), f"{what}: NaN pattern differs ({nan_a.sum()} NaN vs {nan_e.sum()} expected)"
    inf_a, inf_e = np.isinf(a64), np.isinf(e64)
    assert np.array_equal(inf_a, inf_e) and np.array_equal(a64[inf_e], e64[inf_e]), f"{what}: infinities differ"
    fin = ~(nan_e | inf_e)
    scale = max(1.0, float(np.max(np.abs(e64[fin]), initial=0.0)))
    err = np.abs(a64[fin] - e64[fin])
    bound = atol * scale + rtol * np.abs(e64[fin])
    if err.size and not np.all(err <= bound):
        i = int(np.argmax(err - bound))
        raise AssertionError(
            f"{what}: max excess error at flat {i}: got {a64[fin][i]!r}, expected {e64[fin][i]!r} "
            f"(|err| {err[i]:.3e} > bound {bound[i]:.3e}; rtol {rtol}, atol {atol}*{scale:.3g})"
        )


def assert_rel_norm(actual, expected, tol, what=""):
    """Relative norm error ||a - e|| / ||e|| <= tol (for fp16/bf16); NaN fails."""
    a = to_numpy(actual).astype(np.float64)
    e = to_numpy(expected).astype(np.float64)
    assert not np.isnan(a).any(), f"{what}: NaN in result"
    err = np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30)
    assert err <= tol, f"{what}: relative norm error {err:.3e} > {tol}"


def numeric_grad(f, x, dy, eps=1e-6):
    """d(sum(f(x) * dy))/dx by central differences, float64. f must not modify x."""
    x = np.array(x, dtype=np.float64, copy=True)
    g = np.zeros_like(x)
    flat = x.reshape(-1)
    gf = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = np.sum(np.asarray(f(x), dtype=np.float64) * dy)
        flat[i] = old - eps
        fm = np.sum(np.asarray(f(x), dtype=np.float64) * dy)
        flat[i] = old
        gf[i] = (fp - fm) / (2 * eps)
    return g


def assert_grads_at_random_points(f, pairs, dy, rng, points=6, eps=1e-6):
    """For each (array, grad) of `pairs`: grad at `points` random indices against the central
    difference of sum(f() * dy) in that array element (f reads the arrays, changed in place and
    restored)."""
    for arr, grad in pairs:
        for idx in [tuple(int(rng.integers(0, s)) for s in arr.shape) for _ in range(points)]:
            old = arr[idx]
            arr[idx] = old + eps
            up = float((f() * dy).sum())
            arr[idx] = old - eps
            down = float((f() * dy).sum())
            arr[idx] = old
            assert abs((up - down) / (2 * eps) - grad[idx]) < 1e-6 * max(1.0, abs(grad[idx])), idx


def run_with_isa(isa, code):
    """`python -c code` in a fresh interpreter with DEEPKERN_CPU_ISA=isa (read once per process; a CPU
    without the ISA runs a lower copy), 2 OpenMP threads, this deepkern first on the path. code is a
    str.format template: `{tests!r}` becomes this folder (for its helpers and references), other
    braces are doubled. Returns the CompletedProcess."""
    import deepkern

    tests = os.path.dirname(os.path.abspath(__file__))
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(deepkern.__file__)))
    env = dict(
        os.environ,
        DEEPKERN_CPU_ISA=isa,
        OMP_NUM_THREADS="2",
        PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]),
    )
    return subprocess.run(
        [sys.executable, "-c", code.format(tests=tests)], env=env, capture_output=True, text=True, timeout=120
    )
