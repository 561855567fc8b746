# Typed stub of deepkern._cuda, the CUDA kernels (csrc/bindings/cuda_*.cpp); the simulator module
# deepkern._cuda_sim has the same API. Arrays travel as device pointers (int, cupy's data.ptr; None for
# an absent optional array), with the dtype code of csrc/common/dtype.h and the cupy stream's pointer;
# outputs are written in place. `params` is the op's params dict, one key per field of its struct in
# csrc/common/*_params.h, read by name (csrc/bindings/fields.h); conv2d's and gemm's add allow_tf32.
# tests/test_stubs.py checks that this file names exactly the module's functions where it imports.
from collections.abc import Mapping
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
def gemm(params: Mapping[str, Union[int, float]], dtype: int, a: int, b: int, c: int, stream: int) -> None: ...
def lstm_forward(
    params: Mapping[str, int],
    dtype: int,
    x: int,
    h0: int | None,
    c0: int | None,
    w_ih: int,
    w_hh: int,
    b_ih: int | None,
    b_hh: int | None,
    y: int,
    hT: int,
    cT: int,
    gates: int | None,
    xh: int | None,
    cs: int | None,
    proj: int,
    cbuf: int | None,
    stream: int,
) -> None: ...
def lstm_backward(
    params: Mapping[str, int],
    dtype: int,
    xh: int,
    w_ih: int,
    w_hh: int,
    gates: int,
    cs: int,
    dy: int | None,
    dhT: int | None,
    dcT: int | None,
    dx: int,
    dh0: int | None,
    dc0: int | None,
    dw_ih: int,
    dw_hh: int,
    db: int | None,
    dgates: int,
    dcbuf: int,
    stream: int,
) -> None: ...
def lstm_path(params: Mapping[str, int], dtype: int, backward: bool = False) -> dict[str, bool | int | str]: ...
def max_pool2d_forward(params: Mapping[str, int], dtype: int, x: int, y: int, indices: int, stream: int) -> None: ...
def max_pool2d_backward(params: Mapping[str, int], dtype: int, dy: int, indices: int, dx: int, stream: int) -> None: ...
def avg_pool2d_forward(params: Mapping[str, int], dtype: int, x: int, y: int, stream: int) -> None: ...
def avg_pool2d_backward(params: Mapping[str, int], dtype: int, dy: int, dx: int, stream: int) -> None: ...
