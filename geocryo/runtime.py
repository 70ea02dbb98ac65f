"""Process-wide settings that speed up geocryo's work on the CPU.

XLA gives every run of a compiled computation fresh scratch memory: tens of MiB for a ConvLSTM
training step. glibc's allocator serves blocks that large straight from the operating system and
hands them back when they are freed, so each training step faults all of its scratch pages in
again. On a virtual machine that was a third of the step's time (``benchmarks/bench_train.py``
with ``--system-allocator`` shows it). :func:`tune_allocator` makes glibc keep such blocks for
reuse instead.

A multimodal training step can need more scratch memory than any threshold glibc accepts (GiBs
at batch 32 with several members). While :func:`keep_freed_memory` is active, as it is around
:meth:`geocryo.train.Trainer.fit` and :meth:`geocryo.Forecaster.predict`, glibc serves every
block from its heap and returns nothing to the operating system; when it ends, the freed memory
goes back.

The ``geocryo`` command line calls :func:`tune_allocator` before it computes anything. In a
notebook or script, call it first, before any JAX computation. Set ``GEOCRYO_TUNE_ALLOCATOR=0``
to keep the C library's defaults.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator

__all__ = ["keep_freed_memory", "tune_allocator"]

# mallopt(3) parameters of glibc, and its default M_MMAP_MAX
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_DEFAULT_MMAP_MAX = 65536

_lock = threading.Lock()
_tuned: int | None = None  # the threshold tune_allocator set, once it has
_holders = 0  # keep_freed_memory blocks active now


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not all(hasattr(libc, f) for f in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None
    return libc


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
    global _tuned
    if os.environ.get("GEOCRYO_TUNE_ALLOCATOR", "1") == "0":
        return False
    libc = _glibc()
    if libc is None:
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, threshold), (_M_TRIM_THRESHOLD, threshold))
    with _lock:
        ok = all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)
        if ok:
            _tuned = threshold
            if _holders:
                _retain(libc)
    return ok


def _retain(libc: ctypes.CDLL) -> None:
    libc.mallopt(_M_MMAP_MAX, 0)  # every block from the heap ...
    libc.mallopt(_M_TRIM_THRESHOLD, -1)  # ... and none of it returned


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Within the block, freed memory of any size is kept for reuse; afterwards it is returned.

    For loops that run one compiled computation many times, such as training steps: XLA's
    scratch memory, however large, is then faulted in by the first step only. The process's
    resident size stays at its peak until the block ends, when glibc gives back what is free
    (``malloc_trim``). Blocks may nest and run in several threads; the last to end restores
    :func:`tune_allocator`'s thresholds.

    It acts only after :func:`tune_allocator` has tuned the allocator (which keeps every thread
    in one arena: a thread's own arena would still map large blocks afresh), and yields whether
    it does.
    """
    global _holders
    libc = _glibc()
    with _lock:
        active = libc is not None and _tuned is not None
        _holders += 1
        if active and _holders == 1:
            _retain(libc)
    try:
        yield active
    finally:
        with _lock:
            _holders -= 1
            if libc is not None and _holders == 0 and _tuned is not None:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, _tuned)
                libc.malloc_trim(0)
