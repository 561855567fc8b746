"""The TF32 switch for float32 work on the GPU (PyTorch's `allow_tf32`, one flag for deepkern)."""

_allow_tf32 = False


def set_allow_tf32(flag):
    """Let float32 convolutions (and GEMMs) on cupy arrays use TF32 tensor cores.

    Off by default, as PyTorch's `torch.backends.cuda.matmul.allow_tf32`: float32 then computes
    exactly (FFMA). On, the inputs of each product are rounded to TF32 (10-bit mantissa, float32's
    range) and accumulated in float32 on `mma.sync` tensor cores, several times faster; expect a
    relative error around 3e-4 of the result's norm instead of float32's ~1e-6. float16 always uses
    tensor cores; float64 and numpy arrays are never affected.

    >>> import deepkern as dk
    >>> dk.set_allow_tf32(True); dk.get_allow_tf32()
    True
    >>> dk.set_allow_tf32(False)
    """
    global _allow_tf32
    if not isinstance(flag, bool):
        raise TypeError(f"set_allow_tf32: 'flag' must be a bool, got {flag!r}")
    _allow_tf32 = flag


def get_allow_tf32():
    """Whether float32 GPU convolutions may use TF32 tensor cores (see set_allow_tf32); default False."""
    return _allow_tf32
