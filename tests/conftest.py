"""Shared fixtures: a small synthetic Alaska, and the numpy / dask backends to run it on."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import xarray as xr

from geocryo import synthetic


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
    return synthetic.alaska(ny=12, nx=10, start="2000-01", end="2002-12", seed=3, n_sites=6)


@pytest.fixture(params=["numpy", "dask"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Run a test once on loaded (numpy) and once on lazy (dask) data: ``backend(ds)``."""
    return Backend(request.param)
