"""The small synthetic Alaskas the tests run on, by name: :data:`WORLDS` and :func:`world`.

Each :class:`World` names the :func:`geocryo.synthetic.alaska` arguments of one world and says
what it is for. ``world(name)`` returns its ``(cube, truth)``:

* ``world(name)`` -- loaded (numpy-backed) datasets, computed afresh on each call: the caller
  owns them and may change them.
* ``world(name, load=False)`` -- the lazy (dask-backed) pair, built once per name and session
  (the graph, not the values, is cached); each call returns shallow copies, so adding, dropping
  or re-assigning variables or attributes does not reach other tests.

A world used by several tests is best held by a module- or session-scoped fixture (conftest.py
exposes ``small_cube``, ``tiny_world`` and ``tiny_periods``). Two tests wanting the same world
share its entry; one wanting another size, period, seed or number of sites adds an entry here,
so that the same arguments are never spelled out twice. Tests of the generator itself (in
test_synthetic.py: chunking, seeds, periods, argument errors) call ``alaska`` directly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import dask
import xarray as xr

from geocryo import synthetic


@dataclass(frozen=True)
class World:
    """One synthetic Alaska: its name, what it is for, and its ``alaska()`` arguments."""

    name: str
    purpose: str
    ny: int
    nx: int
    start: str
    end: str
    seed: int
    n_sites: int

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`geocryo.synthetic.alaska` that build this world."""
        return {
            "ny": self.ny,
            "nx": self.nx,
            "start": self.start,
            "end": self.end,
            "seed": self.seed,
            "n_sites": self.n_sites,
        }


_ALL = (
    World(
        "tiny",
        "The conftest's tiny_world (loaded, per session) and tiny_periods: the scoring "
        "(test_evaluate.py) and plotting tests on 8 x 8 cells and 48 months with 20 sites.",
        ny=8, nx=8, start="2000-01", end="2003-12", seed=0, n_sites=20,
    ),
    World(
        "tune",
        "test_tune.py: geocryo.tune's cube (loaded). 48 months, so that a look-back of 12 "
        "leaves the validation part without a window; an 8 x 8 grid holds only 8-cell patches.",
        ny=8, nx=8, start="2000-01", end="2003-12", seed=0, n_sites=40,
    ),
    World(
        "small",
        "The conftest's small_cube (lazy, per module): a non-square 12 x 10 grid over three "
        "years with 6 sites, for the baseline, batching, cube, io and metrics tests.",
        ny=12, nx=10, start="2000-01", end="2002-12", seed=3, n_sites=6,
    ),
    World(
        "two_years",
        "test_catalog.py's data directory (written to Zarr) and test_readers.py's cube that "
        "the CALM reader fills (both lazy).",
        ny=8, nx=8, start="2000-01", end="2001-12", seed=0, n_sites=40,
    ),
    World(
        "four_years",
        "test_synthetic.py: the lazy cube whose layout, variables and modalities are checked; "
        "test_atomic.py: the tiny model saved and killed mid-save (loaded).",
        ny=16, nx=16, start="2000-01", end="2003-12", seed=0, n_sites=40,
    ),
    World(
        "five_years",
        "test_scaling.py: the lazy cube written to a Zarr store in small chunks and "
        "preprocessed on a local cluster.",
        ny=16, nx=16, start="2000-01", end="2004-12", seed=5, n_sites=12,
    ),
    World(
        "six_years",
        "test_forecaster.py: the loaded cube geocryo.fit trains on (two 8 x 8 patches a side).",
        ny=16, nx=16, start="2000-01", end="2005-12", seed=0, n_sites=20,
    ),
    World(
        "six_years_seed2",
        "test_accessor.py: the loaded pair fitted, predicted and scored through ds.geocryo; "
        "six_years with another seed.",
        ny=16, nx=16, start="2000-01", end="2005-12", seed=2, n_sites=20,
    ),
    World(
        "twenty_years",
        "test_preprocess.py: a loaded, warming 240-month record for the default time split "
        "(training before SMAP and the SAR campaigns) and detrending.",
        ny=8, nx=8, start="2000-01", end="2019-12", seed=1, n_sites=6,
    ),
    World(
        "three_decades",
        "test_synthetic.py: thirty years on a coarse grid, loaded, for the physics in numbers.",
        ny=24, nx=24, start="1990-01", end="2019-12", seed=0, n_sites=30,
    ),
    World(
        "wide",
        "test_tune.py: a lazy 16 x 20 grid over one year, wide enough for 8- and 16-cell "
        "patches in the default search space.",
        ny=16, nx=20, start="2000-01", end="2000-12", seed=0, n_sites=40,
    ),
    World(
        "mosaic",
        "test_scaling.py: a lazy 64 x 64 hyperspectral mosaic over one year, large enough that "
        "a threaded BLAS product would split its sums.",
        ny=64, nx=64, start="2000-01", end="2000-12", seed=7, n_sites=40,
    ),
)  # fmt: skip

#: The named worlds.
WORLDS: dict[str, World] = {w.name: w for w in _ALL}


@functools.cache
def _lazy(name: str) -> tuple[xr.Dataset, xr.Dataset]:
    try:
        spec = WORLDS[name]
    except KeyError:
        raise KeyError(f"no world {name!r}; the worlds are {sorted(WORLDS)}") from None
    return synthetic.alaska(**spec.kwargs)


def world(name: str, *, load: bool = True) -> tuple[xr.Dataset, xr.Dataset]:
    """``(cube, truth)`` of the world called ``name`` (see :data:`WORLDS`).

    Loaded and new on each call with ``load=True`` (the default); with ``load=False``, lazy:
    shallow copies of the dask-backed pair built once per name.
    """
    cube, truth = _lazy(name)
    if load:
        return dask.compute(cube, truth)
    return cube.copy(), truth.copy()
