"""`python -m deepkern --selfcheck`: every op family on every backend present, as a table.

Backends: each CPU ISA path this CPU can run (generic, avx2, avx512; each in its own process, since
the ISA is chosen once per process with DEEPKERN_CPU_ISA), the CUDA module on a GPU when one is
usable, and the SIMT simulator (deepkern._cuda_sim) when it was built and the cupy stand-in of a
source checkout is at hand. On the CPU each forward is compared with a plain numpy formula in
float64 and each backward with a central finite difference of sum(y * g) along a random direction;
on a CUDA backend each result (float32) is compared with the CPU backend's float64 result.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

from . import _backend
from . import functional as F

_RNG_SEED = 1234


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _conv_ref(x, w, b, stride, pad):
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    y = np.empty((N, K, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            y[:, :, i, j] = np.einsum("nchw,kchw->nk", patch, w) + b
    return y


def _lstm_cell_ref(x, h, c, w_ih, w_hh, b_ih, b_hh):
    z = x @ w_ih.T + h @ w_hh.T + b_ih + b_hh
    i, f, g, o = np.split(z, 4, axis=-1)
    c1 = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c1), c1


def _lstm_ref(x, h, c, *w):
    ys = []
    for t in range(x.shape[0]):
        h, c = _lstm_cell_ref(x[t], h, c, *w)
        ys.append(h)
    return np.stack(ys), h, c


def _sdpa_ref(q, k, v, causal):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ v


def _cases(rng):
    """Op family -> (inputs, forward(*inputs) -> tuple of outputs, backward(ctx, grads) -> grads,
    numpy reference(*inputs) -> tuple of outputs). Shapes are tiny and a little odd on purpose."""
    n = rng.standard_normal
    x4 = n((2, 3, 7, 6))
    lstm_w = (n((8, 3)) * 0.5, n((8, 2)) * 0.5, n(8) * 0.1, n(8) * 0.1)
    return {
        "conv2d": (
            (x4, n((4, 3, 3, 3)), n(4)),
            lambda x, w, b: (F.conv2d(x, w, b, stride=2, padding=1, return_ctx=True),),
            F.conv2d_backward,
            lambda x, w, b: (_conv_ref(x, w, b, 2, 1),),
        ),
        "max_pool2d": (
            (x4,),
            lambda x: (F.max_pool2d(x, 2, return_ctx=True),),
            F.max_pool2d_backward,
            lambda x: (x[:, :, :6, :6].reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)),),
        ),
        "avg_pool2d": (
            (x4,),
            lambda x: (F.avg_pool2d(x, 2, return_ctx=True),),
            F.avg_pool2d_backward,
            lambda x: (x[:, :, :6, :6].reshape(2, 3, 3, 2, 3, 2).mean(axis=(3, 5)),),
        ),
        "lstm_cell": (
            (n((3, 3)), n((3, 2)), n((3, 2))) + lstm_w,
            lambda *a: (F.lstm_cell(*a, return_ctx=True),),
            F.lstm_cell_backward,
            _lstm_cell_ref,
        ),
        "lstm": (
            (n((4, 3, 3)), n((3, 2)), n((3, 2))) + lstm_w,
            lambda *a: (F.lstm(*a, return_ctx=True),),
            F.lstm_backward,
            _lstm_ref,
        ),
        "scaled_dot_product_attention": (
            (n((2, 5, 4)), n((2, 6, 4)), n((2, 6, 3))),
            lambda q, k, v: (F.scaled_dot_product_attention(q, k, v, is_causal=True, return_ctx=True),),
            F.scaled_dot_product_attention_backward,
            lambda q, k, v: (_sdpa_ref(q, k, v, True),),
        ),
    }


def _as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


def _run_op(forward, backward, inputs, grads):
    """Forward, then backward with the given output gradients: (outputs, input gradients)."""
    ((out, ctx),) = forward(*inputs)
    outs = _as_tuple(out)
    return outs, backward(ctx, *grads[: len(outs)])


def _check_cpu(name, case, rng):
    """Forward against the numpy formula; backward against a finite difference (both float64)."""
    inputs, forward, backward, ref = case
    outs = _as_tuple(forward(*inputs)[0][0])
    want = ref(*inputs)
    err = max(float(np.max(np.abs(o - w))) for o, w in zip(outs, want))
    grads = tuple(rng.standard_normal(o.shape) for o in outs)
    _, dins = _run_op(forward, backward, inputs, grads)
    dirs = [rng.standard_normal(a.shape) for a in inputs]
    eps = 1e-6

    def objective(sign):
        shifted = [a + sign * eps * d for a, d in zip(inputs, dirs)]
        return sum(float((o * g).sum()) for o, g in zip(_as_tuple(forward(*shifted)[0][0]), grads))

    numeric = (objective(1) - objective(-1)) / (2 * eps)
    analytic = sum(float((d * g).sum()) for d, g in zip(dirs, dins) if g is not None)
    grad_err = abs(numeric - analytic) / max(1.0, abs(numeric))
    return err < 1e-9 and grad_err < 1e-6, max(err, grad_err)


def _check_device(name, case, xp, rng):
    """float32 on the device against the CPU backend in float64, forward and backward."""
    inputs, forward, backward, _ = case
    grads = tuple(rng.standard_normal(o.shape) for o in _as_tuple(forward(*inputs)[0][0]))
    want_outs, want_dins = _run_op(forward, backward, inputs, grads)
    dev = [xp.asarray(a.astype(np.float32)) for a in inputs]
    outs, dins = _run_op(forward, backward, dev, tuple(xp.asarray(g.astype(np.float32)) for g in grads))
    pairs = list(zip(outs, want_outs)) + [(g, w) for g, w in zip(dins, want_dins) if w is not None]
    err = max(
        float(np.max(np.abs(xp.asnumpy(g).astype(np.float64) - w)) / max(1.0, np.max(np.abs(w)))) for g, w in pairs
    )
    return err < 1e-4, err


def check_backend(backend):
    """{op family: (ok, error, ms)} for one backend of this process ("cpu", "cuda" or "sim")."""
    results = {}
    rng = np.random.default_rng(_RNG_SEED)
    xp = None if backend == "cpu" else __import__("cupy")
    for name, case in _cases(rng).items():
        t0 = time.perf_counter()
        try:
            ok, err = _check_cpu(name, case, rng) if xp is None else _check_device(name, case, xp, rng)
        except NotImplementedError as e:
            results[name] = (None, str(e), 0.0)
            continue
        except Exception as e:  # a self-check reports, it does not stop at the first failure
            results[name] = (False, f"{type(e).__name__}: {e}", 0.0)
            continue
        results[name] = (bool(ok), err, (time.perf_counter() - t0) * 1e3)
    return results


def _cpu_isas():
    order = ["generic", "avx2", "avx512"]
    best = _backend._cpu.isa()
    return order[: order.index(best) + 1] if best in order else [best]


def _standin_path():
    """tests/cupy_standin of a source checkout, or None for an installed package."""
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.path.dirname(os.path.dirname(here)), os.getcwd()):
        path = os.path.join(root, "tests", "cupy_standin")
        if os.path.isdir(path):
            return path
    return None


def _in_subprocess(backend, env):
    code = f"import json, deepkern._selfcheck as s; print('SELFCHECK' + json.dumps(s.check_backend({backend!r})))"
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p
        for p in [
            env.get("PYTHONPATH"),
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            os.environ.get("PYTHONPATH"),
        ]
        if p
    )
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith("SELFCHECK"):
            return {k: tuple(v) for k, v in json.loads(line[len("SELFCHECK") :]).items()}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {name: (False, f"process failed: {tail[0]}", 0.0) for name in _cases(np.random.default_rng(0))}


def _backends():
    """(column label, how to run it) for every backend present."""
    found = [(f"cpu:{isa}", ("cpu", {"DEEPKERN_CPU_ISA": isa})) for isa in _cpu_isas()]
    if _backend.cuda_available():
        found.append(("cuda", ("cuda", None)))
    sim_built = any(f.startswith("_cuda_sim") for f in os.listdir(os.path.dirname(os.path.abspath(__file__))))
    standin = _standin_path()
    if sim_built and standin:
        found.append(("simulator", ("cuda", {"DEEPKERN_CUDA_SIM": "1", "PYTHONPATH": standin})))
    return found, sim_built, standin


def run(print_fn=print):
    backends, sim_built, standin = _backends()
    print_fn(
        f"deepkern self-check: CPU {_backend._cpu.isa()} ({_backend.get_num_threads()} threads); "
        f"CUDA module {'built' if _backend._cuda is not None else 'not built'}, "
        f"GPU usable: {_backend.cuda_available()}; simulator "
        + ("built" if sim_built else "not built")
        + ("" if standin or not sim_built else " (no cupy stand-in: source checkout only)")
    )
    columns = {}
    for label, (backend, env) in backends:
        columns[label] = check_backend(backend) if env is None else _in_subprocess(backend, env)
    names = list(_cases(np.random.default_rng(0)))
    width = max(len(n) for n in names)
    print_fn("  " + "op family".ljust(width) + "".join(f"  {c:>16s}" for c in columns))
    all_ok = True
    for name in names:
        cells = []
        for col in columns.values():
            ok, err, ms = col[name]
            if ok is None:
                cells.append("not on backend")
            else:
                all_ok &= bool(ok)
                cells.append(f"ok (err {err:.0e})" if ok else "FAILED")
        print_fn("  " + name.ljust(width) + "".join(f"  {c:>16s}" for c in cells))
    for label, col in columns.items():
        for name, (ok, err, _) in col.items():
            if ok is False:
                print_fn(f"  {label} {name}: {err}")
    print_fn("all checks passed" if all_ok else "SOME CHECKS FAILED")
    return all_ok
