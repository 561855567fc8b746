"""PyTorch's other conv2d arguments: groups (grouped and depthwise), padding="same"/"valid",
unbatched (C, H, W) input, and on the layer bias=False and padding_mode; against the reference,
PyTorch and finite differences, on random shapes."""

import deepkern as dk
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, numeric_grad
from reference import conv2d_backward_ref, conv2d_ref


def random_group_cases(seed, count, depthwise):
    """(x shape, w shape, stride, padding, dilation, groups, bias): odd sizes, rows wide enough for
    the depthwise vector blocks, channel multipliers K = m*C."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        H = int(rng.integers(1, 14))
        W = int(rng.choice([int(rng.integers(1, 14)), int(rng.integers(30, 70))]))
        if H + 2 * p[0] < d[0] * (kh - 1) + 1 or W + 2 * p[1] < d[1] * (kw - 1) + 1:
            continue
        G = int(rng.integers(2, 5))
        C = G if depthwise else G * int(rng.integers(1, 4))
        K = G * int(rng.integers(1, 4))
        N = int(rng.integers(1, 4))
        cases.append(((N, C, H, W), (K, C // G, kh, kw), s, p, d, G, bool(rng.integers(0, 2))))
    return cases


GROUP_CASES = (
    random_group_cases(3, 16, depthwise=False)
    + random_group_cases(4, 20, depthwise=True)
    + [
        ((2, 8, 17, 40), (8, 1, 3, 3), (1, 1), (1, 1), (1, 1), 8, True),  # depthwise 3x3 (MobileNet)
        ((1, 4, 9, 33), (12, 1, 3, 3), (2, 2), (1, 1), (1, 1), 4, False),  # K = 3C, stride 2
        ((2, 3, 7, 7), (6, 1, 5, 5), (1, 1), (4, 4), (2, 2), 3, True),  # dilated, padding past the extent
        ((1, 6, 5, 6), (4, 3, 2, 3), (1, 2), (0, 1), (1, 1), 2, True),
    ]
)


def _run(rng, xs, ws, s, p, d, G, bias, dt):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y, ctx = dk.conv2d(x, w, b, s, p, d, G, return_ctx=True)
    dy = rng.standard_normal(y.shape).astype(dt)
    return x, w, b, y, dy, dk.conv2d_backward(ctx, dy)


@pytest.mark.parametrize("case", GROUP_CASES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_groups_match_reference_and_torch(case, dt, rng):
    xs, ws, s, p, d, G, bias = case
    x, w, b, y, dy, grads = _run(rng, xs, ws, s, p, d, G, bias, dt)
    assert_close(y, conv2d_ref(x, w, b, s, p, d, G), dt, what="y vs reference")
    for name, g, r in zip(("dx", "dw", "db"), grads, conv2d_backward_ref(x, w, dy, bias, s, p, d, G)):
        if r is None:
            assert g is None
        else:
            assert g.shape == r.shape and g.dtype == dt
            assert_close(g, r, dt, what=f"{name} vs reference")
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    yt = F.conv2d(xt, wt, bt, s, p, d, G)
    yt.backward(torch.tensor(dy))
    assert_close(y, yt, dt, what="y vs torch")
    assert_close(grads[0], xt.grad, dt, what="dx vs torch")
    assert_close(grads[1], wt.grad, dt, what="dw vs torch")
    if bias:
        assert_close(grads[2], bt.grad, dt, what="db vs torch")


# finite differences cost two forwards per input element: the small cases, grouped and depthwise
FD_CASES = [c for c in GROUP_CASES if np.prod(c[0]) <= 800][:10]


@pytest.mark.parametrize("case", FD_CASES)
def test_group_gradients_by_finite_differences(case, rng):
    xs, ws, s, p, d, G, bias = case
    x, w, b, y, dy, (dx, dw, db) = _run(rng, xs, ws, s, p, d, G, bias, np.float64)
    assert_close(
        dx, numeric_grad(lambda z: dk.conv2d(z, w, b, s, p, d, G), x, dy), np.float64, rtol=1e-7, atol=1e-8, what="dx"
    )
    assert_close(
        dw, numeric_grad(lambda z: dk.conv2d(x, z, b, s, p, d, G), w, dy), np.float64, rtol=1e-7, atol=1e-8, what="dw"
    )


def test_depthwise_with_nan_and_inf_propagates_as_torch(rng):
    x = rng.standard_normal((1, 4, 6, 40)).astype(np.float32)
    x[0, 1, 2, 7] = np.nan
    x[0, 2, 3, 20] = np.inf
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    y = dk.conv2d(x, w, None, 1, 1, 1, 4)
    yt = F.conv2d(torch.tensor(x), torch.tensor(w), None, 1, 1, 1, 4).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(yt))


def test_every_simd_path_of_the_depthwise_kernel():
    """The depthwise kernel's ISA copies, forced with DEEPKERN_CPU_ISA (skipped where the CPU lacks one)."""
    import os
    import subprocess
    import sys

    script = """
import numpy as np, deepkern as dk, sys
sys.path.insert(0, 'tests')
from reference import conv2d_ref, conv2d_backward_ref
rng = np.random.default_rng(9)
for xs, ws, s, p, d in [((2, 6, 11, 45), (12, 1, 3, 3), 1, 1, 1), ((1, 3, 9, 37), (3, 1, 3, 2), 2, (1, 0), (2, 1))]:
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(xs).astype(dt); w = rng.standard_normal(ws).astype(dt)
        y, ctx = dk.conv2d(x, w, None, s, p, d, xs[1], return_ctx=True)
        st, pd, dd = [(v, v) if isinstance(v, int) else v for v in (s, p, d)]
        assert np.allclose(y, conv2d_ref(x, w, None, st, pd, dd, xs[1]), rtol=1e-4, atol=1e-4)
        dy = rng.standard_normal(y.shape).astype(dt)
        dx, dw, _ = dk.conv2d_backward(ctx, dy)
        rx, rw, _ = conv2d_backward_ref(x, w, dy, False, st, pd, dd, xs[1])
        assert np.allclose(dx, rx, rtol=1e-4, atol=1e-4) and np.allclose(dw, rw, rtol=1e-4, atol=1e-3)
print(dk._cpu.isa())
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for isa in ("generic", "avx2", "avx512"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=dict(os.environ, DEEPKERN_CPU_ISA=isa),
            cwd=root,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() in (isa, "avx2", "generic")


SAME_CASES = [  # (x shape, w shape, dilation): odd and even kernels, dilation making d*(k-1) odd or even
    ((2, 3, 7, 9), (4, 3, 3, 3), (1, 1)),
    ((1, 2, 6, 5), (3, 2, 2, 4), (1, 1)),  # even kernels: one more zero after than before
    ((2, 2, 8, 7), (2, 2, 4, 3), (3, 2)),
    ((1, 1, 1, 1), (1, 1, 2, 2), (1, 1)),
    ((1, 3, 5, 11), (6, 1, 2, 3), (1, 1)),  # with groups=3 below
]


@pytest.mark.parametrize("case", SAME_CASES)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_padding_same_and_valid_match_torch(case, padding, rng):
    xs, ws, d = case
    G = xs[1] // ws[1]
    if padding == "valid" and (xs[2] < d[0] * (ws[2] - 1) + 1 or xs[3] < d[1] * (ws[3] - 1) + 1):
        pytest.skip("kernel larger than the input: 'valid' has no output (checked as bad input)")
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    y, ctx = dk.conv2d(x, w, b, 1, padding, d, G, return_ctx=True)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, 1, padding, d, G)
    assert y.shape == tuple(yt.shape)
    if padding == "same":
        assert y.shape[2:] == xs[2:]
        pads = tuple((dd * (k - 1) // 2, dd * (k - 1) - dd * (k - 1) // 2) for k, dd in zip(ws[2:], d))
        assert_close(y, conv2d_ref(x, w, b, (1, 1), pads, d, G), np.float64, what="y vs reference")
    assert_close(y, yt, np.float64, what="y vs torch")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    yt.backward(torch.tensor(dy))
    assert dx.shape == x.shape
    for g, t in ((dx, xt), (dw, wt), (db, bt)):
        assert_close(g, t.grad, np.float64)
    num = numeric_grad(lambda z: dk.conv2d(z, w, b, 1, padding, d, G), x, dy)
    assert_close(dx, num, np.float64, rtol=1e-7, atol=1e-8, what="dx finite differences")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_unbatched_conv_as_torch(dt, rng):
    x = rng.standard_normal((4, 9, 8)).astype(dt)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dt)
    b = rng.standard_normal(6).astype(dt)
    y, ctx = dk.conv2d(x, w, b, (2, 1), "valid", 1, 2, return_ctx=True)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, (2, 1), "valid", 1, 2)
    assert y.shape == tuple(yt.shape) == (6, 4, 7)
    assert_close(y, yt, dt)
    dy = rng.standard_normal(y.shape).astype(dt)
    dx, dw, db = dk.conv2d_backward(ctx, dy)
    yt.backward(torch.tensor(dy))
    assert dx.shape == x.shape
    for g, t in ((dx, xt), (dw, wt), (db, bt)):
        assert_close(g, t.grad, dt)
    out = np.empty((6, 4, 7), dt)
    assert dk.conv2d(x, w, b, (2, 1), 0, 1, 2, out=out) is out
    assert_close(out, yt, dt)
    y2 = dk.conv2d(x, w[:, :, :, :1].copy(), None, 1, "same", 1, 2)
    assert y2.shape == (6, 9, 8)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "padding, groups, bias",
    [(1, 1, True), ((2, 1), 2, False), ("same", 1, True), ("same", 4, False), ("valid", 2, True)],
)
def test_layer_padding_mode_groups_bias_match_torch(mode, padding, groups, bias, rng):
    k = (3, 2) if padding == "same" else 3
    layer = dk.nn.Conv2D(4, 8, k, 1, padding, 1, groups, bias, mode, dtype=np.float64, seed=0)
    tl = torch.nn.Conv2d(4, 8, k, 1, padding, 1, groups, bias, mode, dtype=torch.float64)
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(layer.weight.value))
        if bias:
            tl.bias.copy_(torch.tensor(layer.bias.value))
    assert (layer.bias is None) == (not bias)
    assert layer.num_params() == sum(p.numel() for p in tl.parameters())
    for xs in ((2, 4, 6, 7), (4, 5, 6)):  # batched and unbatched
        x = rng.standard_normal(xs)
        xt = torch.tensor(x, requires_grad=True)
        y, yt = layer.forward(x), tl(xt)
        assert_close(y, yt, np.float64, what=f"y {mode} {xs}")
        assert layer.output_shape(xs[-3:]) == tuple(yt.shape[-3:])
        dy = rng.standard_normal(y.shape)
        layer.zero_grad()
        dx = layer.backward(dy)
        tl.zero_grad()
        yt.backward(torch.tensor(dy))
        assert dx.shape == x.shape
        assert_close(dx, xt.grad, np.float64, what=f"dx {mode} {xs}")
        assert_close(layer.weight.grad, tl.weight.grad, np.float64, what=f"dw {mode} {xs}")


def test_padding_mode_gradient_by_finite_differences(rng):
    for mode in ("reflect", "replicate", "circular"):
        layer = dk.nn.Conv2D(2, 3, 3, 1, (2, 1), padding_mode=mode, dtype=np.float64, seed=1)
        x = rng.standard_normal((1, 2, 5, 4))
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        num = numeric_grad(lambda z: layer.forward(z, training=False), x, dy)  # noqa: B023
        assert_close(dx, num, np.float64, rtol=1e-7, atol=1e-8, what=f"dx {mode}")


X = np.zeros((1, 4, 5, 5), np.float32)
W = np.zeros((4, 2, 3, 3), np.float32)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(groups=0), ValueError, "'groups' must be a positive int"),
        (dict(groups=2.0), ValueError, "'groups' must be a positive int"),
        (dict(groups=3), ValueError, "'groups' is 3"),
        (dict(groups=4), ValueError, "'groups' is 4"),
        (dict(w=np.zeros((3, 2, 3, 3), np.float32), groups=2), ValueError, "not divisible by 'groups'"),
        (dict(padding="full"), ValueError, "'padding' must be an int, a pair of ints, 'same' or 'valid'"),
        (dict(padding="same", stride=2), ValueError, "padding='same' needs stride 1"),
        (dict(x=np.zeros((1, 4, 2, 2), np.float32), padding="valid"), ValueError, "kernel larger than padded input"),
        (dict(x=np.zeros((5, 5), np.float32)), ValueError, "'x' must be a 4-D .* or 3-D"),
    ],
)
def test_new_arguments_bad_input(kwargs, exc, match):
    args = dict(x=X, w=W, groups=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        dk.conv2d(**args)


def test_layer_bad_arguments():
    with pytest.raises(ValueError, match="'in_channels' \\(3\\) must be divisible by 'groups'"):
        dk.nn.Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="'out_channels' \\(3\\) must be divisible by 'groups'"):
        dk.nn.Conv2D(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="'padding_mode' must be one of"):
        dk.nn.Conv2D(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        dk.nn.Conv2D(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode='reflect' needs padding < the input's H"):
        dk.nn.Conv2D(1, 1, 5, padding=2, padding_mode="reflect").forward(np.zeros((1, 1, 2, 8), np.float32))
    with pytest.raises(ValueError, match="expected \\(N, 4, H, W\\) or \\(4, H, W\\)"):
        dk.nn.Conv2D(4, 4, 3).forward(np.zeros((1, 3, 5, 5), np.float32))


class _CudaLike:
    name = "cuda"


class _CpuLike:
    name = "cpu"


def test_cuda_gets_the_params_dict_with_groups():
    """The CUDA binding takes the CPU's params dict (groups included; padding='same'/'valid' and
    unbatched input are resolved in Python) plus whether float32 may use TF32."""
    from deepkern.functional.conv import _conv_params, _with_tf32

    x = np.zeros((2, 4, 7, 7), np.float32)
    p, extra = _conv_params("conv2d", x, np.zeros((6, 4, 2, 2), np.float32), None, 1, "same", 1, 1)
    assert extra == (1, 1)
    fields = ("N", "C", "H", "W", "K", "kh", "kw", "Ho", "Wo", "sh", "sw", "ph", "pw", "dh", "dw", "G")
    assert tuple(p[k] for k in fields) == (2, 4, 8, 8, 6, 2, 2, 7, 7, 1, 1, 0, 0, 1, 1, 1)
    p, _ = _conv_params("conv2d", x, np.zeros((4, 1, 3, 3), np.float32), None, 1, 1, 1, 4)
    assert _with_tf32(_CudaLike(), p, np.float32) == {**p, "G": 4, "allow_tf32": 0}
    assert _with_tf32(_CpuLike(), p, np.float32) is p
