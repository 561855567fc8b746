"""Small kernels run on the calling thread (threads_for, csrc/cpu/common/parallel.h): the choice is
bounded by dk.set_num_threads, overridable for measurements, and never changes a result."""

import os
import subprocess
import sys

import deepkern as dk
import numpy as np
import pytest
from deepkern import _cpu

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def threads():
    n0 = dk.get_num_threads()
    yield dk.set_num_threads
    dk.set_num_threads(n0)


def test_set_num_threads_is_the_upper_bound(threads):
    big = 1e15  # FLOPs: hours of one core
    for n in (1, 2, 3, 8):
        threads(n)
        assert _cpu._threads_for(big, 0.0) == n
        assert _cpu._threads_for(0.0, big) == n
        assert _cpu._threads_for(1.0, 1.0) == 1


def test_threshold_is_in_one_cores_microseconds(threads):
    threads(4)
    us = _cpu._parallel_min_us()
    assert us > 0
    # the two estimates add up: half the threshold in FLOPs plus half in bytes reaches it
    flops_at = next(f for f in (10.0**k for k in range(3, 15)) if _cpu._threads_for(f, 0.0) > 1)
    bytes_at = next(b for b in (10.0**k for k in range(3, 15)) if _cpu._threads_for(0.0, b) > 1)
    assert _cpu._threads_for(flops_at / 10, 0.0) == 1 and _cpu._threads_for(0.0, bytes_at / 10) == 1
    assert _cpu._threads_for(0.6 * flops_at, 0.6 * bytes_at) == 4


def _in_subprocess(code, **env):
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([HERE, *sys.path])}
    r = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("value,want", [("0", 0.0), ("250", 250.0), ("", None), ("junk", None), ("-3", None)])
def test_environment_override(value, want):
    got = float(
        _in_subprocess("from deepkern import _cpu; print(_cpu._parallel_min_us())", DEEPKERN_PARALLEL_MIN_US=value)
    )
    assert got == (want if want is not None else _cpu._parallel_min_us())


_RUN_ALL = """
import sys, numpy as np, pytest, deepkern as dk
from reliability_ops import spec_params
dk.set_num_threads(2)
out = {}
for p in spec_params(pytest):
    spec = p.values[0]
    if p.marks or not spec.available():
        continue
    rng = np.random.default_rng(99)
    for i, dtype in enumerate((np.float32, np.float64)):
        kw = spec.make(rng, dtype, **spec.medium())
        outs, ctx = spec.forward_ctx(kw)
        grads = [np.random.default_rng(i).standard_normal(s).astype(outs[0].dtype) for s in spec.grad_shapes(outs)]
        res = [*outs, *[g for g in spec.backward(ctx, grads) if g is not None]]
        for j, a in enumerate(res):
            out[f"{spec.name}/{i}/{j}/{int(spec.thread_count_invariant)}"] = a
np.savez(sys.argv[1], **out)
print(len(out))
"""


def test_results_do_not_depend_on_the_threshold(tmp_path):
    """Every region threaded (0), the default, and nothing threaded (1e12) at 2 threads: ops with a
    thread-count-invariant order agree bitwise; the others agree closely (their split reductions
    regroup sums) and stay finite."""
    files = {}
    for value in ("0", "", "1e12"):
        path = tmp_path / f"out{value or 'default'}.npz"
        code = _RUN_ALL.replace("sys.argv[1]", repr(str(path)))
        assert int(_in_subprocess(code, DEEPKERN_PARALLEL_MIN_US=value)) > 0
        files[value] = np.load(path)
    ref = files[""]
    checked_bitwise = 0
    for value in ("0", "1e12"):
        got = files[value]
        assert set(got.files) == set(ref.files)
        for key in ref.files:
            a, b = ref[key], got[key]
            assert a.dtype == b.dtype and a.shape == b.shape, key
            assert not np.isnan(b).any(), f"{key} at DEEPKERN_PARALLEL_MIN_US={value}: NaN"
            if key.endswith("/1"):
                assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{key}: bits differ at {value}"
                checked_bitwise += 1
            else:
                tol = 1e-4 if a.dtype == np.float32 else 1e-10
                scale = max(1.0, float(np.abs(a).max(initial=0.0)))
                assert np.abs(a.astype(np.float64) - b).max(initial=0.0) <= tol * scale, f"{key} at {value}"
    assert checked_bitwise > 0
