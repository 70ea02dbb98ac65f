"""A physically grounded synthetic Alaska: the embedded default cube, and its complete truth.

:func:`alaska` builds a lazy multimodal cube over EPSG:3338 on a monthly axis, with the target
fields that produced it. The world runs on the literature physics of
:mod:`geocryo.synthetic.physics` (the science page of the docs gives the formulas and their
sources): a north-south climate gradient from boreal forest to tundra with a warming trend and
spatially coherent anomalies; snow, soils (peat and mineral) and wetlands; thaw depth from the
Stefan solution on thawing degree days with autumn freeze-back through a zero curtain; CH4 and
CO2 fluxes from Q10 responses, wetness and light. Observation operators turn it into what
scientists hold: sparse in situ sites with gaps and noise, remote sensing with clouds, snow,
polar night, mission dates and campaign swaths, and process-model fields that are complete but
biased and smooth.

Every chunk is computed on its own from the seed and the cell and month it covers, so values are
identical whatever the chunking, and a full-size cube streams to disk one chunk at a time.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from functools import partial

import dask.array as da
import jax
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .. import grid as _grid
from . import evolution, landscape
from .landscape import ORIGIN_YEAR, Landscape, stream_key
from .observations import (
    CAMPAIGNS,
    MISSIONS,
    OBSERVATION_ERROR,
    Sites,
    absolute_month,
    campaign_lines,
    draw_sites,
    in_situ,
    uavsar,
)
from .physics import toa_insolation

__all__ = ["CAMPAIGNS", "MISSIONS", "VARIABLES", "alaska"]

#: Variable metadata: (long_name, units, modality, source, standard_name or None).
VARIABLES: dict[str, tuple[str, str, str, str, str | None]] = {
    "alt": (
        "thaw depth (active layer thickness at its yearly maximum)",
        "cm",
        "in_situ",
        "CALM / GTN-P sites",
        None,
    ),
    "ch4_flux": (
        "surface CH4 flux, positive upward",
        "nmol m-2 s-1",
        "in_situ",
        "flux towers",
        None,
    ),
    "co2_flux": (
        "net ecosystem CO2 exchange, positive upward",
        "umol m-2 s-1",
        "in_situ",
        "flux towers",
        None,
    ),
    "lst": (
        "land surface temperature, monthly clear-sky composite",
        "K",
        "remote_sensing",
        "MODIS",
        "surface_temperature",
    ),
    "ndvi": ("normalized difference vegetation index", "1", "remote_sensing", "MODIS", None),
    "soil_moisture": (
        "surface soil moisture",
        "m3 m-3",
        "remote_sensing",
        "SMAP",
        "volume_fraction_of_condensed_water_in_soil",
    ),
    "sar_alt": (
        "active layer thickness retrieved from P-band SAR",
        "cm",
        "remote_sensing",
        "UAVSAR",
        None,
    ),
    "hyperspectral_reflectance": (
        "surface reflectance, summer campaign mosaic",
        "1",
        "remote_sensing",
        "AVIRIS-NG",
        "surface_albedo",
    ),
    "sibbork_alt": ("simulated thaw depth", "cm", "process_model", "SIBBORK-TTE", None),
    "tcfm_ch4_flux": (
        "simulated surface CH4 flux",
        "nmol m-2 s-1",
        "process_model",
        "TCFM-Arctic",
        None,
    ),
    "tcfm_co2_flux": (
        "simulated net ecosystem CO2 exchange",
        "umol m-2 s-1",
        "process_model",
        "TCFM-Arctic",
        None,
    ),
    "air_temperature": (
        "2 m air temperature, monthly mean",
        "degC",
        "forcing",
        "reanalysis",
        "air_temperature",
    ),
    "precipitation": ("monthly precipitation", "mm month-1", "forcing", "reanalysis", None),
    "snow_depth": (
        "snow depth, end of month",
        "m",
        "forcing",
        "reanalysis",
        "surface_snow_thickness",
    ),
    "shortwave_radiation": (
        "downwelling shortwave radiation, monthly mean",
        "W m-2",
        "forcing",
        "reanalysis",
        "surface_downwelling_shortwave_flux_in_air",
    ),
    "elevation": ("surface elevation", "m", "static", "DEM", "surface_altitude"),
    "wetland_fraction": ("wetland fraction of the cell", "1", "static", "wetland map", None),
    "soil_organic_carbon": (
        "soil organic carbon, 0-1 m",
        "kg m-2",
        "static",
        "soil carbon map",
        None,
    ),
}

_TIME_VARS = [name for name in VARIABLES if VARIABLES[name][2] not in ("static",)]
_TIME_VARS.remove("hyperspectral_reflectance")
_STATIC_VARS = ["elevation", "wetland_fraction", "soil_organic_carbon"]
_TRUTH = ("alt", "ch4_flux", "co2_flux")


@dataclass(frozen=True)
class _World:
    """Everything small that the chunks share; built eagerly from the seed."""

    seed: int
    land: Landscape
    y: np.ndarray
    x: np.ndarray
    months: np.ndarray  # absolute month index of each cube time step
    sites: Sites
    campaigns: dict[int, np.ndarray] = field(default_factory=dict)  # month -> swath lines


def _calendar(months: np.ndarray) -> dict[str, np.ndarray]:
    start = np.datetime64(f"{ORIGIN_YEAR}-01", "M") + months.astype("timedelta64[M]")
    first_day = start.astype("datetime64[D]")
    days = ((start + 1).astype("datetime64[D]") - first_day).astype(np.float32)
    new_year = start.astype("datetime64[Y]").astype("datetime64[D]")
    day_of_year = (first_day - new_year).astype(np.float32) + 1
    return {
        "months": months.astype(np.int32),
        "days": days,
        "mid_doy": (day_of_year + days / 2.0 - 0.5).astype(np.float32),
        "years": (ORIGIN_YEAR + months / 12.0).astype(np.float32),
    }


#: Side of the tiles (cells) the evolution runs on, within a block.
_TILE = 64


def _bucket(n: int) -> int:
    """The padded size of a tile side: the power of two from 8 up that holds ``n``."""
    return max(8, 1 << (n - 1).bit_length())


def _tile(values: np.ndarray, cells: tuple, pad: list) -> np.ndarray:
    """Cells ``ty:ty+tny, tx:tx+tnx`` of ``values`` (..., y, x), edge-padded by ``pad``."""
    ty, tx, tny, tnx = cells
    part = values[..., ty : ty + tny, tx : tx + tnx]
    if not any(after for _, after in pad):
        return part
    return np.pad(part, [(0, 0)] * (values.ndim - 2) + pad, mode="edge")


# Mid-month day of year of a common year: insolation depends on the calendar month alone.
_MID_MONTH = np.array([16, 45.5, 75, 105.5, 136, 166.5, 197, 228, 258.5, 289, 319.5, 350])


_WEATHER = ("temperature", "precipitation", "cloud", "reanalysis")


def _surface(world: _World, y0: int, y1: int, x0: int, x1: int) -> dict:
    """What does not change with time on cells y0:y1, x0:x1, shared by all their blocks: the
    land-surface maps, the process models' coarse maps, insolation and the weather modes."""
    yy, xx = world.y[y0:y1, None], world.x[None, x0:x1]  # broadcast to the block's cells
    lat, _ = _grid.latlon(world.y[y0:y1], world.x[x0:x1])
    memo: dict = {}
    land = world.land.fields(yy, xx, lat, y0, x0, memo=memo)
    smooth = world.land.fields(yy, xx, lat, y0, x0, smooth=True, memo=memo)
    return {
        "fields": land,
        "maps": {
            "land": {k: land[k] for k in evolution.LAND},
            "model_land": {k: smooth[k] for k in evolution.MODEL_LAND},
            "toa12": toa_insolation(lat.astype(np.float32)[None], _MID_MONTH[:, None, None]).astype(
                np.float32
            ),
            "bases": {name: world.land.basis(name, yy, xx) for name in _WEATHER},
        },
    }


def _simulate(
    world: _World, t0: int, t1: int, y0: int, y1: int, x0: int, x1: int, surface: dict
) -> dict:
    """Every time-varying variable, and the truth, for cube steps t0:t1 and cells y0:y1, x0:x1."""
    # Thaw and freeze-back run over whole calendar years, from the year before the block
    # (spin-up for its first freeze-back); everything else only over the block's own months.
    m0, m1 = world.months[t0], world.months[t1 - 1]
    first = (m0 // 12 - 1) * 12
    window = np.arange(first, (m1 // 12 + 1) * 12)
    amplitudes = {name: world.land.amplitudes(name, window) for name in _WEATHER}
    keys = {name: stream_key(world.seed, name) for name in evolution.NOISE}
    calendar = _calendar(window)
    ny, nx = y1 - y0, x1 - x0
    out = {name: np.empty((t1 - t0, ny, nx), np.float32) for name in evolution.EVOLVED}
    # The evolution runs on tiles of at most _TILE x _TILE cells: its intermediates then stay in
    # the CPU's caches, which halves its cost against a 128 x 128 block. Cells are independent,
    # so a tile is padded to a bucketed size (its edge values repeated; fewer shapes to
    # compile) and cropped again.
    for ty, tx in itertools.product(range(0, ny, _TILE), range(0, nx, _TILE)):
        tny, tnx = min(_TILE, ny - ty), min(_TILE, nx - tx)
        pad = [(0, _bucket(tny) - tny), (0, _bucket(tnx) - tnx)]
        evolved = evolution.evolve(
            calendar,
            np.pad(np.arange(y0 + ty, y0 + ty + tny, dtype=np.int32), pad[0], mode="edge"),
            np.pad(np.arange(x0 + tx, x0 + tx + tnx, dtype=np.int32), pad[1], mode="edge"),
            **jax.tree.map(partial(_tile, cells=(ty, tx, tny, tnx), pad=pad), surface["maps"]),
            amplitudes=amplitudes,
            keys=keys,
            start=np.int32(m0 - first),
            length=t1 - t0,
        )
        for name, value in evolved.items():
            out[name][:, ty : ty + tny, tx : tx + tnx] = np.asarray(value)[:, :tny, :tnx]
    months = world.months[t0:t1]
    alt = out["true_alt"]
    out |= in_situ(world, months, y0, y1, x0, x1, alt, out["true_ch4_flux"], out["true_co2_flux"])
    yy, xx = world.y[y0:y1, None], world.x[None, x0:x1]
    out["sar_alt"] = uavsar(world, months, y0, x0, yy, xx, alt)
    return out


def _static(world: _World, y0: int, y1: int, x0: int, x1: int, surface: dict) -> dict:
    """Static maps and the hyperspectral mosaic for cells y0:y1, x0:x1."""
    land, shape = surface["fields"], (y1 - y0, x1 - x0)
    noise = world.land.noise
    out = {
        "elevation": np.maximum(land["elevation"] + 5.0 * noise("dem", None, y0, x0, shape), 0),
        "wetland_fraction": np.clip(
            land["wetland"] + 0.08 * noise("wetmap", None, y0, x0, shape), 0, 1
        ),
        "soil_organic_carbon": land["soc"] * (1 + 0.15 * noise("socmap", None, y0, x0, shape)),
        "zone": land["tundra"].astype(np.float32),
        "hyperspectral_reflectance": landscape.reflectance(world.land, land, y0, x0),
    }
    return {name: np.asarray(value, dtype=np.float32) for name, value in out.items()}


# -- lazy assembly -------------------------------------------------------------------------------


def _bounds(chunks: tuple[int, ...]) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(chunks)])
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _lazy(
    name: str,
    block: str,
    shape_chunks: tuple,
    layer: dict,
    keys: list,
    lead: tuple = (),
    base: dict | None = None,
) -> da.Array:
    """Variable ``name`` of every block task; ``lead`` indexes extra leading (unsplit) dims.
    ``base`` holds the layers the block tasks read (name -> layer)."""
    base = base or {}
    out = f"{name}-{block.split('-', 1)[1]}"
    getters = {(out, *lead, *key[1:]): (operator.getitem, key, name) for key in keys}
    graph = HighLevelGraph(
        {**base, block: layer, out: getters},
        {**{layer_name: set() for layer_name in base}, block: set(base), out: {block}},
    )
    return da.Array(graph, out, chunks=shape_chunks, dtype=np.float32)


def _normalise_chunks(chunks, nt: int, ny: int, nx: int) -> tuple:
    chunks = dict(chunks or {})
    unknown = set(chunks) - {"time", "y", "x"}
    if unknown:
        raise ValueError(f"chunks may name 'time', 'y' and 'x', not {sorted(unknown)}")
    sizes = {"time": min(nt, 120), "y": min(ny, 128), "x": min(nx, 128)} | chunks
    out = []
    for dim, n in (("time", nt), ("y", ny), ("x", nx)):
        size = int(sizes[dim]) if sizes[dim] not in (-1, None) else n
        if size < 1:
            raise ValueError(f"chunks[{dim!r}] must be positive, got {sizes[dim]}")
        out.append(da.core.normalize_chunks(size, (n,))[0])
    return tuple(out)


def alaska(
    ny: int = 64,
    nx: int = 64,
    start: str = "2000-01",
    end: str = "2019-12",
    seed: int = 0,
    n_sites: int = 40,
    chunks: dict[str, int] | None = None,
    resolution: float | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """A lazy synthetic Alaska cube and its complete, noise-free targets.

    Parameters
    ----------
    ny, nx
        Grid size. The grid covers the same stretch of Alaska (1000 km on its longer side,
        centred at 67.5 N, 151 W) whatever its size, unless ``resolution`` is given.
    start, end
        First and last month (inclusive), e.g. ``"2000-01"``; from 1951 on.
    seed
        The world's seed. The same seed gives identical values whatever the chunking.
    n_sites
        Number of in situ sites (thaw-depth probes and flux towers).
    chunks
        Dask chunk sizes for ``time``, ``y`` and ``x`` (default 120 months x 128 x 128, the
        layout :func:`geocryo.io.write_zarr` stores).
    resolution
        Cell size in metres (default ``1e6 / max(ny, nx)``).

    Returns
    -------
    cube, truth
        ``cube`` is what scientists observe (in situ, remote sensing, process models, forcing,
        static maps); ``truth`` holds the complete ``alt``, ``ch4_flux`` and ``co2_flux`` fields.
        Both are dask-backed; nothing is computed until asked.
    """
    time = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="MS")
    if len(time) == 0:
        raise ValueError(f"no months between start={start!r} and end={end!r}")
    if time[0].year <= ORIGIN_YEAR:
        raise ValueError(f"start must be in {ORIGIN_YEAR + 1} or later, got {start!r}")
    if n_sites < 0:
        raise ValueError(f"n_sites must be >= 0, got {n_sites}")
    y, x = _grid.axes(ny, nx, resolution)
    months = np.array([absolute_month(t) for t in time])
    rng = np.random.default_rng([seed, 1])
    land = Landscape(seed, n_months=int(months[-1]) + 13)
    campaigns = {}
    for stamp in CAMPAIGNS:
        lines = campaign_lines(
            np.random.default_rng([seed, 2, absolute_month(pd.Timestamp(stamp))]), y, x
        )
        campaigns[absolute_month(pd.Timestamp(stamp))] = lines
    world = _World(
        seed=seed,
        land=land,
        y=y,
        x=x,
        months=months,
        sites=draw_sites(rng, ny, nx, n_sites, months, int(months[-1]) + 1),
        campaigns=campaigns,
    )

    tchunks, ychunks, xchunks = _normalise_chunks(chunks, len(time), ny, nx)
    token = tokenize(seed, start, end, ny, nx, n_sites, resolution, tchunks, ychunks, xchunks)
    surface = f"geocryo-alaskasurface-{token}"
    surface_layer = {
        (surface, j, k): (_surface, world, y0, y1, x0, x1)
        for j, (y0, y1) in enumerate(_bounds(ychunks))
        for k, (x0, x1) in enumerate(_bounds(xchunks))
    }
    block = f"geocryo-alaska-{token}"
    layer, keys = {}, []
    for i, (t0, t1) in enumerate(_bounds(tchunks)):
        for j, (y0, y1) in enumerate(_bounds(ychunks)):
            for k, (x0, x1) in enumerate(_bounds(xchunks)):
                bounds = (t0, t1, y0, y1, x0, x1)
                layer[(block, i, j, k)] = (_simulate, world, *bounds, (surface, j, k))
                keys.append((block, i, j, k))
    static_block = f"geocryo-alaskastatic-{token}"
    static_layer, static_keys = {}, []
    for j, (y0, y1) in enumerate(_bounds(ychunks)):
        for k, (x0, x1) in enumerate(_bounds(xchunks)):
            static_layer[(static_block, j, k)] = (_static, world, y0, y1, x0, x1, (surface, j, k))
            static_keys.append((static_block, j, k))
    base = {surface: surface_layer}

    coords = _grid.grid_from_axes(y, x).coords
    dims3 = ("time", "y", "x")
    variables = {}
    for name in _TIME_VARS:
        data = _lazy(name, block, (tchunks, ychunks, xchunks), layer, keys, base=base)
        attrs = _attrs(name)
        if name in OBSERVATION_ERROR:
            sd, share = OBSERVATION_ERROR[name]
            attrs |= {"observation_error": sd, "observation_error_fraction": share}
        variables[name] = (dims3, data, attrs)
    for name in _STATIC_VARS:
        data = _lazy(name, static_block, (ychunks, xchunks), static_layer, static_keys, base=base)
        variables[name] = (("y", "x"), data, _attrs(name))
    hyper = _lazy(
        "hyperspectral_reflectance",
        static_block,
        ((landscape.N_BANDS,), ychunks, xchunks),
        static_layer,
        static_keys,
        lead=(0,),
        base=base,
    )
    variables["hyperspectral_reflectance"] = (
        ("band", "y", "x"),
        hyper,
        _attrs("hyperspectral_reflectance"),
    )
    zone = _lazy("zone", static_block, (ychunks, xchunks), static_layer, static_keys, base=base)
    zone_attrs = {
        "long_name": "ecological zone",
        "flag_values": [0, 1],
        "flag_meanings": "boreal tundra",
        "units": "1",
    }
    all_coords = {
        **coords,
        "time": ("time", time.values.astype("datetime64[ns]"), {"long_name": "month start"}),
        "band": ("band", np.arange(landscape.N_BANDS), {"long_name": "spectral band"}),
        "wavelength": (
            "band",
            landscape.WAVELENGTHS_NM,
            {"units": "nm", "long_name": "band centre"},
        ),
        "zone": (("y", "x"), zone, zone_attrs),
    }
    attrs = {
        "title": "geocryo synthetic Alaska",
        "Conventions": "CF-1.10",
        "source": "geocryo.synthetic.alaska",
        "seed": seed,
        "history": f"geocryo.synthetic.alaska(ny={ny}, nx={nx}, start={start!r}, end={end!r}, "
        f"seed={seed}, n_sites={n_sites}, resolution={resolution})",
    }
    cube = xr.Dataset(variables, coords=all_coords, attrs=attrs)
    truth_vars = {
        name: (
            dims3,
            _lazy(f"true_{name}", block, (tchunks, ychunks, xchunks), layer, keys, base=base),
            _attrs(name)
            | {"modality": "in_situ", "source": "synthetic truth (noise-free, complete)"},
        )
        for name in _TRUTH
    }
    truth = xr.Dataset(
        truth_vars,
        coords={k: v for k, v in all_coords.items() if k not in ("band", "wavelength")},
        attrs=attrs | {"title": "geocryo synthetic Alaska: complete noise-free targets"},
    )
    return cube, truth


def _attrs(name: str) -> dict:
    long_name, units, modality, source, standard_name = VARIABLES[name]
    attrs = {
        "long_name": long_name,
        "units": units,
        "modality": modality,
        "source": source,
        "grid_mapping": "spatial_ref",
    }
    if standard_name:
        attrs["standard_name"] = standard_name
    return attrs
