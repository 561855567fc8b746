"""conv2d forward/backward against the float64 reference, PyTorch (forward + autograd) and
finite differences; out=; input validation."""

import deepkern as dk
import numpy as np
import pytest
import torch
from helpers import assert_close, numeric_grad, run_with_isa
from reference import conv2d_backward_ref, conv2d_ref

# (N, C, H, W, K, kh, kw, stride, padding, dilation, bias): hand-picked odd cases.
CASES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, True),  # everything 1
    (2, 3, 7, 5, 4, 3, 3, 1, 1, 1, True),  # 3x3 pad 1, rectangular input
    (3, 5, 11, 13, 7, 2, 5, 1, 0, 1, False),  # rectangular kernel, primes
    (2, 2, 9, 9, 3, 2, 2, 3, 0, 1, True),  # stride > kernel
    (1, 3, 6, 7, 2, 3, 4, (1, 2), (2, 3), 1, True),  # padding = kernel - 1, mixed stride
    (2, 4, 13, 11, 5, 3, 3, 2, 1, (2, 3), True),  # dilation
    (1, 2, 5, 5, 3, 5, 5, 1, 0, 1, False),  # kernel = input
    (2, 7, 8, 8, 1, 1, 1, 1, 0, 1, True),  # pointwise, K = 1
    (3, 4, 9, 10, 6, 1, 1, 2, 1, 1, True),  # 1x1 with stride and padding (not plain GEMM)
    (1, 1, 12, 17, 5, 7, 3, (2, 1), (3, 0), (1, 2), True),
    (5, 1, 8, 8, 6, 5, 5, 1, 2, 1, True),  # LeNet-style C = 1
]


def _unpack(case):
    N, C, H, W, K, kh, kw, s, p, d, bias = case
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    return (N, C, H, W), (K, C, kh, kw), pair(s), pair(p), pair(d), bias


def _random_case(rng, k_range=(1, 6)):
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    H = int(rng.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 14))
    W = int(rng.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 14))
    N, C = (int(v) for v in rng.integers(1, 6, 2))
    K = int(rng.integers(*k_range))
    return (N, C, H, W), (K, C, kh, kw), s, p, d, bool(rng.integers(0, 2))


def _check_against_reference(rng, xs, ws, s, p, d, bias, dt):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    assert y.dtype == dt
    what = f"x{xs} w{ws} s{s} p{p} d{d} bias={bias} {np.dtype(dt).name}"
    assert_close(y, conv2d_ref(x, w, b, s, p, d), dtype=dt, what="y " + what)
    dy = rng.standard_normal(y.shape).astype(dt)
    grads = dk.conv2d_backward(ctx, dy)
    refs = conv2d_backward_ref(x, w, dy, bias, s, p, d)
    for name, g, r in zip(("dx", "dw", "db"), grads, refs):
        if r is None:
            assert g is None
        else:
            assert g.dtype == dt and g.shape == r.shape
            assert_close(g, r, dtype=dt, what=f"{name} {what}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_conv2d_cases_vs_reference(rng, case, dt):
    _check_against_reference(rng, *_unpack(case), dt)


def test_conv2d_random_shapes_vs_reference(rng):
    for _ in range(60):
        _check_against_reference(rng, *_random_case(rng), np.float64 if rng.integers(0, 2) else np.float32)


def test_conv2d_random_shapes_many_output_channels(rng):
    """K >= 16 and C >= 4 take the shifted-GEMM weight and input gradients."""
    for _ in range(20):
        (N, _, H, W), (K, _, kh, kw), s, p, d, bias = _random_case(rng, (16, 21))
        C = int(rng.integers(4, 7))
        _check_against_reference(
            rng, (N, C, H, W), (K, C, kh, kw), s, p, d, bias, np.float64 if rng.integers(0, 2) else np.float32
        )


def _torch_check(rng, xs, ws, s, p, d, bias, dt):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
    ty.backward(torch.tensor(dy))
    what = f"x{xs} w{ws} s{s} p{p} d{d} {np.dtype(dt).name}"
    # float32 against float32 torch: both round differently, so compare with float32 tolerance
    assert_close(y, ty, dtype=dt, what="y " + what)
    assert_close(dx, tx.grad, dtype=dt, what="dx " + what)
    assert_close(dw, tw.grad, dtype=dt, what="dw " + what)
    if bias:
        assert_close(db, tb.grad, dtype=dt, what="db " + what)
    else:
        assert db is None


def test_conv2d_random_shapes_vs_torch(rng):
    for _ in range(40):
        _torch_check(rng, *_random_case(rng), np.float64 if rng.integers(0, 2) else np.float32)


# Shapes big enough for the threaded paths: batch across threads, one sample with threaded
# GEMM, several row bands per image (im2col scratch is bounded), pointwise and strided.
LARGER = [
    ((4, 16, 20, 20), (24, 16, 3, 3), (1, 1), (1, 1), (1, 1), True),
    ((1, 32, 23, 19), (40, 32, 3, 3), (1, 1), (1, 1), (1, 1), True),
    ((3, 64, 30, 70), (8, 64, 3, 3), (1, 1), (1, 1), (1, 1), False),  # 3 bands per image
    ((2, 48, 17, 17), (33, 48, 1, 1), (1, 1), (0, 0), (1, 1), True),
    ((1, 48, 17, 17), (33, 48, 1, 1), (1, 1), (0, 0), (1, 1), True),
    ((3, 8, 33, 31), (16, 8, 7, 7), (2, 2), (3, 3), (1, 1), True),
    ((2, 3, 40, 40), (16, 3, 5, 5), (1, 1), (2, 2), (2, 2), False),
    # output rows a whole number of register tiles (Wo 32 / 64, K a multiple of MR): row tiles
    ((3, 5, 9, 32), (24, 5, 3, 3), (1, 1), (1, 1), (1, 1), True),
    ((1, 4, 6, 64), (16, 4, 3, 5), (1, 1), (1, 2), (1, 1), True),
    ((2, 6, 7, 64), (48, 6, 3, 3), (2, 2), (1, 1), (1, 1), False),
    ((1, 16, 20, 32), (32, 16, 3, 3), (1, 1), (1, 1), (1, 1), True),  # one sample: threads split the tiles
]


@pytest.mark.parametrize("case", LARGER)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_conv2d_larger_vs_torch(rng, case, dt):
    _torch_check(rng, *case, dt)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_conv2d_thread_counts_agree(rng, threads):
    x = rng.standard_normal((5, 16, 21, 18))
    w = rng.standard_normal((12, 16, 3, 3))
    b = rng.standard_normal(12)
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        y, ctx = dk.conv2d(x, w, b, 1, 1, return_ctx=True)
        dy = rng.standard_normal(y.shape)
        grads = dk.conv2d_backward(ctx, dy)
    finally:
        dk.set_num_threads(old)
    assert_close(y, conv2d_ref(x, w, b, (1, 1), (1, 1)))
    for g, r in zip(grads, conv2d_backward_ref(x, w, dy, True, (1, 1), (1, 1))):
        assert_close(g, r)


@pytest.mark.parametrize(
    "case",
    [
        ((2, 2, 5, 4), (3, 2, 3, 2), (1, 1), (1, 0), (1, 1), True),
        ((1, 3, 6, 6), (2, 3, 2, 3), (2, 1), (1, 2), (2, 1), True),
        ((2, 2, 3, 3), (2, 2, 1, 1), (1, 1), (0, 0), (1, 1), False),
    ],
)
def test_conv2d_finite_differences(rng, case):
    xs, ws, s, p, d, bias = case
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    tol = dict(rtol=1e-6, atol=1e-8)  # central differences carry ~1e-9 truncation/rounding error
    assert_close(dx, numeric_grad(lambda v: dk.conv2d(v, w, b, s, p, d), x, dy), **tol, what="dx")
    assert_close(dw, numeric_grad(lambda v: dk.conv2d(x, v, b, s, p, d), w, dy), **tol, what="dw")
    if bias:
        assert_close(db, numeric_grad(lambda v: dk.conv2d(x, w, v, s, p, d), b, dy), **tol, what="db")


def test_conv2d_out_is_written_and_returned(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = np.full((2, 4, 8, 8), np.nan, np.float32)
    y = dk.conv2d(x, w, None, 1, 1, out=out)
    assert y is out
    assert_close(out, conv2d_ref(x, w, None, (1, 1), (1, 1)), dtype=np.float32)
    out16 = np.zeros((2, 4, 8, 8), np.float16)  # float16 in -> computed in float32, written as float16
    y16 = dk.conv2d(x.astype(np.float16), w.astype(np.float16), out=out16, padding=1)
    assert y16 is out16
    assert_close(
        out16, conv2d_ref(x.astype(np.float16), w.astype(np.float16), None, (1, 1), (1, 1)), rtol=1e-2, atol=1e-2
    )


def test_conv2d_inputs_untouched_noncontiguous_and_promotion(rng):
    x = rng.standard_normal((3, 2, 9, 10))[:, :, ::2, ::-1]  # non-contiguous view
    w = rng.standard_normal((2, 4, 3, 3)).transpose(1, 0, 2, 3)  # (4, 2, 3, 3), non-contiguous
    x0, w0 = x.copy(), w.copy()
    y = dk.conv2d(x, w, stride=2, padding=1)
    assert np.array_equal(x, x0) and np.array_equal(w, w0)
    assert_close(y, conv2d_ref(x, w, None, (2, 2), (1, 1)))
    xi = rng.integers(-3, 4, (1, 2, 5, 5))
    wi = rng.integers(-3, 4, (3, 2, 2, 2))
    yi = dk.conv2d(xi, wi)
    assert yi.dtype == np.float64
    assert_close(yi, conv2d_ref(xi, wi))
    y32 = dk.conv2d(xi.astype(np.float32), wi.astype(np.float32))
    assert y32.dtype == np.float32


def test_conv2d_backward_without_bias_and_dtype(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    y, ctx = dk.conv2d(x, w, return_ctx=True)
    dx, dw, db = dk.conv2d_backward(ctx, np.ones_like(y, dtype=np.float64))  # dy cast to the forward's dtype
    assert db is None and dx.dtype == np.float32 and dw.dtype == np.float32


X = np.zeros((2, 3, 8, 8), np.float32)
Wt = np.zeros((4, 3, 3, 3), np.float32)
BAD = [
    (dict(x=np.zeros((8, 8))), ValueError, "'x'"),  # (C, H, W) is one unbatched sample, as in PyTorch
    (dict(w=np.zeros((4, 3, 3))), ValueError, "'w'"),
    (dict(w=np.zeros((4, 2, 3, 3))), ValueError, "'w'.*input channels"),
    (dict(b=np.zeros(3)), ValueError, "'b'"),
    (dict(b=np.zeros((4, 1))), ValueError, "'b'"),
    (dict(w=np.zeros((4, 3, 9, 3))), ValueError, "kernel larger than padded input"),
    (dict(w=np.zeros((4, 3, 3, 3)), dilation=4), ValueError, "kernel larger than padded input"),
    (dict(stride=0), ValueError, "'stride'"),
    (dict(stride=(1, -1)), ValueError, "'stride'"),
    (dict(padding=-1), ValueError, "'padding'"),
    (dict(dilation=0), ValueError, "'dilation'"),
    (dict(stride=1.5), TypeError, "'stride'"),
    (dict(padding=(1, 2, 3)), TypeError, "'padding'"),
    (dict(x=np.zeros((2, 3, 8, 8), dtype=complex)), TypeError, "'x'"),
    (dict(x=np.zeros((2, 0, 8, 8)), w=np.zeros((4, 0, 3, 3))), ValueError, "'x'"),
    (dict(w=np.zeros((0, 3, 3, 3))), ValueError, "'w'"),
    (dict(out=np.zeros((2, 4, 6, 5), np.float32)), ValueError, "'out'.*shape"),
    (dict(out=np.zeros((2, 4, 6, 6), np.float64)), TypeError, "'out'.*dtype"),
    (dict(out=np.zeros((2, 4, 6, 12), np.float32)[..., ::2]), ValueError, "'out'.*contiguous"),
    (dict(out=[[0.0]]), TypeError, "'out'"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD)
def test_conv2d_bad_inputs(kwargs, exc, match):
    args = dict(x=X, w=Wt, b=None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        dk.conv2d(args.pop("x"), args.pop("w"), args.pop("b"), **args)


def test_conv2d_out_read_only():
    out = np.zeros((2, 4, 6, 6), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="'out'.*read-only"):
        dk.conv2d(X, Wt, out=out)


def test_conv2d_backward_bad_inputs():
    y, ctx = dk.conv2d(X, Wt, return_ctx=True)
    with pytest.raises(ValueError, match="'dy'.*shape"):
        dk.conv2d_backward(ctx, np.zeros((2, 4, 6, 5)))
    with pytest.raises(TypeError, match="'dy'"):
        dk.conv2d_backward(ctx, None)
    _, pctx = dk.max_pool2d(X, 2, return_ctx=True)
    with pytest.raises(TypeError, match="'ctx'"):
        dk.conv2d_backward(pctx, y)


_ISA_SCRIPT = r"""
import sys
import numpy as np
import deepkern as dk
sys.path.insert(0, {tests!r})
from reference import conv2d_ref, conv2d_backward_ref
rng = np.random.default_rng(2)
cases = [((2, 3, 9, 11), (5, 3, 3, 3), (1, 1), (1, 1), (1, 1)), ((1, 2, 10, 7), (9, 2, 2, 4), (1, 1), (1, 3), (2, 1)),
         ((3, 4, 12, 12), (6, 4, 3, 3), (2, 2), (1, 1), (1, 1)), ((2, 5, 6, 6), (3, 5, 1, 1), (1, 1), (0, 0), (1, 1)),
         ((4, 16, 20, 20), (24, 16, 3, 3), (1, 1), (1, 1), (1, 1)), ((2, 3, 6, 32), (24, 3, 3, 3), (1, 1), (1, 1), (1, 1))]
for dt in (np.float32, np.float64):
    tol = 2e-4 if dt == np.float32 else 1e-10
    for xs, ws, s, p, d in cases:
        x, w, b = rng.standard_normal(xs).astype(dt), rng.standard_normal(ws).astype(dt), rng.standard_normal(ws[0])
        y, ctx = dk.conv2d(x, w, b.astype(dt), s, p, d, return_ctx=True)
        dy = rng.standard_normal(y.shape).astype(dt)
        got = [y, *dk.conv2d_backward(ctx, dy)]
        want = [conv2d_ref(x, w, b.astype(dt), s, p, d), *conv2d_backward_ref(x, w, dy, True, s, p, d)]
        for g, r in zip(got, want):
            err = np.abs(g - r).max() / max(1.0, np.abs(r).max())
            assert err < tol, (dt, xs, ws, s, p, d, err)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_conv2d_each_isa_kernel(isa):
    """Each micro-kernel family (incl. the shifted-GEMM kernel) in its own process."""

    r = run_with_isa(isa, _ISA_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_conv2d_nonfinite_inputs_match_torch(rng):
    """Inf/NaN in x where only some windows read it: NaN/Inf appear exactly where torch has them."""
    x = rng.standard_normal((2, 4, 12, 12))
    x[0, 1, 2, 11] = np.inf  # last column: only taps with j = 2 read it in valid outputs
    x[1, 3, 11, 0] = np.nan
    w = rng.standard_normal((16, 4, 3, 3))
    y, ctx = dk.conv2d(x, w, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = dk.conv2d_backward(ctx, dy)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw)
    ty.backward(torch.tensor(dy))
    for name, got, want in (("y", y, ty.detach().numpy()), ("dw", dw, tw.grad.numpy()), ("dx", dx, tx.grad.numpy())):
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), fin), f"{name}: non-finite pattern differs from torch"
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{name}: NaN pattern differs from torch"
        assert name == "dx" or not fin.all(), f"{name}: the test should produce some non-finite values"
        assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), what=name)


@pytest.mark.parametrize("ws", [(4, 3, 5, 5), (4, 3, 3, 3), (4, 3, 1, 1)])  # im2col, shifted, plain GEMM
def test_conv2d_empty_batch(ws):
    x = np.zeros((0, 3, 5, 5))
    w = np.ones(ws)
    y, ctx = dk.conv2d(x, w, np.ones(4), return_ctx=True)
    assert y.shape == (0, 4, 6 - ws[2], 6 - ws[3])
    dx, dw, db = dk.conv2d_backward(ctx, y)
    assert dx.shape == x.shape
    assert np.array_equal(dw, np.zeros(ws)) and np.array_equal(db, np.zeros(4))


@pytest.mark.parametrize(
    "kw",
    [
        dict(stride=2**40),
        dict(stride=(1, 2**40)),
        dict(stride=(2**40, 1), padding=1),
        dict(stride=37),
        dict(dilation=19),
        dict(stride=(13, 3), padding=2),
    ],
)
def test_conv2d_extreme_strides_and_dilations(rng, kw):
    x = rng.standard_normal((2, 3, 40, 40))
    w = rng.standard_normal((16, 3, 3, 3))
    y, ctx = dk.conv2d(x, w, **kw, return_ctx=True)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    s, p, d = pair(kw.get("stride", 1)), pair(kw.get("padding", 0)), pair(kw.get("dilation", 1))
    assert_close(y, conv2d_ref(x, w, None, s, p, d))
    dy = rng.standard_normal(y.shape)
    for g, r in zip(dk.conv2d_backward(ctx, dy), conv2d_backward_ref(x, w, dy, False, s, p, d)):
        if r is not None:
            assert_close(g, r)


def test_conv2d_nonfinite_weight_matches_torch(rng):
    """An Inf weight: dx is non-finite only where torch's is (the shifted dx paths multiply w by
    padding zeros, so they must not be used then). C >= 4 and C < 4, stride 1 and 2."""
    for xs, ws, s, p in [
        ((2, 4, 12, 12), (16, 4, 3, 3), 1, 1),
        ((2, 2, 12, 12), (16, 2, 3, 3), 1, 0),
        ((2, 4, 12, 12), (16, 4, 3, 3), 2, 1),
    ]:
        x = rng.standard_normal(xs)
        w = rng.standard_normal(ws)
        w[3, 1, 0, 2] = np.inf
        y, ctx = dk.conv2d(x, w, stride=s, padding=p, return_ctx=True)
        dy = rng.standard_normal(y.shape)
        dx, _, _ = dk.conv2d_backward(ctx, dy)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w)
        torch.nn.functional.conv2d(tx, tw, stride=s, padding=p).backward(torch.tensor(dy))
        want = tx.grad.numpy()
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(dx), fin) and np.array_equal(np.isnan(dx), np.isnan(want)), (xs, s, p)
        assert not fin.all()
        assert_close(np.where(fin, dx, 0.0), np.where(fin, want, 0.0))
