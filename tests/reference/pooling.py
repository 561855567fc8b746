"""Pooling references, vectorised over N, C and output positions, looping over window offsets."""

import numpy as np


def _out(size, k, s, p, d=1, ceil_mode=False):
    """PyTorch's pooling output size: floor, or ceil where the last window still starts inside the
    input or its left padding."""
    eff = d * (k - 1) + 1
    if not ceil_mode:
        return (size + 2 * p - eff) // s + 1
    o = -(-(size + 2 * p - eff) // s) + 1
    if (o - 1) * s >= size + p:
        o -= 1
    return o


def max_pool2d_ref(x, k, s, p, d=(1, 1), ceil_mode=False):
    """-> (y, idx) with PyTorch's semantics: -inf padding, first max on ties, a NaN replaces the max
    (so the last NaN of a window wins); taps d apart; idx starts at the window's first tap inside
    the plane (kept when every value is -inf)."""
    x = np.asarray(x, dtype=np.float64)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    N, C, H, W = x.shape
    Ho, Wo = _out(H, kh, sh, ph, dh, ceil_mode), _out(W, kw, sw, pw, dw, ceil_mode)
    best = np.full((N, C, Ho, Wo), -np.inf)
    best_at = np.full((N, C, Ho, Wo), -1, dtype=np.int64)
    for oh in range(Ho):
        for ow in range(Wo):
            for i in range(kh):
                for j in range(kw):
                    ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                    if not (0 <= ih < H and 0 <= iw < W):
                        continue
                    v = x[:, :, ih, iw]
                    cur = best[:, :, oh, ow]
                    at = best_at[:, :, oh, ow]
                    at[at < 0] = ih * W + iw
                    better = (v > cur) | np.isnan(v)
                    cur[better] = v[better]
                    at[better] = ih * W + iw
    return best, best_at


def max_pool2d_backward_ref(x_shape, idx, dy):
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W))
    dyf = np.asarray(dy, dtype=np.float64).reshape(N * C, -1)
    idf = idx.reshape(N * C, -1)
    for plane in range(N * C):
        np.add.at(dx[plane], idf[plane], dyf[plane])
    return dx.reshape(x_shape)


def _avg_windows(x_shape, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """Each output's window: (oh, ow, input rows, input columns, divisor)."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    H, W = x_shape[2:]
    Ho, Wo = _out(H, kh, sh, ph, 1, ceil_mode), _out(W, kw, sw, pw, 1, ceil_mode)
    for oh in range(Ho):
        for ow in range(Wo):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)  # clipped to the padded input
            rows, cols = range(max(h0, 0), min(h1, H)), range(max(w0, 0), min(w1, W))
            if divisor_override is not None:
                div = divisor_override
            elif count_include_pad:
                div = (h1 - h0) * (w1 - w0)
            else:
                div = len(rows) * len(cols)
            yield oh, ow, rows, cols, div


def avg_pool2d_ref(x, k, s, p, ceil_mode=False, count_include_pad=True, divisor_override=None):
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    y = np.zeros((N, C, _out(H, kh, sh, ph, 1, ceil_mode), _out(W, kw, sw, pw, 1, ceil_mode)))
    for oh, ow, rows, cols, div in _avg_windows(x.shape, k, s, p, ceil_mode, count_include_pad, divisor_override):
        y[:, :, oh, ow] = x[:, :, rows.start : rows.stop, cols.start : cols.stop].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward_ref(x_shape, k, s, p, dy, ceil_mode=False, count_include_pad=True, divisor_override=None):
    dy = np.asarray(dy, dtype=np.float64)
    dx = np.zeros(x_shape)
    for oh, ow, rows, cols, div in _avg_windows(x_shape, k, s, p, ceil_mode, count_include_pad, divisor_override):
        dx[:, :, rows.start : rows.stop, cols.start : cols.stop] += (dy[:, :, oh, ow] / div)[:, :, None, None]
    return dx


__all__ = ["max_pool2d_ref", "max_pool2d_backward_ref", "avg_pool2d_ref", "avg_pool2d_backward_ref"]
