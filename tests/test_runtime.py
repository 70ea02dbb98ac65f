"""The C allocator tuning: freed large blocks are reused instead of faulted in again."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys

import pytest

from geocryo.runtime import tune_allocator

GLIBC = (name := ctypes.util.find_library("c")) is not None and hasattr(
    ctypes.CDLL(name), "gnu_get_libc_version"
)

# Page faults of writing a fresh 96 MiB block from malloc (as XLA takes its scratch memory)
# after a block of that size has been freed, in a new process, with or without the tuning, as a
# fraction of the block's pages.
_PROBE = """
import ctypes, ctypes.util, resource, sys
from geocryo.runtime import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tuned" else False
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 96 * 2**20
block = libc.malloc(size)
ctypes.memset(block, 1, size)
libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(size)
ctypes.memset(block, 1, size)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
libc.free(block)
print(tuned, faults / (size / 4096))
"""


def probe(mode: str, **env: str) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout.split()
    return out[0], float(out[1])


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's allocator")
def test_tuned_allocator_reuses_freed_blocks_instead_of_faulting_them_in_again():
    tuned, faulted = probe("tuned")
    assert tuned == "True"
    assert faulted < 0.1  # the freed block came back
    default, faulted = probe("default")
    assert default == "False"
    assert faulted > 0.9  # without it, every page faulted in again


def test_the_tuning_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("GEOCRYO_TUNE_ALLOCATOR", "0")
    assert tune_allocator() is False
    if GLIBC:
        tuned, faulted = probe("tuned", GEOCRYO_TUNE_ALLOCATOR="0")
        assert tuned == "False" and faulted > 0.9


@pytest.mark.parametrize("threshold", [0, 2**31])
def test_a_threshold_outside_a_c_int_is_refused(threshold):
    with pytest.raises(ValueError, match="between 1 and 2\\*\\*31 - 1 bytes"):
        tune_allocator(threshold)
