"""Process-wide settings that speed up geocryo's work on the CPU.

XLA gives every run of a compiled computation fresh scratch memory: tens of MiB for a ConvLSTM
training step. glibc's allocator serves blocks that large straight from the operating system and
hands them back when they are freed, so each training step faults all of its scratch pages in
again. On a virtual machine that was a third of the step's time (``benchmarks/bench_train.py``
with ``--system-allocator`` shows it). :func:`tune_allocator` makes glibc keep such blocks for
reuse instead.

The ``geocryo`` command line calls it before it computes anything. In a notebook or script, call
it first, before any JAX computation. Set ``GEOCRYO_TUNE_ALLOCATOR=0`` to keep the C library's
defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["tune_allocator"]

# mallopt(3) parameters of glibc
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator(threshold: int = 256 * 2**20) -> bool:
    """Make glibc reuse freed blocks of up to ``threshold`` bytes instead of returning them.

    Raises glibc's mmap and trim thresholds to ``threshold``. It also keeps every thread in the
    main arena, because a thread's own arena cannot hold a block over 64 MiB. The cost is a
    resident size that may stay up to ``threshold`` above what is in use, and more contention
    between threads that allocate at once.

    Call it before the first JAX computation of the process: threads that XLA has already
    started keep their own arenas.

    Returns
    -------
    bool
        True if the allocator was tuned. False where the C library is not glibc, or where
        ``GEOCRYO_TUNE_ALLOCATOR=0`` is set; nothing is changed then.
    """
    if not 0 < threshold < 2**31:  # mallopt takes a C int
        raise ValueError(f"threshold must be between 1 and 2**31 - 1 bytes, got {threshold}")
    if os.environ.get("GEOCRYO_TUNE_ALLOCATOR", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, threshold), (_M_TRIM_THRESHOLD, threshold))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)
