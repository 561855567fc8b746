"""Conv2D's padding_mode: reflect / replicate / circular padding of (H, W) and its gradient.

The padded input is the input gathered through one index map per axis (padded position -> input
position); its gradient adds each padded position's gradient back to the input position it
came from: the centre as one slice, then one slice per padded row or column (a padding is at
most the kernel's extent, so a handful).
"""

MODES = ("zeros", "reflect", "replicate", "circular")


def _source(i, n, mode):
    """The input position that padded position i (i < 0 or i >= n) copies."""
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    return i % n  # circular


def check_pads(who, mode, pads, H, W):
    """PyTorch's limits: reflect needs padding < size, circular padding <= size."""
    (top, bottom), (left, right) = pads
    for name, n, p in (("H", H, max(top, bottom)), ("W", W, max(left, right))):
        if mode == "reflect" and p >= n:
            raise ValueError(f"{who}: padding_mode='reflect' needs padding < the input's {name} ({n}), got {p}")
        if mode == "circular" and p > n:
            raise ValueError(f"{who}: padding_mode='circular' needs padding <= the input's {name} ({n}), got {p}")


def _pad_axis(xp, x, axis, before, after, mode):
    n = x.shape[axis]
    if before == 0 and after == 0:
        return x
    idx = (
        [_source(i, n, mode) for i in range(-before, 0)]
        + list(range(n))
        + [_source(i, n, mode) for i in range(n, n + after)]
    )
    return xp.take(x, xp.asarray(idx), axis=axis)


def pad(xp, x, pads, mode):
    """x (..., H, W) padded by pads ((top, bottom), (left, right)) in `mode`."""
    (top, bottom), (left, right) = pads
    return _pad_axis(xp, _pad_axis(xp, x, -2, top, bottom, mode), -1, left, right, mode)


def _fold_axis(xp, g, axis, before, after, mode):
    if before == 0 and after == 0:
        return g
    g = xp.moveaxis(g, axis, 0)
    n = g.shape[0] - before - after
    out = g[before : before + n].copy()
    for i in range(-before, 0):
        out[_source(i, n, mode)] += g[before + i]
    for i in range(n, n + after):
        out[_source(i, n, mode)] += g[before + i]
    return xp.ascontiguousarray(xp.moveaxis(out, 0, axis))


def pad_backward(xp, g, pads, mode):
    """The gradient of pad(): g (..., H + top + bottom, W + left + right) -> (..., H, W)."""
    (top, bottom), (left, right) = pads
    return _fold_axis(xp, _fold_axis(xp, g, -1, left, right, mode), -2, top, bottom, mode)
