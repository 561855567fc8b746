"""Collectives on whole arrays: all_reduce, broadcast, all_gather. numpy arrays go through MPI,
cupy arrays through NCCL (see _nccl.py). Inputs are never modified; results are new arrays."""

import numpy as np

from .._backend import is_cupy_array
from . import _runtime

OPS = ("sum", "max", "min", "mean")


def _mpi_op(op, who):
    from mpi4py import MPI

    table = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
    if op not in table:
        raise ValueError(f"{who}: 'op' must be one of {OPS}, got {op!r}")
    return table[op]


def mpi_type(dtype, who, name="a"):
    """The predefined MPI datatype of a numpy dtype, or a TypeError naming the argument."""
    from mpi4py import MPI

    dtype = np.dtype(dtype)
    t = MPI._typedict.get(dtype.char) if dtype.kind in "iufc" and dtype.isnative and dtype.char != "e" else None
    if t is None:
        raise TypeError(
            f"{who}: '{name}' has dtype {dtype}, which MPI cannot reduce; use float32/float64 or an "
            "integer dtype (native byte order)"
        )
    return t


def _host(a, who):
    """A C-contiguous numpy array of `a` (a copy only where needed), refusing object arrays."""
    arr = np.asarray(a)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if arr.dtype == object:
        raise TypeError(f"{who}: 'a' must be a numeric array, got dtype object")
    return arr


def _same_everywhere(comm, who, desc, what):
    """Every rank passed the same `desc` (shape, dtype); else the same ValueError on every rank."""
    descs = comm.allgather(desc)
    for r, d in enumerate(descs):
        if d != descs[0]:
            raise ValueError(
                f"{who}: {what} must be the same on every rank, but rank 0 has {descs[0]} and rank {r} has {d}"
            )
    return descs


def all_reduce(a, op="sum"):
    """The elementwise reduction of `a` over every rank, on every rank (a new array; `a` is not
    modified). op: "sum", "max", "min" or "mean" (sum / world_size; integers give floats).
    Every rank must pass the same shape and dtype (checked: a ValueError names both)."""
    who = "all_reduce"
    if op not in OPS:
        raise ValueError(f"{who}: 'op' must be one of {OPS}, got {op!r}")
    comm = _runtime._comm()
    if is_cupy_array(a):
        from . import _nccl

        return _nccl.all_reduce(a, op)
    arr = _host(a, who)
    _same_everywhere(comm, who, (arr.shape, arr.dtype.str), "'a' (shape, dtype)")
    out = np.empty_like(arr)
    t = mpi_type(arr.dtype, who)
    comm.Allreduce([arr, t], [out, t], op=_mpi_op(op, who))
    if op == "mean":
        out = out / comm.Get_size() if out.dtype.kind not in "fc" else np.divide(out, comm.Get_size(), out=out)
    return out


def _check_root(root, who):
    n = _runtime.world_size()
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= int(root) < n:
        raise ValueError(f"{who}: 'root' must be a rank in [0, {n}), got {root!r}")
    return int(root)


def broadcast(a, root=0):
    """Rank `root`'s array `a` on every rank (a new array; no rank's `a` is modified). The other
    ranks' `a` only says where the result lives (numpy or cupy) and may be None there."""
    who = "broadcast"
    comm = _runtime._comm()
    root = _check_root(root, who)
    me = comm.Get_rank()
    on_gpu = is_cupy_array(a)
    if me == root and a is None:
        raise ValueError(f"{who}: the root rank {root} passed None for 'a'")
    if on_gpu:
        from . import _nccl

        return _nccl.broadcast(a, root)
    arr = _host(a, who) if me == root else None
    desc = comm.bcast((arr.shape, arr.dtype.str) if me == root else None, root=root)
    out = arr.copy() if me == root else np.empty(desc[0], dtype=np.dtype(desc[1]))
    comm.Bcast([out, mpi_type(out.dtype, who)], root=root)
    return out


def all_gather(a, axis=None):
    """Every rank's `a`, on every rank, in rank order. axis=None: stacked on a new leading axis,
    shape (world_size, *a.shape) (shapes must agree); axis=k: concatenated along axis k (the sizes
    along k may differ between ranks, the other dimensions may not)."""
    who = "all_gather"
    comm = _runtime._comm()
    if is_cupy_array(a):
        from . import _nccl

        return _nccl.all_gather(a, axis)
    arr = _host(a, who)
    if axis is not None:
        if not isinstance(axis, (int, np.integer)) or not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"{who}: 'axis' must be None or an axis of 'a' (ndim {arr.ndim}), got {axis!r}")
        axis = int(axis) % arr.ndim
    descs = comm.allgather((arr.shape, arr.dtype.str))
    for r, (shape, dt) in enumerate(descs):
        s0, d0 = descs[0]
        rest = (lambda s: s) if axis is None else (lambda s: s[:axis] + s[axis + 1 :])
        if dt != d0 or len(shape) != len(s0) or rest(shape) != rest(s0):
            along = "" if axis is None else f" (apart from axis {axis})"
            raise ValueError(
                f"{who}: 'a' must have the same shape{along} and dtype on every rank, but rank 0 has "
                f"{s0} {np.dtype(d0)} and rank {r} has {shape} {np.dtype(dt)}"
            )
    t = mpi_type(arr.dtype, who)
    if axis is None:
        out = np.empty((len(descs),) + arr.shape, dtype=arr.dtype)
        comm.Allgather([arr, t], [out, t])
        return out
    moved = np.ascontiguousarray(np.moveaxis(arr, axis, 0))  # rows along `axis` become contiguous blocks
    counts = [int(np.prod(s, dtype=np.int64)) for s, _ in descs]
    flat = np.empty(sum(counts), dtype=arr.dtype)
    comm.Allgatherv([moved, t], [flat, (counts, None), t])
    parts, off = [], 0
    for (shape, _), c in zip(descs, counts):
        m = (shape[axis],) + shape[:axis] + shape[axis + 1 :]
        parts.append(flat[off : off + c].reshape(m))
        off += c
    return np.moveaxis(np.concatenate(parts, axis=0), 0, axis)
