"""conv2d reference in float64: zero-pad, then one strided slice per kernel tap (i, j)."""
import numpy as np


def _geometry(x, w, s, p, d):
    (sh, sw), (ph, pw), (dh, dw) = s, p, d
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return N, C, H, W, K, kh, kw, Ho, Wo


def _tap(i, j, s, d, Ho, Wo):
    """Slices of the padded input that kernel tap (i, j) reads for every output position."""
    (sh, sw), (dh, dw) = s, d
    return (slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw))


def conv2d_ref(x, w, b=None, s=(1, 1), p=(0, 0), d=(1, 1)):
    """y[n,k,oh,ow] = b[k] + sum_{c,i,j} w[k,c,i,j] * xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    N, C, H, W, K, kh, kw, Ho, Wo = _geometry(x, w, s, p, d)
    ph, pw = p
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    y = np.zeros((N, K, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            rs, cs = _tap(i, j, s, d, Ho, Wo)
            y += np.einsum("kc,nchw->nkhw", w[:, :, i, j], xp[:, :, rs, cs])
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return y


def conv2d_backward_ref(x, w, dy, has_bias, s=(1, 1), p=(0, 0), d=(1, 1)):
    """(dx, dw, db) of sum(y * dy); db is None without a bias."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    N, C, H, W, K, kh, kw, Ho, Wo = _geometry(x, w, s, p, d)
    ph, pw = p
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            rs, cs = _tap(i, j, s, d, Ho, Wo)
            dw[:, :, i, j] = np.einsum("nkhw,nchw->kc", dy, xp[:, :, rs, cs])
            dxp[:, :, rs, cs] += np.einsum("kc,nkhw->nchw", w[:, :, i, j], dy)
    dx = dxp[:, :, ph:ph + H, pw:pw + W]
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db
