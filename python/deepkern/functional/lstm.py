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
from .._validate import Context, array_module_of, as_float_arrays, as_grad, check_ctx, check_ndim, to_out_dtype
from . import _gates, lstm_proj


def _unbatched(op, x, ndim, states):
    """Unbatched input (x with one dim less than batched): x and the states gain a batch axis of 1."""
    if getattr(x, "ndim", None) == ndim:  # the batched common case, without any conversion
        return False, x, [s for _, s in states]
    xp = array_module_of(op, [("x", x)] + list(states))
    try:
        xa = xp.asarray(x)
    except Exception:  # as_float_arrays then names the argument that could not be converted
        return False, x, [s for _, s in states]
    if xa.ndim != ndim - 1:
        return False, x, [s for _, s in states]
    out = []
    for name, s in states:
        if s is not None:
            s = xp.asarray(s)
            if s.ndim != 1:
                raise ValueError(
                    f"{op}: '{name}' has shape {tuple(s.shape)}; expected (hidden_size,) for the "
                    f"unbatched 'x' of shape {tuple(xa.shape)}"
                )
            s = s[None]
        out.append(s)
    return True, xa[:, None] if ndim == 3 else xa[None], out


def _squeeze(a, axis):
    return None if a is None else a.reshape(a.shape[:axis] + a.shape[axis + 1 :])


def _prepare(op, x, x_ndim, x_layout, state_names, h, c, w_ih, w_hh, b_ih, b_hh):
    """Validate and normalise the forward's arguments; returns (backend, arrays, dtypes, params dict)."""
    hn, cn = state_names
    backend, arrays, out_dt, comp_dt = as_float_arrays(
        op,
        [("x", x), (hn, h), (cn, c), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih), ("b_hh", b_hh)],
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
    H = _gates.hidden_size(op, w_ih, w_hh, b_ih, b_hh, I, "i, f, g, o")
    for name, s in ((hn, h), (cn, c)):
        if s is not None and tuple(s.shape) != (B, H):
            raise ValueError(
                f"{op}: '{name}' has shape {tuple(s.shape)}; expected ({B}, {H}) = (batch, hidden_size) "
                f"from x {tuple(x.shape)} and w_hh {tuple(w_hh.shape)}"
            )
    return backend, (x, h, c, w_ih, w_hh, b_ih, b_hh), out_dt, comp_dt, {"T": T, "B": B, "I": I, "H": H}


def _dims(p):
    """(T, B, I, H) of the kernels' LstmParams dict (csrc/common/lstm_params.h, one key per field)."""
    return p["T"], p["B"], p["I"], p["H"]


def _run_forward(op, backend, arrays, out_dt, comp_dt, params, return_ctx, given_weights):
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = arrays
    T, B, I, H = _dims(params)
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
        ws = (
            backend.empty((T * B, 4 * H), _acc_dtype(comp_dt)),
            None if return_ctx else backend.empty((2, B, H), comp_dt),
        )
    backend.call(
        "lstm_forward",
        params,
        x,
        h0,
        c0,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        y,
        hT,
        cT,
        gates,
        xh,
        cs,
        *ws,
    )
    outs = (to_out_dtype(y, out_dt), to_out_dtype(hT, out_dt), to_out_dtype(cT, out_dt))
    if not return_ctx:
        return outs, None
    ctx = Context(
        op,
        backend,
        out_dt,
        comp_dt,
        params=params,
        xh=xh,
        w_ih=w_ih,
        w_hh=w_hh,
        gates=gates,
        cs=cs,
        has_h0=h0 is not None,
        has_c0=c0 is not None,
        has_b_ih=b_ih is not None,
        has_b_hh=b_hh is not None,
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
    T, B, I, H = _dims(ctx.params)
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
    be.call(
        "lstm_backward",
        ctx.params,
        ctx.xh,
        ctx.w_ih,
        ctx.w_hh,
        ctx.gates,
        ctx.cs,
        dy,
        dhT,
        dcT,
        dx,
        dh0,
        dc0,
        dw_ih,
        dw_hh,
        db,
        *ws,
    )
    # b_ih and b_hh enter the gates as a sum: both get the same gradient (separate arrays).
    db_ih = db if ctx.has_b_ih else None
    db_hh = (db.copy() if ctx.has_b_ih else db) if ctx.has_b_hh else None
    out = lambda a: None if a is None else to_out_dtype(a, ctx.out_dtype)  # noqa: E731
    return dx, out(dh0), out(dc0), out(dw_ih), out(dw_hh), out(db_ih), out(db_hh)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, return_ctx=False):
    """One LSTM step: x (B, I), h and c (B, H) (None = zeros) -> (h1, c1); unbatched x (I,) with
    h, c (H,) gives (H,) results, as torch.nn.LSTMCell.

    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, split as i, f, g, o;
    c1 = sigmoid(f) * c + sigmoid(i) * tanh(g);  h1 = sigmoid(o) * tanh(c1).
    With return_ctx, returns ((h1, c1), ctx) for lstm_cell_backward.

    dtypes: float32 or float64 on numpy, float32 or float16 on cupy; results have x's dtype.

    >>> import numpy as np, deepkern as dk
    >>> B, I, H = 2, 3, 4
    >>> x, w_ih, w_hh = np.zeros((B, I)), np.zeros((4 * H, I)), np.zeros((4 * H, H))
    >>> (h1, c1), ctx = dk.lstm_cell(x, None, None, w_ih, w_hh, return_ctx=True)
    >>> h1.shape, float(c1[0, 0])          # zero gates: c1 = 0.5 * 0 + 0.5 * tanh(0)
    ((2, 4), 0.0)
    >>> len(dk.lstm_cell_backward(ctx, np.ones_like(h1), None))
    7
    """
    op = "lstm_cell"
    unb, x, (h, c) = _unbatched(op, x, 2, [("h", h), ("c", c)])
    backend, arrays, out_dt, comp_dt, params = _prepare(
        op, x, 2, "(batch, input_size)", ("h", "c"), h, c, w_ih, w_hh, b_ih, b_hh
    )
    (y, h1, c1), ctx = _run_forward(op, backend, arrays, out_dt, comp_dt, params, return_ctx, (w_ih, w_hh))
    if unb:
        h1, c1 = h1[0], c1[0]
    if ctx is not None:
        ctx.unbatched = unb
    return ((h1, c1), ctx) if return_ctx else (h1, c1)


def lstm_cell_backward(ctx, dh1, dc1):
    """(dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh) from the gradients of h1 and c1 (either may be
    None, meaning zeros). dh / dc are None where the forward's h / c was None, db_* where
    that bias was None.

    >>> import numpy as np, deepkern as dk
    >>> (h1, c1), ctx = dk.lstm_cell(np.ones((1, 2)), None, None, np.zeros((8, 2)), np.zeros((8, 2)), return_ctx=True)
    >>> dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh = dk.lstm_cell_backward(ctx, np.ones_like(h1), None)
    >>> dx.shape, dh, dw_ih.shape
    ((1, 2), None, (8, 2))
    """
    op = "lstm_cell_backward"
    check_ctx(op, ctx, "lstm_cell")
    _, B, I, H = _dims(ctx.params)
    unb = getattr(ctx, "unbatched", False)
    state = (H,) if unb else (B, H)
    dh1 = _optional_grad(op, ctx, "dh1", dh1, state)
    dc1 = _optional_grad(op, ctx, "dc1", dc1, state)
    if unb:
        dh1, dc1 = (None if g is None else g.reshape(B, H) for g in (dh1, dc1))
    dx, dh, dc, *rest = _run_backward(ctx, None, dh1, dc1)
    if unb:
        return (to_out_dtype(dx.reshape(I), ctx.out_dtype), _squeeze(dh, 0), _squeeze(dc, 0), *rest)
    return (to_out_dtype(dx.reshape(B, I), ctx.out_dtype), dh, dc, *rest)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, return_ctx=False):
    """A one-layer LSTM over a whole sequence: x (T, B, I), h0 and c0 (B, H) (None = zeros)
    -> (y (T, B, H), hT, cT), where y[t] is the hidden state after step t. Unbatched x (T, I)
    with h0, c0 (H,) gives y (T, H) and (H,) states, as torch.nn.LSTM.

    The input projection of all T steps is one GEMM; the recurrence runs step by step in
    one kernel call. With return_ctx, returns ((y, hT, cT), ctx) for lstm_backward.
    w_hr (P, H): PyTorch's proj_size: h_t = (o * tanh(c_t)) @ w_hr.T, so y and h are (.., P),
    w_hh is (4H, P); this path composes GEMMs and array ops (functional/lstm_proj.py), and
    lstm_backward then returns dw_hr as an eighth gradient.

    dtypes: float32 or float64 on numpy, float32 or float16 on cupy; results have x's dtype.

    >>> import numpy as np, deepkern as dk
    >>> T, B, I, H = 5, 2, 3, 4
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((T, B, I)); w_ih, w_hh = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H))
    >>> (y, hT, cT), ctx = dk.lstm(x, None, None, w_ih, w_hh, return_ctx=True)
    >>> y.shape, bool(np.array_equal(y[-1], hT))
    ((5, 2, 4), True)
    """
    op = "lstm"
    unb, x, (h0, c0) = _unbatched(op, x, 3, [("h0", h0), ("c0", c0)])
    if w_hr is not None:
        check_ndim(op, "x", as_float_arrays(op, [("x", x)])[1][0], 3, "(seq_len, batch, input_size)")
        backend, arrays, out_dt, comp_dt, dims = lstm_proj.prepare(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        outs, ctx = lstm_proj.forward(op, backend, arrays, out_dt, comp_dt, dims, return_ctx)
    else:
        backend, arrays, out_dt, comp_dt, params = _prepare(
            op, x, 3, "(seq_len, batch, input_size)", ("h0", "c0"), h0, c0, w_ih, w_hh, b_ih, b_hh
        )
        outs, ctx = _run_forward(op, backend, arrays, out_dt, comp_dt, params, return_ctx, (w_ih, w_hh))
    if unb:
        outs = (_squeeze(outs[0], 1), outs[1][0], outs[2][0])
    if ctx is not None:
        ctx.unbatched = unb
    return (outs, ctx) if return_ctx else outs


def lstm_backward(ctx, dy, dhT=None, dcT=None):
    """Backpropagation through time: (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh) from dy (T, B, H)
    and the optional gradients of the final state dhT, dcT (B, H). Any of the three may be
    None (zeros). dh0 / dc0 are None where the forward's h0 / c0 was None, db_* where that
    bias was None. Unbatched forward: dy (T, H), dhT/dcT (H,). With w_hr: (.., dw_hr) too.

    >>> import numpy as np, deepkern as dk
    >>> (y, hT, cT), ctx = dk.lstm(np.ones((3, 1, 2)), None, None, np.zeros((8, 2)), np.zeros((8, 2)), return_ctx=True)
    >>> grads = dk.lstm_backward(ctx, np.ones_like(y))
    >>> [None if g is None else g.shape for g in grads]
    [(3, 1, 2), None, None, (8, 2), (8, 2), None, None]
    """
    op = "lstm_backward"
    check_ctx(op, ctx, "lstm")
    proj = getattr(ctx, "proj", False)
    T, B, I, H = ctx.dims[:4] if proj else _dims(ctx.params)
    P = ctx.dims[4] if proj else H
    unb = getattr(ctx, "unbatched", False)
    lead = () if unb else (B,)
    dy = _optional_grad(op, ctx, "dy", dy, (T,) + lead + (P,))
    dhT = _optional_grad(op, ctx, "dhT", dhT, lead + (P,))
    dcT = _optional_grad(op, ctx, "dcT", dcT, lead + (H,))
    if unb:  # back to the batch of one the forward ran on
        dy = None if dy is None else dy[:, None]
        dhT, dcT = (None if g is None else g[None] for g in (dhT, dcT))
    if proj:
        grads = list(lstm_proj.backward(ctx, dy, dhT, dcT))
        grads = [None if g is None else to_out_dtype(g, ctx.out_dtype) for g in grads]
    else:
        grads = list(_run_backward(ctx, dy, dhT, dcT))
        grads[0] = to_out_dtype(grads[0], ctx.out_dtype)
    if unb:
        grads[0], grads[1], grads[2] = _squeeze(grads[0], 1), _squeeze(grads[1], 0), _squeeze(grads[2], 0)
    return tuple(grads)
