# Typed stub of deepkern._cpu, the OpenMP kernels (csrc/bindings/cpu_*.cpp). Arrays are C-contiguous
# numpy arrays of the op's dtype (float32 or float64; int64 indices, uint8 masks), allocated by the
# functional layer; every function writes its outputs in place and returns None unless stated.
# `params` is the op's params dict, one key per field of its struct in csrc/common/*_params.h (read
# by name in csrc/bindings/*_fields.h). Optional arrays are None.
# tests/test_stubs.py checks that this file names exactly the module's functions.
from collections.abc import Mapping
from typing import Optional, Union

import numpy as np

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def isa() -> str: ...
def fingerprint(a: np.ndarray) -> int: ...
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
    parallel: bool = True,
) -> None: ...
def gemm_kernel_name(dtype: str) -> str: ...
def adam_update(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vmax: Optional[np.ndarray],
    b1: float,
    b2: float,
    lr_bc1: float,
    sqrt_bc2: float,
    eps: float,
) -> None: ...
def sgd_update(
    w: np.ndarray,
    g: np.ndarray,
    buf: Optional[np.ndarray],
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    first: bool,
) -> None: ...
def softmax_xent(z: np.ndarray, labels: np.ndarray, probs: np.ndarray, grad: np.ndarray, n_total: int) -> float: ...
def scatter_add_rows(g: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> None: ...
def relu_forward(x: np.ndarray, y: np.ndarray, active: np.ndarray) -> None: ...
def relu_backward(dy: np.ndarray, active: np.ndarray, dx: np.ndarray) -> None: ...
def conv2d_forward(
    params: Mapping[str, int], x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], y: np.ndarray
) -> None: ...
def conv2d_backward(
    params: Mapping[str, int],
    x: np.ndarray,
    w: np.ndarray,
    dy: np.ndarray,
    dx: Optional[np.ndarray],
    dw: Optional[np.ndarray],
    db: Optional[np.ndarray],
) -> None: ...
def conv2d_plan(params: Mapping[str, int], dtype: str = "float32", threads: Optional[int] = None) -> dict[str, str]:
    """The lowering each pass takes (keys forward, dx, dw), e.g. 'winograd', 'shifted', 'im2col'."""
    ...

def max_pool2d_forward(params: Mapping[str, int], x: np.ndarray, y: np.ndarray, indices: np.ndarray) -> None: ...
def max_pool2d_backward(params: Mapping[str, int], dy: np.ndarray, indices: np.ndarray, dx: np.ndarray) -> None: ...
def avg_pool2d_forward(params: Mapping[str, int], x: np.ndarray, y: np.ndarray) -> None: ...
def avg_pool2d_backward(params: Mapping[str, int], dy: np.ndarray, dx: np.ndarray) -> None: ...
def lstm_forward(
    params: Mapping[str, int],
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    y: np.ndarray,
    hT: np.ndarray,
    cT: np.ndarray,
    gates: Optional[np.ndarray],
    xh: Optional[np.ndarray],
    cs: Optional[np.ndarray],
) -> None: ...
def lstm_backward(
    params: Mapping[str, int],
    xh: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    gates: np.ndarray,
    cs: np.ndarray,
    dy: Optional[np.ndarray],
    dhT: Optional[np.ndarray],
    dcT: Optional[np.ndarray],
    dx: np.ndarray,
    dh0: Optional[np.ndarray],
    dc0: Optional[np.ndarray],
    dw_ih: np.ndarray,
    dw_hh: np.ndarray,
    db: Optional[np.ndarray],
) -> None: ...
def attention_forward(
    params: Mapping[str, Union[int, float]],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: Optional[np.ndarray],
    mask_off: Optional[np.ndarray],
    out: np.ndarray,
    lse: np.ndarray,
) -> None: ...
def attention_backward(
    params: Mapping[str, Union[int, float]],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: Optional[np.ndarray],
    mask_off: Optional[np.ndarray],
    out: np.ndarray,
    lse: np.ndarray,
    dout: np.ndarray,
    dq: np.ndarray,
    dk: np.ndarray,
    dv: np.ndarray,
) -> None: ...
def attention_isa(params: object = None) -> str: ...
