"""Process-wide allocator setting for the command-line jobs."""
from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the system (``False`` elsewhere).

    By default glibc serves every block above 32 MiB by a fresh ``mmap`` and unmaps it on free, so each
    training step page-faults its large tensors in again. For LieConv's per-edge tensors that fault
    time dominated on this project's machine: an SE(2) RotMNIST training step took 3.54 s instead of
    1.97 s, an evaluation forward 27.2 s instead of 7.0 s. The cost is a resident size that stays at
    its peak until the process ends, the right trade for a training or evaluation job; the library
    itself never calls this.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # -1 disables trimming (mallopt(3)); both calls return 1 on success
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
