"""Arrays a forward saves for its backward, and in-place changes to them.

A ctx keeps references, not copies, to arrays the caller can still reach: inputs passed without
a conversion, and outputs it returned that the backward needs (attention's out, max pooling's
indices). Changing one of them in place between the forward and the backward would make the
backward compute wrong gradients without a sign. PyTorch notices through tensor version
counters; numpy has none, so the ctx records a 64-bit fingerprint of each such array and the
backward recomputes it (one read of the array each way) and raises RuntimeError on a change.
Arrays the forward converted or allocated itself are private and are not checked.
"""

import numbers

import numpy as np

from . import _cpu

_POSITION = 0x9E3779B97F4A7C15  # the constants of csrc/cpu/fingerprint/fingerprint.cpp
_MIX = 0xD6E8FEB86659FD93
_U64 = (1 << 64) - 1


def xp_fingerprint(xp, a):
    """csrc/cpu/fingerprint/fingerprint.cpp's 64-bit fingerprint of a C-contiguous array's bytes, computed with
    array operations (so on the GPU for a cupy array): sum mod 2^64 of (word ^ i*POSITION) * MIX
    over the 8-byte words, the zero-padded tail as one more word, then the same finalisation."""
    b = a.reshape(-1).view(xp.uint8)
    nbytes = int(b.size)
    words = nbytes // 8
    total = 0
    if words:
        w = b[: 8 * words].view(xp.uint64)
        i = xp.arange(words, dtype=xp.uint64)
        total = int(((w ^ (i * xp.uint64(_POSITION))) * xp.uint64(_MIX)).sum(dtype=xp.uint64))
    if nbytes > 8 * words:
        tail = bytes(int(v) for v in b[8 * words :].tolist()) + bytes(8 - (nbytes - 8 * words))
        total += ((int.from_bytes(tail, "little") ^ (words * _POSITION)) * _MIX) & _U64
    h = (total ^ (nbytes * _POSITION)) & _U64
    h ^= h >> 33
    h = (h * _MIX) & _U64
    h ^= h >> 29
    return h


def _fingerprint(backend, a):
    return _cpu.fingerprint(a) if backend.name == "cpu" else xp_fingerprint(backend.xp, a)


def _reachable(saved, via):
    """True when `saved` shares memory with `via`, the object the caller passed or got back."""
    if via is saved:
        return True
    if via is None or isinstance(via, (list, tuple, numbers.Number)):
        return False  # converted into a fresh array the caller never sees
    if isinstance(via, np.ndarray):
        return np.may_share_memory(saved, via)
    try:
        return np.may_share_memory(saved, np.asarray(via))
    except Exception:
        return True  # cannot tell: check it


def watch(ctx, **saved_and_via):
    """Fingerprint each saved array the caller can reach: watch(ctx, x=(x_saved, x_as_passed))."""
    for name, (saved, via) in saved_and_via.items():
        if saved is not None and _reachable(saved, via):
            ctx._fingerprints[name] = (saved, _fingerprint(ctx.backend, saved))


def check_unmodified(op, ctx):
    for name, (saved, fp) in ctx._fingerprints.items():
        if _fingerprint(ctx.backend, saved) != fp:
            raise RuntimeError(
                f"{op}: '{name}', saved by {ctx.op} for the backward pass, was modified in place after the "
                f"forward pass, so its gradients would be wrong; modify a copy, or run {ctx.op} again"
            )


class Remembered:
    """A layer's cached array that the caller also holds (an activation's returned output, which
    its backward reads), with its fingerprint: the layer-level counterpart of watch(). numpy
    only; a cupy array is kept unchecked."""

    __slots__ = ("array", "fp")

    def __init__(self, array, via=None):
        """via: what the caller passed, when `array` is derived from an input: the fingerprint is
        then only taken if the two share memory (a converted copy is private)."""
        self.array = array
        ok = isinstance(array, np.ndarray) and array.flags.c_contiguous
        if ok and via is not None:
            ok = _reachable(array, via)
        self.fp = _cpu.fingerprint(array) if ok else None


def recall(layer, name, remembered, what="output"):
    """The remembered array, or RuntimeError if it was changed in place since the forward."""
    if remembered.fp is not None and _cpu.fingerprint(remembered.array) != remembered.fp:
        raise RuntimeError(
            f"{layer}.backward: its {what} '{name}', which the backward pass reads, was modified in place "
            f"after forward(), so the gradient would be wrong; modify a copy of the {what} instead"
        )
    return remembered.array
