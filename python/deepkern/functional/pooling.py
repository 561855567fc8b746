"""max_pool2d / avg_pool2d and their backward passes (NCHW, PyTorch's semantics)."""
from .._saved import watch
from .._validate import Context, as_float_arrays, as_grad, check_ctx, check_ndim, int_pair, to_out_dtype


def _pool_params(op, x, kernel_size, stride, padding):
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    kh, kw = int_pair(op, "kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else int_pair(op, "stride", stride, 1)
    ph, pw = int_pair(op, "padding", padding, 0)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"{op}: 'padding' {(ph, pw)} must be at most half of 'kernel_size' {(kh, kw)} "
            "(a window may not lie entirely in the padding)"
        )
    N, C, H, W = x.shape  # numpy and cupy shapes hold Python ints
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(
            f"{op}: 'kernel_size' {(kh, kw)} is larger than the padded input {(H + 2 * ph, W + 2 * pw)} "
            f"(x has shape {tuple(x.shape)}, padding {(ph, pw)})"
        )
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    return (N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw)


def max_pool2d(x, kernel_size, stride=None, padding=0, *, return_indices=False, return_ctx=False):
    """Max pooling over (H, W) of an NCHW batch; padding is -inf; NaN propagates.

    Returns y, plus the argmax indices (flat positions in each input plane, int64) when
    return_indices, plus a ctx for max_pool2d_backward when return_ctx.
    """
    op = "max_pool2d"
    backend, (x,), out_dt, comp_dt = as_float_arrays(op, [("x", x)])
    params = _pool_params(op, x, kernel_size, stride, padding)
    N, C, _, _, Ho, Wo = params[:6]
    y = backend.empty((N, C, Ho, Wo), comp_dt)
    idx = backend.empty((N, C, Ho, Wo), "int64")
    backend.call("max_pool2d_forward", params, x, y, idx)
    result = to_out_dtype(y, out_dt)
    if return_indices:
        result = (result, idx)
    if return_ctx:
        ctx = Context(op, backend, out_dt, comp_dt, params=params, x_shape=x.shape, indices=idx)
        watch(ctx, indices=(idx, idx if return_indices else None))
        return result, ctx
    return result


def max_pool2d_backward(ctx, dy):
    """(dx,): each output's gradient goes to the input unit that was its max in the forward."""
    op = "max_pool2d_backward"
    check_ctx(op, ctx, "max_pool2d")
    dy = as_grad(op, ctx, "dy", dy, ctx.indices.shape)
    dx = ctx.backend.empty(ctx.x_shape, ctx.compute_dtype)
    ctx.backend.call("max_pool2d_backward", ctx.params, dy, ctx.indices, dx)
    return (to_out_dtype(dx, ctx.out_dtype),)


def avg_pool2d(x, kernel_size, stride=None, padding=0, *, return_ctx=False):
    """Average pooling over (H, W) of an NCHW batch; padded zeros count (count_include_pad=True)."""
    op = "avg_pool2d"
    backend, (x,), out_dt, comp_dt = as_float_arrays(op, [("x", x)])
    params = _pool_params(op, x, kernel_size, stride, padding)
    N, C, _, _, Ho, Wo = params[:6]
    y = backend.empty((N, C, Ho, Wo), comp_dt)
    backend.call("avg_pool2d_forward", params, x, y)
    result = to_out_dtype(y, out_dt)
    if return_ctx:
        return result, Context(op, backend, out_dt, comp_dt, params=params, x_shape=x.shape, y_shape=y.shape)
    return result


def avg_pool2d_backward(ctx, dy):
    """(dx,): each output's gradient is spread evenly over its kh*kw window."""
    op = "avg_pool2d_backward"
    check_ctx(op, ctx, "avg_pool2d")
    dy = as_grad(op, ctx, "dy", dy, ctx.y_shape)
    dx = ctx.backend.empty(ctx.x_shape, ctx.compute_dtype)
    ctx.backend.call("avg_pool2d_backward", ctx.params, dy, dx)
    return (to_out_dtype(dx, ctx.out_dtype),)
