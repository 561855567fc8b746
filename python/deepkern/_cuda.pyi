# Typed stub of deepkern._cuda, the CUDA kernels (csrc/bindings/cuda_*.cpp); the simulator module
# deepkern._cuda_sim has the same API. Arrays travel as device pointers (int, cupy's data.ptr; None for
# an absent optional array, 0 where conv2d, gemm and lstm still take it), with the dtype code of
# csrc/common/dtype.h and the cupy stream's pointer; outputs are written in place. `params` is the op's
# params dict, one key per field of its struct in csrc/common/*_params.h (conv2d, gemm and lstm still
# take a sequence).
# tests/test_stubs.py checks that this file names exactly the module's functions where it imports.
from collections.abc import Mapping, Sequence
from typing import Optional, Union

def attention_forward(
    params: Mapping[str, Union[int, float]],
    dtype: int,
    q: int,
    k: int,
    v: int,
    mask: Optional[int],
    mask_off: Optional[int],
    out: int,
    lse: int,
    stream: int,
) -> None: ...
def attention_backward(
    params: Mapping[str, Union[int, float]],
    dtype: int,
    q: int,
    k: int,
    v: int,
    mask: Optional[int],
    mask_off: Optional[int],
    out: int,
    lse: int,
    dout: int,
    dq: int,
    dk: int,
    dv: int,
    drow: int,
    dq_acc: Optional[int],
    stream: int,
) -> None: ...
def conv2d_forward(
    params: Mapping[str, int], dtype: int, x: int, w: int, b: int | None, y: int, stream: int
) -> None: ...
def conv2d_backward_workspace(params: Mapping[str, int], dtype: int) -> int: ...
def conv2d_backward(
    params: Mapping[str, int],
    dtype: int,
    x: int,
    w: int,
    dy: int,
    dx: int | None,
    dw: int | None,
    db: int | None,
    ws: int | None,
    stream: int,
) -> None: ...
def gemm(params: Sequence[float], dtype: int, a: int, b: int, c: int, stream: int) -> None: ...
def lstm_forward(
    params: Sequence[int],
    dtype: int,
    x: int,
    h0: int,
    c0: int,
    w_ih: int,
    w_hh: int,
    b_ih: int,
    b_hh: int,
    y: int,
    hT: int,
    cT: int,
    gates: int,
    xh: int,
    cs: int,
    proj: int,
    cbuf: int,
    stream: int,
    /,
) -> None: ...
def lstm_backward(
    params: Sequence[int],
    dtype: int,
    xh: int,
    w_ih: int,
    w_hh: int,
    gates: int,
    cs: int,
    dy: int,
    dhT: int,
    dcT: int,
    dx: int,
    dh0: int,
    dc0: int,
    dw_ih: int,
    dw_hh: int,
    db: int,
    dgates: int,
    dcbuf: int,
    stream: int,
    /,
) -> None: ...
def max_pool2d_forward(params: Mapping[str, int], dtype: int, x: int, y: int, indices: int, stream: int) -> None: ...
def max_pool2d_backward(params: Mapping[str, int], dtype: int, dy: int, indices: int, dx: int, stream: int) -> None: ...
def avg_pool2d_forward(params: Mapping[str, int], dtype: int, x: int, y: int, stream: int) -> None: ...
def avg_pool2d_backward(params: Mapping[str, int], dtype: int, dy: int, dx: int, stream: int) -> None: ...
