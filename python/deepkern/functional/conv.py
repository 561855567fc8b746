"""conv2d and its backward pass (NCHW or unbatched CHW input, (K, C/groups, kh, kw) weights; PyTorch's semantics)."""

import numbers

import numpy as np

from .._backend import _DTYPE_CODES, is_cupy_array
from .._precision import get_allow_tf32
from .._saved import watch
from .._validate import Context, as_float_arrays, as_grad, check_ctx, check_ndim, int_pair, to_out_dtype
from .pooling import batched


def _groups(op, groups):
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: 'groups' must be a positive int, got {groups!r}")
    return int(groups)


def same_padding(k, d):
    """PyTorch's padding='same' along one axis: (before, after); after is one more than before
    when the dilated kernel's extent d*(k-1) is odd (even kernels)."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def _conv_params(op, x, w, b, stride, padding, dilation, groups=1):
    """The kernels' Conv2dParams, one key per field (csrc/common/conv_params.h), and the extra
    zero rows / columns (bottom, right) that padding='same' needs beyond the symmetric padding."""
    check_ndim(op, "w", w, 4, "(K, C/groups, kh, kw)")
    G = _groups(op, groups)
    N, C, H, W = x.shape  # numpy and cupy shapes hold Python ints
    K, Cw, kh, kw = w.shape
    if C % G != 0 or Cw * G != C:
        raise ValueError(
            f"{op}: 'w' has {Cw} input channels per group (shape {tuple(w.shape)}) and 'groups' is {G}, so 'x' "
            f"should have {Cw * G} channels, but it has {C} (shape {tuple(x.shape)}); expected w of shape "
            "(K, C/groups, kh, kw) with C = x.shape[1] divisible by groups"
        )
    if K % G != 0:
        raise ValueError(
            f"{op}: 'w' has K = {K} output channels (shape {tuple(w.shape)}), not divisible by 'groups' = {G}"
        )
    if min(C, H, W) < 1:
        raise ValueError(f"{op}: 'x' must have C, H, W >= 1, got shape {tuple(x.shape)}")
    if min(K, kh, kw) < 1:
        raise ValueError(f"{op}: 'w' must have K, kh, kw >= 1, got shape {tuple(w.shape)}")
    if b is not None and tuple(b.shape) != (K,):
        raise ValueError(f"{op}: 'b' has shape {tuple(b.shape)}; expected ({K},) (one bias per output channel)")
    sh, sw = int_pair(op, "stride", stride, 1)
    dh, dw = int_pair(op, "dilation", dilation, 1)
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            ph, pw = 0, 0
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got stride {(sh, sw)}")
            (ph, eh), (pw, ew) = same_padding(kh, dh), same_padding(kw, dw)
            extra = (eh - ph, ew - pw)
        else:
            raise ValueError(f"{op}: 'padding' must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = int_pair(op, "padding", padding, 0)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel's extent
    if H + 2 * ph + extra[0] < eh or W + 2 * pw + extra[1] < ew:
        raise ValueError(
            f"{op}: kernel larger than padded input: the (dilated) kernel covers {(eh, ew)} but the padded "
            f"input is {(H + 2 * ph, W + 2 * pw)} (x shape {tuple(x.shape)}, w shape {tuple(w.shape)}, "
            f"padding {(ph, pw)}, dilation {(dh, dw)})"
        )
    H, W = H + extra[0], W + extra[1]
    Ho = (H + 2 * ph - eh) // sh + 1
    Wo = (W + 2 * pw - ew) // sw + 1
    return {
        "N": N,
        "C": C,
        "H": H,
        "W": W,
        "K": K,
        "kh": kh,
        "kw": kw,
        "Ho": Ho,
        "Wo": Wo,
        "sh": sh,
        "sw": sw,
        "ph": ph,
        "pw": pw,
        "dh": dh,
        "dw": dw,
        "G": G,
    }, extra


def _with_tf32(backend, params, dtype):
    """The CUDA kernels also take whether float32 may run on TF32 tensor cores (read at each call)."""
    if backend.name != "cuda":
        return params
    return {**params, "allow_tf32": int(np.dtype(dtype) == np.float32 and get_allow_tf32())}


def _check_out(op, out, backend, shape, dtype):
    if is_cupy_array(out) != (backend.name == "cuda") or not hasattr(out, "shape"):
        where = "the GPU" if backend.name == "cuda" else "the CPU (a numpy array)"
        raise TypeError(f"{op}: 'out' is a {type(out).__name__}; expected an array on {where}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{op}: 'out' has shape {tuple(out.shape)}; expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{op}: 'out' has dtype {out.dtype}; expected {dtype} (the result dtype)")
    if not out.flags.c_contiguous:
        raise ValueError(f"{op}: 'out' must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{op}: 'out' is read-only")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, out=None, return_ctx=False):
    """2-D convolution (cross-correlation, as PyTorch's conv2d) of an NCHW batch or one CHW sample.

    x (N, C, H, W) or (C, H, W), w (K, C/groups, kh, kw), b (K,) or None -> y (N, K, Ho, Wo) (or
    (K, Ho, Wo)) with Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo). padding may be
    "valid" (0) or "same" (Ho = H; stride 1; an odd d*(k-1) pads one more after than before, as
    PyTorch). groups splits the channels: group g's outputs see only its C/groups inputs
    (groups = C: depthwise). `out`, if given, receives y and is returned.
    On cupy arrays float32 is exact unless dk.set_allow_tf32(True) (TF32 tensor cores); float16 runs on
    tensor cores with float32 accumulation.

    dtypes: float32 (default) or float64 on numpy; float32 or float16 on cupy; y has x's dtype.
    With return_ctx=True returns (y, ctx); conv2d_backward(ctx, dy) gives (dx, dw, db).

    >>> import numpy as np, deepkern as dk
    >>> x = np.ones((2, 3, 5, 5), np.float32); w = np.ones((4, 3, 3, 3), np.float32)
    >>> y, ctx = dk.conv2d(x, w, np.zeros(4, np.float32), padding=1, return_ctx=True)
    >>> y.shape, float(y[0, 0, 2, 2]), float(y[0, 0, 0, 0])      # 27 taps inside, 12 at a corner
    ((2, 4, 5, 5), 27.0, 12.0)
    """
    op = "conv2d"
    given_x, given_w = x, w
    backend, (x, w, b), out_dt, comp_dt = as_float_arrays(op, [("x", x), ("w", w), ("b", b)], optional=("b",))
    x, unbatched = batched(op, x)
    params, extra = _conv_params(op, x, w, b, stride, padding, dilation, groups)
    if extra != (0, 0):  # padding='same', even kernel: the extra zeros after, explicitly
        x = backend.xp.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    shape = (params["N"], params["K"], params["Ho"], params["Wo"])
    user_shape = shape[1:] if unbatched else shape
    if out is not None:
        _check_out(op, out, backend, user_shape, out_dt)
    y = (out[None] if unbatched else out) if (out is not None and out_dt == comp_dt) else backend.empty(shape, comp_dt)
    backend.call("conv2d_forward", _with_tf32(backend, params, comp_dt), x, w, b, y)
    if unbatched:
        y = y[0]
    if out is not None and y is not out:
        out[...] = y
        y = out
    result = to_out_dtype(y, out_dt)
    if return_ctx:
        ctx = Context(
            op,
            backend,
            out_dt,
            comp_dt,
            params=params,
            x=x,
            w=w,
            has_bias=b is not None,
            y_shape=user_shape,
            unbatched=unbatched,
            extra=extra,
        )
        watch(ctx, x=(x, given_x), w=(w, given_w))
        return result, ctx
    return result


def conv2d_backward(ctx, dy):
    """(dx, dw, db): gradients of sum(y * dy) for x, w and b; db is None when the forward had no bias.

    >>> import numpy as np, deepkern as dk
    >>> x, w = np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2))
    >>> y, ctx = dk.conv2d(x, w, return_ctx=True)
    >>> dx, dw, db = dk.conv2d_backward(ctx, np.ones_like(y))
    >>> dx[0, 0].tolist(), dw.shape, db
    ([[2.0, 4.0, 2.0], [4.0, 8.0, 4.0], [2.0, 4.0, 2.0]], (2, 1, 2, 2), None)
    """
    return _conv2d_backward(ctx, dy, input_grad=True)


def _conv2d_backward(ctx, dy, input_grad):
    """conv2d_backward; with input_grad=False dx is not computed (None): the nn layers use this
    when nothing consumes the gradient of the model's input (the first layer in training)."""
    op = "conv2d_backward"
    check_ctx(op, ctx, "conv2d")
    dy = as_grad(op, ctx, "dy", dy, ctx.y_shape)
    if ctx.unbatched:
        dy = dy[None]
    be, dt = ctx.backend, ctx.compute_dtype
    dx = be.empty(ctx.x.shape, dt) if input_grad else None
    dw = be.empty(ctx.w.shape, dt)
    db = be.empty((ctx.w.shape[0],), dt) if ctx.has_bias else None
    params = _with_tf32(be, ctx.params, dt)
    if be.name == "cuda":  # split-K weight gradient: the partial sums' workspace, sized by the kernel's rule
        n = be.query("conv2d_backward_workspace", params, _DTYPE_CODES[np.dtype(dt).name])
        ws = be.empty((n,), np.float64 if np.dtype(dt) == np.float64 else np.float32) if n else None
        be.call("conv2d_backward", params, ctx.x, ctx.w, dy, dx, dw, db, ws)
    else:
        be.call("conv2d_backward", params, ctx.x, ctx.w, dy, dx, dw, db)
    if dx is not None:
        if ctx.extra != (0, 0):  # the explicit zeros of padding='same' are not an input
            H, W = ctx.x.shape[2] - ctx.extra[0], ctx.x.shape[3] - ctx.extra[1]
            dx = be.xp.ascontiguousarray(dx[:, :, :H, :W])
        dx = to_out_dtype(dx[0] if ctx.unbatched else dx, ctx.out_dtype)
    return (dx, to_out_dtype(dw, ctx.out_dtype), None if db is None else to_out_dtype(db, ctx.out_dtype))
