"""Arrays that sit right against an inaccessible page, so a kernel that reads even one element
past the end (or before the start) of its input dies with SIGSEGV instead of reading garbage.
A plain build then catches what otherwise only AddressSanitizer sees (tools/sanitize.sh).
Linux/POSIX only (mmap + mprotect through ctypes)."""

import ctypes
import mmap

import numpy as np

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_KEEP = []  # the mappings stay alive as long as the process (arrays view them)


def guarded(values, where="end"):
    """A copy of `values` (C-contiguous) whose last byte is followed by a PROT_NONE page
    (where="end") or whose first byte follows one (where="start")."""
    values = np.ascontiguousarray(values)
    nbytes = values.nbytes
    data_pages = max(1, (nbytes + PAGE - 1) // PAGE)
    m = mmap.mmap(-1, (data_pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    for page in (0, data_pages + 1):  # a guard page on each side of the data pages
        if _libc.mprotect(base + page * PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
    offset = PAGE if where == "start" else (data_pages + 1) * PAGE - nbytes
    a = np.frombuffer(m, dtype=values.dtype, count=values.size, offset=offset).reshape(values.shape)
    a[...] = values
    _KEEP.append(m)
    return a
