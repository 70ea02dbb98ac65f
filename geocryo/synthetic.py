"""A physically grounded synthetic Alaska: the embedded default cube, and its complete truth.

:func:`alaska` builds a lazy multimodal cube over EPSG:3338 on a monthly axis, with the target
fields that produced it. The world runs on the physics of DESIGN.md section 3
(:mod:`geocryo.physics`): a north-south climate gradient from boreal forest to tundra with a
warming trend and spatially coherent anomalies; snow, soils (peat and mineral) and wetlands; thaw
depth from the Stefan solution on thawing degree days with autumn freeze-back through a zero
curtain; CH4 and CO2 fluxes from Q10 responses, wetness and light. Observation operators turn it
into what scientists hold: sparse in situ sites with gaps and noise, remote sensing with clouds,
snow, polar night, mission dates and campaign swaths, and process-model fields that are complete
but biased and smooth.

Every chunk is computed on its own from the seed and the cell and month it covers, so values are
identical whatever the chunking, and a full-size cube streams to disk one chunk at a time.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import grid as _grid
from . import landscape
from .landscape import ORIGIN_YEAR, Landscape
from .observations import (
    CAMPAIGNS,
    MISSIONS,
    Sites,
    absolute_month,
    campaign_lines,
    draw_sites,
    in_situ,
    remote_sensing,
)
from .physics import arrhenius_q10, degree_days, light_response, stefan_depth, toa_insolation

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


def _calendar(months: np.ndarray):
    stamps = pd.to_datetime(
        {"year": ORIGIN_YEAR + months // 12, "month": months % 12 + 1, "day": 1}
    )
    days = stamps.dt.days_in_month.to_numpy(np.float32)
    mid_doy = (stamps.dt.day_of_year.to_numpy() + days / 2.0 - 0.5).astype(np.float32)
    return days, mid_doy


def _yearly_cumsum(values: np.ndarray) -> np.ndarray:
    """Running sums that restart every 12 steps (``len(values)`` is a multiple of 12).

    A loop of whole-array additions: one pass over memory, and the same order of additions for
    every cell, which numpy's strided ``cumsum`` does at several times the cost.
    """
    years = values.reshape(-1, 12, *values.shape[1:]).copy()
    for month in range(1, 12):
        np.add(years[:, month - 1], years[:, month], out=years[:, month])
    return years.reshape(values.shape)


def _thaw_state(climate: dict, soil: dict, months: np.ndarray, bias: float = 1.0) -> dict:
    """Thaw depth, freezing front and soil regime for whole calendar years of ``months``.

    ``months`` starts in a January and ends in a December; the first year is spin-up for the
    freeze-back of the year after it. Sums run over whole years (thaw from 1 January, freeze
    from 1 August), so a month's value never depends on where a block starts.
    """
    nt = len(months)
    shape = climate["tdd"].shape[1:]
    k_t = soil["conductivity"] * bias
    theta = soil["water_content"]
    # Thaw from the surface since 1 January of each year.
    tdd_cum = _yearly_cumsum(climate["tdd"])
    z_thaw = stefan_depth(k_t, soil["n_thaw"], tdd_cum, theta)
    # Freeze-back from the surface since 1 August (snow-insulated by the winter n-factor).
    nfdd = climate["n_freeze"] * climate["fdd"]
    padded = np.concatenate([nfdd[7:], np.zeros((7, *shape), nfdd.dtype)])
    fdd_cum = _yearly_cumsum(padded)
    fdd_cum = np.concatenate([np.zeros((7, *shape), nfdd.dtype), fdd_cum[: nt - 7]])
    z_freeze = stefan_depth(1.6 * k_t, 1.0, fdd_cum, theta)
    # From August the new freezing front eats the summer's thawed layer; until July the
    # remnant of last summer's layer (a talik, if it never froze) competes with the new thaw.
    month = months % 12
    z_max = z_thaw.reshape(nt // 12, 12, *shape)[:, 11]
    z_last = np.repeat(np.concatenate([z_max[:1] * 0, z_max[:-1]]), 12, axis=0)
    autumn = (month >= 7).reshape(-1, *[1] * len(shape))
    remnant = z_last - z_freeze
    thawed = np.where(autumn, z_thaw - z_freeze, np.maximum(z_thaw, remnant))
    alt = np.maximum(thawed, 0) * 100.0
    alt = np.where(alt < 2.0, 0.0, alt).astype(np.float32)  # under 2 cm thawed reads as frozen
    frozen = alt == 0
    # Freezing back: the front from the surface has started and the unfrozen layer is what is
    # left of the summer's (in spring, only while that remnant is deeper than the new thaw).
    freezing = ~frozen & np.where(autumn, z_freeze > 0.03, remnant > z_thaw)
    thawing = ~frozen & ~freezing
    t_air = climate["t_air"]
    t_soil = np.where(
        thawing,
        np.maximum(0.5 * soil["n_thaw"] * t_air, 0.5),
        np.where(freezing, 0.2, 0.5 * climate["n_freeze"] * t_air),
    ).astype(np.float32)
    return {
        "alt": alt,
        "frozen": frozen,
        "freezing": freezing,
        "thawing": thawing,
        "t_soil": t_soil,
    }


def _fluxes(climate: dict, state: dict, eco: dict) -> tuple[np.ndarray, np.ndarray]:
    """CH4 (nmol m-2 s-1) and net CO2 (umol m-2 s-1, positive upward) fluxes."""
    active = np.clip(state["alt"] / 30.0, 0, 1)
    wet = np.clip(1 + 0.15 * climate["precip_anomaly"], 0.6, 1.4)
    growing = eco["f10"] * arrhenius_q10(state["t_soil"], eco["q10"]) * active * wet
    # In the zero curtain the unfrozen layer keeps producing at 0 degC, and the CH4 stored in it
    # is squeezed out as it freezes from the top: the autumn shoulder of the CH4 year.
    shoulder = eco["f10"] * eco["zero_curtain"] * active * wet
    winter = 0.05 * eco["f10"]  # diffusion through snow and from unfrozen pockets
    ch4 = np.where(state["thawing"], growing, np.where(state["freezing"], shoulder, winter))

    t_air = climate["t_air"]
    t_resp = np.where(
        state["thawing"], 0.5 * (state["t_soil"] + np.maximum(t_air, 0)), state["t_soil"]
    )
    reco = (
        eco["r10"]
        * arrhenius_q10(t_resp, 2.0)
        * np.where(state["frozen"], np.float32(0.3), np.float32(1.0))
    )
    snow_free = 1.0 / (1.0 + (climate["snow_depth"] / 0.05) ** 2)
    green = eco["greenness"] * climate["phenology"] * snow_free * state["thawing"]
    gpp = green * light_response(climate["par"], 0.04, eco["pmax"])
    return ch4.astype(np.float32), (reco - gpp).astype(np.float32)


def _weather(world: _World, months: np.ndarray, yy, xx, land: dict) -> dict:
    """Monthly air temperature, degree days, precipitation and snow for ``months``."""
    days, mid_doy = _calendar(months)
    nt = len(months)
    col = (slice(None), None, None)
    seasonal = -land["amplitude"][None] * 0.989 * np.cos(2 * np.pi * (mid_doy[col] - 15) / 365)
    years = ORIGIN_YEAR + months / 12.0
    trend = (0.045 * (years - 1995.0)).astype(np.float32)
    anomaly = world.land.anomaly("temperature", months, yy, xx)
    t_air = (land["maat"][None] + seasonal + trend[col] + anomaly).astype(np.float32)
    tdd, fdd = degree_days(t_air, days[col], spread=2.5)

    precip_anomaly = world.land.anomaly("precipitation", months, yy, xx)
    season = (1 + 0.8 * np.cos(2 * np.pi * (mid_doy - 213) / 365)).astype(np.float32)
    precip = land["annual_precip"][None] / 12 * season[col] * np.exp(0.35 * precip_anomaly - 0.06)
    # Snowpack (mm of water): accumulate snowfall, melt 3 mm per thawing degree day; every
    # pack is gone by 1 August, where the recursion restarts, so blocks agree wherever they start.
    snowfall = precip / (1 + np.exp(t_air / 1.5))
    melt = 3.0 * tdd
    swe = np.empty_like(t_air)
    pack = np.zeros(t_air.shape[1:], np.float32)
    for i in range(nt):
        if months[i] % 12 == 7:
            pack = np.zeros_like(pack)
        pack = np.maximum(pack + snowfall[i] - melt[i], 0)
        swe[i] = pack
    snow_depth = swe / 250.0  # m of snow at 250 kg m-3
    return {
        "t_air": t_air,
        "tdd": tdd,
        "fdd": fdd,
        "precip": precip.astype(np.float32),
        "precip_anomaly": precip_anomaly,
        "snow_depth": snow_depth,
        "n_freeze": (0.6 - 0.3 * np.clip(snow_depth / 0.6, 0, 1)).astype(np.float32),
    }


def _light(world: _World, months: np.ndarray, yy, xx, lat, weather: dict) -> dict:
    """Cloud, radiation, PAR and green-up for ``months`` (``weather`` on the same months)."""
    cloud = world.land.anomaly("cloud", months, yy, xx)
    # Insolation depends on the calendar month alone (mid-month of a common year): 12 maps.
    mid_common_year = np.array([16, 45.5, 75, 105.5, 136, 166.5, 197, 228, 258.5, 289, 319.5, 350])
    toa = toa_insolation(lat.astype(np.float32)[None], mid_common_year[:, None, None])
    toa = toa.astype(np.float32)[months % 12]
    shortwave = toa * (0.72 - 0.3 / (1 + np.exp(-cloud)))
    return {
        "cloud": cloud,
        "toa": toa,
        "shortwave": shortwave,
        "par": 0.45 * 4.57 * shortwave,  # W m-2 -> umol photons m-2 s-1
        "phenology": 1 / (1 + np.exp(-(weather["t_air"] - 2.0) / 1.5)),
    }


def _simulate(world: _World, t0: int, t1: int, y0: int, y1: int, x0: int, x1: int) -> dict:
    """Every time-varying variable, and the truth, for cube steps t0:t1 and cells y0:y1, x0:x1."""
    land_model = world.land
    yy, xx = np.meshgrid(world.y[y0:y1], world.x[x0:x1], indexing="ij")
    lat, _ = _grid.latlon(world.y[y0:y1], world.x[x0:x1])
    memo: dict = {}
    land = land_model.fields(yy, xx, lat, y0, x0, memo=memo)
    smooth = land_model.fields(yy, xx, lat, y0, x0, smooth=True, memo=memo)

    # Thaw and freeze-back run over whole calendar years, from the year before the block
    # (spin-up for its first freeze-back); everything else only over the block's own months.
    m0, m1 = world.months[t0], world.months[t1 - 1]
    first = (m0 // 12 - 1) * 12
    window = np.arange(first, (m1 // 12 + 1) * 12)
    keep = slice(m0 - first, m1 - first + 1)
    weather = _weather(world, window, yy, xx, land)
    state = {k: v[keep] for k, v in _thaw_state(weather, land, window).items()}
    # The process models run the same climate on coarse soil and vegetation maps, with their
    # own parameter biases: SIBBORK's thaw too deep, TCFM's CH4 too high and missing the
    # zero-curtain shoulder, TCFM's CO2 uptake too strong and its green-up late.
    model_state = {k: v[keep] for k, v in _thaw_state(weather, smooth, window, 1.25).items()}
    months = window[keep]
    climate = {k: v[keep] for k, v in weather.items()}
    climate.update(_light(world, months, yy, xx, lat, climate))
    ch4, co2 = _fluxes(climate, state, land)
    model_eco = dict(
        smooth,
        f10=1.35 * smooth["f10"],
        q10=2.2,
        zero_curtain=0.1,
        r10=0.85 * smooth["r10"],
        pmax=1.15 * smooth["pmax"],
    )
    model_climate = dict(climate, phenology=1 / (1 + np.exp(-(climate["t_air"] - 3.5) / 1.5)))
    model_ch4, model_co2 = _fluxes(model_climate, model_state, model_eco)

    alt = state["alt"]
    out = {"true_alt": alt, "true_ch4_flux": ch4, "true_co2_flux": co2}
    out.update(in_situ(world, months, y0, y1, x0, x1, alt, ch4, co2))
    out.update(remote_sensing(world, months, y0, x0, yy, xx, land, climate, alt))
    out["sibbork_alt"] = model_state["alt"]
    out["tcfm_ch4_flux"] = model_ch4
    out["tcfm_co2_flux"] = model_co2
    # Reanalysis errors are large-scale, like the weather the reanalysis misses.
    error = land_model.anomaly("reanalysis", months, yy, xx)
    out["air_temperature"] = climate["t_air"] + 0.5 * error
    out["precipitation"] = climate["precip"] * np.exp(0.15 * error)
    out["snow_depth"] = climate["snow_depth"] * np.exp(-0.1 * error)
    out["shortwave_radiation"] = climate["shortwave"] * np.exp(0.05 * error)
    return {name: np.asarray(value, dtype=np.float32) for name, value in out.items()}


def _static(world: _World, y0: int, y1: int, x0: int, x1: int) -> dict:
    """Static maps and the hyperspectral mosaic for cells y0:y1, x0:x1."""
    yy, xx = np.meshgrid(world.y[y0:y1], world.x[x0:x1], indexing="ij")
    lat, _ = _grid.latlon(world.y[y0:y1], world.x[x0:x1])
    land = world.land.fields(yy, xx, lat, y0, x0)
    noise = world.land.noise
    out = {
        "elevation": np.maximum(land["elevation"] + 5.0 * noise("dem", None, y0, x0, yy.shape), 0),
        "wetland_fraction": np.clip(
            land["wetland"] + 0.08 * noise("wetmap", None, y0, x0, yy.shape), 0, 1
        ),
        "soil_organic_carbon": land["soc"] * (1 + 0.15 * noise("socmap", None, y0, x0, yy.shape)),
        "zone": land["tundra"].astype(np.float32),
        "hyperspectral_reflectance": landscape.reflectance(world.land, land, y0, x0),
    }
    return {name: np.asarray(value, dtype=np.float32) for name, value in out.items()}


# -- lazy assembly -------------------------------------------------------------------------------


def _bounds(chunks: tuple[int, ...]) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(chunks)])
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _lazy(
    name: str, block: str, shape_chunks: tuple, layer: dict, keys: list, lead: tuple = ()
) -> da.Array:
    """Variable ``name`` of every block task; ``lead`` indexes extra leading (unsplit) dims."""
    out = f"{name}-{block.split('-', 1)[1]}"
    getters = {(out, *lead, *key[1:]): (operator.getitem, key, name) for key in keys}
    graph = HighLevelGraph({block: layer, out: getters}, {block: set(), out: {block}})
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
    block = f"geocryo-alaska-{token}"
    layer, keys = {}, []
    for i, (t0, t1) in enumerate(_bounds(tchunks)):
        for j, (y0, y1) in enumerate(_bounds(ychunks)):
            for k, (x0, x1) in enumerate(_bounds(xchunks)):
                layer[(block, i, j, k)] = (_simulate, world, t0, t1, y0, y1, x0, x1)
                keys.append((block, i, j, k))
    static_block = f"geocryo-alaskastatic-{token}"
    static_layer, static_keys = {}, []
    for j, (y0, y1) in enumerate(_bounds(ychunks)):
        for k, (x0, x1) in enumerate(_bounds(xchunks)):
            static_layer[(static_block, j, k)] = (_static, world, y0, y1, x0, x1)
            static_keys.append((static_block, j, k))

    coords = _grid.grid_from_axes(y, x).coords
    dims3 = ("time", "y", "x")
    variables = {}
    for name in _TIME_VARS:
        data = _lazy(name, block, (tchunks, ychunks, xchunks), layer, keys)
        variables[name] = (dims3, data, _attrs(name))
    for name in _STATIC_VARS:
        data = _lazy(name, static_block, (ychunks, xchunks), static_layer, static_keys)
        variables[name] = (("y", "x"), data, _attrs(name))
    hyper = _lazy(
        "hyperspectral_reflectance",
        static_block,
        ((landscape.N_BANDS,), ychunks, xchunks),
        static_layer,
        static_keys,
        lead=(0,),
    )
    variables["hyperspectral_reflectance"] = (
        ("band", "y", "x"),
        hyper,
        _attrs("hyperspectral_reflectance"),
    )
    zone = _lazy("zone", static_block, (ychunks, xchunks), static_layer, static_keys)
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
            _lazy(f"true_{name}", block, (tchunks, ychunks, xchunks), layer, keys),
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
