"""max_pool2d / avg_pool2d and their backward passes (NCHW or unbatched CHW, PyTorch's semantics)."""

from .._out import finish, kernel_buffer
from .._saved import watch
from .._validate import Context, as_float_arrays, as_grad, check_ctx, int_pair


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size along one axis; with ceil_mode the last window must still
    start inside the input or its left padding."""
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _bool(op, name, v):
    if not isinstance(v, bool):
        raise TypeError(f"{op}: '{name}' must be a bool (True or False), got {v!r}")
    return v


def batched(op, x, layout="(N, C, H, W)"):
    """x as a 4-D batch: a 3-D (C, H, W) input is one sample (PyTorch's unbatched input).
    Returns (x4, unbatched)."""
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"{op}: 'x' must be a 4-D {layout} or 3-D (C, H, W) array, got shape {tuple(x.shape)}")
    return x, False


def pool_options(op, ceil_mode, count_include_pad=True, divisor_override=None):
    """Checks the flags; returns the kernels' divisor field (0: none)."""
    _bool(op, "ceil_mode", ceil_mode)
    _bool(op, "count_include_pad", count_include_pad)
    if divisor_override is None:
        return 0
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override < 1:
        raise ValueError(f"{op}: 'divisor_override' must be None or a positive int, got {divisor_override!r}")
    return divisor_override


def _pool_params(
    op, x, kernel_size, stride, padding, dilation=1, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    """The kernels' Pool2dParams, one key per field (csrc/common/pool_params.h)."""
    kh, kw = int_pair(op, "kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else int_pair(op, "stride", stride, 1)
    ph, pw = int_pair(op, "padding", padding, 0)
    dh, dw = int_pair(op, "dilation", dilation, 1)
    divisor = pool_options(op, ceil_mode, count_include_pad, divisor_override)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"{op}: 'padding' {(ph, pw)} must be at most half of 'kernel_size' {(kh, kw)} "
            "(a window may not lie entirely in the padding)"
        )
    N, C, H, W = x.shape  # numpy and cupy shapes hold Python ints
    Ho = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    if Ho < 1 or Wo < 1:
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        raise ValueError(
            f"{op}: 'kernel_size' {(kh, kw)} (dilated extent {(eh, ew)}) is larger than the padded input "
            f"{(H + 2 * ph, W + 2 * pw)} (x has shape {tuple(x.shape)}, padding {(ph, pw)}, dilation {(dh, dw)})"
        )
    return {
        "N": N,
        "C": C,
        "H": H,
        "W": W,
        "Ho": Ho,
        "Wo": Wo,
        "kh": kh,
        "kw": kw,
        "sh": sh,
        "sw": sw,
        "ph": ph,
        "pw": pw,
        "dh": dh,
        "dw": dw,
        "divisor": divisor,
        "count_pad": 1 if count_include_pad else 0,
    }


def _kernel_params(op, backend, p):
    """The params dict for the backend's binding: the CUDA kernels refuse the options they lack
    (CPU-only for now)."""
    if backend.name == "cpu":
        return p
    floor_h = (p["H"] + 2 * p["ph"] - p["kh"]) // p["sh"] + 1
    floor_w = (p["W"] + 2 * p["pw"] - p["kw"]) // p["sw"] + 1
    unsupported = [
        name
        for name, on in (
            ("dilation", (p["dh"], p["dw"]) != (1, 1)),
            ("ceil_mode (with a window past the padded input)", (p["Ho"], p["Wo"]) != (floor_h, floor_w)),
            ("count_include_pad=False (with padding)", not p["count_pad"] and (p["ph"] or p["pw"])),
            ("divisor_override", p["divisor"] != 0),
        )
        if on
    ]
    if unsupported:
        raise NotImplementedError(
            f"{op}: {', '.join(unsupported)} is CPU-only for now (no CUDA kernel); run it on numpy arrays"
        )
    return p


def max_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    *,
    return_indices=False,
    return_ctx=False,
    out=None,
):
    """Max pooling over (H, W) of an NCHW batch or one CHW sample; padding is -inf; NaN propagates.

    Window taps are `dilation` apart; with ceil_mode the output size rounds up (PyTorch's rule).
    Returns y, plus the argmax indices (flat positions in each input plane, int64) when
    return_indices, plus a ctx for max_pool2d_backward when return_ctx.

    dtypes: float32 or float64 on numpy (float16 too on cupy); y has x's dtype, indices are int64.
    out: an array to write y into and return (y's shape and dtype, C-contiguous, not overlapping x),
    e.g. reused from the previous step so no large buffer is allocated anew.

    >>> import numpy as np, deepkern as dk
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> y, idx = dk.max_pool2d(x, 2, return_indices=True)
    >>> y[0, 0].tolist(), idx[0, 0].tolist()
    ([[5.0, 7.0], [13.0, 15.0]], [[5, 7], [13, 15]])
    """
    return _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, return_ctx, out, None)


def _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, return_ctx, out, idx_buf):
    """max_pool2d; idx_buf: a (N, C, Ho, Wo) int64 array for the indices (nn.MaxPool2D's reused one)."""
    op = "max_pool2d"
    given_x = x
    backend, (x,), out_dt, comp_dt = as_float_arrays(op, [("x", x)])
    x, unbatched = batched(op, x)
    params = _pool_params(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    kparams = _kernel_params(op, backend, params)
    shape = (params["N"], params["C"], params["Ho"], params["Wo"])
    res_shape = shape[1:] if unbatched else shape
    y, direct = kernel_buffer(op, backend, out, res_shape, shape, out_dt, comp_dt, [("x", x), ("x", given_x)])
    idx = backend.empty(shape, "int64") if idx_buf is None else idx_buf
    backend.call("max_pool2d_forward", kparams, x, y, idx)
    idx_out = idx[0] if unbatched else idx
    result = finish(out, y, direct, res_shape, out_dt)
    if return_indices:
        result = (result, idx_out)
    if return_ctx:
        ctx = Context(
            op,
            backend,
            out_dt,
            comp_dt,
            params=kparams,
            x_shape=x.shape,
            indices=idx,
            unbatched=unbatched,
            y_shape=idx_out.shape,
        )
        watch(ctx, indices=(idx, idx_out if return_indices else None))
        return result, ctx
    return result


def _grad4(op, ctx, dy):
    dy = as_grad(op, ctx, "dy", dy, ctx.y_shape)
    return dy[None] if ctx.unbatched else dy


def _dx_shape(ctx):
    return tuple(ctx.x_shape[1:]) if ctx.unbatched else tuple(ctx.x_shape)


def _dx_buffer(op, ctx, out, sources):
    return kernel_buffer(op, ctx.backend, out, _dx_shape(ctx), ctx.x_shape, ctx.out_dtype, ctx.compute_dtype, sources)


def max_pool2d_backward(ctx, dy, *, out=None):
    """(dx,): each output's gradient goes to the input unit that was its max in the forward.
    out: an array to write dx into (x's shape and dtype, C-contiguous, not overlapping dy).

    >>> import numpy as np, deepkern as dk
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, ctx = dk.max_pool2d(x, 2, return_ctx=True)
    >>> (dx,) = dk.max_pool2d_backward(ctx, np.ones_like(y))
    >>> dx[0, 0].tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    """
    op = "max_pool2d_backward"
    check_ctx(op, ctx, "max_pool2d")
    dy = _grad4(op, ctx, dy)
    dx, direct = _dx_buffer(op, ctx, out, [("dy", dy), ("indices", ctx.indices)])
    ctx.backend.call("max_pool2d_backward", ctx.params, dy, ctx.indices, dx)
    return (finish(out, dx, direct, _dx_shape(ctx), ctx.out_dtype),)


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
    *,
    return_ctx=False,
    out=None,
):
    """Average pooling over (H, W) of an NCHW batch or one CHW sample.

    Each window's sum is divided by divisor_override if given, else by the window's size clipped
    to the padded input (count_include_pad=True, PyTorch's default) or to the input itself.

    dtypes: float32 or float64 on numpy (float16 too on cupy); y has x's dtype. With return_ctx=True
    returns (y, ctx) for avg_pool2d_backward. out: as max_pool2d's.

    >>> import numpy as np, deepkern as dk
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> dk.avg_pool2d(x, 2)[0, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    op = "avg_pool2d"
    given_x = x
    backend, (x,), out_dt, comp_dt = as_float_arrays(op, [("x", x)])
    x, unbatched = batched(op, x)
    params = _pool_params(op, x, kernel_size, stride, padding, 1, ceil_mode, count_include_pad, divisor_override)
    kparams = _kernel_params(op, backend, params)
    shape = (params["N"], params["C"], params["Ho"], params["Wo"])
    res_shape = shape[1:] if unbatched else shape
    y, direct = kernel_buffer(op, backend, out, res_shape, shape, out_dt, comp_dt, [("x", x), ("x", given_x)])
    backend.call("avg_pool2d_forward", kparams, x, y)
    result = finish(out, y, direct, res_shape, out_dt)
    if return_ctx:
        return result, Context(
            op, backend, out_dt, comp_dt, params=kparams, x_shape=x.shape, y_shape=result.shape, unbatched=unbatched
        )
    return result


def avg_pool2d_backward(ctx, dy, *, out=None):
    """(dx,): each output's gradient is spread evenly over its window, divided as in the forward.
    out: as max_pool2d_backward's.

    >>> import numpy as np, deepkern as dk
    >>> y, ctx = dk.avg_pool2d(np.zeros((1, 1, 2, 2)), 2, return_ctx=True)
    >>> dk.avg_pool2d_backward(ctx, np.ones((1, 1, 1, 1)))[0][0, 0].tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    op = "avg_pool2d_backward"
    check_ctx(op, ctx, "avg_pool2d")
    dy = _grad4(op, ctx, dy)
    dx, direct = _dx_buffer(op, ctx, out, [("dy", dy)])
    ctx.backend.call("avg_pool2d_backward", ctx.params, dy, dx)
    return (finish(out, dx, direct, _dx_shape(ctx), ctx.out_dtype),)
