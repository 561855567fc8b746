"""A quick self-check of every available backend: each kernel against a tiny numpy formula,
plus a short timing table. Used by `python -m deepkern --selfcheck`."""
import time

import numpy as np

from . import _backend
from . import functional as F


def _check_pooling(xp):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    x = xp.asarray(x_np)
    want_max = x_np.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5))
    want_avg = x_np.reshape(2, 3, 3, 2, 3, 2).mean(axis=(3, 5))
    got_max, ctx = F.max_pool2d(x, 2, return_ctx=True)
    (dx,) = F.max_pool2d_backward(ctx, xp.ones_like(got_max))
    got_avg = F.avg_pool2d(x, 2)
    to_np = (lambda a: a.get()) if xp is not np else np.asarray
    ok = (
        np.allclose(to_np(got_max), want_max, atol=1e-6)
        and np.allclose(to_np(got_avg), want_avg, atol=1e-6)
        and float(to_np(dx).sum()) == got_max.size
    )
    return ok


def _time(fn, repeats=10):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def run(print_fn=print):
    backends = [("cpu", np)]
    if _backend.cuda_available():
        import cupy

        backends.append(("cuda", cupy))
    all_ok = True
    print_fn(f"deepkern self-check (CPU kernels: {_backend._cpu.isa()}, {_backend.get_num_threads()} threads; "
             f"CUDA module: {'built' if _backend._cuda is not None else 'not built'}, "
             f"GPU usable: {_backend.cuda_available()})")
    for name, xp in backends:
        ok = _check_pooling(xp)
        all_ok &= ok
        print_fn(f"  {name:5s} pooling forward/backward ........ {'ok' if ok else 'FAILED'}")
    x = np.random.default_rng(1).standard_normal((32, 64, 64, 64)).astype(np.float32)
    print_fn("\n  op                            shape              ms      GB/s")
    for label, fn, nbytes in [
        ("max_pool2d 2x2 forward", lambda: F.max_pool2d(x, 2), x.nbytes * 1.25 + x.nbytes / 4 * 2),
        ("avg_pool2d 2x2 forward", lambda: F.avg_pool2d(x, 2), x.nbytes * 1.25),
    ]:
        t = _time(fn)
        print_fn(f"  {label:29s} {'32x64x64x64 f32':18s} {t * 1e3:6.2f} {nbytes / t / 1e9:8.1f}")
    return all_ok
