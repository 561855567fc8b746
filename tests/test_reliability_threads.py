"""Threads and determinism for every public functional op.

- Many Python threads calling kernels at once get bitwise the same results as one thread
  (the kernels share no mutable state; every binding releases the GIL, so the calls overlap).
- Same inputs and the same dk.set_num_threads give bitwise-identical results run to run.
That the GIL is released is measured (not asserted) in benchmarks/bench_threads.py.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import deepkern as dk
import numpy as np
import pytest
from reliability_ops import spec_params

SPECS = spec_params(pytest)


@pytest.fixture
def threads():
    """Restore the process-wide kernel thread count after the test."""
    n0 = dk.get_num_threads()
    yield dk.set_num_threads
    dk.set_num_threads(n0)


def _run(spec, kw, seed):
    outs, ctx = spec.forward_ctx(kw)
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(s).astype(outs[0].dtype) for s in spec.grad_shapes(outs)]
    return [*outs, *[g for g in spec.backward(ctx, grads) if g is not None]]


def _same_bits(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.dtype == v.dtype and u.shape == v.shape, f"{what}: array {i}"
        assert np.array_equal(u.view(np.uint8), v.view(np.uint8)), f"{what}: array {i} differs bitwise"


def _problems(spec, n):
    rng = np.random.default_rng(1234)
    return [spec.make(rng, np.float32 if i % 2 else np.float64, **spec.medium()) for i in range(n)]


@pytest.mark.parametrize("spec", SPECS)
def test_many_python_threads_match_one_thread(spec, threads, request):
    threads(2)
    problems = _problems(spec, 6)
    serial = [_run(spec, kw, i) for i, kw in enumerate(problems)]
    jobs = [i for _ in range(4) for i in range(len(problems))]  # every problem 4 times, interleaved
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: (i, _run(spec, problems[i], i)), jobs))
    for i, got in results:
        _same_bits(got, serial[i], f"problem {i} from a Python thread")


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("spec", SPECS)
def test_bitwise_deterministic_run_to_run(spec, nthreads, threads, request):
    threads(nthreads)
    for kw in _problems(spec, 2):
        first = _run(spec, kw, 7)
        for _ in range(3):
            _same_bits(_run(spec, kw, 7), first, f"{spec.name} at {nthreads} threads")


@pytest.mark.parametrize("spec", SPECS)
def test_thread_count_invariant_ops_do_not_depend_on_it(spec, threads):
    """Ops whose every output element is computed by one thread in a fixed order (no split
    reductions) give the same bits at any thread count; the others only promise run-to-run."""
    if not spec.thread_count_invariant:
        pytest.skip(f"{spec.name} may split reductions across threads")
    kw = _problems(spec, 1)[0]
    threads(1)
    want = _run(spec, kw, 3)
    for n in (2, 3, 5):
        threads(n)
        _same_bits(_run(spec, kw, 3), want, f"{spec.name} at {n} threads vs 1")


def test_conv2d_backward_dw_bitwise_reproducible_under_contention(threads):
    """Up to 200 backward calls (stops at the first difference) while another Python thread keeps the
    cores busy with a kernel (the GIL is released, so it really competes): dw must never change."""
    if not hasattr(dk, "conv2d"):
        pytest.skip("no conv2d")
    threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    y, ctx = dk.conv2d(x, w, padding=1, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    first = dk.conv2d_backward(ctx, dy)
    stop = threading.Event()

    def noise():
        z = np.ones((8, 16, 64, 64), np.float32)
        while not stop.is_set():
            dk.avg_pool2d(z, 3, 1, 1)

    th = threading.Thread(target=noise)
    th.start()
    try:
        t0 = time.perf_counter()
        for i in range(200):
            got = dk.conv2d_backward(ctx, dy)
            _same_bits(got[:2], first[:2], f"conv2d_backward call {i}")
            if time.perf_counter() - t0 > 4:
                break
    finally:
        stop.set()
        th.join()


_OMP_LIMIT_SCRIPT = """
import json, numpy as np, deepkern as dk
from deepkern import _cpu
rng = np.random.default_rng(0)
a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 250))
x = rng.standard_normal((6, 16, 48)); w_ih = rng.standard_normal((256, 48)) * 0.1; w_hh = rng.standard_normal((256, 64)) * 0.1
out = {}
for n in (1, 4):
    dk.set_num_threads(n)
    c = np.full((300, 250), np.nan)
    _cpu.gemm(a, b, c)
    y, _, _ = dk.lstm(x, None, None, w_ih, w_hh)
    out[n] = (c, y)
print(json.dumps({"gemm_err": float(np.max(np.abs(out[4][0] - a @ b))) if not np.isnan(out[4][0]).any() else -1.0,
                  "lstm_err": float(np.max(np.abs(out[4][1] - out[1][1]))) if not np.isnan(out[4][1]).any() else -1.0}))
"""


@pytest.mark.parametrize("env", [{"OMP_THREAD_LIMIT": "1"}, {"OMP_DYNAMIC": "true", "OMP_THREAD_LIMIT": "2"}])
def test_results_correct_when_openmp_gives_fewer_threads_than_asked(env):
    """An OpenMP runtime may hand a parallel region fewer threads than num_threads() asks for;
    every kernel must still compute every output element."""
    import json
    import os
    import subprocess
    import sys

    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(sys.path), "DEEPKERN_POISON": "1"}
    r = subprocess.run(
        [sys.executable, "-c", _OMP_LIMIT_SCRIPT], env=full_env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    errs = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0 <= errs["gemm_err"] < 1e-9, f"gemm at 4 requested threads: {errs} (-1 = unwritten NaN elements)"
    assert 0 <= errs["lstm_err"] < 1e-9, f"lstm at 4 requested threads: {errs}"
