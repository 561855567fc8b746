# Typed stub of deepkern._cuda, the CUDA kernels (csrc/bindings/cuda_*.cpp); the simulator module
# deepkern._cuda_sim has the same API. Arrays travel as device pointers (int, cupy's data.ptr; 0 for an
# absent optional array, or None where the binding has named arguments), with the dtype code of
# csrc/common/dtype.h and the cupy stream's pointer; outputs are written in place. `params` is the
# op's parameter sequence (csrc/common/*_params.h), or a named tuple read by field name (LSTM).
# tests/test_stubs.py checks that this file names exactly the module's functions where it imports.
from collections.abc import Sequence
from typing import Protocol

class _LstmShape(Protocol):  # deepkern.functional.lstm.LstmShape, read by field name
    T: int
    B: int
    I: int  # noqa: E741
    H: int

def attention_forward(
    params: Sequence[int], dtype: int, q: int, k: int, v: int, mask: int, moff: int, out: int, lse: int, stream: int, /
) -> None: ...
def attention_backward(
    params: Sequence[int],
    dtype: int,
    q: int,
    k: int,
    v: int,
    mask: int,
    moff: int,
    out: int,
    lse: int,
    dout: int,
    dq: int,
    dk: int,
    dv: int,
    drow: int,
    dq_acc: int,
    stream: int,
    /,
) -> None: ...
def conv2d_forward(params: Sequence[int], dtype: int, x: int, w: int, b: int, y: int, stream: int, /) -> None: ...
def conv2d_backward_workspace(params: Sequence[int], dtype: int, /) -> int: ...
def conv2d_backward(
    params: Sequence[int], dtype: int, x: int, w: int, dy: int, dx: int, dw: int, db: int, ws: int, stream: int, /
) -> None: ...
def gemm(params: Sequence[int], dtype: int, a: int, b: int, c: int, stream: int, /) -> None: ...
def lstm_forward(
    params: _LstmShape,
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
    params: _LstmShape,
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
def lstm_path(params: _LstmShape, dtype: int, backward: bool = False) -> dict[str, bool | int | str]: ...
def max_pool2d_forward(params: Sequence[int], dtype: int, x: int, y: int, idx: int, stream: int, /) -> None: ...
def max_pool2d_backward(params: Sequence[int], dtype: int, dy: int, idx: int, dx: int, stream: int, /) -> None: ...
def avg_pool2d_forward(params: Sequence[int], dtype: int, x: int, y: int, stream: int, /) -> None: ...
def avg_pool2d_backward(params: Sequence[int], dtype: int, dy: int, dx: int, stream: int, /) -> None: ...
