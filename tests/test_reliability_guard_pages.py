"""No kernel reads outside its input arrays: every op runs on inputs placed right against an
inaccessible page (tests/guard_pages.py), after the end and before the start, on shapes that put
vector blocks and edge columns at the array's boundary. An out-of-bounds read kills the
subprocess with SIGSEGV; results are also checked against the same op on ordinary arrays."""

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
import numpy as np
sys.path.insert(0, "tests")
import deepkern as dk
from deepkern import _cpu
from guard_pages import guarded

rng = np.random.default_rng(7)
which = sys.argv[1]
count = 0


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), which


def check(fn, *arrays):
    # fn on guarded copies of the arrays == fn on the arrays themselves
    global count
    for where in ("end", "start"):
        got = fn(*[guarded(a, where) if isinstance(a, np.ndarray) else a for a in arrays])
        want = fn(*arrays)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            if g is not None:
                same(g, w)
        count += 1


def pool(kind, shape, k, s, p, dt):
    x = rng.standard_normal(shape).astype(dt)
    fwd = dk.max_pool2d if kind == "max" else dk.avg_pool2d
    bwd = dk.max_pool2d_backward if kind == "max" else dk.avg_pool2d_backward
    y, ctx = fwd(x, k, s, p, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    check(lambda x: fwd(x, k, s, p), x)
    check(lambda dy: bwd(ctx, dy), dy)
    if kind == "max":
        _, idx = dk.max_pool2d(x, k, s, p, return_indices=True)
        check(lambda i: _cpu.max_pool2d_backward(ctx.params, dy, i, np.empty(x.shape, dt)) or 0, idx)


if which == "pooling":
    for dt in (np.float32, np.float64):
        for shape, k, s, p in [((2, 3, 9, 70), 3, 2, 1), ((1, 2, 7, 53), (2, 3), (1, 3), (0, 1)),
                               ((2, 2, 6, 40), 3, 1, 0), ((1, 1, 5, 33), 3, 2, 0), ((3, 2, 6, 24), 2, 2, 0),
                               ((2, 2, 7, 17), 2, 2, 0), ((1, 1, 4, 6), 2, 2, 0), ((1, 1, 3, 3), 3, 1, 1),
                               ((2, 1, 5, 64), 4, 4, 2)]:
            pool("max", shape, k, s, p, dt)
            pool("avg", shape, k, s, p, dt)
elif which == "conv":
    for dt in (np.float32, np.float64):
        for (N, C, H, W, K, k, s, p) in [(2, 3, 9, 11, 4, 3, 1, 1), (1, 2, 14, 14, 16, 5, 1, 0), (2, 3, 8, 8, 5, 3, 2, 1),
                                         (1, 4, 5, 5, 3, 1, 1, 0), (2, 1, 28, 28, 6, 5, 1, 2), (1, 2, 7, 9, 3, 3, 3, 0)]:
            x = rng.standard_normal((N, C, H, W)).astype(dt)
            w = rng.standard_normal((K, C, k, k)).astype(dt)
            b = rng.standard_normal(K).astype(dt)
            y, ctx = dk.conv2d(x, w, b, s, p, return_ctx=True)
            dy = rng.standard_normal(y.shape).astype(dt)
            check(lambda x, w, b: dk.conv2d(x, w, b, s, p), x, w, b)
            check(lambda x, w, dy: dk.conv2d_backward(dk.conv2d(x, w, b, s, p, return_ctx=True)[1], dy), x, w, dy)
elif which == "sequence":
    for dt in (np.float32, np.float64):
        T, B, I, H = 5, 3, 7, 6
        x = rng.standard_normal((T, B, I)).astype(dt)
        h0, c0 = (rng.standard_normal((B, H)).astype(dt) for _ in range(2))
        w_ih = rng.standard_normal((4 * H, I)).astype(dt)
        w_hh = rng.standard_normal((4 * H, H)).astype(dt)
        b_ih, b_hh = (rng.standard_normal(4 * H).astype(dt) for _ in range(2))
        check(lambda *a: dk.lstm(*a), x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        (y, hT, cT), ctx = dk.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, return_ctx=True)
        check(lambda dy, dh, dc: dk.lstm_backward(ctx, dy, dh, dc), np.ones_like(y), np.ones_like(hT), np.ones_like(cT))
        check(lambda *a: dk.lstm_cell(*a), x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)
        for Lq, Lk, D in [(5, 7, 4), (33, 17, 16), (1, 1, 3)]:
            q = rng.standard_normal((2, Lq, D)).astype(dt)
            k = rng.standard_normal((2, Lk, D)).astype(dt)
            v = rng.standard_normal((2, Lk, D + 1)).astype(dt)
            m = rng.random((Lq, Lk)) < 0.8
            check(lambda q, k, v: dk.scaled_dot_product_attention(q, k, v), q, k, v)
            check(lambda q, k, v, m: dk.scaled_dot_product_attention(q, k, v, m), q, k, v, m)
            out, ctx = dk.scaled_dot_product_attention(q, k, v, is_causal=True, return_ctx=True)
            check(lambda g: dk.scaled_dot_product_attention_backward(ctx, g), np.ones_like(out))
elif which == "misc":
    for n in (1, 3, 17, 1000, 70_001):
        for dt in (np.float32, np.float64):
            x = rng.standard_normal(n).astype(dt)
            check(lambda x: (_cpu.fingerprint(x),), x)
            relu = dk.nn.ReLU()
            check(lambda x: relu.forward(x), x)
            relu.forward(x)
            check(lambda dy: relu.backward(dy), x)
    for M, N, K in [(1, 1, 1), (7, 33, 5), (65, 17, 129)]:
        a = rng.standard_normal((M, K)).astype(np.float32)
        b = rng.standard_normal((K, N)).astype(np.float32)
        def gemm(a, b):
            c = np.empty((M, N), np.float32)
            _cpu.gemm(a, b, c)
            return c
        check(gemm, a, b)
print("checked", count)
"""


@pytest.mark.parametrize("isa", ["best", "avx2", "generic"])
@pytest.mark.parametrize("family", ["pooling", "conv", "sequence", "misc"])
def test_kernels_never_read_outside_their_inputs(family, isa):
    """Each ISA's copy of the kernels (DEEPKERN_CPU_ISA caps the choice; a CPU without AVX2 runs
    the portable code for "avx2" too, which is still a valid run)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    if isa != "best":
        env["DEEPKERN_CPU_ISA"] = isa
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, family], cwd=root, capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, f"exit {out.returncode} (-11 = SIGSEGV: an out-of-bounds read)\n{out.stderr[-3000:]}"
    assert int(out.stdout.split()[-1]) > 0
