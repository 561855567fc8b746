"""A fake cupy.cuda.nccl for the NCCL path's logic under mpiexec, on the cupy stand-in: it checks
the arguments deepkern passes (counts, NCCL dtype codes, ops, the bootstrap's unique id) and does
the collective with MPI on host copies. It proves nothing about real NCCL or a GPU."""

import os

import numpy as np
from mpi4py import MPI

_NAMES = [
    "NCCL_INT8",
    "NCCL_UINT8",
    "NCCL_INT32",
    "NCCL_UINT32",
    "NCCL_INT64",
    "NCCL_UINT64",
    "NCCL_FLOAT16",
    "NCCL_FLOAT32",
    "NCCL_FLOAT64",
    "NCCL_BFLOAT16",
]
_NP = {
    "NCCL_INT8": "int8",
    "NCCL_UINT8": "uint8",
    "NCCL_INT32": "int32",
    "NCCL_UINT32": "uint32",
    "NCCL_INT64": "int64",
    "NCCL_UINT64": "uint64",
    "NCCL_FLOAT16": "float16",
    "NCCL_FLOAT32": "float32",
    "NCCL_FLOAT64": "float64",
}


class FakeNccl:
    NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN = 0, 1, 2, 3

    def __init__(self):
        for i, n in enumerate(_NAMES):
            setattr(self, n, 100 + i)
        self.codes = {100 + i: _NP.get(n) for i, n in enumerate(_NAMES)}
        self.reg, self.communicators, self.unique_ids = {}, 0, 0

    def ptr(self, a):
        key = 1 + len(self.reg)
        self.reg[key] = a
        return key

    def get_unique_id(self):
        self.unique_ids += 1
        return (7, 7, os.getpid())  # differs between ranks: only rank 0's may be used

    def NcclCommunicator(self, ndev, uid, rank):
        comm = MPI.COMM_WORLD
        assert ndev == comm.Get_size() and rank == comm.Get_rank(), (ndev, rank)
        uids = comm.allgather(uid)
        assert all(u == uids[0] for u in uids), f"ranks joined with different unique ids {uids}"
        assert self.unique_ids == (1 if rank == 0 else 0), "only rank 0 creates the unique id"
        self.communicators += 1
        return _Comm(self)


class _Comm:
    def __init__(self, fake):
        self.f = fake
        self.mpi = MPI.COMM_WORLD

    def _host(self, key, count, dtype):
        a = self.f.reg[key]
        assert a.flags.c_contiguous and a.size == count, (a.shape, count)
        assert self.f.codes[dtype] == a.dtype.name, (self.f.codes[dtype], a.dtype)
        return a.get().reshape(-1)

    def allReduce(self, send, recv, count, dtype, op, stream):
        h = self._host(send, count, dtype)
        out = np.empty_like(h)
        mop = {0: MPI.SUM, 2: MPI.MAX, 3: MPI.MIN}[op]
        self.mpi.Allreduce(h, out, op=mop)
        self.f.reg[recv].set(out.reshape(self.f.reg[recv].shape))

    def bcast(self, buf, count, dtype, root, stream):
        h = self._host(buf, count, dtype)
        self.mpi.Bcast(h, root=root)
        self.f.reg[buf].set(h.reshape(self.f.reg[buf].shape))

    def allGather(self, send, recv, count, dtype, stream):
        h = self._host(send, count, dtype)
        out = np.empty(count * self.mpi.Get_size(), dtype=h.dtype)
        self.mpi.Allgather(h, out)
        r = self.f.reg[recv]
        assert r.size == out.size, (r.shape, out.size)
        r.set(out.reshape(r.shape))
