"""conv2d on the GPU (cupy in, cupy out): forward, dx, dw, db against the float64 reference and the
CPU backend, in every GPU dtype, exact float32 and opt-in TF32; the plain GEMM launcher the conv
kernels share. Runs on the SIMT simulator with the cupy stand-in where there is no GPU (small shapes:
each simulated block is 256 fibers). Finite differences are checked on the CPU side (test_conv2d.py);
here the float64 reference is the oracle.

Tolerances: float32 and float64 elementwise as DESIGN.md; float16 1e-2 relative norm. TF32 rounds both
factors of every product to a 10-bit mantissa (cvt.rna: relative error at most u = 2^-11 each), so a
product is off by at most 2u + u^2 < 2^-10 of its magnitude, and a sum of products by at most 2^-10 of
the sum of the products' magnitudes (plus float32 accumulation, ~n 2^-24). That is the bound checked
elementwise: |got - ref| <= (2^-10 + 1e-5) * ref(|x|, |w|, |b|), the reference on absolute values; it
holds whatever the cancellation (a relative-norm bound does not: one product plus a bias that nearly
cancels it has any relative error). For random data the errors add incoherently, so the relative norm
error is ~3e-4 (DESIGN.md's TF32 figure); test_conv2d_cuda_tf32_is_used_only_when_allowed checks it is
between 1e-5 (TF32 did run) and 1e-3.
"""

import deepkern as dk
import numpy as np
import pytest
from helpers import assert_close, assert_rel_norm
from reference import conv2d_backward_ref, conv2d_ref

pytestmark = pytest.mark.cuda

TF32_REL_NORM = 1e-3
TF32_PRODUCT = 2.0**-10 + 1e-5  # see the module docstring


def assert_tf32_close(got, ref, absref, what):
    """|got - ref| <= TF32_PRODUCT * absref elementwise, absref = the same computation on |inputs|."""
    g = got.get().astype(np.float64) if hasattr(got, "get") else np.asarray(got, np.float64)
    assert not np.isnan(g).any(), f"{what}: NaN in result"
    err = np.abs(g - ref)
    bound = TF32_PRODUCT * absref + 1e-30
    assert np.all(err <= bound), (
        f"{what}: TF32 error {err.max():.3e} over its bound (worst ratio {(err / bound).max():.2f})"
    )


# (N, C, H, W, K, kh, kw, stride, padding, dilation, bias)
CASES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, True),  # single output pixel, everything 1
    (2, 3, 7, 5, 4, 3, 3, 1, 1, 1, True),  # 3x3 pad 1
    (2, 8, 6, 5, 3, 1, 1, 1, 0, 1, False),  # 1x1 (C*kh*kw = 8: cp.async weight rows)
    (1, 2, 9, 9, 3, 5, 5, 1, 0, 1, True),  # 5x5
    (1, 3, 15, 13, 5, 7, 7, 2, 3, 1, True),  # 7x7 stride 2
    (1, 3, 6, 7, 2, 3, 4, (1, 2), (2, 3), 1, True),  # padding = kernel - 1, mixed stride
    (2, 4, 13, 11, 5, 3, 3, 2, 1, (2, 3), True),  # dilation
    (2, 2, 9, 9, 3, 2, 2, 3, 0, 1, True),  # stride > kernel
    (1, 3, 3, 3, 4, 3, 3, 1, 0, 1, False),  # single output pixel, 3x3
    (2, 5, 11, 13, 7, 2, 5, 1, 0, 1, True),  # N*Ho*Wo = 240: not a multiple of the 128 tile
    (1, 2, 4, 5, 130, 3, 3, 1, 1, 1, True),  # K = 130: two output-channel tiles
    (1, 37, 4, 4, 3, 3, 3, 1, 1, 1, True),  # C*kh*kw = 333: many k-tiles, none aligned
    (1, 1, 12, 17, 5, 7, 3, (2, 1), (3, 0), (1, 2), True),
]

# k-dim of the weight gradient (N*Ho*Wo) long enough to be split (split-K + its reduction), Ho*Wo a
# multiple of 8 (cp.async rows of dy on the tensor-core paths).
SPLIT_CASES = [
    (4, 8, 16, 16, 8, 3, 3, 1, 1, 1, True),
    (2, 3, 16, 16, 4, 3, 3, 1, 1, 1, True),
]

DTYPES = ["float32", "float64", "float16", "tf32"]


@pytest.fixture(scope="module")
def cp():
    return pytest.importorskip("cupy")


@pytest.fixture
def tf32_off():
    yield
    dk.set_allow_tf32(False)


def _unpack(case):
    N, C, H, W, K, kh, kw, s, p, d, bias = case[:11]
    G = case[11] if len(case) > 11 else 1
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    return (N, C, H, W), (K, C // G, kh, kw), pair(s), pair(p), pair(d), bias, G


def _inputs(rng, xs, ws, bias, dt, y_shape_of):
    x = rng.standard_normal(xs).astype(dt)
    w = (rng.standard_normal(ws) / np.sqrt(ws[1] * ws[2] * ws[3])).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    dy = rng.standard_normal(y_shape_of(x, w)).astype(dt)
    return x, w, b, dy


def _check(cp, rng, case, kind):
    xs, ws, s, p, d, bias, G = _unpack(case)
    dt = np.float32 if kind == "tf32" else np.dtype(kind).type
    dk.set_allow_tf32(kind == "tf32")
    x, w, b, dy = _inputs(rng, xs, ws, bias, dt, lambda x, w: conv2d_ref(x, w, None, s, p, d, G).shape)
    xg, wg, dyg = cp.asarray(x), cp.asarray(w), cp.asarray(dy)
    bg = None if b is None else cp.asarray(b)
    before = [a.copy() for a in (xg, wg, dyg)]

    y, ctx = dk.conv2d(xg, wg, bg, s, p, d, G, return_ctx=True)
    dx, dw, db = dk.conv2d_backward(ctx, dyg)
    what = f"x{xs} w{ws} s{s} p{p} d{d} groups={G} bias={bias} {kind}"
    assert isinstance(y, cp.ndarray) and y.dtype == dt and isinstance(dx, cp.ndarray) and dw.dtype == dt
    assert (db is None) == (b is None)
    for a, a0 in zip((xg, wg, dyg), before):
        assert bool((a == a0).all()), "an input was modified"

    ref_y = conv2d_ref(x, w, b, s, p, d, G)
    refs = conv2d_backward_ref(x, w, dy, bias, s, p, d, G)
    got = [("y", y, ref_y)] + [(n, g, r) for n, g, r in zip(("dx", "dw", "db"), (dx, dw, db), refs) if r is not None]
    if kind == "tf32":
        absb = None if b is None else np.abs(b)
        absrefs = [conv2d_ref(np.abs(x), np.abs(w), absb, s, p, d, G)]
        absrefs += [r for r in conv2d_backward_ref(np.abs(x), np.abs(w), np.abs(dy), bias, s, p, d, G) if r is not None]
    for i, (name, g, r) in enumerate(got):
        if kind == "float16":
            assert_rel_norm(g, r, 1e-2, what=f"{name} {what}")
        elif kind == "tf32":
            assert_tf32_close(g, r, absrefs[i], what=f"{name} {what}")
        else:
            assert_close(g, r, dtype=dt, what=f"{name} {what}")
    if kind in ("float32", "float64"):  # the CPU backend on the same inputs
        y_cpu, ctx_cpu = dk.conv2d(x, w, b, s, p, d, G, return_ctx=True)
        assert_close(y, y_cpu, dtype=dt, what=f"y vs cpu {what}")
        for name, g, c in zip(("dx", "dw", "db"), (dx, dw, db), dk.conv2d_backward(ctx_cpu, dy)):
            if c is not None:
                assert_close(g, c, dtype=dt, what=f"{name} vs cpu {what}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_cases(cp, rng, case, kind, tf32_off):
    _check(cp, rng, case, kind)


@pytest.mark.parametrize("case", SPLIT_CASES)
@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_split_k_weight_gradient(cp, rng, case, kind, tf32_off):
    _check(cp, rng, case, kind)


# One small case per kernel family (every math, gather and cp.async staging, split-K + its reduction,
# the bias gradient) that tools/gpu_check.sh also runs under compute-sanitizer.
@pytest.mark.sanitize
@pytest.mark.parametrize(
    "case",
    [
        (4, 8, 16, 16, 4, 3, 3, 1, 1, 1, True),
        (1, 3, 5, 6, 2, 3, 3, 2, 1, 1, True),
        (1, 4, 5, 6, 6, 3, 3, 2, 1, 1, True, 2),
        (1, 3, 5, 6, 6, 3, 3, 2, 1, 1, True, 3),
    ],
    ids=["split_k", "stride2", "groups2", "depthwise"],
)
@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_sanitize_small(cp, rng, case, kind, tf32_off):
    _check(cp, rng, case, kind)


# Grouped (the GEMM core, one launch for all groups) and depthwise (groups == C: the direct kernels).
# (N, C, H, W, K, kh, kw, stride, padding, dilation, bias, groups)
GROUP_CASES = [
    (2, 4, 7, 6, 6, 3, 3, 1, 1, 1, True, 2),  # groups 2, 3x3 pad 1
    (1, 8, 5, 7, 4, 3, 2, (2, 1), (1, 0), (1, 2), True, 4),  # groups 4, one output per group, rectangular
    (2, 16, 5, 5, 6, 1, 1, 1, 0, 1, False, 2),  # 1x1, C/G*kh*kw = 8: cp.async weight rows per group
    (1, 6, 5, 4, 9, 3, 3, 1, 1, 1, True, 3),  # C/G = 2, K/G = 3
    (1, 4, 4, 5, 260, 3, 3, 1, 1, 1, True, 2),  # K/G = 130: two output-channel tiles per group
    (1, 3, 9, 8, 3, 3, 3, 1, 1, 1, True, 3),  # depthwise
    (2, 6, 6, 5, 6, 3, 3, 2, 1, 1, True, 6),  # depthwise stride 2
    (1, 3, 9, 8, 6, 5, 5, 2, 2, 1, False, 3),  # depthwise, multiplier 2, 5x5
    (2, 5, 7, 7, 15, 3, 2, (1, 2), (1, 1), (2, 1), True, 5),  # multiplier 3, dilation, rectangular
    (1, 4, 3, 3, 4, 3, 3, 1, 0, 1, True, 4),  # depthwise, single output pixel
    (1, 2, 1, 1, 2, 1, 1, 1, 0, 1, True, 2),  # everything 1 per group
]

# Grouped weight gradient long enough to be split (split-K per group + the grouped reduction).
GROUP_SPLIT_CASES = [(4, 8, 16, 16, 8, 3, 3, 1, 1, 1, True, 2)]


@pytest.mark.parametrize("case", GROUP_CASES)
@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_groups(cp, rng, case, kind, tf32_off):
    _check(cp, rng, case, kind)


@pytest.mark.parametrize("case", GROUP_SPLIT_CASES)
@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_groups_split_k_weight_gradient(cp, rng, case, kind, tf32_off):
    from deepkern import _backend

    xs, ws, s, p, d, bias, G = _unpack(case)
    params, _ = dk.functional.conv._conv_params("t", np.empty(xs), np.empty(ws), None, s, p, d, G)
    dt = np.float32 if kind == "tf32" else np.dtype(kind).type
    n = _backend.backend_for(cp).query(
        "conv2d_backward_workspace",
        {**params, "allow_tf32": int(kind == "tf32")},
        _backend._DTYPE_CODES[np.dtype(dt).name],
    )
    assert n > 0, "the case no longer splits the weight gradient"
    _check(cp, rng, case, kind)


def test_conv2d_cuda_groups_bad_input(cp):
    x = cp.zeros((1, 6, 5, 5), cp.float32)
    with pytest.raises(ValueError, match="'groups'"):
        dk.conv2d(x, cp.zeros((4, 3, 3, 3), cp.float32), groups=4)  # C = 6 not divisible by 4
    with pytest.raises(ValueError, match="'groups' = 2"):
        dk.conv2d(x, cp.zeros((3, 3, 3, 3), cp.float32), groups=2)  # K = 3 not divisible by 2
    with pytest.raises(ValueError, match="'groups'"):
        dk.conv2d(x, cp.zeros((6, 1, 3, 3), cp.float32), groups=0)


def test_conv2d_cuda_binding_takes_named_arguments(cp, rng):
    """The binding's arguments by name, None for the absent bias; a missing params field names it."""
    from deepkern import _backend

    mod = _backend._cuda
    x = cp.asarray(rng.standard_normal((1, 2, 4, 4)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((2, 1, 3, 3)).astype(np.float32))
    params, _ = dk.functional.conv._conv_params("t", x, w, None, 1, 1, 1, 2)
    y = cp.full((1, 2, 4, 4), np.nan, cp.float32)
    stream = cp.cuda.get_current_stream().ptr
    kw = dict(dtype=_backend._DTYPE_CODES["float32"], x=x.data.ptr, w=w.data.ptr, b=None, y=y.data.ptr, stream=stream)
    mod.conv2d_forward(params={**params, "allow_tf32": 0}, **kw)
    assert_close(y, conv2d_ref(x.get(), w.get(), None, (1, 1), (1, 1), (1, 1), 2), np.float32)
    with pytest.raises(ValueError, match="allow_tf32"):
        mod.conv2d_forward(params=params, **kw)
    assert "allow_tf32" in mod.conv2d_forward.__doc__


def _random_group_case(rng):
    N, Cg, Kg, G = (int(v) for v in rng.integers(1, 4, 4))
    if rng.integers(0, 2):
        Cg, G = 1, G + 1  # depthwise (with multiplier Kg)
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    s = tuple(int(v) for v in rng.integers(1, 3, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    H = int(rng.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 8))
    W = int(rng.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 8))
    return (N, Cg * G, H, W, Kg * G, kh, kw, s, p, d, bool(rng.integers(0, 2)), G)


@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_groups_random_shapes(cp, rng, kind, tf32_off):
    for _ in range(4):
        _check(cp, rng, _random_group_case(rng), kind)


def _random_case(rng):
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    H = int(rng.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 10))
    W = int(rng.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 10))
    N, C, K = (int(v) for v in rng.integers(1, 5, 3))
    return (N, C, H, W, K, kh, kw, s, p, d, bool(rng.integers(0, 2)))


@pytest.mark.parametrize("kind", DTYPES)
def test_conv2d_cuda_random_shapes(cp, rng, kind, tf32_off):
    for _ in range(6):
        _check(cp, rng, _random_case(rng), kind)


def test_conv2d_cuda_tf32_is_used_only_when_allowed(cp, rng, tf32_off):
    """TF32 on changes float32 results by ~1e-4 relative (so the tensor-core path ran); off, the
    result is float32-exact; float64 ignores the switch."""
    x = rng.standard_normal((2, 16, 8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    ref = conv2d_ref(x, w, None, (1, 1), (1, 1))
    assert dk.get_allow_tf32() is False
    exact = dk.conv2d(cp.asarray(x), cp.asarray(w), padding=1)
    assert_close(exact, ref, np.float32)
    dk.set_allow_tf32(True)
    fast = dk.conv2d(cp.asarray(x), cp.asarray(w), padding=1)
    err = np.linalg.norm(fast.get() - ref) / np.linalg.norm(ref)
    assert 1e-5 < err < TF32_REL_NORM, err
    y64 = dk.conv2d(cp.asarray(x.astype(np.float64)), cp.asarray(w.astype(np.float64)), padding=1)
    assert_close(y64, ref, np.float64)
    with pytest.raises(TypeError, match="flag"):
        dk.set_allow_tf32(1)


def test_conv2d_cuda_out_and_noncontiguous(cp, rng):
    x = cp.asarray(rng.standard_normal((2, 3, 6, 9)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    xt = x.transpose(0, 1, 3, 2)  # non-contiguous: copied once before the kernel
    out = cp.full((2, 4, 7, 4), np.nan, dtype=np.float32)
    y = dk.conv2d(xt, w, None, 1, 0, out=out)
    assert y is out
    assert_close(out, conv2d_ref(cp.asnumpy(xt), w.get()), np.float32)
    with pytest.raises(TypeError, match="'out'"):
        dk.conv2d(x, w, out=np.zeros((2, 4, 4, 7), np.float32))


def test_conv2d_cuda_empty_batch_and_mixing(cp):
    x = cp.zeros((0, 2, 5, 5), cp.float32)
    w = cp.ones((3, 2, 3, 3), cp.float32)
    y, ctx = dk.conv2d(x, w, cp.zeros(3, cp.float32), return_ctx=True)
    assert y.shape == (0, 3, 3, 3)
    dx, dw, db = dk.conv2d_backward(ctx, cp.zeros((0, 3, 3, 3), cp.float32))
    assert dx.shape == (0, 2, 5, 5) and not bool(cp.isnan(dw).any()) and float(abs(dw).sum()) == 0.0
    assert float(abs(db).sum()) == 0.0
    with pytest.raises(TypeError, match="same device"):
        dk.conv2d(x, np.ones((3, 2, 3, 3), np.float32))


# ---------------------------------------------------------------- the plain GEMM launcher
def _gemm(cp, a, b, c, trans_a, trans_b, alpha, beta, tf32=False):
    from deepkern import _backend

    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    N = b.shape[0] if trans_b else b.shape[1]
    params = {
        "M": M,
        "N": N,
        "K": K,
        "lda": a.strides[0] // a.itemsize,
        "ldb": b.strides[0] // b.itemsize,
        "ldc": c.strides[0] // c.itemsize,
        "trans_a": int(trans_a),
        "trans_b": int(trans_b),
        "alpha": alpha,
        "beta": beta,
        "allow_tf32": int(tf32),
    }
    _backend.backend_for(cp).call("gemm", params, a, b, c)


@pytest.mark.parametrize("kind", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_plain(cp, rng, kind, trans_a, trans_b):
    dt = np.float32 if kind == "tf32" else np.dtype(kind).type
    for M, N, K in [(1, 1, 1), (37, 130, 19), (5, 3, 64), (129, 8, 40)]:
        a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dt)
        b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dt)
        c = rng.standard_normal((M, N)).astype(dt)
        # strided C: a view of every column of a wider array (ldc > N)
        wide = cp.full((M, N + 3), np.nan, dtype=dt)
        wide[:, :N] = cp.asarray(c)
        ag, bg = cp.asarray(a), cp.asarray(b)
        _gemm(cp, ag, bg, wide, trans_a, trans_b, 1.5, -0.5, tf32=kind == "tf32")
        opa = (a.T if trans_a else a).astype(np.float64)
        opb = (b.T if trans_b else b).astype(np.float64)
        ref = 1.5 * opa @ opb - 0.5 * c.astype(np.float64)
        got = wide.get()
        assert np.isnan(got[:, N:]).all(), "wrote outside C"
        what = f"gemm {M}x{N}x{K} ta={trans_a} tb={trans_b} {kind}"
        if kind == "float16":
            assert_rel_norm(got[:, :N], ref, 1e-2, what=what)
        elif kind == "tf32":
            absref = 1.5 * np.abs(opa) @ np.abs(opb) + 0.5 * np.abs(c.astype(np.float64))
            assert_tf32_close(got[:, :N], ref, absref, what=what)
        else:
            assert_close(got[:, :N], ref, dtype=dt, what=what)
        # beta = 0 never reads C: NaN in C stays out of the result
        nanc = cp.full((M, N), np.nan, dtype=dt)
        _gemm(cp, ag, bg, nanc, trans_a, trans_b, 1.0, 0.0, tf32=kind == "tf32")
        assert not bool(cp.isnan(nanc).any()), what
