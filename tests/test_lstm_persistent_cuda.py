"""The CUDA LSTM's two recurrences, each forced by DEEPKERN_LSTM_PERSISTENT: the persistent
cooperative kernel (=1) and the per-step launches replayed as a graph (=0), against each other,
the CPU backend and the float64 reference, outputs and every gradient; the fit rule as the
binding reports it; the step graph's replay with changed contents and changed pointers.

Marked `cuda` (the simulator in CI; a GPU where there is one). Outputs are NaN-poisoned.
"""

import os
import subprocess
import sys

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, assert_rel_norm
from reference import lstm_backward_ref, lstm_ref
from test_lstm import GRAD_NAMES, _upstream, _weights

pytestmark = pytest.mark.cuda

# (T, B, I, H, bias, state, upstream): T = 1; odd B and H; I != H; H not a multiple of the 4 units
# of a block nor of the 32-wide K tile; B over the 64 rows of one pass (two passes).
CASES = [
    (1, 1, 1, 1, "both", True, "all"),
    (4, 3, 5, 7, "none", True, "all"),
    (3, 2, 6, 12, "ih", False, "y"),
    (2, 5, 33, 37, "both", True, "state"),
    (3, 67, 4, 5, "hh", True, "all"),
]
CODES = {np.float32: 0, np.float64: 1, np.float16: 2}  # csrc/common/dtype.h


def lstm_params(T, B, I, H):  # noqa: E741
    """The LstmParams dict the CUDA binding reads by field name."""
    return {"T": T, "B": B, "I": I, "H": H}


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


def _module():
    from deepkern import _backend

    return _backend._cuda


def _run(cp, monkeypatch, path, x, h0, c0, w, upstream):
    monkeypatch.setenv("DEEPKERN_LSTM_PERSISTENT", path)
    dev = lambda a: None if a is None else cp.asarray(a)  # noqa: E731
    args = [dev(a) for a in (x, h0, c0, *w)]
    kept = [None if a is None else a.copy() for a in args]
    (y, hT, cT), ctx = dk.lstm(*args, return_ctx=True)
    y_inf = dk.lstm(*args)[0]
    np.testing.assert_array_equal(y_inf.get(), y.get(), err_msg=f"path {path}: inference y != training y")
    grads = dk.lstm_backward(ctx, *[dev(a) for a in upstream])
    for a, b in zip(args, kept):
        if a is not None:
            np.testing.assert_array_equal(a.get(), b.get(), err_msg="an input was modified")
    return (y, hT, cT) + tuple(grads)


def _compare(name, got, want, dtype):
    if want is None:
        assert got is None, f"{name}: expected None"
        return
    assert got is not None and got.dtype == dtype, name
    if dtype == np.float16:
        assert_rel_norm(got, want, 1e-2, what=name)
    else:
        assert_close(got, want, dtype, what=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", CASES)
def test_persistent_and_step_paths_match_references(cp, monkeypatch, case, dtype, rng):
    T, B, I, H, bias, with_state, which = case
    shape = lstm_params(T, B, I, H)
    mod = _module()
    for backward in (False, True):
        monkeypatch.setenv("DEEPKERN_LSTM_PERSISTENT", "1")
        assert mod.lstm_path(shape, CODES[dtype], backward)["persistent"]
        monkeypatch.setenv("DEEPKERN_LSTM_PERSISTENT", "0")
        assert not mod.lstm_path(shape, CODES[dtype], backward)["persistent"]
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c0 = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    w = _weights(rng, I, H, bias, dtype)
    up = _upstream(rng, T, B, H, which, dtype)
    y_r, hT_r, cT_r, cache = lstm_ref(x, h0, c0, *w)
    want = (y_r, hT_r, cT_r) + tuple(lstm_backward_ref(cache, *up))
    names = ("y", "hT", "cT") + GRAD_NAMES
    persistent = _run(cp, monkeypatch, "1", x, h0, c0, w, up)
    step = _run(cp, monkeypatch, "0", x, h0, c0, w, up)
    for n, p, s, r in zip(names, persistent, step, want):
        _compare(f"{n} (persistent)", p, r, dtype)
        _compare(f"{n} (per-step)", s, r, dtype)
        if r is not None:
            _compare(f"{n} (persistent vs per-step)", p, s.get().astype(np.float64), dtype)
    if dtype == np.float32:
        (yc, hTc, cTc), ctx = dk.lstm(x, h0, c0, *w, return_ctx=True)
        cpu = (yc, hTc, cTc) + tuple(dk.lstm_backward(ctx, *up))
        for n, p, c in zip(names, persistent, cpu):
            if c is not None:
                assert_close(p, c, np.float32, what=f"{n} persistent vs CPU")


def test_fit_rule_and_forcing(cp, monkeypatch):
    mod = _module()
    monkeypatch.delenv("DEEPKERN_LSTM_PERSISTENT", raising=False)
    small = mod.lstm_path(lstm_params(256, 64, 512, 512), CODES[np.float32])
    assert small["persistent"] and small["fits"] and small["blocks"] == 128, small
    assert small["blocks"] <= small["sms"] * small["blocks_per_sm"]
    big = mod.lstm_path(lstm_params(2, 2, 8, 4096), CODES[np.float32])  # 256 KiB of W_hh per block
    assert not big["fits"] and not big["persistent"] and "shared memory" in big["why"], big
    wide = mod.lstm_path(lstm_params(2, 2, 8, 2048), CODES[np.float16], True)  # 512 blocks, too many
    assert not wide["fits"] and "co-resident" in wide["why"], wide
    assert not mod.lstm_path(lstm_params(2, 2, 8, 8), CODES[np.float64])["persistent"]  # float64: per-step only
    monkeypatch.setenv("DEEPKERN_LSTM_PERSISTENT", "1")
    with pytest.raises(RuntimeError, match="DEEPKERN_LSTM_PERSISTENT=1 but the persistent kernel does not fit"):
        mod.lstm_path(lstm_params(2, 2, 8, 4096), CODES[np.float32])
    monkeypatch.setenv("DEEPKERN_LSTM_PERSISTENT", "yes")
    with pytest.raises(ValueError, match="DEEPKERN_LSTM_PERSISTENT='yes'"):
        dk.lstm(cp.zeros((1, 1, 2), np.float32), None, None, cp.zeros((4, 2), np.float32), cp.zeros((4, 1), np.float32))


@pytest.mark.parametrize("graphs", ["0", "1"])
def test_step_graph_replays_new_contents_and_new_pointers(cp, monkeypatch, rng, graphs):
    """Same buffers with new contents (a cached graph's replay), then new buffers (re-capture)."""
    monkeypatch.setenv("DEEPKERN_LSTM_PERSISTENT", "0")
    monkeypatch.setenv("DEEPKERN_CUDA_GRAPHS", graphs)
    T, B, I, H = 3, 2, 3, 5
    shape = lstm_params(T, B, I, H)
    f32 = np.float32
    out = [cp.full(s, np.nan, f32) for s in ((T, B, H), (B, H), (B, H), (T * B, 4 * H), (2, B, H))]
    x, h0, c0 = cp.zeros((T, B, I), f32), cp.zeros((B, H), f32), cp.zeros((B, H), f32)
    w_ih, w_hh = cp.zeros((4 * H, I), f32), cp.zeros((4 * H, H), f32)
    mod = _module()
    for trial in range(3):
        vals = [rng.standard_normal(a.shape).astype(f32) * 0.5 for a in (x, h0, c0, w_ih, w_hh)]
        for a, v in zip((x, h0, c0, w_ih, w_hh), vals):
            a[...] = cp.asarray(v)
        if trial == 2:  # new output pointers for the same shape
            out = [cp.full(o.shape, np.nan, f32) for o in out]
        y, hT, cT, proj, cbuf = out
        p = lambda a: a.data.ptr  # noqa: E731
        mod.lstm_forward(
            shape, CODES[f32], p(x), p(h0), p(c0), p(w_ih), p(w_hh), None, None, p(y), p(hT), p(cT),
            None, None, None, p(proj), p(cbuf), cp.cuda.get_current_stream().ptr,
        )  # fmt: skip
        y_r, hT_r, cT_r, _ = lstm_ref(*vals[:3], vals[3], vals[4], None, None)
        for n, g, r in (("y", y, y_r), ("hT", hT, hT_r), ("cT", cT, cT_r)):
            assert_close(g, r, f32, what=f"{n}, call {trial}")


def test_binding_names_and_required_arrays(cp):
    mod = _module()
    assert "params" in mod.lstm_forward.__doc__ and "stream" in mod.lstm_backward.__doc__
    with pytest.raises(ValueError, match="'x' is required"):
        mod.lstm_forward(
            params=lstm_params(1, 1, 1, 1), dtype=1, x=0, h0=None, c0=None, w_ih=1, w_hh=1, b_ih=None,
            b_hh=None, y=1, hT=1, cT=1, gates=None, xh=None, cs=None, proj=1, cbuf=1, stream=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="missing field 'T'"):
        mod.lstm_path({"B": 1, "I": 1, "H": 1}, 1)


_ORDER_SCRIPT = r"""
import os, numpy as np, cupy as cp, deepkern as dk
from reference import lstm_ref, lstm_backward_ref
from helpers import assert_close
os.environ["DEEPKERN_LSTM_PERSISTENT"] = "1"
rng = np.random.default_rng(11)
T, B, I, H = 3, 5, 4, 9
x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
w_ih, w_hh, b = rng.standard_normal((4*H, I)) * .3, rng.standard_normal((4*H, H)) * .3, rng.standard_normal(4*H) * .1
dy, dhT, dcT = rng.standard_normal((T, B, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
y_r, hT_r, cT_r, cache = lstm_ref(x, h0, c0, w_ih, w_hh, b, None)
gr = lstm_backward_ref(cache, dy, dhT, dcT)
f = lambda a: cp.asarray(a.astype(np.float32))
(y, hT, cT), ctx = dk.lstm(*[f(a) for a in (x, h0, c0, w_ih, w_hh, b)], return_ctx=True)
g = dk.lstm_backward(ctx, f(dy), f(dhT), f(dcT))
for n, a, e in zip("y hT cT dx dh0 dc0 dw_ih dw_hh db".split(), (y, hT, cT) + g[:6], (y_r, hT_r, cT_r) + gr[:6]):
    assert_close(a, e, np.float32, what=n)
print("ok")
"""

_MISUSE_SCRIPT = r"""
import numpy as np, deepkern._cuda_sim as sim
x = np.arange(32, dtype=np.float32); y = np.zeros(32, np.float32)
for name in ("grid_neighbour_not_cooperative", "grid_early_exit"):
    try:
        sim._simt_selftest(name, 4, 8, 0, x.ctypes.data, y.ctypes.data, 8)
    except RuntimeError as e:
        print(name, "raised:", str(e)[:80])
    else:
        raise SystemExit(name + " did not raise")
print("ok")
"""


def _sim_subprocess(script, order):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, DEEPKERN_SIM_ORDER=order)
    inherited = [os.path.abspath(d) for d in env.get("PYTHONPATH", "").split(os.pathsep) if d]
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(here, "cupy_standin"), here] + inherited)
    return subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=here, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("order", ["reversed", "random:5"])
def test_persistent_in_other_thread_orders(order):
    if os.environ.get("DEEPKERN_CUDA_SIM") != "1":
        pytest.skip("thread orders are a simulator setting (DEEPKERN_CUDA_SIM=1)")
    r = _sim_subprocess(_ORDER_SCRIPT, order)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_grid_sync_misuse_raises_instead_of_hanging():
    """A grid_sync outside a cooperative launch, or one a block skips, is an error, in bounded time."""
    if os.environ.get("DEEPKERN_CUDA_SIM") != "1":
        pytest.skip("a simulator check (DEEPKERN_CUDA_SIM=1)")
    r = _sim_subprocess(_MISUSE_SCRIPT, "ascending")  # a hang would be a TimeoutExpired here
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
