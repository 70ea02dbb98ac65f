"""The synthetic Alaska's month-by-month evolution on one block of cells, compiled with JAX.

:func:`evolve` runs the weather, the thaw and freeze-back of the active layer, the CH4 and CO2
fluxes, the process models and the gridded observations of one block in a single XLA
computation, from small inputs that :mod:`geocryo.synthetic` prepares with NumPy: the block's
land-surface maps, the spatial modes and monthly amplitudes of the weather anomalies, the
calendar, and the keys of its noise streams. Every output cell is a function of its own inputs
alone (element-wise arithmetic, sums in a fixed order, recursions along time), so values do not
depend on how the grid is cut into blocks.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .landscape import combine, hash_normal
from .observations import MISSIONS, absolute_month
from .physics import arrhenius_q10, degree_days, light_response, stefan_depth

__all__ = ["EVOLVED", "LAND", "MODEL_LAND", "NOISE", "evolve"]

#: Land-surface maps the evolution reads, and those of the process models' coarse maps.
LAND = (
    "maat",
    "amplitude",
    "annual_precip",
    "conductivity",
    "water_content",
    "n_thaw",
    "f10",
    "r10",
    "pmax",
    "greenness",
    "wetland",
    "peat",
    "ndvi_max",
)
MODEL_LAND = ("conductivity", "water_content", "n_thaw", "f10", "r10", "pmax", "greenness")
#: Noise streams drawn inside the evolution.
NOISE = ("lst", "ndvi", "soil_moisture")
#: What :func:`evolve` returns, each (kept months x ny x nx) float32.
EVOLVED = (
    "true_alt",
    "true_ch4_flux",
    "true_co2_flux",
    "lst",
    "ndvi",
    "soil_moisture",
    "sibbork_alt",
    "tcfm_ch4_flux",
    "tcfm_co2_flux",
    "air_temperature",
    "precipitation",
    "snow_depth",
    "shortwave_radiation",
)

_MODIS_START = absolute_month(pd.Timestamp(MISSIONS["modis"]))
_SMAP_START = absolute_month(pd.Timestamp(MISSIONS["smap"]))
_COL = (slice(None), None, None)


def _yearly_cumsum(values):
    """Running sums along time that restart every 12 steps, added in month order."""
    years = values.reshape(-1, 12, *values.shape[1:])
    running = [years[:, 0]]
    for month in range(1, 12):
        running.append(running[-1] + years[:, month])
    return jnp.stack(running, axis=1).reshape(values.shape)


def _weather(calendar: dict, land: dict, anomalies: dict) -> dict:
    """Monthly air temperature, degree days, precipitation and snow over the window."""
    months, days, mid_doy = calendar["months"], calendar["days"], calendar["mid_doy"]
    seasonal = -land["amplitude"][None] * 0.989 * jnp.cos(2 * np.pi * (mid_doy[_COL] - 15) / 365)
    trend = 0.045 * (calendar["years"] - 1995.0)
    t_air = land["maat"][None] + seasonal + trend[_COL] + anomalies["temperature"]
    tdd, fdd = degree_days(t_air, days[_COL], spread=2.5)

    precip_anomaly = anomalies["precipitation"]
    season = 1 + 0.8 * jnp.cos(2 * np.pi * (mid_doy - 213) / 365)
    precip = land["annual_precip"][None] / 12 * season[_COL] * jnp.exp(0.35 * precip_anomaly - 0.06)
    # Snowpack (mm of water): accumulate snowfall, melt 3 mm per thawing degree day; every
    # pack is gone by 1 August, where the recursion restarts, so blocks agree wherever they start.
    snowfall = precip / (1 + jnp.exp(t_air / 1.5))
    melt = 3 * tdd

    def month(pack, step):
        restart, fall, thaw = step
        pack = jnp.maximum(jnp.where(restart, 0, pack) + fall - thaw, 0)
        return pack, pack

    _, swe = jax.lax.scan(month, jnp.zeros_like(t_air[0]), (months % 12 == 7, snowfall, melt))
    snow_depth = swe / 250  # m of snow at 250 kg m-3
    return {
        "t_air": t_air,
        "tdd": tdd,
        "fdd": fdd,
        "precip": precip,
        "precip_anomaly": precip_anomaly,
        "snow_depth": snow_depth,
        "n_freeze": 0.6 - 0.3 * jnp.clip(snow_depth / 0.6, 0, 1),
    }


def _thaw_state(climate: dict, soil: dict, months, bias: float = 1.0) -> dict:
    """Thaw depth, freezing front and soil regime over whole calendar years of ``months``.

    ``months`` starts in a January and ends in a December; the first year is spin-up for the
    freeze-back of the year after it. Sums run over whole years (thaw from 1 January, freeze
    from 1 August), so a month's value never depends on where a block starts.
    """
    nt = months.shape[0]
    shape = climate["tdd"].shape[1:]
    k_t = soil["conductivity"] * bias
    theta = soil["water_content"]
    # Thaw from the surface since 1 January of each year.
    z_thaw = stefan_depth(k_t, soil["n_thaw"], _yearly_cumsum(climate["tdd"]), theta)
    # Freeze-back from the surface since 1 August (snow-insulated by the winter n-factor).
    nfdd = climate["n_freeze"] * climate["fdd"]
    zeros = jnp.zeros((7, *shape), nfdd.dtype)
    fdd_cum = _yearly_cumsum(jnp.concatenate([nfdd[7:], zeros]))
    fdd_cum = jnp.concatenate([zeros, fdd_cum[: nt - 7]])
    z_freeze = stefan_depth(1.6 * k_t, 1.0, fdd_cum, theta)
    # From August the new freezing front eats the summer's thawed layer; until July the
    # remnant of last summer's layer (a talik, if it never froze) competes with the new thaw.
    z_max = z_thaw.reshape(nt // 12, 12, *shape)[:, 11]
    z_last = jnp.repeat(jnp.concatenate([z_max[:1] * 0, z_max[:-1]]), 12, axis=0)
    autumn = (months % 12 >= 7)[_COL]
    remnant = z_last - z_freeze
    thawed = jnp.where(autumn, z_thaw - z_freeze, jnp.maximum(z_thaw, remnant))
    alt = jnp.maximum(thawed, 0) * 100
    alt = jnp.where(alt < 2, 0, alt)  # under 2 cm thawed reads as frozen
    frozen = alt == 0
    # Freezing back: the front from the surface has started and the unfrozen layer is what is
    # left of the summer's (in spring, only while that remnant is deeper than the new thaw).
    freezing = ~frozen & jnp.where(autumn, z_freeze > 0.03, remnant > z_thaw)
    thawing = ~frozen & ~freezing
    t_air = climate["t_air"]
    t_soil = jnp.where(
        thawing,
        jnp.maximum(0.5 * soil["n_thaw"] * t_air, 0.5),
        jnp.where(freezing, 0.2, 0.5 * climate["n_freeze"] * t_air),
    )
    return {
        "alt": alt,
        "frozen": frozen,
        "freezing": freezing,
        "thawing": thawing,
        "t_soil": t_soil,
    }


def _fluxes(climate: dict, state: dict, eco: dict) -> tuple:
    """CH4 (nmol m-2 s-1) and net CO2 (umol m-2 s-1, positive upward) fluxes."""
    active = jnp.clip(state["alt"] / 30, 0, 1)
    wet = jnp.clip(1 + 0.15 * climate["precip_anomaly"], 0.6, 1.4)
    growing = eco["f10"] * arrhenius_q10(state["t_soil"], eco["q10"]) * active * wet
    # In the zero curtain the unfrozen layer keeps producing at 0 degC, and the CH4 stored in it
    # is squeezed out as it freezes from the top: the autumn shoulder of the CH4 year.
    shoulder = eco["f10"] * eco["zero_curtain"] * active * wet
    winter = 0.05 * eco["f10"]  # diffusion through snow and from unfrozen pockets
    ch4 = jnp.where(state["thawing"], growing, jnp.where(state["freezing"], shoulder, winter))

    t_air = climate["t_air"]
    t_resp = jnp.where(
        state["thawing"], 0.5 * (state["t_soil"] + jnp.maximum(t_air, 0)), state["t_soil"]
    )
    reco = eco["r10"] * arrhenius_q10(t_resp, 2.0) * jnp.where(state["frozen"], 0.3, 1.0)
    snow_free = 1 / (1 + (climate["snow_depth"] / 0.05) ** 2)
    green = eco["greenness"] * climate["phenology"] * snow_free * state["thawing"]
    gpp = green * light_response(climate["par"], 0.04, eco["pmax"])
    return ch4, reco - gpp


def _light(months, toa12, cloud, t_air) -> dict:
    """Radiation, PAR and green-up; ``toa12`` holds mid-month insolation of each calendar month."""
    toa = toa12[months % 12]
    shortwave = toa * (0.72 - 0.3 / (1 + jnp.exp(-cloud)))
    return {
        "cloud": cloud,
        "toa": toa,
        "shortwave": shortwave,
        "par": 0.45 * 4.57 * shortwave,  # W m-2 -> umol photons m-2 s-1
        "phenology": 1 / (1 + jnp.exp(-(t_air - 2) / 1.5)),
    }


def _gridded_observations(months, rows, cols, keys, land, climate, alt) -> dict:
    """MODIS LST and NDVI and SMAP soil moisture, with mission dates, cloud, snow and dark."""

    def noise(name):
        return hash_normal(jnp, keys[name], months, rows, cols)

    modis = (months >= _MODIS_START)[_COL]
    smap = (months >= _SMAP_START)[_COL]
    snow = climate["snow_depth"] > 0.05
    cloudy = climate["cloud"] > 1.0  # persistent cloud all month: no clear-sky composite
    dark = climate["toa"] < 30.0  # polar night: no reflectance retrieval

    green = climate["phenology"] / (1 + (climate["snow_depth"] / 0.05) ** 2)
    lst = climate["t_air"] + 273.15 + 2.5 * green * (1 - land["wetland"][None])
    lst = lst + 0.8 * noise("lst")
    ndvi = 0.08 + (land["ndvi_max"][None] - 0.08) * green
    ndvi = ndvi + 0.03 * noise("ndvi")

    thawed = alt > 0
    liquid = 0.10 + 0.40 * land["wetland"][None] + 0.10 * land["peat"][None]
    liquid = liquid + 0.05 * climate["precip_anomaly"]
    moisture = jnp.clip(liquid + 0.03 * noise("soil_moisture"), 0.02, 0.7)
    nan = jnp.nan
    return {
        "lst": jnp.where(modis & ~cloudy, lst, nan),
        "ndvi": jnp.where(modis & ~cloudy & ~snow & ~dark, jnp.clip(ndvi, -0.1, 1), nan),
        "soil_moisture": jnp.where(smap & thawed & ~snow & (climate["t_air"] > 0), moisture, nan),
    }


@partial(jax.jit, static_argnames=("length",))
def evolve(
    calendar: dict,
    rows,
    cols,
    land: dict,
    model_land: dict,
    toa12,
    bases: dict,
    amplitudes: dict,
    keys: dict,
    start,
    length: int,
) -> dict:
    """Every time-varying variable of one block: the window's months ``start:start + length``.

    Parameters
    ----------
    calendar
        ``months`` (absolute month numbers, int32), ``days`` in each month, ``mid_doy`` (day of
        year of mid-month) and ``years`` (fractional year), over a window of whole calendar
        years that starts a year before the block's first month (spin-up of the freeze-back).
    rows, cols
        Global grid indices of the block's cells.
    land, model_land
        Land-surface maps (:data:`LAND`) of the cells, and the process models' coarse maps
        (:data:`MODEL_LAND`).
    toa12
        Top-of-atmosphere insolation (12 x ny x nx) at mid-month of each calendar month.
    bases, amplitudes
        Spatial modes and window-month amplitudes of the weather anomalies ``temperature``,
        ``precipitation``, ``cloud`` and ``reanalysis`` (see
        :class:`~geocryo.synthetic.landscape.Landscape`).
    keys
        Noise stream keys (:func:`~geocryo.synthetic.landscape.stream_key`) of :data:`NOISE`.
    start, length
        The block's own months within the window (``length`` is static: one compilation per
        block shape).

    Returns
    -------
    dict
        :data:`EVOLVED` arrays, each (months x ny x nx) float32.
    """
    anomalies = {name: combine(amplitudes[name], bases[name]) for name in bases}
    months = calendar["months"]
    weather = _weather(calendar, land, anomalies)
    eco = dict(land, q10=3.0, zero_curtain=0.75)

    def kept(values):
        return jax.lax.dynamic_slice_in_dim(values, start, length)

    state = {k: kept(v) for k, v in _thaw_state(weather, land, months).items()}
    # The process models run the same climate on coarse soil and vegetation maps, with their
    # own parameter biases: SIBBORK's thaw too deep, TCFM's CH4 too high and missing the
    # zero-curtain shoulder, TCFM's CO2 uptake too strong and its green-up late.
    model_state = {k: kept(v) for k, v in _thaw_state(weather, model_land, months, 1.25).items()}
    months = kept(months)
    climate = {k: kept(v) for k, v in weather.items()}
    climate |= _light(months, toa12, kept(anomalies["cloud"]), climate["t_air"])
    ch4, co2 = _fluxes(climate, state, eco)
    model_eco = dict(
        model_land,
        f10=1.35 * model_land["f10"],
        q10=2.2,
        zero_curtain=0.1,
        r10=0.85 * model_land["r10"],
        pmax=1.15 * model_land["pmax"],
    )
    model_climate = dict(
        climate,
        phenology=1 / (1 + jnp.exp(-(climate["t_air"] - 3.5) / 1.5)),
    )
    model_ch4, model_co2 = _fluxes(model_climate, model_state, model_eco)

    out = {"true_alt": state["alt"], "true_ch4_flux": ch4, "true_co2_flux": co2}
    out |= _gridded_observations(months, rows, cols, keys, land, climate, state["alt"])
    out["sibbork_alt"] = model_state["alt"]
    out["tcfm_ch4_flux"] = model_ch4
    out["tcfm_co2_flux"] = model_co2
    # Reanalysis errors are large-scale, like the weather the reanalysis misses.
    error = kept(anomalies["reanalysis"])
    out["air_temperature"] = climate["t_air"] + 0.5 * error
    out["precipitation"] = climate["precip"] * jnp.exp(0.15 * error)
    out["snow_depth"] = climate["snow_depth"] * jnp.exp(-0.1 * error)
    out["shortwave_radiation"] = climate["shortwave"] * jnp.exp(0.05 * error)
    return {name: out[name].astype(jnp.float32) for name in EVOLVED}
