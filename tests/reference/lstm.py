"""LSTM references in float64: a plain Python loop over time, PyTorch's gate order i, f, g, o."""

import numpy as np


def _sigmoid(z):
    e = np.exp(-np.abs(z))  # never overflows; no cancellation for either sign
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def lstm_ref(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (T, B, I); h0, c0 (B, H) or None (zeros) -> (y, hT, cT, cache) in float64."""
    x = np.asarray(x, np.float64)
    w_ih = np.asarray(w_ih, np.float64)
    w_hh = np.asarray(w_hh, np.float64)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    b = np.zeros(4 * H)
    if b_ih is not None:
        b = b + np.asarray(b_ih, np.float64)
    if b_hh is not None:
        b = b + np.asarray(b_hh, np.float64)
    h = np.zeros((B, H)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((B, H)) if c0 is None else np.asarray(c0, np.float64)
    steps, ys = [], []
    for t in range(T):
        z = x[t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = (
            _sigmoid(z[:, :H]),
            _sigmoid(z[:, H : 2 * H]),
            np.tanh(z[:, 2 * H : 3 * H]),
            _sigmoid(z[:, 3 * H :]),
        )
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        steps.append((h, c, i, f, g, o, c_new))
        h, c = h_new, c_new
        ys.append(h)
    cache = dict(
        x=x,
        w_ih=w_ih,
        w_hh=w_hh,
        steps=steps,
        has_b=(b_ih is not None, b_hh is not None),
        has_state=(h0 is not None, c0 is not None),
    )
    return np.stack(ys), h, c, cache


def lstm_backward_ref(cache, dy=None, dhT=None, dcT=None):
    """-> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh); None where that input was None."""
    x, w_ih, w_hh, steps = cache["x"], cache["w_ih"], cache["w_hh"], cache["steps"]
    T, B, _ = x.shape
    H = w_hh.shape[1]
    dh = np.zeros((B, H)) if dhT is None else np.asarray(dhT, np.float64).copy()
    dc = np.zeros((B, H)) if dcT is None else np.asarray(dcT, np.float64).copy()
    dx = np.zeros_like(x)
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(4 * H)
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, g, o, c = steps[t]
        if dy is not None:
            dh = dh + np.asarray(dy[t], np.float64)
        tc = np.tanh(c)
        dc = dc + dh * o * (1 - tc**2)
        dz = np.concatenate(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g**2), dh * tc * o * (1 - o)], axis=1
        )
        dx[t] = dz @ w_ih
        dw_ih += dz.T @ x[t]
        dw_hh += dz.T @ h_prev
        db += dz.sum(axis=0)
        dh = dz @ w_hh
        dc = dc * f
    has_ih, has_hh = cache["has_b"]
    has_h0, has_c0 = cache["has_state"]
    return (
        dx,
        (dh if has_h0 else None),
        (dc if has_c0 else None),
        dw_ih,
        dw_hh,
        (db if has_ih else None),
        (db.copy() if has_hh else None),
    )


def lstm_cell_ref(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (B, I) -> (h1, c1, cache); the sequence reference with T = 1."""
    y, h1, c1, cache = lstm_ref(np.asarray(x)[None], h, c, w_ih, w_hh, b_ih, b_hh)
    return h1, c1, cache


def lstm_cell_backward_ref(cache, dh1=None, dc1=None):
    dx, *rest = lstm_backward_ref(cache, None, dh1, dc1)
    return (dx[0], *rest)


def lstm_proj_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
    """PyTorch's proj_size: h_t = w_hr @ (o * tanh(c_t)) feeds back. x (T, B, I) -> (y, hT, cT)."""
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    H, P = w_hr.shape[1], w_hr.shape[0]
    b = (0 if b_ih is None else b_ih) + (0 if b_hh is None else b_hh)
    h = np.zeros((B, P)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((B, H)) if c0 is None else np.asarray(c0, np.float64)
    ys = []
    for t in range(T):
        z = x[t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = (
            _sigmoid(z[:, :H]),
            _sigmoid(z[:, H : 2 * H]),
            np.tanh(z[:, 2 * H : 3 * H]),
            _sigmoid(z[:, 3 * H :]),
        )
        c = f * c + i * g
        h = (o * np.tanh(c)) @ w_hr.T
        ys.append(h)
    return np.stack(ys), h, c
