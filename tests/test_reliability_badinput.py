"""Bad input, odd input and edge values for every public functional op (see docs/RELIABILITY.md).

Every row either raises the documented exception (ValueError / TypeError naming the op and the
argument) or returns the correct result; no row may crash, hang, allocate absurdly or modify
an input. The per-op knowledge lives in reliability_ops.py; the rows here are generic.
"""

import os
import subprocess
import sys
import textwrap

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close
from reference import conv2d_backward_ref
from reliability_ops import ALL_SPECS, spec_params

SPECS = spec_params(pytest)


def _copy(kw):
    return {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}


def _assert_unchanged(kw, before):
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(v, before[k], equal_nan=v.dtype.kind in "fc"), f"input '{k}' was modified"


def _bitwise_equal(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        if u is None or v is None:
            assert u is None and v is None, f"{what}[{i}]"
            continue
        assert u.dtype == v.dtype and u.shape == v.shape, f"{what}[{i}]: {u.dtype}{u.shape} vs {v.dtype}{v.shape}"
        assert np.array_equal(u.view(np.uint8), v.view(np.uint8)), f"{what}[{i}]: results differ bitwise"


def _grads(spec, outs, rng):
    return [rng.standard_normal(s).astype(outs[0].dtype) for s in spec.grad_shapes(outs)]


def _run_both(spec, kw, rng_seed=0):
    """forward outputs and input grads of one call (grads seeded so two runs see the same dy)."""
    outs, ctx = spec.forward_ctx(kw)
    grads = _grads(spec, outs, np.random.default_rng(rng_seed))
    return outs, spec.backward(ctx, grads)


# ----------------------------------------------------------------------------- op-specific rows

_ROWS = [
    pytest.param(
        spec,
        fn,
        exc,
        match,
        id=f"{spec.name}-{rid}",
        marks=() if spec.available() else pytest.mark.skip(reason=f"dk.{spec.name} not in this build"),
    )
    for spec in ALL_SPECS
    for rid, fn, exc, match in spec.bad_calls()
]


@pytest.mark.parametrize("spec, mutate, exc, match", _ROWS)
def test_bad_call_raises_documented_error(spec, mutate, exc, match, rng):
    kw = spec.make(rng, np.float32)
    bad = mutate(kw)
    before = _copy(bad)
    with pytest.raises(exc, match=match):
        spec.call(bad)
    _assert_unchanged(bad, before)


# ----------------------------------------------------------------------------- dtypes

_REJECTED = {
    "complex64": lambda a: a.astype(np.complex64),
    "complex128": lambda a: a.astype(np.complex128) + 1j,
    "object": lambda a: a.astype(object),
    "str": lambda a: a.astype(str),
    "bytes": lambda a: a.astype("S8"),
    "datetime64": lambda a: a.astype(np.int64).astype("datetime64[s]"),
    "timedelta64": lambda a: a.astype(np.int64).astype("timedelta64[s]"),
    "void": lambda a: np.zeros(a.shape, dtype="V4"),
}


@pytest.mark.parametrize("kind", list(_REJECTED))
@pytest.mark.parametrize("spec", SPECS)
def test_unsupported_dtype_is_a_type_error_naming_the_argument(spec, kind, rng):
    for name in spec.arrays:
        kw = spec.make(rng, np.float32)
        kw[name] = _REJECTED[kind](kw[name])
        with pytest.raises(TypeError, match=rf"{spec.name}: (argument )?'{name}' has dtype"):
            spec.call(kw)


def _expected_dtype(arrays):
    dt = np.result_type(*[a.dtype for a in arrays])
    return dt if dt.kind == "f" else np.dtype(np.float64)


@pytest.mark.parametrize("kind", ["int8", "int32", "int64", "uint8", "bool", "float16"])
@pytest.mark.parametrize("spec", SPECS)
def test_integer_bool_and_half_inputs_promote_and_work(spec, kind, rng):
    """ints/bools promote like numpy, then to float64; float16 computes in float32, returns float16."""
    for name in spec.arrays:
        kw = spec.make(rng, np.float32)
        a = kw[name]
        kw[name] = (a > 0) if kind == "bool" else (np.round(a * 3) if kind != "float16" else a).astype(kind)
        arrays = [kw[n] for n in spec.arrays if kw.get(n) is not None]
        out_dt = _expected_dtype(arrays)
        comp_dt = np.dtype(np.float32) if out_dt == np.float16 else out_dt
        ref_kw = {k: (v.astype(comp_dt) if k in spec.arrays and v is not None else v) for k, v in kw.items()}
        before = _copy(kw)
        outs = spec.forward(kw)
        expected = spec.forward(ref_kw)
        _assert_unchanged(kw, before)
        for o, e in zip(outs, expected):
            if e.dtype.kind == "f":
                assert o.dtype == out_dt, f"{name} as {kind}: output dtype {o.dtype}, expected {out_dt}"
                e = e.astype(out_dt)
            assert np.array_equal(o, e, equal_nan=True), f"{name} as {kind}: result differs from the {comp_dt} call"


@pytest.mark.parametrize("spec", SPECS)
def test_long_double_is_a_documented_type_error_or_works(spec, rng):
    kw = spec.make(rng, np.float64)
    kw[spec.arrays[0]] = kw[spec.arrays[0]].astype(np.longdouble)
    if np.dtype(np.longdouble) == np.float64:
        pytest.skip("longdouble is float64 on this platform")
    try:
        outs = spec.forward(kw)
    except TypeError as e:
        assert f"{spec.name}: argument '{spec.arrays[0]}'" in str(e), f"TypeError does not name the op/argument: {e}"
    else:
        assert outs[0].dtype.kind == "f"


# ----------------------------------------------------------------------------- layouts


def _layouts(a):
    """(id, view) pairs: the same values in other memory layouts (none C-contiguous and writable)."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), a.dtype)
    big[..., 1::2] = a
    strided = big[..., 1::2]
    rev = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    ro = a.copy()
    ro.setflags(write=False)
    out = [("strided", strided), ("fortran", np.asfortranarray(a)), ("negative_strides", rev), ("readonly", ro)]
    if a.ndim >= 1 and a.shape[0] > 0:
        out.append(("broadcast_stride0", np.broadcast_to(a[:1], a.shape)))  # read-only, stride 0
    return out


@pytest.mark.parametrize("spec", SPECS)
def test_non_contiguous_and_readonly_inputs_work_and_stay_untouched(spec, rng):
    for dtype in (np.float32, np.float64):
        for name in spec.arrays:
            base = spec.make(rng, dtype)
            if base.get(name) is None:
                continue
            for lid, view in _layouts(base[name]):
                kw = {**base, name: view}
                before = _copy(kw)
                got = _run_both(spec, kw)
                want = _run_both(spec, {**base, name: np.ascontiguousarray(view)})
                _assert_unchanged(kw, before)
                for g, w in zip(got, want):
                    _bitwise_equal(g, w, f"{name} {lid} {np.dtype(dtype).name}")


@pytest.mark.parametrize("spec", SPECS)
def test_nested_lists_work_like_float64_arrays(spec, rng):
    kw = spec.make(rng, np.float64)
    lists = {k: (v.tolist() if k in spec.arrays and v is not None else v) for k, v in kw.items()}
    _bitwise_equal(spec.forward(lists), spec.forward(kw), "lists")


@pytest.mark.parametrize("spec", SPECS)
def test_ragged_list_is_a_type_error_naming_the_argument(spec, rng):
    kw = spec.make(rng, np.float32)
    kw[spec.arrays[0]] = [[1.0, 2.0], [3.0]]
    with pytest.raises(TypeError, match=rf"{spec.name}: argument '{spec.arrays[0]}' could not be converted"):
        spec.call(kw)


@pytest.mark.parametrize("spec", SPECS)
def test_none_for_a_required_array_is_a_type_error_naming_it(spec, rng):
    required = [n for n in spec.arrays if n not in spec.optional]
    for name in required:
        kw = spec.make(rng, np.float32)
        kw[name] = None
        with pytest.raises(TypeError, match=rf"{spec.name}: .*'{name}'"):
            spec.call(kw)


# ----------------------------------------------------------------------------- empty and odd sizes


@pytest.mark.parametrize("spec", SPECS)
def test_zero_size_inputs_give_empty_or_zero_results(spec, rng):
    """Valid calls with an empty dimension: every output element that exists is written (no poison
    NaN), and the gradient of an input that is not itself empty is zero (a sum over nothing)."""
    if not spec.empty_calls():
        pytest.skip(f"{spec.name} rejects empty inputs (see its bad-input rows)")
    for mutate in spec.empty_calls():
        kw = mutate(spec.make(rng, np.float32))
        outs, ctx = spec.forward_ctx(kw)
        for o in outs:
            assert not np.isnan(o.astype(np.float64)).any(), "an output element was never written"
        grads = [np.ones(s, np.float32) for s in spec.grad_shapes(outs)]
        for g, name in zip(spec.backward(ctx, grads), spec.arrays):
            if g is None or kw.get(name) is None:
                continue
            assert g.shape == np.shape(kw[name]), name
            assert np.all(g == 0), f"grad of '{name}' over an empty sum is not zero"


# ----------------------------------------------------------------------------- NaN / Inf


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("spec", SPECS)
def test_nan_and_inf_propagate_like_torch(spec, value, rng):
    """Forward and backward with non-finite inputs give torch's result, NaN pattern included."""
    kw = spec.make(rng, np.float64)
    for name in spec.nonfinite_targets(value):
        if kw.get(name) is None:
            continue
        a = kw[name].copy()
        flat = a.reshape(-1)
        flat[rng.choice(flat.size, size=max(1, flat.size // 10), replace=False)] = value
        kw[name] = a
    outs, ctx = spec.forward_ctx(kw)
    grads = _grads(spec, outs, rng)
    dins = spec.backward(ctx, grads)
    t_outs, t_dins = spec.torch_run(kw, grads)
    for i, (o, t) in enumerate(zip(outs, t_outs)):
        assert_close(o, t, np.float64, what=f"output {i} vs torch")
    for g, t in zip(dins, t_dins):
        if g is not None:
            assert_close(g, t, np.float64, what="grad vs torch")


# ----------------------------------------------------------------------------- backward arguments


@pytest.mark.parametrize("spec", SPECS)
def test_backward_rejects_bad_ctx(spec, rng):
    outs, ctx = spec.forward_ctx(spec.make(rng, np.float32))
    grads = _grads(spec, outs, rng)
    bw = getattr(dk, spec.backward_name)
    others = [s for s in ALL_SPECS if s.available() and s.name != spec.name]
    bad = [None, {}, "ctx", ctx.__dict__]
    if others:
        bad.append(others[0].forward_ctx(others[0].make(rng, np.float32))[1])
    for c in bad:
        with pytest.raises(TypeError, match=rf"{spec.backward_name}: 'ctx' must come from {spec.name}"):
            bw(c, *grads)


@pytest.mark.parametrize("spec", SPECS)
def test_backward_grad_arguments(spec, rng):
    kw = spec.make(rng, np.float64)
    outs, ctx = spec.forward_ctx(kw)
    grads = _grads(spec, outs, rng)
    want = spec.backward(ctx, grads)
    bw = spec.backward_name
    for i, name in enumerate(spec.grad_names):

        def with_(g):
            return [*grads[:i], g, *grads[i + 1 :]]  # noqa: B023

        with pytest.raises(ValueError, match=rf"{bw}: '{name}' has shape"):
            spec.backward(ctx, with_(np.zeros(grads[i].shape + (1,))))
        with pytest.raises(ValueError, match=rf"{bw}: '{name}' has shape"):
            spec.backward(ctx, with_(1.0))
        with pytest.raises(TypeError, match=rf"{bw}: argument '{name}' has dtype"):
            spec.backward(ctx, with_(grads[i].astype(np.complex128)))
        with pytest.raises(TypeError, match=rf"{bw}: .*'{name}'"):
            spec.backward(ctx, with_(_FakeCupy()))
        if name not in spec.optional_grads:
            with pytest.raises(TypeError, match=rf"{bw}: '{name}' is required"):
                spec.backward(ctx, with_(None))
        # lists, strided, read-only and float32 grads work and give the same result
        for g in (grads[i].tolist(), _layouts(grads[i])[0][1], _layouts(grads[i])[3][1]):
            _bitwise_equal(spec.backward(ctx, with_(g)), want, f"{name} layout")
        got32 = spec.backward(ctx, with_(grads[i].astype(np.float32)))
        want32 = spec.backward(ctx, with_(grads[i].astype(np.float32).astype(np.float64)))
        _bitwise_equal(got32, want32, f"{name} float32")
    # the ctx is not consumed: a second backward gives the same grads
    _bitwise_equal(spec.backward(ctx, grads), want, "second backward")


@pytest.mark.parametrize("spec", SPECS)
def test_mixing_numpy_and_cupy_arrays_is_a_type_error_naming_both(spec, rng):
    if len(spec.arrays) < 2:
        pytest.skip("one array argument: nothing to mix")
    kw = spec.make(rng, np.float32)
    first, second = spec.arrays[0], spec.arrays[1]
    kw[second] = _FakeCupy()
    with pytest.raises(TypeError, match=rf"{spec.name}: argument '{second}' is a cupy array \(GPU\) but '{first}'"):
        spec.call(kw)


class _FakeCupy:
    """Looks like a cupy array to deepkern's device check (type's module is cupy.*)."""


_FakeCupy.__module__ = "cupy._core.core"


# ----------------------------------------------------------------------------- huge sizes


@pytest.mark.parametrize("spec", SPECS)
def test_stride_beyond_int64_is_a_value_error(spec, rng):
    if "stride" not in spec.params:
        pytest.skip("no stride")
    kw = spec.make(rng, np.float32)
    with pytest.raises(ValueError, match=rf"{spec.name}: 'stride'"):
        spec.call({**kw, "stride": 2**70})


@pytest.mark.parametrize("spec", SPECS)
def test_huge_stride_gives_one_window(spec, rng):
    if "stride" not in spec.params:
        pytest.skip("no stride")
    kw = {**spec.make(rng, np.float64), "stride": 2**40}
    small = {**kw, "stride": 10**6}  # already larger than any input: same single window
    _bitwise_equal(spec.forward(kw), spec.forward(small), "stride 2**40 vs 10**6")


_HANG_SCRIPT = textwrap.dedent("""
    import numpy as np, deepkern as dk
    x = np.ones((1, 1, 4, 4), np.float32)
    y = dk.{op}(x, (2**{e}, 2**{e}), padding=(2**{e1}, 2**{e1}))
    print(y.ravel().tolist())
""")


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_huge_kernel_with_padding_finishes_quickly(op):
    """A huge kernel that passes validation (padding = kernel // 2) must cost O(input), not O(kernel):
    2**40 x 2**40 windows over a 4x4 input. In a subprocess, so a regression fails instead of hanging."""
    if not hasattr(dk, op):
        pytest.skip(op)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        r = subprocess.run(
            [sys.executable, "-c", _HANG_SCRIPT.format(op=op, e=40, e1=39)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{op} with kernel 2**40, padding 2**39 on a 4x4 input did not finish in 60 s")
    assert r.returncode == 0, r.stderr
    # y is (1, 1, 1, 1) (stride = kernel): one window covers the input; max is 1, avg is 16 / 2**80
    got = np.array(eval(r.stdout))
    want = np.ones(1) if op == "max_pool2d" else np.full(1, 16 / 2.0**80)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)  # relative: the avg is ~1e-23


def test_unallocatable_input_is_a_memory_error_and_the_library_keeps_working():
    """A stride-0 view of 2**42 elements must be copied to be contiguous: numpy's MemoryError, then all fine."""
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (2**20, 2**20, 2, 2), (0, 0, 0, 0))
    with pytest.raises(MemoryError):
        dk.avg_pool2d(x, 2)
    y = dk.avg_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)
    assert np.array_equal(y, np.ones((1, 1, 2, 2), np.float32))


def test_unallocatable_output_is_a_memory_error_and_the_library_keeps_working():
    """kernel 1 / stride 1 over a broadcast 2**21 x 2**21 plane: the 16 TiB output cannot be allocated."""
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (1, 1, 2**21, 2**21), (0, 0, 0, 0))
    with pytest.raises(MemoryError):
        dk.max_pool2d(x, 1)
    y = dk.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    assert np.array_equal(y, [[[[5.0, 7.0], [13.0, 15.0]]]])


# ----------------------------------------------------------------------------- process-wide settings


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2", None, np.float64(2.0)])
def test_set_num_threads_rejects_non_positive_ints(n):
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive int"):
        dk.set_num_threads(n)


def test_set_num_threads_rejects_values_beyond_int():
    n0 = dk.get_num_threads()
    try:
        with pytest.raises(ValueError, match="set_num_threads: n"):
            dk.set_num_threads(2**40)
    finally:
        dk.set_num_threads(n0)


def test_many_threads_and_numpy_ints_work():
    n0 = dk.get_num_threads()
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9))
    want = dk.avg_pool2d(x, 3)
    try:
        for n in (np.int64(1), 3, 64):
            dk.set_num_threads(n)
            assert dk.get_num_threads() == int(n)
            assert np.array_equal(dk.avg_pool2d(x, 3), want)
    finally:
        dk.set_num_threads(n0)


def test_array_module_and_cuda_available_on_a_cpu_machine():
    assert dk.get_array_module() is np
    assert dk.get_array_module(np.zeros(1), [1.0], 3) is np
    assert isinstance(dk.cuda_available(), bool)


# ----------------------------------------------------------------------------- known numerical bugs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_backward_nonfinite_weight_stays_local(dtype):
    """A non-finite weight reaches only the dx elements it multiplies (was a bug: padding zeros of dy
    met the inf weight, 0 * inf = NaN, in the shifted-GEMM input gradient)."""
    x = np.array([[[[0.5, -1.0]]]], dtype)
    w = np.array([[[[2.0, np.inf]]]], dtype)
    _, ctx = dk.conv2d(x, w, return_ctx=True)
    dx, dw, _ = dk.conv2d_backward(ctx, np.array([[[[1.5]]]], dtype))
    assert_close(dx, np.array([[[[3.0, np.inf]]]]), dtype, what="dx")
    assert_close(dw, np.array([[[[0.75, -1.5]]]]), dtype, what="dw")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_backward_nonfinite_weight_stays_local_transposed_path(dtype):
    """Same as above with C >= 4 and stride 1, where dx once took the transposed-conv path and got NaN
    from padding zeros times the inf weight (found by the fuzzer after the shifted path was fixed)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 4, 9)).astype(dtype)
    w = rng.standard_normal((1, 4, 1, 2)).astype(dtype)
    w[0, 1, 0, 1] = np.inf
    _, ctx = dk.conv2d(x, w, return_ctx=True)
    dy = rng.standard_normal((1, 1, 4, 8)).astype(dtype)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    want_dx, want_dw, _ = conv2d_backward_ref(x, w, dy, False)
    assert_close(dx, want_dx, dtype, what="dx")
    assert_close(dw, want_dw, dtype, what="dw")


@pytest.mark.parametrize("op", ["lstm_cell", "lstm"])
def test_lstm_float32_large_preactivation_saturates(op):
    w_ih = np.ones((4, 1), np.float32)
    w_hh = np.zeros((4, 1), np.float32)
    for z, (h_want, c_want) in ((1e4, (np.tanh(1.0), 1.0)), (-1e4, (0.0, 0.0)), (np.inf, (np.tanh(1.0), 1.0))):
        x = np.array([[z]], np.float32)
        if op == "lstm":
            _, h1, c1 = dk.lstm(x[None], None, None, w_ih, w_hh)
        else:
            h1, c1 = dk.lstm_cell(x, None, None, w_ih, w_hh)
        assert_close(h1, np.array([[h_want]]), np.float32, what=f"h1 at z={z}")
        assert_close(c1, np.array([[c_want]]), np.float32, what=f"c1 at z={z}")


_CONV_EMPTY_SCRIPT = """
import numpy as np, deepkern as dk
for dtype in (np.float32, np.float64):
    x = np.zeros((0, 3, 7, 8), dtype); w = np.ones((4, 3, 3, 2), dtype); b = np.ones(4, dtype)
    y, ctx = dk.conv2d(x, w, b, stride=(2, 1), padding=1, return_ctx=True)
    dx, dw, db = dk.conv2d_backward(ctx, np.zeros(y.shape, dtype))
    assert y.shape == (0, 4, 4, 9) and dx.shape == x.shape, (y.shape, dx.shape)
    assert np.all(dw == 0) and np.all(db == 0), "grads over an empty batch must be zero"
print("ok")
"""


def test_conv2d_empty_batch_backward_does_not_crash():
    """In a subprocess, so a crash fails this test instead of killing the run. (Was a bug: SIGFPE,
    make_plan() set nb = min(nb, N) = 0 and groups = (N + nb - 1) / nb divided by zero.)"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", _CONV_EMPTY_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"exit status {r.returncode} (negative = killed by that signal): {r.stderr[-500:]}"
    assert r.stdout.strip() == "ok"


@pytest.mark.parametrize("op", ["lstm_cell", "lstm"])
def test_lstm_float32_nan_propagates(op):
    """A NaN input gives NaN outputs in float32 too (and, under tools/sanitize.sh, exercises the float32
    exp/tanh on NaN: see the UBSan finding in docs/RELIABILITY.md)."""
    if not hasattr(dk, op):
        pytest.skip(op)
    w_ih = np.ones((4, 1), np.float32)
    w_hh = np.zeros((4, 1), np.float32)
    x = np.array([[np.nan], [0.5]], np.float32)
    if op == "lstm":
        _, h1, c1 = dk.lstm(x[None], None, None, w_ih, w_hh)
    else:
        h1, c1 = dk.lstm_cell(x, None, None, w_ih, w_hh)
    assert np.isnan(h1[0]).all() and np.isnan(c1[0]).all()
    assert np.isfinite(h1[1]).all() and np.isfinite(c1[1]).all()
