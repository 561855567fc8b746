"""Output and gradient buffers a layer reuses from step to step instead of allocating them anew.

A big fresh buffer costs a page fault per 4 KiB page the first time it is written (glibc returns
blocks over 32 MiB to the OS on free and maps them again on the next allocation), which can cost
more than the kernel that fills it. A layer therefore keeps the buffers it returned and hands one
out again only when nothing but the workspace refers to it: no array, view, tensor or ctx the
caller (or another layer) still holds. A result the caller kept is never overwritten; while it is
held, the next step gets a fresh buffer. Up to `keep` buffers per name are kept (two covers the
next layer saving this layer's output for its backward until its own next forward).
"""

import sys

from .._backend import POISON


def _free_refcount():
    probe = [object()]
    return sys.getrefcount(probe[0])


_FREE = _free_refcount()  # getrefcount of a list slot nothing else refers to (interpreter-specific)


class Workspace:
    def __init__(self, keep=2):
        self._keep = keep
        self._bufs = {}

    def get(self, name, xp, shape, dtype):
        """A C-contiguous xp array of `shape` and `dtype`: a kept one nobody else holds, else a new one."""
        shape = tuple(map(int, shape))
        bufs = self._bufs.setdefault(name, [])
        for i in range(len(bufs)):
            if (
                type(bufs[i]) is xp.ndarray
                and bufs[i].shape == shape
                and bufs[i].dtype == dtype
                and sys.getrefcount(bufs[i]) == _FREE
            ):
                buf = bufs[i]
                break
        else:
            buf = xp.empty(shape, dtype)
            bufs.append(buf)
            if len(bufs) > self._keep:
                del bufs[0]
        if POISON:  # as backend.empty does under the tests
            buf.fill(-1 if buf.dtype.kind in "iu" else float("nan"))
        return buf

    def clear(self):
        self._bufs.clear()
