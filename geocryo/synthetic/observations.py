"""Observation operators of the synthetic Alaska: what sites, satellites and aircraft see.

The synthetic world (:mod:`geocryo.synthetic`) computes complete fields; these functions turn
them into observations on the footing of each modality: a few dozen in situ sites with gappy,
noisy records; MODIS and SMAP retrievals with mission dates, clouds, snow and polar night; and
UAVSAR thaw depths in a few summer campaigns along flight lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .landscape import ORIGIN_YEAR, hash_normal, stream_key

__all__ = [
    "CAMPAIGNS",
    "MISSIONS",
    "OBSERVATION_ERROR",
    "Sites",
    "absolute_month",
    "campaign_lines",
    "draw_sites",
    "in_situ",
    "uavsar",
]

_TRUTH = ("alt", "ch4_flux", "co2_flux")

#: Measurement error of the sites' records: (standard deviation in the target's units, share of
#: the value), as the cube's targets declare it (``observation_error``,
#: ``observation_error_fraction``): thaw probes read to about 2 cm, chamber and tower CH4 to
#: 10 % and 0.5 nmol m-2 s-1, tower CO2 to 0.25 umol m-2 s-1.
OBSERVATION_ERROR: dict[str, tuple[float, float]] = {
    "alt": (2.0, 0.0),
    "ch4_flux": (0.5, 0.1),
    "co2_flux": (0.25, 0.0),
}


#: Start of each remote-sensing mission (no retrievals before it).
MISSIONS: dict[str, str] = {"modis": "2000-02", "smap": "2015-04"}
#: Months of the airborne SAR (UAVSAR, P-band) campaigns that retrieve ALT.
CAMPAIGNS: tuple[str, ...] = ("2017-08", "2018-08", "2019-09", "2022-08", "2023-08")


@dataclass(frozen=True)
class Sites:
    """Where the in situ sites are, what they measure, and their noise and gaps per month."""

    iy: np.ndarray
    ix: np.ndarray
    measures_alt: np.ndarray
    measures_flux: np.ndarray
    first: np.ndarray  # absolute month index of the first record
    noise: np.ndarray  # (site, absolute month, 3) standard normal
    gap: np.ndarray  # (site, absolute month, 3) uniform in [0, 1)


def draw_sites(
    rng: np.random.Generator, ny: int, nx: int, n_sites: int, months: np.ndarray, n_abs: int
) -> Sites:
    """Place ``n_sites`` sites on an ``ny`` x ``nx`` grid and draw their records.

    About two thirds probe thaw depth and two thirds carry flux towers (a third do both);
    records start in the first 40 % of ``months`` and run to the end. Noise and gap draws cover
    absolute months ``0 .. n_abs - 1``, so a site's record does not depend on the block asking.
    """
    n_sites = min(n_sites, ny * nx)
    cells = rng.choice(ny * nx, size=n_sites, replace=False)
    kind = rng.uniform(size=n_sites)
    measures_alt = kind < 0.65
    measures_flux = kind > 0.35
    # Records begin at some point in the first 40 % of the period, and run to its end.
    span = max(1, int(0.4 * len(months)))
    first = months[0] + rng.integers(0, span, size=n_sites)
    return Sites(
        iy=cells // nx,
        ix=cells % nx,
        measures_alt=measures_alt,
        measures_flux=measures_flux,
        first=first,
        noise=rng.standard_normal((n_sites, n_abs, 3)).astype(np.float32),
        gap=rng.uniform(size=(n_sites, n_abs, 3)).astype(np.float32),
    )


def campaign_lines(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Four straight flight lines across the domain: (x0, y0, direction angle, half width)."""
    lines = np.empty((4, 4))
    lines[:, 0] = rng.uniform(x.min(), x.max(), 4)
    lines[:, 1] = rng.uniform(y.min(), y.max(), 4)
    lines[:, 2] = rng.uniform(0, np.pi, 4)
    lines[:, 3] = 20_000.0  # UAVSAR swaths are about 20 km wide; mosaics of passes about 40 km
    return lines


# -- the physics of one block -------------------------------------------------------------------


def in_situ(world, months, y0, y1, x0, x1, alt, ch4, co2) -> dict:
    """Targets at the sites: noisy, gappy (more so in winter), NaN off the sites."""
    shape = alt.shape
    out = {name: np.full(shape, np.nan, np.float32) for name in _TRUTH}
    s = world.sites
    inside = np.flatnonzero((s.iy >= y0) & (s.iy < y1) & (s.ix >= x0) & (s.ix < x1))
    winter = np.isin(months % 12, [10, 11, 0, 1, 2, 3])
    gap_rate = np.stack(
        [
            np.full(len(months), 0.10),  # thaw tubes and loggers
            np.where(winter, 0.60, 0.20),  # CH4 analysers struggle in the cold
            np.where(winter, 0.40, 0.15),
        ],
        axis=-1,
    )
    for k in inside:
        iy, ix = s.iy[k] - y0, s.ix[k] - x0
        noise, gap = s.noise[k, months], s.gap[k, months]
        recorded = months >= s.first[k]
        observed = recorded[:, None] & (gap >= gap_rate)
        observed[:, 0] &= s.measures_alt[k]
        observed[:, 1:] &= s.measures_flux[k]
        a = alt[:, iy, ix]
        (sd_alt, _), (sd_ch4, share_ch4), (sd_co2, _) = OBSERVATION_ERROR.values()
        values = (
            np.where(a > 0, np.maximum(a + sd_alt * noise[:, 0], 0), 0.0),
            ch4[:, iy, ix] * (1 + share_ch4 * noise[:, 1]) + sd_ch4 * noise[:, 1],
            co2[:, iy, ix] + sd_co2 * noise[:, 2],
        )
        for j, name in enumerate(_TRUTH):
            out[name][:, iy, ix] = np.where(observed[:, j], values[j], np.nan)
    return out


def uavsar(world, months, y0, x0, yy, xx, alt) -> np.ndarray:
    """UAVSAR thaw depths along the campaign flight lines of the block's campaign months."""
    shape = alt.shape[1:]
    rows = np.arange(y0, y0 + shape[0])
    cols = np.arange(x0, x0 + shape[1])
    key = stream_key(world.seed, "sar")
    sar = np.full(alt.shape, np.nan, np.float32)
    for i, month in enumerate(months):
        lines = world.campaigns.get(int(month))
        if lines is None:
            continue
        swath = np.zeros(shape, bool)
        for x_0, y_0, angle, half in lines:
            distance = np.abs((xx - x_0) * np.sin(angle) - (yy - y_0) * np.cos(angle))
            swath |= distance < half
        noise = hash_normal(np, key, months[i : i + 1], rows, cols)[0]
        retrieved = alt[i] * np.float32(1.05) + np.float32(8.0) * noise
        sar[i] = np.where(swath & (alt[i] > 0), np.maximum(retrieved, 0), np.nan)
    return sar


def absolute_month(stamp: pd.Timestamp) -> int:
    """Months since January of :data:`~geocryo.synthetic.landscape.ORIGIN_YEAR`."""
    return (stamp.year - ORIGIN_YEAR) * 12 + stamp.month - 1
