"""DataParallel: one model replica per rank, each computing the gradient of its shard of every
global batch; gradients are summed over ranks in buckets, each bucket's non-blocking all-reduce
started as soon as the backward has produced all of its gradients (so it overlaps the rest of the
backward) and waited for before the optimizer step.

Exactness: each rank's loss is the mean over its b_r samples of a global batch of B; its gradients
are scaled by b_r / B before the sum, so the sum is the mean gradient over the whole batch, the
gradient one process would compute (uneven shards included; a rank with no sample adds zeros).
Parameters start equal (broadcast from rank 0) and every rank applies the same summed gradient
with the same optimizer, so parameters and optimizer state stay identical on every rank."""

import json
import zlib

import numpy as np

from .._backend import is_cupy_array
from . import _runtime


def bounds(n, r, size):
    """[lo, hi) of rank r's contiguous share of n items: sizes differ by at most one, the first
    n % size ranks get one more."""
    q, extra = divmod(int(n), int(size))
    lo = r * q + min(r, extra)
    return lo, lo + q + (1 if r < extra else 0)


def shard(batch, rank=None, world_size=None):
    """This rank's contiguous part of a global batch (any sliceable: an index array, x[idx], ...)."""
    r = _runtime.rank() if rank is None else int(rank)
    n = _runtime.world_size() if world_size is None else int(world_size)
    lo, hi = bounds(len(batch), r, n)
    return batch[lo:hi]


def model_fingerprint(model):
    """What must agree between ranks: layer types (for a container) and every parameter's name,
    shape and dtype, as a JSON-able list."""
    layers = [type(layer).__name__ for layer in getattr(model, "layers", [])]
    params = [
        [n, list(map(int, p.value.shape)), str(p.value.dtype), "cuda" if is_cupy_array(p.value) else "cpu"]
        for n, p in model.named_parameters()
    ]
    return {"class": type(model).__name__, "layers": layers, "parameters": params}


def check_same_everywhere(comm, what, value):
    """Raise the same ValueError on every rank when `value` (JSON-able) differs between ranks,
    naming the first rank that differs from rank 0 and the first difference."""
    text = json.dumps(value, sort_keys=True)
    crcs = comm.allgather(zlib.crc32(text.encode()))
    bad = [r for r, c in enumerate(crcs) if c != crcs[0]]
    if not bad:
        return
    texts = comm.allgather(text)  # only on failure: the full descriptions, to say what differs
    mine, other = json.loads(texts[0]), json.loads(texts[bad[0]])
    raise ValueError(
        f"deepkern.distributed: {what} differs between ranks: rank 0 has "
        f"{_first_difference(mine, other)[0]} but rank {bad[0]} has {_first_difference(mine, other)[1]} "
        f"(ranks that differ from rank 0: {bad}); every rank must build the same model and "
        "call with the same arguments"
    )


def _first_difference(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                x, y = _first_difference(a.get(k), b.get(k))
                return f"{k}: {x}", f"{k}: {y}"
    if isinstance(a, list) and isinstance(b, list) and a + b and all(isinstance(e, (list, dict)) for e in a + b):
        for x, y in zip(a, b):  # a list of entries (parameters): name the whole differing entry
            if x != y:
                return _first_difference(x, y)
        if len(a) != len(b):
            return f"{len(a)} entries", f"{len(b)} entries"
    return repr(a), repr(b)


class _Bucket:
    __slots__ = ("params", "ready", "sizes", "total", "buf", "req", "xp")

    def __init__(self, ready):
        self.params, self.ready, self.sizes, self.total = [], ready, [], 0
        self.buf = self.req = self.xp = None


class DataParallel:
    """DataParallel(model, bucket_mb=1.0): wrap a model for a custom training loop.

        dp = dist.DataParallel(model)            # init(), same model everywhere, rank 0's parameters
        for idx in global_batches:               # the same indices on every rank
            mine = dp.shard(idx)                 # this rank's part (records its weight len(mine)/len(idx))
            model.zero_grad()
            if len(mine):
                out = model.forward(x[mine]); loss.forward(out, y[mine])
                dp.backward(loss.backward())     # backward + bucketed all-reduce, overlapped
            else:
                dp.sync_gradients()              # a rank without samples still takes part (adds zeros)
            opt.step()                           # the same step on every rank

    The loss must be a mean over the samples of the batch (as deepkern's losses are).
    With a Sequential the all-reduce of a bucket starts right after the backward of the layer
    that completes it; any other model is reduced after its whole backward."""

    def __init__(self, model, bucket_mb=1.0, broadcast_parameters=True, extra=None):
        if not _runtime.is_initialized():
            _runtime.init()
        if not (float(bucket_mb) > 0):
            raise ValueError(f"DataParallel: 'bucket_mb' must be > 0, got {bucket_mb!r}")
        self.model = model
        self.comm = _runtime._comm()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        fp = model_fingerprint(model)
        check_same_everywhere(self.comm, "the model (layers, parameter names, shapes, dtypes, devices)", fp)
        if extra is not None:
            check_same_everywhere(self.comm, "a training argument", extra)
        self.params = model.parameters()
        if broadcast_parameters:
            self.broadcast_parameters()
        self.weight = 1.0 / self.size
        self._buckets = self._make_buckets(int(float(bucket_mb) * (1 << 20)))
        self._next = 0
        self._pending = []

    # -- setup ------------------------------------------------------------------------------
    def broadcast_parameters(self, root=0):
        """Copy rank `root`'s parameter values into every rank's model (in place)."""
        for p in self.params:
            if is_cupy_array(p.value):
                from . import _nccl

                g = _nccl.group()
                v = p.value if p.value.flags.c_contiguous else g.cupy.ascontiguousarray(p.value)
                g.comm.bcast(_nccl.ptr(v), v.size, _nccl.nccl_dtype(g.nccl, v.dtype, "broadcast"), root, g.stream())
                if v is not p.value:
                    p.value[...] = v
            else:
                from .collectives import mpi_type

                v = p.value if p.value.flags.c_contiguous else np.ascontiguousarray(p.value)
                self.comm.Bcast([v, mpi_type(v.dtype, "DataParallel")], root=root)
                if v is not p.value:
                    p.value[...] = v

    def _make_buckets(self, cap):
        layers = getattr(self.model, "layers", None)
        ready = {}
        if layers is not None:
            for i, layer in enumerate(layers):
                for p in layer.parameters():
                    ready.setdefault(id(p), i)  # the first layer holding it finishes last in backward
        order = sorted(range(len(self.params)), key=lambda j: -ready.get(id(self.params[j]), -1))
        buckets, cur = [], None
        for j in order:
            p = self.params[j]
            r = ready.get(id(p), -1)
            key = (p.value.dtype, is_cupy_array(p.value))
            if cur is None or cur.xp != key or cur.total * p.value.dtype.itemsize >= cap:
                cur = _Bucket(r)
                cur.xp = key
                buckets.append(cur)
            cur.params.append(p)
            cur.sizes.append(int(p.value.size))
            cur.total += int(p.value.size)
            cur.ready = r
        return buckets

    # -- per step ---------------------------------------------------------------------------
    def shard(self, batch):
        """This rank's part of the global batch `batch`; sets the gradient weight len(part)/len(batch)."""
        lo, hi = bounds(len(batch), self.rank, self.size)
        self.weight = (hi - lo) / max(len(batch), 1)
        return batch[lo:hi]

    def backward(self, dy, weight=None):
        """model backward of dy (the gradient of this rank's mean loss), with each bucket's
        all-reduce started as its gradients are complete; returns when the summed, weighted
        gradients are in every parameter's .grad. weight: this rank's share of the global batch
        (default: from the last shard())."""
        self._begin(weight)
        model = self.model
        if getattr(model, "layers", None) is not None and hasattr(model, "_backward_for_training"):
            model._grad_ready_hook = self._layer_done
            try:
                model._backward_for_training(dy)
            finally:
                del model._grad_ready_hook
        else:
            model.backward(dy)
        self._finish()

    def sync_gradients(self, weight=None):
        """Sum the weighted .grad of every parameter over ranks (after a backward done without
        DataParallel.backward, or with no backward at all on a rank whose shard is empty)."""
        self._begin(weight)
        self._finish()

    def _begin(self, weight):
        w = self.weight if weight is None else float(weight)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"DataParallel: 'weight' must lie in [0, 1], got {weight!r}")
        self._w = w
        self._next = 0
        self._pending = []

    def _layer_done(self, i):
        b = self._buckets
        while self._next < len(b) and b[self._next].ready >= i:
            self._launch(b[self._next])
            self._next += 1
        if self._pending:
            from mpi4py import MPI

            MPI.Request.Testall(self._pending)  # lets MPI move the started reductions along

    def _finish(self):
        for b in self._buckets[self._next :]:
            self._launch(b)
        self._next = len(self._buckets)
        if self._pending:
            from mpi4py import MPI

            MPI.Request.Waitall(self._pending)
        for b in self._buckets:
            if b.xp[1]:
                from . import _nccl

                _nccl.group().cupy.cuda.get_current_stream().wait_event(b.req)
            self._unpack(b)
        self._pending = []

    def _launch(self, b):
        gpu = b.xp[1]
        if b.buf is None:
            n = b.total + len(b.params)  # the gradients, then one has-a-gradient flag per parameter
            if gpu:
                from . import _nccl

                b.buf = _nccl.group().cupy.empty(n, dtype=b.xp[0])
            else:
                b.buf = np.empty(n, dtype=b.xp[0])
        buf, w, off = b.buf, self._w, 0
        flags = buf[b.total :]
        for k, (p, n) in enumerate(zip(b.params, b.sizes)):
            slot = buf[off : off + n]
            g = p.grad
            if g is None:
                slot.fill(0)
                flags[k] = 0
            else:
                if gpu:
                    slot[...] = g.reshape(-1) * w
                else:
                    np.multiply(g.reshape(-1), w, out=slot)
                flags[k] = 1
            off += n
        if gpu:
            self._launch_gpu(b)
        else:
            from mpi4py import MPI

            from .collectives import mpi_type

            b.req = self.comm.Iallreduce(MPI.IN_PLACE, [buf, mpi_type(buf.dtype, "DataParallel")], op=MPI.SUM)
            self._pending.append(b.req)

    def _launch_gpu(self, b):
        # NOT RUN ON A GPU YET: NCCL on a side stream that waits for the packing on the current one
        from . import _nccl

        g = _nccl.group()
        cuda = g.cupy.cuda
        if g.side is None:
            g.side = cuda.Stream(non_blocking=True)
        packed = cuda.Event()
        packed.record()
        g.side.wait_event(packed)
        _nccl.all_reduce_into(b.buf, g.side.ptr)
        b.req = cuda.Event()
        b.req.record(g.side)

    def _unpack(self, b):
        buf, off = b.buf, 0
        flags = buf[b.total :]
        has = flags.get() if b.xp[1] else flags
        for k, (p, n) in enumerate(zip(b.params, b.sizes)):
            # a parameter no rank produced a gradient for stays without one (optimizers skip it)
            p.grad = buf[off : off + n].reshape(p.value.shape) if has[k] > 0 else None
            off += n

    # -- agreement helpers (fit uses them) ---------------------------------------------------------
    def sum_floats(self, *values):
        """The sums over ranks of a few Python numbers (float64), as a tuple."""
        from mpi4py import MPI

        a = np.array(values, dtype=np.float64)
        out = np.empty_like(a)
        self.comm.Allreduce([a, MPI.DOUBLE], [out, MPI.DOUBLE], op=MPI.SUM)
        return tuple(float(v) for v in out)

    def from_root(self, value):
        """Rank 0's value of a small Python object, on every rank."""
        return self.comm.bcast(value, root=0)


def local_part(a):
    """shard() for whole datasets (evaluate): this rank's contiguous part of `a`."""
    if not _runtime.is_initialized():
        _runtime.init()
    return shard(a)


def sum_over_ranks(*values):
    """Sums over ranks of a few Python numbers, as floats."""
    from mpi4py import MPI

    a = np.array(values, dtype=np.float64)
    out = np.empty_like(a)
    _runtime._comm().Allreduce([a, MPI.DOUBLE], [out, MPI.DOUBLE], op=MPI.SUM)
    return tuple(float(v) for v in out)
