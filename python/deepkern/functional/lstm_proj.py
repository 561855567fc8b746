"""dk.lstm with a projection (PyTorch's proj_size): h_t = (o * tanh(c_t)) @ w_hr.T, h of size P < H.

The recurrence feeds the projected h back (w_hh is (4H, P)), which the fused C++ kernel does not
do, so this path is composed: one GEMM for every step's input projection, per step one
(B, P) x (P, 4H) GEMM, the gate math on whole (B, H) arrays and one (B, H) x (H, P) GEMM; the
backward gathers the gate gradients of all steps so the weight gradients are single GEMMs.
"""

from .._validate import Context, as_float_arrays, to_out_dtype
from .gru import _gemm, sigmoid


def prepare(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
    """Validate x (T, B, I), h0 (B, P), c0 (B, H), w_ih (4H, I), w_hh (4H, P), w_hr (P, H)."""
    backend, arrays, out_dt, comp_dt = as_float_arrays(
        op,
        [
            ("x", x),
            ("h0", h0),
            ("c0", c0),
            ("w_ih", w_ih),
            ("w_hh", w_hh),
            ("b_ih", b_ih),
            ("b_hh", b_hh),
            ("w_hr", w_hr),
        ],
        optional=("h0", "c0", "b_ih", "b_hh"),
    )
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = arrays
    T, B, I = x.shape
    if w_ih.ndim != 2 or w_ih.shape[0] % 4 or w_ih.shape[0] < 4 or w_ih.shape[1] != I:
        raise ValueError(f"{op}: 'w_ih' has shape {tuple(w_ih.shape)}; expected (4*hidden_size, {I})")
    H = int(w_ih.shape[0]) // 4
    if w_hr.ndim != 2 or w_hr.shape[1] != H or not 1 <= w_hr.shape[0] < H:
        raise ValueError(
            f"{op}: 'w_hr' has shape {tuple(w_hr.shape)}; expected (proj_size, {H}) with "
            f"0 < proj_size < hidden_size {H}"
        )
    P = int(w_hr.shape[0])
    if tuple(w_hh.shape) != (4 * H, P):
        raise ValueError(
            f"{op}: 'w_hh' has shape {tuple(w_hh.shape)}; expected ({4 * H}, {P}) = "
            "(4*hidden_size, proj_size) when w_hr is given"
        )
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and tuple(b.shape) != (4 * H,):
            raise ValueError(f"{op}: '{name}' has shape {tuple(b.shape)}; expected ({4 * H},) = (4*hidden_size,)")
    for name, s, n in (("h0", h0, P), ("c0", c0, H)):
        if s is not None and tuple(s.shape) != (B, n):
            raise ValueError(f"{op}: '{name}' has shape {tuple(s.shape)}; expected ({B}, {n})")
    return backend, arrays, out_dt, comp_dt, (T, B, I, H, P)


def forward(op, backend, arrays, out_dt, comp_dt, dims, return_ctx):
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = arrays
    xp = backend.xp
    T, B, I, H, P = dims
    g_in = _gemm(x.reshape(T * B, I), w_ih, trans_b=True).reshape(T, B, 4 * H)
    for b in (b_ih, b_hh):
        if b is not None:
            g_in += b
    hs = xp.empty((T + 1, B, P), comp_dt)  # hs[t]: the projected state entering step t
    cs = xp.empty((T + 1, B, H), comp_dt)
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    gates = xp.empty((T, B, 4 * H), comp_dt) if return_ctx else None  # i, f, g, o after activation
    full = xp.empty((T, B, H), comp_dt) if return_ctx else None  # o * tanh(c), before w_hr
    for t in range(T):
        a = g_in[t] + _gemm(hs[t], w_hh, trans_b=True)
        i, f = sigmoid(xp, a[:, :H]), sigmoid(xp, a[:, H : 2 * H])
        g, o = xp.tanh(a[:, 2 * H : 3 * H]), sigmoid(xp, a[:, 3 * H :])
        cs[t + 1] = f * cs[t] + i * g
        hf = o * xp.tanh(cs[t + 1])
        hs[t + 1] = _gemm(hf, w_hr, trans_b=True)
        if return_ctx:
            gates[t, :, :H], gates[t, :, H : 2 * H], gates[t, :, 2 * H : 3 * H], gates[t, :, 3 * H :] = i, f, g, o
            full[t] = hf
    outs = (to_out_dtype(hs[1:], out_dt), to_out_dtype(hs[T].copy(), out_dt), to_out_dtype(cs[T].copy(), out_dt))
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
        cs=cs,
        gates=gates,
        full=full,
        w_ih=w_ih,
        w_hh=w_hh,
        w_hr=w_hr,
        has_h0=h0 is not None,
        has_c0=c0 is not None,
        has_b_ih=b_ih is not None,
        has_b_hh=b_hh is not None,
        proj=True,
    )
    return outs, ctx


def backward(ctx, dy, dhT, dcT):
    """-> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr) at the compute dtype, time-major."""
    xp, dt = ctx.backend.xp, ctx.compute_dtype
    T, B, I, H, P = ctx.dims
    da = xp.empty((T, B, 4 * H), dt)
    dh = xp.zeros((B, P), dt) if dhT is None else dhT.copy()
    dc = xp.zeros((B, H), dt) if dcT is None else dcT.copy()
    dh_all = xp.empty((T, B, P), dt)  # gradient at each step's projected output
    for t in range(T - 1, -1, -1):
        if dy is not None:
            dh = dh + dy[t]
        dh_all[t] = dh
        g4 = ctx.gates[t]
        i, f, g, o = g4[:, :H], g4[:, H : 2 * H], g4[:, 2 * H : 3 * H], g4[:, 3 * H :]
        dhf = _gemm(dh, ctx.w_hr)
        tc = xp.tanh(ctx.cs[t + 1])
        dc = dc + dhf * o * (1 - tc * tc)
        da[t, :, :H] = dc * g * i * (1 - i)
        da[t, :, H : 2 * H] = dc * ctx.cs[t] * f * (1 - f)
        da[t, :, 2 * H : 3 * H] = dc * i * (1 - g * g)
        da[t, :, 3 * H :] = dhf * tc * o * (1 - o)
        dh = _gemm(da[t], ctx.w_hh)
        dc = dc * f
    da2 = da.reshape(T * B, 4 * H)
    dx = _gemm(da2, ctx.w_ih).reshape(T, B, I)
    dw_ih = _gemm(da2, ctx.x.reshape(T * B, I), trans_a=True)
    dw_hh = _gemm(da2, ctx.hs[:T].reshape(T * B, P), trans_a=True)
    dw_hr = _gemm(dh_all.reshape(T * B, P), ctx.full.reshape(T * B, H), trans_a=True)
    db = da2.sum(axis=0)
    return (
        dx,
        dh if ctx.has_h0 else None,
        dc if ctx.has_c0 else None,
        dw_ih,
        dw_hh,
        db if ctx.has_b_ih else None,
        (db.copy() if ctx.has_b_ih else db) if ctx.has_b_hh else None,
        dw_hr,
    )
