"""Shared fixtures: small synthetic Alaskas (the named worlds of worlds.py), the numpy / dask
backends to run them on, and checks that code stays lazy (no dask graph computed, no task run)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import dask
import pytest
import xarray as xr
from dask.callbacks import Callback
from worlds import world


@dataclass(frozen=True)
class Backend:
    """How a test holds its data: ``"numpy"`` (loaded into memory) or ``"dask"`` (lazy).

    Call it on a dataset to get a copy on this backend: loaded, or dask-backed (lazy variables
    keep their graph and chunks, loaded ones become one chunk each). The input is never
    modified, so it is safe on module-scoped fixtures.
    """

    name: str

    @property
    def lazy(self) -> bool:
        """Whether variables stay dask-backed."""
        return self.name == "dask"

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        return ds.chunk() if self.lazy else ds.compute()

    def __str__(self) -> str:
        return self.name


@pytest.fixture(scope="module")
def small_cube() -> tuple[xr.Dataset, xr.Dataset]:
    """``(cube, truth)`` of a 12 x 10 synthetic Alaska over 2000-2002 with 6 sites, lazy.

    Shared by the tests of a module: copy before changing it (``backend(cube)``, ``.copy()``).
    """
    return world("small", load=False)


@pytest.fixture(params=["numpy", "dask"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Run a test once on loaded (numpy) and once on lazy (dask) data: ``backend(ds)``."""
    return Backend(request.param)


@contextmanager
def _no_compute() -> Iterator[None]:
    def scheduler(dsk, keys, **kwargs):
        raise AssertionError("a dask graph was computed")

    with dask.config.set(scheduler=scheduler):
        yield


@pytest.fixture
def no_compute() -> Callable[[], AbstractContextManager[None]]:
    """A context manager factory: anything computed inside the block fails the test."""
    return _no_compute


class TaskCounter(Callback):
    """Counts the dask tasks run while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _pretask(self, key, dsk, state) -> None:
        self.count += 1


@pytest.fixture
def task_counter() -> TaskCounter:
    """A fresh :class:`TaskCounter`; use it as ``with task_counter: ...``."""
    return TaskCounter()


@pytest.fixture(scope="session")
def tiny_world() -> tuple[xr.Dataset, xr.Dataset]:
    """An 8 x 8 synthetic Alaska over 2000-2003 with 20 sites, loaded: (cube, truth)."""
    return world("tiny")


@pytest.fixture(scope="session")
def tiny_periods(tiny_world):
    """A 50/25/25 split of :func:`tiny_world` for a look-back of 4 months."""
    from geocryo.preprocess import TimeSplit

    return TimeSplit(0.5, 0.25, 0.25, gap=2).periods(tiny_world[0].time, lookback=4)
