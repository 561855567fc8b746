"""GRU reference in float64: PyTorch's equations, one step and one unit at a time."""

import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gru_ref(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """x (T, B, I), h0 (B, H) or None -> (y (T, B, H), hT). Gate order r, z, n:
    r = s(W_ir x + b_ir + W_hr h + b_hr); z = s(W_iz x + b_iz + W_hz h + b_hz);
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)); h' = (1 - z) n + z h."""
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    b_ih = np.zeros(3 * H) if b_ih is None else np.asarray(b_ih, np.float64)
    b_hh = np.zeros(3 * H) if b_hh is None else np.asarray(b_hh, np.float64)
    h = np.zeros((B, H)) if h0 is None else np.array(h0, np.float64)
    ys = np.zeros((T, B, H))
    for t in range(T):
        new = np.zeros((B, H))
        for b in range(B):
            for j in range(H):
                xi = [w_ih[g * H + j] @ x[t, b] + b_ih[g * H + j] for g in range(3)]
                hh = [w_hh[g * H + j] @ h[b] + b_hh[g * H + j] for g in range(3)]
                r = _sigmoid(xi[0] + hh[0])
                z = _sigmoid(xi[1] + hh[1])
                n = np.tanh(xi[2] + r * hh[2])
                new[b, j] = (1 - z) * n + z * h[b, j]
        h = new
        ys[t] = h
    return ys, h
