"""The LSTM time loops' recurrent GEMMs over several K blocks (csrc/cpu/lstm/lstm_gemm.cpp): the
forward's K = H and the backward's K = 4H cut into blocks of the packed weights (256 on AVX-512
float32, a ragged last one), each block run over every tile before the next, at 1 and 2 threads,
against the float64 reference and torch, every ISA's copy."""

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from helpers import assert_close, run_with_isa
from reference import lstm_backward_ref, lstm_ref

# (T, B, I, H): H past one K block on every ISA (AVX-512 256, AVX2 384 floats) with a ragged last
# block; B odd (one thread's row panels, per-step split) and B = 16 (rows split between threads).
CASES = [(3, 5, 7, 401), (2, 16, 3, 290), (2, 9, 11, 520)]


def _inputs(rng, T, B, I, H, dtype):
    k = 1 / np.sqrt(H)
    w = [rng.uniform(-k, k, s).astype(dtype) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0, c0 = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    up = [rng.standard_normal(s).astype(dtype) for s in ((T, B, H), (B, H), (B, H))]
    return x, h0, c0, w, up


def _run(threads, x, h0, c0, w, up):
    dk.set_num_threads(threads)
    out, ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
    return list(out) + list(dk.lstm(x, h0, c0, *w)) + list(dk.lstm_backward(ctx, *up))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_recurrent_gemm_over_k_blocks(case, dtype, rng):
    T, B, I, H = case
    x, h0, c0, w, up = _inputs(rng, T, B, I, H, dtype)
    n, mode = dk.get_num_threads(), _cpu._contention()["mode"]
    try:
        _cpu._set_contention("off")
        two, one = _run(2, x, h0, c0, w, up), _run(1, x, h0, c0, w, up)
    finally:
        dk.set_num_threads(n)
        _cpu._set_contention(mode)
    ry, rh, rc, cache = lstm_ref(x, h0, c0, *w)
    want = [ry, rh, rc, ry, rh, rc, *lstm_backward_ref(cache, *up)]
    for i, (a, b, r) in enumerate(zip(two, one, want)):
        assert (a is None) == (r is None), i
        if a is not None:
            assert_close(a, r, dtype, what=f"{case} output {i} vs reference")
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{case} output {i}: 2 vs 1 thread"

    m = torch.nn.LSTM(I, H).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for p, v in zip(m.parameters(), w):
            p.copy_(torch.from_numpy(v))
    tx = torch.tensor(x, requires_grad=True)
    ty, (thT, tcT) = m(tx, (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    torch.autograd.backward([ty, thT[0], tcT[0]], [torch.from_numpy(u) for u in up])
    assert_close(one[0], ty, dtype, what=f"{case} y vs torch")
    assert_close(one[2], tcT[0], dtype, what=f"{case} cT vs torch")
    assert_close(one[6], tx.grad, dtype, what=f"{case} dx vs torch")
    assert_close(one[10], m.weight_hh_l0.grad, dtype, what=f"{case} dw_hh vs torch")


_ISA_SCRIPT = """
import sys
import numpy as np, deepkern as dk
sys.path.insert(0, {tests!r})
from helpers import assert_close
from reference import lstm_ref, lstm_backward_ref
dk._cpu._set_contention("off")
rng = np.random.default_rng(11)
for T, B, I, H in ((3, 5, 7, 401), (2, 16, 3, 290)):
    for dt in (np.float32, np.float64):
        k = 1 / np.sqrt(H)
        w = [rng.uniform(-k, k, s).astype(dt) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
        x = rng.standard_normal((T, B, I)).astype(dt)
        h0, c0 = (rng.standard_normal((B, H)).astype(dt) for _ in range(2))
        up = [rng.standard_normal(s).astype(dt) for s in ((T, B, H), (B, H), (B, H))]
        res = []
        for nt in (2, 1):
            dk.set_num_threads(nt)
            out, ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
            res.append(list(out) + list(dk.lstm_backward(ctx, *up)))
        for a, b in zip(*res):
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (T, B, H, dt)
        ry, rh, rc, cache = lstm_ref(x, h0, c0, *w)
        for a, r in zip(res[0], [ry, rh, rc, *lstm_backward_ref(cache, *up)]):
            assert_close(a, r, dt, what=str((T, B, I, H, dt)))
print(dk._cpu.isa())
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_recurrent_gemm_over_k_blocks_on_every_isa(isa):
    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in (isa, "generic")
