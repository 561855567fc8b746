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


def test_shrunk_teams_give_the_same_bits(tmp_path):
    """On a busy machine a region's team shrinks to the calling thread (team(), csrc/cpu/common/
    contention.cpp) while the work keeps its split into `logical` slots: every op, thread-count
    invariant or not, gives the same bits with teams forced to 1 as with full teams, with every
    region threaded so the split reductions (conv dw, attention dq, GEMM rectangles) are exercised."""
    files = {}
    for mode in ("off", "force"):
        path = tmp_path / f"out_{mode}.npz"
        code = _RUN_ALL.replace("sys.argv[1]", repr(str(path)))
        assert int(_in_subprocess(code, DEEPKERN_PARALLEL_MIN_US="0", DEEPKERN_CONTENTION=mode)) > 0
        files[mode] = np.load(path)
    ref, got = files["off"], files["force"]
    assert set(got.files) == set(ref.files) and len(ref.files) > 20
    for key in ref.files:
        a, b = ref[key], got[key]
        assert not np.isnan(a).any(), key
        assert a.dtype == b.dtype and a.shape == b.shape, key
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{key}: bits differ with teams of 1"


def test_contention_modes():
    state = _cpu._contention()
    assert state["mode"] in ("auto", "off", "force")
    before = state["mode"]
    try:
        _cpu._set_contention("force")
        assert _cpu._team(4) == 1 and _cpu._team(1) == 1
        _cpu._set_contention("off")
        assert _cpu._team(4) == 4
        _cpu._set_contention("auto")
        assert _cpu._team(3) in (1, 3)
        with pytest.raises(ValueError, match="mode must be"):
            _cpu._set_contention("sometimes")
    finally:
        _cpu._set_contention(before)


@pytest.mark.parametrize("value,want", [("off", "off"), ("force", "force"), ("auto", "auto"), ("", "auto")])
def test_contention_environment(value, want):
    got = _in_subprocess("from deepkern import _cpu; print(_cpu._contention()['mode'])", DEEPKERN_CONTENTION=value)
    assert got == want


def test_bad_contention_environment_warns():
    code = "import warnings; warnings.simplefilter('error'); import deepkern"
    full = {**os.environ, "DEEPKERN_CONTENTION": "maybe", "PYTHONPATH": os.pathsep.join([HERE, *sys.path])}
    r = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "DEEPKERN_CONTENTION" in r.stderr and "'maybe'" in r.stderr


def test_busy_detection_reads_the_scheduler():
    """On Linux the calling thread's run-queue wait is readable; the share is a fraction of time."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the scheduler's per-thread statistics are a Linux file")
    state = _cpu._contention()
    assert state["available"] is True
    assert 0.0 <= state["share"] <= 1.5


_CONV_CASES = """
import sys, numpy as np, deepkern as dk
from deepkern import _cpu
import deepkern.functional.conv as C
dk.set_num_threads(2)
cases = [  # (x shape, w shape, stride, padding, groups): each names the lowering it takes in its comment
    ((4, 32, 24, 24), (32, 32, 3, 3), 1, 1, 1),  # Winograd 3x3: forward, dx, dw
    ((4, 32, 20, 20), (32, 32, 5, 5), 1, 2, 1),  # Winograd 5x5
    ((4, 16, 21, 21), (16, 16, 3, 3), 2, 1, 1),  # shifted stride 2, per-slot dw rows
    ((2, 3, 40, 40), (16, 3, 7, 7), 2, 3, 1),  # the stem's column strides
    ((4, 32, 16, 16), (64, 32, 1, 1), 2, 0, 1),  # 1x1 stride 2, tiles in place
    ((1, 32, 22, 22), (32, 32, 3, 3), 2, 1, 1),  # one sample: dw on the threaded GEMM
    ((2, 32, 24, 24), (32, 32, 3, 3), 2, 1, 1),  # stride 2, 144 outputs: dw by positions as rows
    ((2, 128, 28, 28), (128, 16, 3, 3), 1, 1, 8),  # grouped: Winograd per group
    ((4, 64, 28, 28), (64, 8, 3, 3), 1, 1, 8),  # grouped: shifted
    ((4, 16, 20, 20), (16, 1, 3, 3), 2, 1, 16),  # depthwise
    ((8, 16, 4, 4), (32, 16, 3, 3), 1, 1, 1),  # im2col of whole small planes
    ((8, 16, 12, 12), (32, 16, 3, 3), 1, 1, 1),  # unfolded
]
out, plans = {}, set()
for i, (xs, ws, s, p, g) in enumerate(cases):
    rng = np.random.default_rng(i)
    x, w, b = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32), rng.standard_normal(ws[0]).astype(np.float32)
    params, _ = C._conv_params("conv2d", x, w, None, s, p, 1, g)
    plans.update(_cpu.conv2d_plan(params, "float32", 2).values())
    y, ctx = dk.conv2d(x, w, b, stride=s, padding=p, groups=g, return_ctx=True)
    dx, dw, db = dk.conv2d_backward(ctx, rng.standard_normal(y.shape).astype(np.float32))
    out.update({f"{i}/y": y, f"{i}/dx": dx, f"{i}/dw": dw, f"{i}/db": db})
np.savez(sys.argv[1], **out)
print(",".join(sorted(plans)))
"""


def test_conv_lowerings_give_the_same_bits_with_teams_of_one(tmp_path):
    """Every conv2d lowering (Winograd 3x3/5x5/grouped, shifted with its stride-2 and in-place
    variants, positions as rows, depthwise, im2col planes, unfolded) gives the same bits with teams forced to 1 as
    with full teams, every region threaded: their split reductions follow logical slots."""
    files, plans = {}, None
    for mode in ("off", "force"):
        path = tmp_path / f"conv_{mode}.npz"
        plans = _in_subprocess(
            _CONV_CASES.replace("sys.argv[1]", repr(str(path))), DEEPKERN_PARALLEL_MIN_US="0", DEEPKERN_CONTENTION=mode
        )
        files[mode] = np.load(path)
    assert {"winograd", "shifted", "shifted_rows", "shifted_gemm", "depthwise", "im2col_planes", "posrows"} <= set(
        plans.split(",")
    ), plans
    for key in files["off"].files:
        a, b = files["off"][key], files["force"][key]
        assert np.isfinite(a).all(), key
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{key}: bits differ with teams of 1"


def test_every_parallel_region_asks_team():
    """Every `#pragma omp parallel` of the CPU kernels sizes its team through team() (parallel.h):
    a region that does not would keep full teams on a busy machine."""
    root = os.path.join(HERE, "..", "csrc", "cpu")
    if not os.path.isdir(root):
        pytest.skip("the C++ sources are not next to the tests (installed copy)")
    missing, regions = [], 0
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.join(folder, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for i, line in enumerate(lines):
                if line.lstrip().startswith("#pragma omp parallel"):
                    regions += 1
                    pragma = line
                    while pragma.rstrip().endswith("\\"):  # continued on the next line (clang-format)
                        i += 1
                        pragma = pragma.rstrip()[:-1] + lines[i]
                    if "num_threads(team(" not in pragma.replace(" ", ""):
                        missing.append(f"{os.path.relpath(path, root)}:{i + 1}")
    assert regions > 30
    assert not missing, f"regions without team(): {missing}"


def test_warm_threshold_is_below_the_parallel_one():
    """Modest calls (between the two thresholds) split their work over every thread; smaller ones stay whole."""
    assert 0 < _cpu._warm_min_us() < _cpu._parallel_min_us()


@pytest.mark.parametrize("value,want", [("0", 0.0), ("40", 40.0), ("", None), ("junk", None)])
def test_warm_environment_override(value, want):
    got = float(
        _in_subprocess("from deepkern import _cpu; print(_cpu._warm_min_us())", DEEPKERN_PARALLEL_WARM_US=value)
    )
    assert got == (want if want is not None else _cpu._warm_min_us())


@pytest.fixture
def modest_gemm(threads):
    """Operands of a GEMM just above the warm threshold (the tests check that it counts as modest),
    its result, and a fresh output; 2 threads, contention detection off (only the warm rule decides)."""
    threads(2)
    n = 4 + next(n for n in range(8, 400) if _cpu._threads_for(2.0 * n**3, 0.0) > 1)
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    before = _cpu._contention()["mode"]
    _cpu._set_contention("off")
    try:
        ref = np.zeros((n, n), np.float32)
        _cpu.gemm(a, b, ref)
        yield a, b, ref, np.zeros_like(ref)
    finally:
        _cpu._set_contention(before)


def _same_bits(x, y):
    return np.array_equal(x.view(np.uint8), y.view(np.uint8))


def test_modest_calls_after_a_pause_run_alone(modest_gemm):
    """A modest call that finds the workers asleep (no team region, no call, for a millisecond) runs on
    the calling thread alone, and gives the bits it gives with a team."""
    import time

    a, b, ref, c = modest_gemm
    c0 = _cpu._warm_counts()
    for _ in range(20):
        time.sleep(0.002)
        c[:] = np.nan
        _cpu.gemm(a, b, c)
        assert _same_bits(c, ref)
    c1 = _cpu._warm_counts()
    assert c1["modest_calls"] - c0["modest_calls"] == 20
    assert c1["with_team"] == c0["with_team"]


def test_modest_calls_back_to_back_run_teams(modest_gemm):
    """A loop of modest calls, each right after the last, runs teams (the first wake-up is repaid by
    the next calls), with the same bits as the calls that ran alone."""
    a, b, ref, c = modest_gemm
    c0 = _cpu._warm_counts()
    for _ in range(200):
        _cpu.gemm(a, b, c)
    c1 = _cpu._warm_counts()
    assert c1["modest_calls"] - c0["modest_calls"] == 200
    assert c1["with_team"] - c0["with_team"] > 0
    assert _same_bits(c, ref)
