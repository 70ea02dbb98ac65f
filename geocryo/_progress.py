"""Progress bars for dask computations: one look wherever geocryo computes a graph."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["dask_progress"]


@contextlib.contextmanager
def dask_progress(enabled: bool, desc: str) -> Iterator[None]:
    """A tqdm bar over the dask tasks computed inside the block (on the local scheduler)."""
    if not enabled:
        yield
        return
    from tqdm.dask import TqdmCallback

    with TqdmCallback(desc=desc, unit="task", mininterval=0.5, leave=False):
        yield
