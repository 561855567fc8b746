"""conv2d's shifted-GEMM paths added for small images: the unfolded input layout (vs the phase
layout), the half-width last panel, edge tiles (K not a multiple of MR), the weight gradient's row-pointer
kernel (full and half width, partial row panels) and the threaded GEMM it falls back to, and the
layout switch itself. Each shape is checked against the float64 reference
(forward, dx, dw, db) and, for a subset, torch.

Which path a shape takes is the C++'s own answer (_cpu.conv2d_plan, from the predicates the passes
test), so the tests can assert that their shapes really cover both sides of every switch."""

import re

import deepkern as dk
import numpy as np
import pytest
import torch
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
from helpers import assert_close, run_with_isa
from reference import conv2d_backward_ref, conv2d_ref


def _tile(dt):
    mr, nr = re.search(r"(\d+)x(\d+)", _cpu.gemm_kernel_name(np.dtype(dt).name)).groups()
    return int(mr), int(nr)


def _out(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _cpp_plan(xs, ws, s, p, d, dt, threads=1):
    params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, d)
    return _cpu.conv2d_plan(params, np.dtype(dt).name, threads)


# the C++ names -> this file's: the shifted GEMM's phase layout, unfolded, im2col (+ winograd)
_FWD = {
    "shifted": "phase",
    "shifted_rowtiles": "phase",
    "shifted_inplace": "phase",
    "unfolded": "unfold",
    "shifted_scatter": "phase",
}
_DW = {"shifted_rows": "rows", "shifted_gemm": "gemm"}


def _plan(xs, ws, s, p, d, dt, threads=1):
    """The paths the C++ takes: {'fwd': 'unfold'|'phase'|'im2col'|..., 'dx': ..., 'dw': 'rows'|'gemm'|'im2col',
    'half': last forward panel half-width, 'edge_rows': K % MR != 0, 'dw_half': the weight gradient's
    last panel of K is half width, 'dw_edge': C*kh*kw % MR != 0}."""
    (_, C, H, W), (K, _, kh, kw) = xs, ws
    mr, nr = _tile(dt)
    Ho, Wo = _out(H, kh, s[0], p[0], d[0]), _out(W, kw, s[1], p[1], d[1])
    cpp = _cpp_plan(xs, ws, s, p, d, dt, threads)
    plan = {
        "fwd": _FWD.get(cpp["forward"], cpp["forward"]),
        "dx": _FWD.get(cpp["dx"], cpp["dx"]),
        "dw": _DW.get(cpp["dw"], cpp["dw"]),
        "half": False,
        "edge_rows": K % mr != 0,
        "dw_half": 0 < K % nr <= nr // 2,
        "dw_edge": (C * kh * kw) % mr != 0,
    }
    if plan["fwd"] == "unfold":
        plan["half"] = 0 < (Ho * Wo) % nr <= nr // 2
    return plan


def _check(rng, xs, ws, s, p, d, dt, bias=True, vs_torch=False):
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt) if bias else None
    y, ctx = dk.conv2d(x, w, b, s, p, d, return_ctx=True)
    what = f"x{xs} w{ws} s{s} p{p} d{d} {np.dtype(dt).name}"
    assert_close(y, conv2d_ref(x, w, b, s, p, d), dtype=dt, what="y " + what)
    dy = rng.standard_normal(y.shape).astype(dt)
    grads = dk.conv2d_backward(ctx, dy)
    for name, g, r in zip(("dx", "dw", "db"), grads, conv2d_backward_ref(x, w, dy, bias, s, p, d)):
        if r is None:
            assert g is None
        else:
            assert_close(g, r, dtype=dt, what=f"{name} {what}")
    if vs_torch:
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if bias else None
        ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
        ty.backward(torch.tensor(dy))
        assert_close(y, ty, dtype=dt, what="torch y " + what)
        assert_close(grads[0], tx.grad, dtype=dt, what="torch dx " + what)
        assert_close(grads[1], tw.grad, dtype=dt, what="torch dw " + what)


# (x shape, w shape, stride, padding, dilation): small images and odd sizes.
SHAPES = [
    ((3, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1)),  # lenet c3: 100 outputs, half last panel
    ((2, 5, 13, 11), (16, 5, 5, 5), (1, 1), (2, 2), (1, 1)),  # resnet-5x5-like, odd sizes
    ((2, 4, 11, 9), (19, 4, 3, 3), (1, 1), (1, 1), (1, 1)),  # K = 19: edge rows
    ((3, 3, 9, 12), (5, 3, 3, 5), (1, 1), (0, 2), (1, 1)),  # K < MR, rectangular kernel
    ((2, 6, 15, 17), (16, 6, 3, 3), (2, 2), (1, 1), (1, 1)),  # stride 2: phase layout
    ((2, 4, 16, 13), (20, 4, 3, 2), (2, 3), (1, 0), (1, 1)),  # mixed strides
    ((2, 5, 14, 15), (17, 5, 3, 3), (1, 1), (2, 1), (2, 2)),  # dilation
    ((2, 3, 12, 12), (16, 3, 1, 3), (2, 1), (0, 1), (1, 1)),  # kh = 1, stride 2: one row phase unused
    ((1, 7, 20, 22), (33, 7, 3, 3), (1, 1), (1, 1), (1, 1)),  # K = 33: one column in dw's last panel
    ((4, 2, 10, 10), (24, 2, 5, 5), (1, 1), (2, 2), (1, 1)),  # C < 4, small: dx by im2col planes
    ((2, 8, 7, 40), (16, 8, 3, 3), (1, 1), (1, 1), (1, 1)),  # wide, short rows
    ((2, 4, 18, 33), (16, 4, 3, 3), (1, 1), (1, 0), (1, 1)),  # Wo = 31: one column short of a row tile
    ((2, 8, 9, 19), (16, 8, 3, 5), (1, 2), (0, 0), (1, 1)),  # column stride 2: phases
    ((2, 6, 11, 27), (24, 6, 5, 7), (2, 1), (2, 3), (1, 1)),  # row stride 2: unfolded with row phases
    ((2, 4, 6, 32), (24, 4, 3, 3), (1, 1), (1, 1), (1, 1)),  # whole row tiles: the phase layout
    ((2, 3, 20, 20), (2, 3, 3, 3), (1, 1), (1, 1), (1, 1)),  # K = 2: copying would cost more, phase
]


@pytest.mark.parametrize("case", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_unfold_shapes_vs_reference(rng, case, dt):
    _check(rng, *case, dt, bias=True, vs_torch=dt == np.float32)


def test_shapes_cover_every_path():
    """The hand-picked shapes exercise both layouts (forward and dx), the half panel and a full
    last panel, edge rows, and the weight gradient's half and full panels and partial row panels,
    for this machine's kernel (the threaded dw GEMM: test_unfold_threads)."""
    for dt in (np.float32, np.float64):
        plans = [_plan(*c, dt) for c in SHAPES]
        seen = {(k, v) for pl in plans for k, v in pl.items()}
        for want in [
            ("fwd", "unfold"),
            ("fwd", "phase"),
            ("dx", "unfold"),
            ("dx", "phase"),
            ("dw", "rows"),
            ("half", True),
            ("edge_rows", True),
            ("dw_half", True),
            ("dw_half", False),
            ("dw_edge", True),
            ("dw_edge", False),
        ]:
            assert want in seen, (np.dtype(dt).name, want, plans)
        assert any(pl["fwd"] == "unfold" and not pl["half"] for pl in plans)
        assert any(pl["fwd"] == "unfold" and c[2][0] > 1 for pl, c in zip(plans, SHAPES))  # row phases
        assert any(pl["dw"] == "rows" and pl["dw_half"] for pl in plans)
        assert any(pl["dw"] == "rows" and not pl["dw_half"] and pl["dw_edge"] for pl in plans)


def _boundary_shapes(dt):
    """Square images of growing size where the forward layout switches from one side to the
    other: both neighbours of every switch (C, K, kernel and padding from a few families)."""
    out = []
    for C, K, k, p in [(6, 16, 5, 0), (4, 16, 3, 1), (3, 12, 5, 2), (8, 24, 3, 0)]:
        prev = None
        for n in range(k, 48):
            xs, ws = (1, C, n, n), (K, C, k, k)
            fwd = _plan(xs, ws, (1, 1), (p, p), (1, 1), dt)["fwd"]
            if fwd not in ("unfold", "phase"):
                prev = None
                continue
            cur = fwd == "unfold"
            if prev is not None and cur != prev[1]:
                out += [(prev[0], ws, (1, 1), (p, p), (1, 1)), (xs, ws, (1, 1), (p, p), (1, 1))]
            prev = (xs, cur)
    return out


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_layout_switch_boundary(rng, dt):
    shapes = _boundary_shapes(dt)
    assert shapes, "no layout switch found in the families: the tests would not cover it"
    for xs, ws, s, p, d in shapes:
        _check(rng, (2,) + xs[1:], ws, s, p, d, dt, bias=True)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_small_k_weight_gradient_on_the_shifted_path(rng, dt):
    """K below the tile width (1, 2, 6 as LeNet's first layer, 15): the weight gradient reads x in
    place like any other K (its last panel of K is padded), against the reference and torch."""
    for xs, ws, s, p in [
        ((3, 1, 28, 28), (6, 1, 5, 5), (1, 1), (0, 0)),
        ((2, 3, 11, 9), (1, 3, 3, 3), (1, 1), (1, 1)),
        ((2, 2, 13, 13), (2, 2, 3, 2), (2, 1), (1, 0)),
        ((2, 5, 10, 12), (15, 5, 5, 5), (1, 1), (2, 2)),
    ]:
        assert _plan(xs, ws, s, p, (1, 1), dt)["dw"] == "rows", (xs, ws)
        _check(rng, xs, ws, s, p, (1, 1), dt, bias=True, vs_torch=True)


def test_unfold_random_small_shapes(rng):
    """Random small shapes with K >= 16 (shifted weight gradient) and C >= 4 (dx as a convolution)."""
    unfolded = 0
    for _ in range(40):
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 3, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        H = int(rng.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 24))
        W = int(rng.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 24))
        N, C, K = int(rng.integers(1, 4)), int(rng.integers(4, 8)), int(rng.integers(16, 26))
        dt = np.float64 if rng.integers(0, 2) else np.float32
        unfolded += _plan((N, C, H, W), (K, C, kh, kw), s, p, d, dt)["fwd"] == "unfold"
        _check(rng, (N, C, H, W), (K, C, kh, kw), s, p, d, dt, bias=bool(rng.integers(0, 2)))
    assert unfolded >= 5


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("N", [1, 5])
def test_unfold_threads(rng, threads, N):
    """Enough work for threads: N = 1 shares one buffer (threads split its channels and the
    panels), N = 5 gives whole samples to threads (each its own buffer, private dw)."""
    xs, ws = (N, 12, 26, 26), (24, 12, 5, 5)
    assert _plan(xs, ws, (1, 1), (2, 2), (1, 1), np.float64, threads)["fwd"] == "unfold"
    assert _plan(xs, ws, (1, 1), (2, 2), (1, 1), np.float64, threads)["dw"] == ("gemm" if threads > N else "rows")
    assert _plan(xs, ws, (1, 1), (0, 0), (1, 1), np.float32, threads)["fwd"] == "unfold"
    old = dk.get_num_threads()
    try:
        dk.set_num_threads(threads)
        _check(rng, xs, ws, (1, 1), (2, 2), (1, 1), np.float64)
        _check(rng, xs, ws, (2, 2), (1, 1), (1, 1), np.float32)
        # no padding: the last row of each plane is the buffer's last, so a row copy that wrote past
        # it would land in the next channel's plane (another thread's with N = 1)
        _check(rng, xs, ws, (1, 1), (0, 0), (1, 1), np.float32)
    finally:
        dk.set_num_threads(old)


def test_unfold_nonfinite_input_matches_torch(rng):
    """Inf in an unfolded-layout input: NaN/Inf exactly where torch has them (dw then takes im2col)."""
    xs, ws = (2, 6, 14, 14), (16, 6, 5, 5)
    assert _plan(xs, ws, (1, 1), (0, 0), (1, 1), np.float64)["fwd"] == "unfold"
    x = rng.standard_normal(xs)
    x[1, 2, 3, 13] = np.inf
    w = rng.standard_normal(ws)
    y, ctx = dk.conv2d(x, w, return_ctx=True)
    dy = rng.standard_normal(y.shape)
    _, dw, _ = dk.conv2d_backward(ctx, dy)
    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw)
    ty.backward(torch.tensor(dy))
    for name, got, want in (("y", y, ty.detach().numpy()), ("dw", dw, tw.grad.numpy())):
        fin = np.isfinite(want)
        assert not fin.all()
        assert np.array_equal(np.isfinite(got), fin) and np.array_equal(np.isnan(got), np.isnan(want)), name
        assert_close(np.where(fin, got, 0.0), np.where(fin, want, 0.0), what=name)


_GROUPS_SCRIPT = r"""
import os, sys
os.environ["DEEPKERN_PARALLEL_MIN_US"] = "0"
os.environ["DEEPKERN_CONTENTION"] = "off"
import numpy as np
import deepkern as dk
from deepkern import _cpu
from deepkern.functional.conv import _conv_params
sys.path.insert(0, {tests!r})
from reference import conv2d_ref
rng = np.random.default_rng(11)
# tiles written in place run in groups of panels: several groups and a partial last one, N = 1 at 2 threads
# (a thread's panel range starts inside a group), K not a multiple of MR, 343 taps (two kc blocks), a 1x1/2
# in place on the phase layout
cases = [((1, 3, 30, 30), (19, 3, 7, 7), 1, 3, "unfolded"), ((2, 8, 20, 23), (13, 8, 7, 5), 1, 2, "unfolded"),
         ((1, 7, 18, 21), (10, 7, 7, 7), 1, 0, "unfolded"), ((3, 2, 21, 40), (25, 2, 6, 6), 1, 1, "unfolded"),
         ((2, 20, 29, 29), (19, 20, 1, 1), 2, 0, "shifted_inplace")]
for dt in (np.float32, np.float64):
    tol = 2e-4 if dt == np.float32 else 1e-10
    for xs, ws, s, p, plan in cases:
        s, p = (s, s), (p, p)
        params, _ = _conv_params("conv2d", np.empty(xs, dt), np.empty(ws, dt), None, s, p, 1)
        for t in (1, 2):
            assert _cpu.conv2d_plan(params, np.dtype(dt).name, t)["forward"] == plan, (xs, ws, t)
        x, w, b = (rng.standard_normal(a).astype(dt) for a in (xs, ws, ws[0]))
        x[-1, -1, xs[2] // 2, 4] = np.nan
        r = conv2d_ref(x, w, b, s, p, (1, 1))
        nan = np.isnan(r)
        assert nan.any() and not nan.all()
        ys = []
        for t in (1, 2):
            dk.set_num_threads(t)
            y = dk.conv2d(x, w, b, s, p, 1, out=np.full(r.shape, np.nan, dt))
            assert np.array_equal(np.isnan(y), nan), (dt, xs, ws, t)
            err = np.abs(y[~nan] - r[~nan]).max() / max(1.0, np.abs(r[~nan]).max())
            assert err < tol, (dt, xs, ws, t, err)
            ys.append(y)
        assert np.array_equal(ys[0], ys[1], equal_nan=True), (dt, xs, ws)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_inplace_tile_groups_each_isa(isa):
    """Tiles written in place go by groups of panels, each weight panel over the whole group: several
    groups and a partial one, groups entered mid-way (a thread's share of one sample), two kc blocks,
    edge rows of K; a NaN input spreads to exactly its windows; same bits at 1 and 2 threads, per ISA."""
    r = run_with_isa(isa, _GROUPS_SCRIPT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
