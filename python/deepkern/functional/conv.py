"""conv2d and its backward pass (NCHW input, (K, C, kh, kw) weights; PyTorch's semantics)."""
import numpy as np

from .._backend import _DTYPE_CODES, is_cupy_array
from .._precision import get_allow_tf32
from .._saved import watch
from .._validate import Context, as_float_arrays, as_grad, check_ctx, check_ndim, int_pair, to_out_dtype


def _conv_params(op, x, w, b, stride, padding, dilation):
    check_ndim(op, "x", x, 4, "(N, C, H, W)")
    check_ndim(op, "w", w, 4, "(K, C, kh, kw)")
    N, C, H, W = x.shape  # numpy and cupy shapes hold Python ints
    K, Cw, kh, kw = w.shape
    if Cw != C:
        raise ValueError(
            f"{op}: 'w' has {Cw} input channels (shape {tuple(w.shape)}) but 'x' has {C} (shape {tuple(x.shape)}); "
            "expected w of shape (K, C, kh, kw) with C = x.shape[1]"
        )
    if min(C, H, W) < 1:
        raise ValueError(f"{op}: 'x' must have C, H, W >= 1, got shape {tuple(x.shape)}")
    if min(K, kh, kw) < 1:
        raise ValueError(f"{op}: 'w' must have K, kh, kw >= 1, got shape {tuple(w.shape)}")
    if b is not None and tuple(b.shape) != (K,):
        raise ValueError(f"{op}: 'b' has shape {tuple(b.shape)}; expected ({K},) (one bias per output channel)")
    sh, sw = int_pair(op, "stride", stride, 1)
    ph, pw = int_pair(op, "padding", padding, 0)
    dh, dw = int_pair(op, "dilation", dilation, 1)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel's extent
    if H + 2 * ph < eh or W + 2 * pw < ew:
        raise ValueError(
            f"{op}: kernel larger than padded input: the (dilated) kernel covers {(eh, ew)} but the padded "
            f"input is {(H + 2 * ph, W + 2 * pw)} (x shape {tuple(x.shape)}, w shape {tuple(w.shape)}, "
            f"padding {(ph, pw)}, dilation {(dh, dw)})"
        )
    Ho = (H + 2 * ph - eh) // sh + 1
    Wo = (W + 2 * pw - ew) // sw + 1
    return (N, C, H, W, K, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw)


def _kernel_params(backend, params, dtype):
    """The CUDA kernels also take whether float32 may run on TF32 tensor cores (read at each call)."""
    if backend.name != "cuda":
        return params
    return params + (int(np.dtype(dtype) == np.float32 and get_allow_tf32()),)


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


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, *, out=None, return_ctx=False):
    """2-D convolution (cross-correlation, as PyTorch's conv2d) of an NCHW batch.

    x (N, C, H, W), w (K, C, kh, kw), b (K,) or None -> y (N, K, Ho, Wo) with
    Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo). `out`, if given, receives y and is returned.
    On cupy arrays float32 is exact unless dk.set_allow_tf32(True) (TF32 tensor cores); float16 runs on
    tensor cores with float32 accumulation.
    """
    op = "conv2d"
    given_x, given_w = x, w
    backend, (x, w, b), out_dt, comp_dt = as_float_arrays(op, [("x", x), ("w", w), ("b", b)], optional=("b",))
    params = _conv_params(op, x, w, b, stride, padding, dilation)
    N, K, Ho, Wo = params[0], params[4], params[7], params[8]
    shape = (N, K, Ho, Wo)
    if out is not None:
        _check_out(op, out, backend, shape, out_dt)
    y = out if (out is not None and out_dt == comp_dt) else backend.empty(shape, comp_dt)
    backend.call("conv2d_forward", _kernel_params(backend, params, comp_dt), x, w, b, y)
    if out is not None and y is not out:
        out[...] = y
        y = out
    result = to_out_dtype(y, out_dt)
    if return_ctx:
        ctx = Context(op, backend, out_dt, comp_dt, params=params, x=x, w=w, has_bias=b is not None, y_shape=shape)
        watch(ctx, x=(x, given_x), w=(w, given_w))
        return result, ctx
    return result


def conv2d_backward(ctx, dy):
    """(dx, dw, db): gradients of sum(y * dy) for x, w and b; db is None when the forward had no bias."""
    return _conv2d_backward(ctx, dy, input_grad=True)


def _conv2d_backward(ctx, dy, input_grad):
    """conv2d_backward; with input_grad=False dx is not computed (None): the nn layers use this
    when nothing consumes the gradient of the model's input (the first layer in training)."""
    op = "conv2d_backward"
    check_ctx(op, ctx, "conv2d")
    dy = as_grad(op, ctx, "dy", dy, ctx.y_shape)
    be, dt = ctx.backend, ctx.compute_dtype
    dx = be.empty(ctx.x.shape, dt) if input_grad else None
    dw = be.empty(ctx.w.shape, dt)
    db = be.empty((ctx.w.shape[0],), dt) if ctx.has_bias else None
    params = _kernel_params(be, ctx.params, dt)
    if be.name == "cuda":  # split-K weight gradient: the partial sums' workspace, sized by the kernel's rule
        n = be.query("conv2d_backward_workspace", params, _DTYPE_CODES[np.dtype(dt).name])
        ws = be.empty((n,), np.float64 if np.dtype(dt) == np.float64 else np.float32) if n else None
        be.call("conv2d_backward", params, ctx.x, ctx.w, dy, dx, dw, db, ws)
    else:
        be.call("conv2d_backward", params, ctx.x, ctx.w, dy, dx, dw, db)
    return (None if dx is None else to_out_dtype(dx, ctx.out_dtype), to_out_dtype(dw, ctx.out_dtype),
            None if db is None else to_out_dtype(db, ctx.out_dtype))
