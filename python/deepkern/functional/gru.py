"""gru_cell / gru and their backward passes, PyTorch's nn.GRU equations and layout.

Gate order r, z, n; w_ih (3H, I), w_hh (3H, H), b_ih, b_hh (3H,), each bias optional:
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
Composed from GEMMs (the library's packed GEMM on numpy, cupy.matmul on cupy) and whole-array
gate math: the input projection of all T steps is one GEMM, then one (B, H) x (H, 3H) GEMM per
step; the backward gathers every step's gate gradients so the weight gradients are two GEMMs.
Unbatched inputs (x (I,) for the cell, (T, I) for the sequence, h (H,)) give unbatched outputs.
"""

from .._validate import Context, as_float_arrays, as_grad, check_ctx, check_ndim, to_out_dtype
from . import _gates


def _gemm(a, b, trans_a=False, trans_b=False):
    from ..nn._matmul import gemm  # deferred: deepkern.nn imports this package

    return gemm(a, b, trans_a=trans_a, trans_b=trans_b)


def sigmoid(xp, z):
    """1 / (1 + exp(-z)) without overflow for either sign."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _prepare(op, x, h, w_ih, w_hh, b_ih, b_hh, seq):
    backend, arrays, out_dt, comp_dt = as_float_arrays(
        op,
        [("x", x), ("h0" if seq else "h", h), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih), ("b_hh", b_hh)],
        optional=("h0" if seq else "h", "b_ih", "b_hh"),
    )
    x, h, w_ih, w_hh, b_ih, b_hh = arrays
    hn = "h0" if seq else "h"
    layout = (
        "(seq_len, batch, input_size) or unbatched (seq_len, input_size)"
        if seq
        else "(batch, input_size) or unbatched (input_size,)"
    )
    full = 3 if seq else 2
    if x.ndim not in (full, full - 1):
        raise ValueError(f"{op}: 'x' has shape {tuple(x.shape)}; expected {layout}")
    unbatched = x.ndim == full - 1
    if unbatched:
        x = x[:, None] if seq else x[None]
    if not seq:
        x = x[None]
    T, B, I = x.shape
    if min(T, B, I) < 1:
        raise ValueError(f"{op}: 'x' has shape {tuple(x.shape)}; every dimension of {layout} must be >= 1")
    check_ndim(op, "w_ih", w_ih, 2, "(3*hidden_size, input_size)")
    H = _gates.hidden_size(op, w_ih, w_hh, b_ih, b_hh, I, "r, z, n")
    want = (H,) if unbatched else (B, H)
    if h is not None:
        if tuple(h.shape) != want:
            raise ValueError(
                f"{op}: '{hn}' has shape {tuple(h.shape)}; expected {want} from x {tuple(x.shape)} "
                f"and w_hh {tuple(w_hh.shape)}"
            )
        h = h.reshape(B, H)
    return backend, (x, h, w_ih, w_hh, b_ih, b_hh), out_dt, comp_dt, (T, B, I, H), unbatched


def _forward(op, backend, arrays, out_dt, comp_dt, dims, unbatched, return_ctx):
    x, h0, w_ih, w_hh, b_ih, b_hh = arrays
    xp = backend.xp
    T, B, I, H = dims
    gi = _gemm(x.reshape(T * B, I), w_ih, trans_b=True).reshape(T, B, 3 * H)
    if b_ih is not None:
        gi += b_ih
    h = xp.zeros((B, H), comp_dt) if h0 is None else h0
    hs = xp.empty((T + 1, B, H), comp_dt)  # hs[t] = the state entering step t
    hs[0] = h
    keep = return_ctx
    r_all = xp.empty((T, B, H), comp_dt) if keep else None
    z_all = xp.empty((T, B, H), comp_dt) if keep else None
    n_all = xp.empty((T, B, H), comp_dt) if keep else None
    hn_all = xp.empty((T, B, H), comp_dt) if keep else None  # W_hn h + b_hn, which r multiplies
    for t in range(T):
        gh = _gemm(h, w_hh, trans_b=True)
        if b_hh is not None:
            gh += b_hh
        r = sigmoid(xp, gi[t, :, :H] + gh[:, :H])
        z = sigmoid(xp, gi[t, :, H : 2 * H] + gh[:, H : 2 * H])
        n = xp.tanh(gi[t, :, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        hs[t + 1] = h
        if keep:
            r_all[t], z_all[t], n_all[t], hn_all[t] = r, z, n, gh[:, 2 * H :]
    y, hT = hs[1:], hs[T]
    if unbatched:
        y, hT = y[:, 0], hT[0]
    outs = (to_out_dtype(y, out_dt), to_out_dtype(hT.copy(), out_dt))
    if not return_ctx:
        return outs, None
    ctx = Context(
        op,
        backend,
        out_dt,
        comp_dt,
        dims=dims,
        x=x,
        hs=hs,
        r=r_all,
        z=z_all,
        n=n_all,
        hn=hn_all,
        w_ih=w_ih,
        w_hh=w_hh,
        has_h0=h0 is not None,
        has_b_ih=b_ih is not None,
        has_b_hh=b_hh is not None,
        unbatched=unbatched,
    )
    return outs, ctx


def _backward(ctx, dy, dhT):
    xp, dt = ctx.backend.xp, ctx.compute_dtype
    T, B, I, H = ctx.dims
    dgi = xp.empty((T, B, 3 * H), dt)  # gradient at x W_ih^T + b_ih, per step
    dgh = xp.empty((T, B, 3 * H), dt)  # gradient at h W_hh^T + b_hh, per step
    dh = xp.zeros((B, H), dt) if dhT is None else dhT.copy()
    for t in range(T - 1, -1, -1):
        if dy is not None:
            dh = dh + dy[t]
        r, z, n, hn, h = ctx.r[t], ctx.z[t], ctx.n[t], ctx.hn[t], ctx.hs[t]
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (h - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        dgi[t, :, :H], dgi[t, :, H : 2 * H], dgi[t, :, 2 * H :] = dr, dz, dn
        dgh[t, :, :H], dgh[t, :, H : 2 * H], dgh[t, :, 2 * H :] = dr, dz, dn * r
        dh = dh * z + _gemm(dgh[t], ctx.w_hh)
    dgi2, dgh2 = dgi.reshape(T * B, 3 * H), dgh.reshape(T * B, 3 * H)
    dx = _gemm(dgi2, ctx.w_ih).reshape(T, B, I)
    dw_ih = _gemm(dgi2, ctx.x.reshape(T * B, I), trans_a=True)
    dw_hh = _gemm(dgh2, ctx.hs[:T].reshape(T * B, H), trans_a=True)
    db_ih = dgi2.sum(axis=0) if ctx.has_b_ih else None
    db_hh = dgh2.sum(axis=0) if ctx.has_b_hh else None
    dh0 = dh if ctx.has_h0 else None
    if ctx.unbatched:
        dx, dh0 = dx[:, 0], (None if dh0 is None else dh0[0])
    out = lambda a: None if a is None else to_out_dtype(a, ctx.out_dtype)  # noqa: E731
    return out(dx), out(dh0), out(dw_ih), out(dw_hh), out(db_ih), out(db_hh)


def _grad(op, ctx, name, g, shape):
    return None if g is None else as_grad(op, ctx, name, g, shape)


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    """One GRU step (torch.nn.GRUCell): x (B, I) or (I,), h (B, H) or (H,) (None = zeros) -> h1.
    With return_ctx, returns (h1, ctx) for gru_cell_backward.

    >>> import numpy as np, deepkern as dk
    >>> h1 = dk.gru_cell(np.zeros((2, 3)), None, np.zeros((12, 3)), np.zeros((12, 4)))
    >>> h1.shape, float(h1.max())         # z = 0.5, n = 0: h1 = 0.5 * 0 + 0.5 * 0
    ((2, 4), 0.0)
    """
    op = "gru_cell"
    backend, arrays, out_dt, comp_dt, dims, unb = _prepare(op, x, h, w_ih, w_hh, b_ih, b_hh, seq=False)
    (y, h1), ctx = _forward(op, backend, arrays, out_dt, comp_dt, dims, unb, return_ctx)
    return (h1, ctx) if return_ctx else h1


def gru_cell_backward(ctx, dh1):
    """(dx, dh, dw_ih, dw_hh, db_ih, db_hh) from dh1; dh / db_* are None where h / that bias was None.

    >>> import numpy as np, deepkern as dk
    >>> h1, ctx = dk.gru_cell(np.ones((1, 3)), None, np.zeros((12, 3)), np.zeros((12, 4)), return_ctx=True)
    >>> [None if g is None else g.shape for g in dk.gru_cell_backward(ctx, np.ones_like(h1))]
    [(1, 3), None, (12, 3), (12, 4), None, None]
    """
    op = "gru_cell_backward"
    check_ctx(op, ctx, "gru_cell")
    _, B, I, H = ctx.dims
    dh1 = as_grad(op, ctx, "dh1", dh1, (H,) if ctx.unbatched else (B, H)).reshape(B, H)
    dx, *rest = _backward(ctx, None, dh1)
    return (dx[0], *rest)


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    """A one-layer GRU over a sequence: x (T, B, I) or unbatched (T, I), h0 (B, H) or (H,) (None =
    zeros) -> (y (T, B, H), hT), y[t] the state after step t. With return_ctx, ((y, hT), ctx).

    >>> x, w_ih, w_hh = np.ones((5, 2, 3)), np.full((12, 3), 0.1), np.full((12, 4), 0.1)
    >>> (y, hT), ctx = dk.gru(x, None, w_ih, w_hh, return_ctx=True)
    >>> y.shape, hT.shape
    ((5, 2, 4), (2, 4))
    >>> dx, dh0, dw_ih, dw_hh, db_ih, db_hh = dk.gru_backward(ctx, np.ones_like(y))
    >>> dx.shape, dw_ih.shape, dh0 is None     # h0 was None (zeros): no gradient for it
    ((5, 2, 3), (12, 3), True)
    """
    op = "gru"
    backend, arrays, out_dt, comp_dt, dims, unb = _prepare(op, x, h0, w_ih, w_hh, b_ih, b_hh, seq=True)
    outs, ctx = _forward(op, backend, arrays, out_dt, comp_dt, dims, unb, return_ctx)
    return (outs, ctx) if return_ctx else outs


def gru_backward(ctx, dy, dhT=None):
    """(dx, dh0, dw_ih, dw_hh, db_ih, db_hh) from dy (T, B, H) and dhT (B, H), either None (zeros);
    dh0 / db_* are None where h0 / that bias was None.

    >>> import numpy as np, deepkern as dk
    >>> (y, hT), ctx = dk.gru(np.ones((4, 1, 3)), None, np.zeros((6, 3)), np.zeros((6, 2)), return_ctx=True)
    >>> [None if g is None else g.shape for g in dk.gru_backward(ctx, np.ones_like(y))]
    [(4, 1, 3), None, (6, 3), (6, 2), None, None]
    """
    op = "gru_backward"
    check_ctx(op, ctx, "gru")
    T, B, I, H = ctx.dims
    lead = (T,) if ctx.unbatched else (T, B)
    dy = _grad(op, ctx, "dy", dy, lead + (H,))
    dhT = _grad(op, ctx, "dhT", dhT, (H,) if ctx.unbatched else (B, H))
    return _backward(ctx, None if dy is None else dy.reshape(T, B, H), None if dhT is None else dhT.reshape(B, H))
