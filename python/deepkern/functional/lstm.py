"""lstm_cell / lstm and their backward passes (PyTorch's layout: gate order i, f, g, o;
w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,), each bias optional).

The whole recurrence runs in one backend call (lstm_forward / lstm_backward of deepkern._cpu,
or of the CUDA module for cupy arrays, which gets its workspaces from here); a cell is the same
call with T = 1. The initial state may be None, meaning zeros (as in
PyTorch); its gradient is then None too. A forward's final (hT, cT) can be passed as the
next call's (h0, c0), which is how truncated BPTT carries the state across windows.
"""
import numpy as np

from .._saved import watch
from .._validate import Context, as_float_arrays, as_grad, check_ctx, check_ndim, to_out_dtype


def _prepare(op, x, x_ndim, x_layout, state_names, h, c, w_ih, w_hh, b_ih, b_hh):
    """Validate and normalise the forward's arguments; returns (backend, arrays, dtypes, T, B, I, H)."""
    hn, cn = state_names
    backend, arrays, out_dt, comp_dt = as_float_arrays(
        op, [("x", x), (hn, h), (cn, c), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih), ("b_hh", b_hh)],
        optional=(hn, cn, "b_ih", "b_hh"),
    )
    x, h, c, w_ih, w_hh, b_ih, b_hh = arrays
    check_ndim(op, "x", x, x_ndim, x_layout)
    check_ndim(op, "w_ih", w_ih, 2, "(4*hidden_size, input_size)")
    if x_ndim == 2:
        B, I = x.shape
        T = 1
    else:
        T, B, I = x.shape
    if min(T, B, I) < 1:
        raise ValueError(f"{op}: 'x' has shape {tuple(x.shape)}; every dimension of {x_layout} must be >= 1")
    G = int(w_ih.shape[0])
    if G < 4 or G % 4:
        raise ValueError(
            f"{op}: 'w_ih' has shape {tuple(w_ih.shape)}; its rows must be 4*hidden_size "
            "(gates i, f, g, o stacked), a positive multiple of 4"
        )
    H = G // 4
    if int(w_ih.shape[1]) != I:
        raise ValueError(
            f"{op}: 'w_ih' has shape {tuple(w_ih.shape)}; expected ({G}, {I}) (its columns must match "
            f"x's input_size {I})"
        )
    if tuple(w_hh.shape) != (G, H):
        raise ValueError(
            f"{op}: 'w_hh' has shape {tuple(w_hh.shape)}; expected ({G}, {H}) = (4*hidden_size, hidden_size) "
            f"from w_ih's {G} rows"
        )
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and tuple(b.shape) != (G,):
            raise ValueError(f"{op}: '{name}' has shape {tuple(b.shape)}; expected ({G},) = (4*hidden_size,)")
    for name, s in ((hn, h), (cn, c)):
        if s is not None and tuple(s.shape) != (B, H):
            raise ValueError(
                f"{op}: '{name}' has shape {tuple(s.shape)}; expected ({B}, {H}) = (batch, hidden_size) "
                f"from x {tuple(x.shape)} and w_hh {tuple(w_hh.shape)}"
            )
    return backend, (x, h, c, w_ih, w_hh, b_ih, b_hh), out_dt, comp_dt, (T, B, I, H)


def _run_forward(op, backend, arrays, out_dt, comp_dt, params, return_ctx, given_weights):
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = arrays
    T, B, I, H = params
    y = backend.empty((T, B, H), comp_dt)
    hT = backend.empty((B, H), comp_dt)
    cT = backend.empty((B, H), comp_dt)
    # Saved for the backward: the gate activations, [x_t, h entering step t] per row (the
    # operand of the one dW GEMM) and every cell state. Inference needs none of them.
    gates = backend.empty((T, B, 4 * H), comp_dt) if return_ctx else None
    xh = backend.empty((T, B, I + H), comp_dt) if return_ctx else None
    cs = backend.empty((T + 1, B, H), comp_dt) if return_ctx else None
    ws = ()
    if backend.name == "cuda":  # GPU launchers never allocate: the projection and, without a ctx, c ping-pong
        ws = (backend.empty((T * B, 4 * H), _acc_dtype(comp_dt)), None if return_ctx else backend.empty((2, B, H), comp_dt))
    backend.call("lstm_forward", params, x, h0, c0, w_ih, w_hh, b_ih, b_hh, y, hT, cT, gates, xh, cs, *ws)
    outs = (to_out_dtype(y, out_dt), to_out_dtype(hT, out_dt), to_out_dtype(cT, out_dt))
    if not return_ctx:
        return outs, None
    ctx = Context(
        op, backend, out_dt, comp_dt, params=params, xh=xh, w_ih=w_ih, w_hh=w_hh, gates=gates, cs=cs,
        has_h0=h0 is not None, has_c0=c0 is not None, has_b_ih=b_ih is not None, has_b_hh=b_hh is not None,
    )
    # x, h0 and c0 are copied into xh and cs; the weights are the caller's (unless converted).
    watch(ctx, w_ih=(w_ih, given_weights[0]), w_hh=(w_hh, given_weights[1]))
    return outs, ctx


def _acc_dtype(dt):
    """The GPU kernels' accumulator type: float32 for float16 and float32, float64 for float64."""
    return np.dtype(np.float64) if np.dtype(dt) == np.float64 else np.dtype(np.float32)


def _optional_grad(op, ctx, name, g, shape):
    return None if g is None else as_grad(op, ctx, name, g, shape)


def _run_backward(ctx, dy, dhT, dcT):
    T, B, I, H = ctx.params
    be, dt = ctx.backend, ctx.compute_dtype
    dx = be.empty((T, B, I), dt)
    dh0 = be.empty((B, H), dt) if ctx.has_h0 else None
    dc0 = be.empty((B, H), dt) if ctx.has_c0 else None
    dw_ih = be.empty((4 * H, I), dt)
    dw_hh = be.empty((4 * H, H), dt)
    db = be.empty((4 * H,), dt) if (ctx.has_b_ih or ctx.has_b_hh) else None
    ws = ()
    if be.name == "cuda":  # every step's dgates (the weight GEMMs' operand) and the dc ping-pong (accumulator type)
        ws = (be.empty((T * B, 4 * H), dt), be.empty((2, B, H), _acc_dtype(dt)))
    be.call("lstm_backward", ctx.params, ctx.xh, ctx.w_ih, ctx.w_hh, ctx.gates, ctx.cs, dy, dhT, dcT,
            dx, dh0, dc0, dw_ih, dw_hh, db, *ws)
    # b_ih and b_hh enter the gates as a sum: both get the same gradient (separate arrays).
    db_ih = db if ctx.has_b_ih else None
    db_hh = (db.copy() if ctx.has_b_ih else db) if ctx.has_b_hh else None
    out = lambda a: None if a is None else to_out_dtype(a, ctx.out_dtype)  # noqa: E731
    return dx, out(dh0), out(dc0), out(dw_ih), out(dw_hh), out(db_ih), out(db_hh)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    """One LSTM step: x (B, I), h and c (B, H) (None = zeros) -> (h1, c1).

    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, split as i, f, g, o;
    c1 = sigmoid(f) * c + sigmoid(i) * tanh(g);  h1 = sigmoid(o) * tanh(c1).
    With return_ctx, returns ((h1, c1), ctx) for lstm_cell_backward.
    """
    op = "lstm_cell"
    backend, arrays, out_dt, comp_dt, params = _prepare(
        op, x, 2, "(batch, input_size)", ("h", "c"), h, c, w_ih, w_hh, b_ih, b_hh
    )
    (y, h1, c1), ctx = _run_forward(op, backend, arrays, out_dt, comp_dt, params, return_ctx, (w_ih, w_hh))
    return ((h1, c1), ctx) if return_ctx else (h1, c1)


def lstm_cell_backward(ctx, dh1, dc1):
    """(dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh) from the gradients of h1 and c1 (either may be
    None, meaning zeros). dh / dc are None where the forward's h / c was None, db_* where
    that bias was None."""
    op = "lstm_cell_backward"
    check_ctx(op, ctx, "lstm_cell")
    _, B, I, H = ctx.params
    dh1 = _optional_grad(op, ctx, "dh1", dh1, (B, H))
    dc1 = _optional_grad(op, ctx, "dc1", dc1, (B, H))
    dx, *rest = _run_backward(ctx, None, dh1, dc1)
    return (to_out_dtype(dx.reshape(B, I), ctx.out_dtype), *rest)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    """A one-layer LSTM over a whole sequence: x (T, B, I), h0 and c0 (B, H) (None = zeros)
    -> (y (T, B, H), hT, cT), where y[t] is the hidden state after step t.

    The input projection of all T steps is one GEMM; the recurrence runs step by step in
    one kernel call. With return_ctx, returns ((y, hT, cT), ctx) for lstm_backward.
    """
    op = "lstm"
    backend, arrays, out_dt, comp_dt, params = _prepare(
        op, x, 3, "(seq_len, batch, input_size)", ("h0", "c0"), h0, c0, w_ih, w_hh, b_ih, b_hh
    )
    outs, ctx = _run_forward(op, backend, arrays, out_dt, comp_dt, params, return_ctx, (w_ih, w_hh))
    return (outs, ctx) if return_ctx else outs


def lstm_backward(ctx, dy, dhT=None, dcT=None):
    """Backpropagation through time: (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh) from dy (T, B, H)
    and the optional gradients of the final state dhT, dcT (B, H). Any of the three may be
    None (zeros). dh0 / dc0 are None where the forward's h0 / c0 was None, db_* where that
    bias was None."""
    op = "lstm_backward"
    check_ctx(op, ctx, "lstm")
    T, B, I, H = ctx.params
    dy = _optional_grad(op, ctx, "dy", dy, (T, B, H))
    dhT = _optional_grad(op, ctx, "dhT", dhT, (B, H))
    dcT = _optional_grad(op, ctx, "dcT", dcT, (B, H))
    dx, *rest = _run_backward(ctx, dy, dhT, dcT)
    return (to_out_dtype(dx, ctx.out_dtype), *rest)
