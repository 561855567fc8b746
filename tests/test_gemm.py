"""The internal packed GEMM (deepkern._cpu.gemm) against float64 numpy: every trans
combination, alpha/beta, edge tiles, K blocking, threads, and each ISA's micro-kernel."""

import os
import subprocess
import sys

import numpy as np
import pytest
from deepkern import _cpu
from helpers import assert_close

# Odd sizes hit partial MR/NR tiles; K > 384 crosses a KC block; 1s hit degenerate panels.
SHAPES = [
    (1, 1, 1),
    (1, 7, 3),
    (5, 1, 9),
    (7, 13, 5),
    (8, 32, 16),
    (17, 33, 1),
    (37, 71, 299),
    (100, 3, 600),
    (129, 65, 385),
    (3, 520, 40),
    (61, 61, 61),
]


def _ref(a, b, c, ta, tb, alpha, beta):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    r = alpha * ((a64.T if ta else a64) @ (b64.T if tb else b64))
    return r if beta == 0 else r + beta * c.astype(np.float64)


def _operands(rng, M, N, K, ta, tb, dt):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
    c = rng.standard_normal((M, N)).astype(dt)
    return a, b, c


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_matches_numpy(rng, dt, ta, tb):
    for M, N, K in SHAPES:
        for alpha, beta in [(1.0, 0.0), (0.5, -1.5), (-2.0, 1.0)]:
            a, b, c = _operands(rng, M, N, K, ta, tb, dt)
            c0 = c.copy()
            if beta == 0:
                c[...] = np.nan  # beta == 0: C is write-only, NaN must not leak through
            _cpu.gemm(a, b, c, ta, tb, alpha, beta)
            assert_close(c, _ref(a, b, c0, ta, tb, alpha, beta), dtype=dt, what=f"{M}x{N}x{K} ta={ta} tb={tb}")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gemm_large_threaded_and_serial(rng, dt):
    M, N, K = 300, 530, 410  # several MC / NC / KC blocks, split across threads
    a, b, c = _operands(rng, M, N, K, False, False, dt)
    ref = _ref(a, b, c, False, False, 1.0, 0.0)
    for parallel in (True, False):
        out = np.full((M, N), np.nan, dt)
        _cpu.gemm(a, b, out, False, False, 1.0, 0.0, parallel)
        assert_close(out, ref, dtype=dt, what=f"parallel={parallel}")


def test_gemm_k_zero_and_alpha_zero_scale_c(rng):
    c = rng.standard_normal((4, 5))
    out = c.copy()
    _cpu.gemm(np.zeros((4, 0)), np.zeros((0, 5)), out, False, False, 1.0, 2.0)
    assert_close(out, 2.0 * c)
    a = np.full((4, 3), np.nan)  # alpha == 0: A and B are not read
    out = np.full((4, 5), np.nan)
    _cpu.gemm(a, np.ones((3, 5)), out, False, False, 0.0, 0.0)
    assert np.array_equal(out, np.zeros((4, 5)))


_ISA_SCRIPT = r"""
import numpy as np
from deepkern import _cpu
rng = np.random.default_rng(1)
for dt in (np.float32, np.float64):
    for M, N, K in [(1, 1, 1), (7, 13, 5), (37, 71, 299), (129, 65, 385), (33, 100, 700)]:
        for ta in (False, True):
            for tb in (False, True):
                a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
                b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
                c = rng.standard_normal((M, N)).astype(dt)
                ref = 0.5 * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)) - c
                _cpu.gemm(a, b, c, ta, tb, 0.5, -1.0)
                err = np.abs(c - ref).max() / max(1.0, np.abs(ref).max())
                assert err < (2e-5 if dt == np.float32 else 1e-12), (dt, M, N, K, ta, tb, err)
print(_cpu.gemm_kernel_name("float32"))
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_gemm_each_isa_kernel(isa):
    """DEEPKERN_CPU_ISA is read once per process, so each ISA runs in its own interpreter.
    An ISA the CPU lacks falls back to a lower one (the cap only lowers the choice)."""
    import deepkern

    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(deepkern.__file__)))
    path = os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, DEEPKERN_CPU_ISA=isa, OMP_NUM_THREADS="2", PYTHONPATH=path)
    r = subprocess.run([sys.executable, "-c", _ISA_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    name = r.stdout.strip()
    if isa == "generic":
        assert name.startswith("generic")
    else:
        cpu_isa = subprocess.run(
            [sys.executable, "-c", "from deepkern import _cpu; print(_cpu.isa())"],
            env=dict(env, DEEPKERN_CPU_ISA="avx512"),
            capture_output=True,
            text=True,
        ).stdout.strip()
        rank = {"generic": 0, "avx2": 1, "avx512": 2}
        expect = min(rank[isa], rank[cpu_isa])
        assert rank[name.split()[0]] == expect, (name, cpu_isa)
