"""conv2d reference in float64: zero-pad, then one strided slice per kernel tap (i, j); groups as
separate convolutions over their channel slices."""

import numpy as np


def _pads(p):
    """p: (ph, pw) for symmetric padding, or ((top, bottom), (left, right))."""
    return tuple((v, v) if np.isscalar(v) else tuple(v) for v in p)


def _geometry(x, w, s, p, d):
    (sh, sw), ((pt, pb), (pl, pr)), (dh, dw) = s, _pads(p), d
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    Ho = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return N, C, H, W, K, kh, kw, Ho, Wo


def _tap(i, j, s, d, Ho, Wo):
    """Slices of the padded input that kernel tap (i, j) reads for every output position."""
    (sh, sw), (dh, dw) = s, d
    return (slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw))


def _padded(x, p):
    return np.pad(x, ((0, 0), (0, 0)) + _pads(p))


def _conv_one(x, w, s, p, d):
    N, C, H, W, K, kh, kw, Ho, Wo = _geometry(x, w, s, p, d)
    xp = _padded(x, p)
    y = np.zeros((N, K, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            rs, cs = _tap(i, j, s, d, Ho, Wo)
            y += np.einsum("kc,nchw->nkhw", w[:, :, i, j], xp[:, :, rs, cs])
    return y


def conv2d_ref(x, w, b=None, s=(1, 1), p=(0, 0), d=(1, 1), groups=1):
    """y[n,k,oh,ow] = b[k] + sum_{c,i,j} w[k,c,i,j] * xpad[n, g*C/G + c, oh*sh + i*dh, ow*sw + j*dw]
    for output k of group g = k // (K/G)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    Cg, Kg = x.shape[1] // groups, w.shape[0] // groups
    y = np.concatenate(
        [_conv_one(x[:, g * Cg : (g + 1) * Cg], w[g * Kg : (g + 1) * Kg], s, p, d) for g in range(groups)], axis=1
    )
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return y


def _backward_one(x, w, dy, s, p, d):
    N, C, H, W, K, kh, kw, Ho, Wo = _geometry(x, w, s, p, d)
    (pt, _), (pl, _) = _pads(p)
    xp = _padded(x, p)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            rs, cs = _tap(i, j, s, d, Ho, Wo)
            dw[:, :, i, j] = np.einsum("nkhw,nchw->kc", dy, xp[:, :, rs, cs])
            dxp[:, :, rs, cs] += np.einsum("kc,nkhw->nchw", w[:, :, i, j], dy)
    return dxp[:, :, pt : pt + H, pl : pl + W], dw


def conv2d_backward_ref(x, w, dy, has_bias, s=(1, 1), p=(0, 0), d=(1, 1), groups=1):
    """(dx, dw, db) of sum(y * dy); db is None without a bias."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    Cg, Kg = x.shape[1] // groups, w.shape[0] // groups
    parts = [
        _backward_one(x[:, g * Cg : (g + 1) * Cg], w[g * Kg : (g + 1) * Kg], dy[:, g * Kg : (g + 1) * Kg], s, p, d)
        for g in range(groups)
    ]
    dx = np.concatenate([a for a, _ in parts], axis=1)
    dw = np.concatenate([b for _, b in parts], axis=0)
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db
