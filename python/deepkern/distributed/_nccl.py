"""cupy arrays: the same collectives through NCCL (cupy.cuda.nccl), one GPU per rank chosen by
local rank, the communicator bootstrapped over MPI (rank 0's NCCL unique id is broadcast).

NOT RUN ON A GPU YET: the logic (dtype/op tables, device choice, the bootstrap, shapes of the
results) is tested with the cupy stand-in and a fake NCCL under mpiexec; real NCCL is untested."""

import numpy as np

from . import _runtime

_DTYPES = {
    "float16": "NCCL_FLOAT16",
    "float32": "NCCL_FLOAT32",
    "float64": "NCCL_FLOAT64",
    "bfloat16": "NCCL_BFLOAT16",
    "int8": "NCCL_INT8",
    "uint8": "NCCL_UINT8",
    "int32": "NCCL_INT32",
    "uint32": "NCCL_UINT32",
    "int64": "NCCL_INT64",
    "uint64": "NCCL_UINT64",
}
_OPS = {"sum": "NCCL_SUM", "mean": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}


def nccl_module():
    hint = (
        "install NCCL where cupy finds it (e.g. pip install nvidia-nccl-cu13, or python -m "
        "cupyx.tools.install_library --library nccl) or use numpy arrays"
    )
    try:
        from cupy.cuda import nccl
    except ImportError as e:
        raise ImportError(
            f"deepkern.distributed: cupy arrays need NCCL through cupy.cuda.nccl, which failed to import ({e}); {hint}"
        ) from None
    if not getattr(nccl, "available", True):
        raise ImportError(
            f"deepkern.distributed: cupy was built without NCCL (cupy.cuda.nccl.available is False); {hint}"
        )
    return nccl


def ptr(a):
    return a.data.ptr


def nccl_dtype(nccl, dtype, who):
    name = _DTYPES.get(np.dtype(dtype).name if str(dtype) != "bfloat16" else "bfloat16")
    if name is None or not hasattr(nccl, name):
        raise TypeError(f"{who}: 'a' has dtype {dtype}, which NCCL cannot carry; use one of {sorted(_DTYPES)}")
    return getattr(nccl, name)


def pick_device(cupy, local_rank):
    """The GPU this rank drives: its local rank modulo the GPUs it sees (CUDA_VISIBLE_DEVICES may
    already give each rank one GPU, then that one)."""
    n = cupy.cuda.runtime.getDeviceCount()
    if n < 1:
        raise RuntimeError(f"deepkern.distributed: rank {_runtime.rank()} got a cupy array but sees no CUDA device")
    return local_rank % n


class _Group:
    """The NCCL communicator of this job, created on first use (a collective: every rank's first
    cupy collective creates it together)."""

    def __init__(self):
        import cupy

        self.cupy = cupy
        self.nccl = nccl_module()
        comm = _runtime._comm()
        self.device = pick_device(cupy, _runtime.local_rank())
        cupy.cuda.Device(self.device).use()
        uid = self.nccl.get_unique_id() if comm.Get_rank() == 0 else None
        uid = comm.bcast(uid, root=0)
        self.comm = self.nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())
        self.side = None

    def stream(self):
        return self.cupy.cuda.get_current_stream().ptr


def group():
    if _runtime._STATE["nccl"] is None:
        _runtime._STATE["nccl"] = _Group()
    return _runtime._STATE["nccl"]


def _contig(cupy, a):
    return a if a.flags.c_contiguous else cupy.ascontiguousarray(a)


def _check_device(g, a, who):
    dev = getattr(getattr(a, "device", None), "id", g.device)
    if dev != g.device:
        raise ValueError(
            f"{who}: 'a' is on GPU {dev} but rank {_runtime.rank()} drives GPU {g.device} "
            f"(its local rank {_runtime.local_rank()}); create arrays after init() on that device"
        )


def _desc_check(comm, who, desc):
    from .collectives import _same_everywhere

    _same_everywhere(comm, who, desc, "'a' (shape, dtype)")


def all_reduce(a, op):
    who = "all_reduce"
    g = group()
    _check_device(g, a, who)
    _desc_check(_runtime._comm(), who, (tuple(a.shape), a.dtype.str))
    src = _contig(g.cupy, a)
    out = g.cupy.empty_like(src)
    g.comm.allReduce(
        ptr(src), ptr(out), src.size, nccl_dtype(g.nccl, src.dtype, who), getattr(g.nccl, _OPS[op]), g.stream()
    )
    if op == "mean":
        out = out / _runtime.world_size()
    return out


def all_reduce_into(buf, stream_ptr=None):
    """Sum `buf` (a contiguous cupy array) over ranks in place, on `stream_ptr` (DataParallel)."""
    g = group()
    g.comm.allReduce(
        ptr(buf),
        ptr(buf),
        buf.size,
        nccl_dtype(g.nccl, buf.dtype, "all_reduce"),
        g.nccl.NCCL_SUM,
        g.stream() if stream_ptr is None else stream_ptr,
    )


def broadcast(a, root):
    who = "broadcast"
    g = group()
    comm = _runtime._comm()
    me = comm.Get_rank()
    if me == root:
        _check_device(g, a, who)
    desc = comm.bcast((tuple(a.shape), a.dtype.str) if me == root else None, root=root)
    out = _contig(g.cupy, a).copy() if me == root else g.cupy.empty(desc[0], dtype=np.dtype(desc[1]))
    g.comm.bcast(ptr(out), out.size, nccl_dtype(g.nccl, out.dtype, who), root, g.stream())
    return out


def all_gather(a, axis):
    who = "all_gather"
    g = group()
    cupy = g.cupy
    comm = _runtime._comm()
    _check_device(g, a, who)
    src = _contig(cupy, a)
    if axis is not None:
        if not isinstance(axis, (int, np.integer)) or not -src.ndim <= axis < src.ndim:
            raise ValueError(f"{who}: 'axis' must be None or an axis of 'a' (ndim {src.ndim}), got {axis!r}")
        axis = int(axis) % src.ndim
    descs = comm.allgather((tuple(src.shape), src.dtype.str))
    s0, d0 = descs[0]
    rest = (lambda s: s) if axis is None else (lambda s: s[:axis] + s[axis + 1 :])
    for r, (shape, dt) in enumerate(descs):
        if dt != d0 or len(shape) != len(s0) or rest(shape) != rest(s0):
            along = "" if axis is None else f" (apart from axis {axis})"
            raise ValueError(
                f"{who}: 'a' must have the same shape{along} and dtype on every rank, but rank 0 has "
                f"{s0} {np.dtype(d0)} and rank {r} has {shape} {np.dtype(dt)}"
            )
    dt = nccl_dtype(g.nccl, src.dtype, who)
    n = len(descs)
    if axis is None:
        out = cupy.empty((n,) + tuple(src.shape), dtype=src.dtype)
        g.comm.allGather(ptr(src), ptr(out), src.size, dt, g.stream())
        return out
    # NCCL gathers equal counts: pad every rank's block (rows along `axis` first) to the longest
    lens = [shape[axis] for shape, _ in descs]
    moved = cupy.ascontiguousarray(cupy.moveaxis(src, axis, 0))
    row = int(np.prod(moved.shape[1:], dtype=np.int64))
    block = cupy.zeros((max(lens),) + tuple(moved.shape[1:]), dtype=src.dtype)
    block[: lens[comm.Get_rank()]] = moved
    out = cupy.empty((n,) + tuple(block.shape), dtype=src.dtype)
    g.comm.allGather(ptr(block), ptr(out), max(lens) * row, dt, g.stream())
    return cupy.moveaxis(cupy.concatenate([out[r, : lens[r]] for r in range(n)], axis=0), 0, axis)
