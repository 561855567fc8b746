"""Pooling references, vectorised over N, C and output positions, looping over window offsets."""
import numpy as np


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def max_pool2d_ref(x, k, s, p):
    """-> (y, idx) with PyTorch's semantics: -inf padding, first max on ties, a NaN replaces the max
    (so the last NaN of a window wins)."""
    x = np.asarray(x, dtype=np.float64)
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    N, C, H, W = x.shape
    Ho, Wo = _out(H, kh, sh, ph), _out(W, kw, sw, pw)
    xp = np.full((N, C, H + 2 * ph, W + 2 * pw), -np.inf)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    best = np.full((N, C, Ho, Wo), -np.inf)
    best_at = np.full((N, C, Ho, Wo), -1, dtype=np.int64)
    oh = np.arange(Ho)[:, None]
    ow = np.arange(Wo)[None, :]
    for i in range(kh):
        for j in range(kw):
            ih = oh * sh + i - ph
            iw = ow * sw + j - pw
            v = xp[:, :, oh * sh + i, ow * sw + j]
            valid = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            # first valid position initialises the index (matches the kernel for all -inf windows)
            init = (best_at < 0) & valid
            best_at = np.where(init, ih * W + iw, best_at)
            better = valid & ((v > best) | np.isnan(v))
            best = np.where(better, v, best)
            best_at = np.where(better, ih * W + iw, best_at)
    return best, best_at


def max_pool2d_backward_ref(x_shape, idx, dy):
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W))
    dyf = np.asarray(dy, dtype=np.float64).reshape(N * C, -1)
    idf = idx.reshape(N * C, -1)
    for plane in range(N * C):
        np.add.at(dx[plane], idf[plane], dyf[plane])
    return dx.reshape(x_shape)


def avg_pool2d_ref(x, k, s, p):
    x = np.asarray(x, dtype=np.float64)
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    N, C, H, W = x.shape
    Ho, Wo = _out(H, kh, sh, ph), _out(W, kw, sw, pw)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    y = np.zeros((N, C, Ho, Wo))
    oh = np.arange(Ho)[:, None]
    ow = np.arange(Wo)[None, :]
    for i in range(kh):
        for j in range(kw):
            y += xp[:, :, oh * sh + i, ow * sw + j]
    return y / (kh * kw)


def avg_pool2d_backward_ref(x_shape, k, s, p, dy):
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    N, C, H, W = x_shape
    dy = np.asarray(dy, dtype=np.float64)
    Ho, Wo = dy.shape[2:]
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    oh = np.arange(Ho)[:, None]
    ow = np.arange(Wo)[None, :]
    for i in range(kh):
        for j in range(kw):
            np.add.at(dxp, (slice(None), slice(None), oh * sh + i, ow * sw + j), dy / (kh * kw))
    return dxp[:, :, ph:ph + H, pw:pw + W]


__all__ = ["max_pool2d_ref", "max_pool2d_backward_ref", "avg_pool2d_ref", "avg_pool2d_backward_ref"]
