"""The land surface and weather of the synthetic Alaska, as functions of place and month.

A :class:`Landscape` is defined by its seed alone. Smooth fields are sums of random plane waves
evaluated at projected coordinates, so the same place has the same climate, soils and vegetation
whatever the grid; weather anomalies are such waves with amplitudes that evolve month by month;
small-scale noise comes in fixed tiles of the grid drawn from counter-based seeds. Nothing depends
on how a caller cuts the grid into chunks.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

import numpy as np
from scipy import special

__all__ = [
    "N_BANDS",
    "ORIGIN_YEAR",
    "STREAMS",
    "WAVELENGTHS_NM",
    "Landscape",
    "combine",
    "hash_normal",
    "reflectance",
    "stream_key",
]

#: Absolute month 0 is January of this year; the weather series start there.
ORIGIN_YEAR = 1950
#: Hyperspectral bands, evenly spaced over 400-2500 nm (AVIRIS-NG covers 380-2510 nm).
N_BANDS = 64
WAVELENGTHS_NM = np.linspace(400.0, 2500.0, N_BANDS)
_TILE = 64

#: Stream numbers that keep every random draw independent of every other.
STREAMS = {
    name: i
    for i, name in enumerate(
        [
            "temperature",
            "precipitation",
            "cloud",
            "reanalysis",
            "lst",
            "ndvi",
            "soil_moisture",
            "sar",
            "dem",
            "wetmap",
            "socmap",
            "hyper",
            "forest",
            "wetland",
            "peat",
            "ndvi_max",
            "spectra",
            "brooks",
            "alaska_range",
            "lowland",
            "relief",
            "maat",
            "amplitude",
            "treeline",
            "greenness",
            "n_thaw",
        ],
        start=100,
    )
}


def _wave(kx, ky, phase, yy, xx):
    """cos(kx x + ky y + phase), expanded so a column of y and a row of x cost one axis each."""
    along_x = kx * np.asarray(xx) + phase
    along_y = ky * np.asarray(yy)
    return np.cos(along_x) * np.cos(along_y) - np.sin(along_x) * np.sin(along_y)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class Landscape:
    """The synthetic world's surface and weather generator.

    Parameters
    ----------
    seed
        The world's seed.
    n_months
        Length of the weather series, in months from January of :data:`ORIGIN_YEAR`.
    """

    def __init__(self, seed: int, n_months: int) -> None:
        self.seed = int(seed)
        self.n_months = int(n_months)

    # -- smooth fields ---------------------------------------------------------------------------

    def _waves(self, name: str, n: int, shortest: float, longest: float):
        rng = np.random.default_rng([self.seed, 10, STREAMS[name]])
        wavelength = np.exp(rng.uniform(np.log(shortest), np.log(longest), n))
        angle = rng.uniform(0, 2 * np.pi, n)
        k = 2 * np.pi / wavelength
        return k * np.cos(angle), k * np.sin(angle), rng.uniform(0, 2 * np.pi, n)

    def smooth(self, name: str, yy, xx, shortest=60e3, longest=600e3, n=8):
        """A smooth random field of unit variance over projected coordinates (metres).

        ``yy`` and ``xx`` broadcast against each other: a column of y and a row of x give the
        grid at the cost of its two axes.
        """
        kx, ky, phase = self._waves(name, n, shortest, longest)
        out = np.zeros(np.broadcast_shapes(np.shape(yy), np.shape(xx)), np.float64)
        for i in range(n):
            out += _wave(kx[i], ky[i], phase[i], yy, xx)
        return (out * np.sqrt(2.0 / n)).astype(np.float32)

    # -- weather ---------------------------------------------------------------------------------

    _WEATHER: ClassVar[dict[str, tuple[int, float, float, float]]] = {
        # name: (modes, shortest, longest wavelength in m, lag-1 correlation)
        "temperature": (6, 1.0e6, 4.0e6, 0.3),
        "precipitation": (6, 3.0e5, 1.5e6, 0.2),
        "cloud": (8, 2.0e5, 1.0e6, 0.1),
        "reanalysis": (4, 1.5e5, 6.0e5, 0.5),
    }

    @cached_property
    def _amplitudes(self) -> dict[str, np.ndarray]:
        out = {}
        month = np.arange(self.n_months) % 12
        for name, (n, _, _, phi) in self._WEATHER.items():
            rng = np.random.default_rng([self.seed, 20, STREAMS[name]])
            shocks = rng.standard_normal((self.n_months, n))
            series = np.empty_like(shocks)
            series[0] = shocks[0]
            for t in range(1, self.n_months):
                series[t] = phi * series[t - 1] + np.sqrt(1 - phi**2) * shocks[t]
            if name == "temperature":
                # Winters vary more than summers (3 degC vs 1 degC), and whole years wander too.
                sd = 2.0 + 1.0 * np.cos(2 * np.pi * month / 12)
                yearly = rng.standard_normal((self.n_months // 12 + 1, n))[
                    np.arange(self.n_months) // 12
                ]
                series = sd[:, None] * series + 0.6 * yearly
            if name == "cloud":
                # Late summer and autumn are the cloudiest months over Arctic Alaska.
                offset = np.where(np.isin(month, [6, 7, 8, 9]), 0.3, -0.3)
                series = np.concatenate([series, offset[:, None] * np.sqrt(n / 2)], axis=1)
            out[name] = series.astype(np.float32)
        return out

    def basis(self, name: str, yy, xx) -> np.ndarray:
        """The spatial modes (modes x ny x nx) of weather anomaly ``name`` on cells ``(yy, xx)``."""
        n, shortest, longest, _ = self._WEATHER[name]
        kx, ky, phase = self._waves(name, n, shortest, longest)
        out = np.empty((n, *np.broadcast_shapes(np.shape(yy), np.shape(xx))), np.float32)
        for i in range(n):
            out[i] = _wave(kx[i], ky[i], phase[i], yy, xx) * np.sqrt(2.0 / n)
        return out

    def amplitudes(self, name: str, months: np.ndarray) -> np.ndarray:
        """Mode amplitudes (months x modes, plus a uniform offset for cloud) of anomaly ``name``."""
        if np.max(months) >= self.n_months:
            raise ValueError("month beyond the landscape's weather series")
        return self._amplitudes[name][months]

    def anomaly(self, name: str, months: np.ndarray, yy, xx) -> np.ndarray:
        """Weather anomaly ``name`` for absolute ``months`` on the cells at ``(yy, xx)``."""
        return combine(self.amplitudes(name, months), self.basis(name, yy, xx))

    # -- small-scale noise -----------------------------------------------------------------------

    def noise(self, name: str, months, y0: int, x0: int, shape: tuple[int, int]) -> np.ndarray:
        """Standard normal noise on grid cells ``y0:y0+ny, x0:x0+nx`` (and ``months``, if given).

        Drawn in fixed 64 x 64 tiles of the grid and whole years, each from its own seed, so a
        value does not depend on the block that asks for it.
        """
        ny, nx = shape
        stream = STREAMS[name]
        ty0, ty1 = y0 // _TILE, (y0 + ny - 1) // _TILE + 1
        tx0, tx1 = x0 // _TILE, (x0 + nx - 1) // _TILE + 1
        if months is None:
            years, first = [None], 0
        else:
            months = np.asarray(months)
            years = range(int(months.min()) // 12, int(months.max()) // 12 + 1)
            first = years[0] * 12
        depth = 1 if months is None else 12
        tiles = np.empty((len(years) * depth, (ty1 - ty0) * _TILE, (tx1 - tx0) * _TILE), np.float32)
        for i, year in enumerate(years):
            for ty in range(ty0, ty1):
                for tx in range(tx0, tx1):
                    key = [self.seed, 30, stream, ty, tx] + ([] if year is None else [year])
                    draw = np.random.default_rng(key).standard_normal(
                        (depth, _TILE, _TILE), np.float32
                    )
                    tiles[
                        i * depth : (i + 1) * depth,
                        (ty - ty0) * _TILE : (ty - ty0 + 1) * _TILE,
                        (tx - tx0) * _TILE : (tx - tx0 + 1) * _TILE,
                    ] = draw
        oy, ox = y0 - ty0 * _TILE, x0 - tx0 * _TILE
        if months is None:
            return tiles[0, oy : oy + ny, ox : ox + nx]
        return tiles[months - first, oy : oy + ny, ox : ox + nx]

    # -- land surface ----------------------------------------------------------------------------

    def fields(
        self, yy, xx, lat, y0: int, x0: int, smooth: bool = False, memo: dict | None = None
    ) -> dict[str, np.ndarray]:
        """Climate normals, terrain, soils, vegetation and ecosystem parameters of the cells.

        With ``smooth=True`` the cell-scale heterogeneity is left out: the coarse maps a process
        model runs on. Pass the same ``memo`` dict to calls on the same cells to share the work.
        """
        memo = {} if memo is None else memo

        def f(name, **kw):
            if name not in memo:
                memo[name] = self.smooth(name, yy, xx, **kw)
            return memo[name]

        shape = np.broadcast_shapes(np.shape(yy), np.shape(xx))

        def rough(name, scale):
            return 0.0 if smooth else scale * self.noise(name, None, y0, x0, shape)

        ridge = lambda centre, width: np.exp(-(((lat - centre) / width) ** 2))  # noqa: E731
        brooks = 1300 * (0.7 + 0.3 * f("brooks")) * ridge(68.2, 0.45)
        alaska_range = 1800 * (0.6 + 0.4 * f("alaska_range")) * ridge(63.2, 0.35)
        lowland = 150 + 80 * f("lowland", shortest=40e3, longest=300e3)
        relief = 1 + 0.3 * f("relief", shortest=20e3, longest=80e3)
        elevation = np.maximum((lowland + brooks + alaska_range) * relief, 0)

        maat = -2.5 - 1.292 * (lat - 64.8) - 0.0065 * (elevation - 150) + 0.5 * f("maat")
        amplitude = 20.0 - 0.66 * (lat - 64.8) + 0.5 * f("amplitude")
        treeline = 67.8 + 0.4 * f("treeline", longest=1.0e6)
        forest = _sigmoid((treeline - lat) / 0.35) * _sigmoid((800 - elevation) / 120)
        forest = np.clip(forest + rough("forest", 0.05), 0, 1)
        wetland = (
            0.12
            + 0.5 * _sigmoid((lat - 69.3) / 0.3)
            + 0.12 * f("wetland", shortest=30e3, longest=300e3)
            - 0.0003 * np.maximum(elevation - 150, 0)
        )
        wetland = np.clip(wetland + rough("wetland", 0.06), 0, 0.95)
        peat = 0.15 + 0.7 * wetland + 0.08 * f("peat") + 0.08 * forest
        peat = np.clip(peat + rough("peat", 0.05), 0.05, 0.95)
        ndvi_max = 0.58 + 0.22 * forest - 0.15 * np.clip((elevation - 700) / 800, 0, 1)
        ndvi_max = np.clip(ndvi_max + 0.04 * f("greenness") + rough("ndvi_max", 0.02), 0.2, 0.9)
        bare = np.clip((elevation - 900) / 900, 0, 0.8)

        out = {
            "elevation": elevation,
            "maat": maat,
            "amplitude": amplitude,
            "annual_precip": 150 + 250 * _sigmoid((67.5 - lat) / 0.8) + 0.15 * elevation,
            "forest": forest,
            "tundra": forest < 0.5,
            "wetland": wetland,
            "peat": peat,
            "bare": bare,
            # Thawed conductivity (W m-1 K-1) and water content mix organic and mineral soil.
            "conductivity": 0.35 * peat + 1.2 * (1 - peat),
            "water_content": 0.8 * peat + 0.35 * (1 - peat),
            # Summer n-factor: shaded, mossy forest floors thaw less than open tundra.
            "n_thaw": 0.75 - 0.15 * forest + 0.05 * f("n_thaw"),
            "ndvi_max": ndvi_max,
            "greenness": (ndvi_max - 0.08) / 0.75,
            "pmax": 5.0 + 4.0 * forest,
            "r10": 1.0 + 0.8 * peat + 0.5 * forest,
            # CH4 at 10 degC (nmol m-2 s-1), set so that July fluxes at 3-5 degC in the active
            # layer come near taiga ~11, moist tundra ~31, wet tundra ~90 mg m-2 d-1 (x 0.722).
            "f10": 8.0 + 160.0 * wetland**1.3,
            "q10": np.float32(3.0),
            "zero_curtain": np.float32(0.75),
            "soc": 10.0 + 55.0 * peat,
        }
        return {
            k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype != bool else v)
            for k, v in out.items()
        }


def combine(amplitude, basis):
    """Sum of spatial modes ``basis`` (modes x ny x nx) scaled by ``amplitude`` (months x modes).

    An explicit sum in mode order, so every cell adds the same terms in the same order whatever
    the block; a column beyond the modes is a spatially uniform offset. Works on NumPy and JAX
    arrays alike.
    """
    n = basis.shape[0]
    out = amplitude[:, 0, None, None] * basis[0]
    for i in range(1, n):
        out = out + amplitude[:, i, None, None] * basis[i]
    if amplitude.shape[1] > n:
        out = out + (amplitude[:, n] * np.float32(np.sqrt(2.0 / n)))[:, None, None]
    return out


def _mix(h):
    """An avalanche mix of 32-bit unsigned integers (NumPy or JAX)."""
    h = h ^ (h >> 16)
    h = h * np.uint32(0x7FEB352D)
    h = h ^ (h >> 15)
    h = h * np.uint32(0x846CA68B)
    return h ^ (h >> 16)


def stream_key(seed: int, stream: str) -> np.uint32:
    """The 32-bit key of random stream ``stream`` of world ``seed`` for :func:`hash_normal`."""
    value = (int(seed) * 0x9E3779B1 + STREAMS[stream]) & 0xFFFFFFFF
    return _mix(np.array([value], np.uint32))[0]


def hash_normal(xp, key, months, rows, cols):
    """Standard normal noise (months x rows x cols) as a pure function of each cell's indices.

    ``key`` comes from :func:`stream_key`, ``months`` are absolute month numbers and
    ``rows``/``cols`` global grid indices: a value depends on its own (key, month, row, column)
    alone, never on the block that asks, so it can be drawn inside compiled code. One hashed
    uniform (24 bits, open interval) goes through the normal quantile function, which compiles
    to a polynomial (a Box-Muller cosine costs five times as much on a CPU). ``xp`` is ``numpy``
    or ``jax.numpy``.
    """
    u32 = np.uint32
    m = _mix(xp.asarray(months).astype(u32) ^ key)
    r = xp.asarray(rows).astype(u32) * u32(0x85EBCA6B)
    c = xp.asarray(cols).astype(u32) * u32(0xC2B2AE35)
    h = _mix(_mix(m[:, None, None] ^ r[None, :, None]) ^ c[None, None, :])
    scale = np.float32(2.0**-24)
    u = (h >> 8).astype(xp.float32) * scale + scale / 2
    if xp is np:
        return special.ndtri(u).astype(np.float32)
    from jax.scipy.special import ndtri

    return ndtri(u)


def _band(wl, centre, width):
    return np.exp(-0.5 * ((wl - centre) / width) ** 2)


def _endmembers() -> np.ndarray:
    """Reflectance spectra (5 x bands) of forest, tundra, open water, peat and mineral soil."""
    wl = WAVELENGTHS_NM / 1000.0  # um
    edge = _sigmoid((wl - 0.72) / 0.015)
    water_dips = 1 - 0.7 * _band(wl, 1.45, 0.05) - 0.85 * _band(wl, 1.94, 0.06)
    swir = np.clip(1 - 0.35 * (wl - 1.3), 0.2, 1)

    def vegetation(green, red, nir):
        visible = red + (green - red) * _band(wl, 0.55, 0.04) + 0.01 * _band(wl, 0.45, 0.03)
        plateau = nir * np.where(wl < 1.3, 1.0, swir)
        return (visible * (1 - edge) + plateau * edge) * water_dips

    forest = vegetation(0.06, 0.03, 0.28)
    tundra = vegetation(0.08, 0.05, 0.36)
    water = 0.06 * np.exp(-(wl - 0.45) / 0.15) + 0.005
    peat = (0.03 + 0.05 * (wl - 0.4) / 2.1) * water_dips**0.5
    mineral = (0.08 + 0.25 * np.clip((wl - 0.4) / 1.2, 0, 1)) * (1 - 0.2 * _band(wl, 2.2, 0.04))
    return np.stack([forest, tundra, water, peat, mineral]).astype(np.float32)


def reflectance(land: Landscape, fields: dict[str, np.ndarray], y0: int, x0: int) -> np.ndarray:
    """Hyperspectral surface reflectance (bands x ny x nx) of a summer campaign mosaic.

    Each cell mixes five endmember spectra in proportions set by its forest cover, wetland
    fraction, bare ground and peat: a few latent surface properties behind many bands.
    """
    forest, wetland, bare, peat = (fields[k] for k in ("forest", "wetland", "bare", "peat"))
    vegetated = (1 - 0.5 * wetland) * (1 - bare)
    soil = 1 - vegetated - 0.5 * wetland
    abundance = np.stack(
        [
            vegetated * forest,
            vegetated * (1 - forest),
            0.5 * wetland,
            soil * peat,
            soil * (1 - peat),
        ]
    )
    spectra = _endmembers()
    shape = forest.shape
    # An explicit sum rather than a BLAS product: the same terms in the same order in every block.
    mix = sum(spectra[j][:, None, None] * abundance[j][None] for j in range(len(spectra)))
    brightness = 1 + 0.03 * land.noise("hyper", None, y0, x0, shape)
    return (
        mix * brightness + 0.004 * land.noise("spectra", np.arange(N_BANDS), y0, x0, shape)
    ).astype(np.float32)
