"""The projected grid of a cube: EPSG:3338 (NAD83 / Alaska Albers) cells, lat/lon beside them."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyproj
import xarray as xr

__all__ = [
    "CRS",
    "DEFAULT_CENTER",
    "DEFAULT_EXTENT",
    "axes",
    "grid",
    "grid_from_axes",
    "latlon",
    "locate",
    "spatial_ref",
]

#: The cube's projection.
CRS = "EPSG:3338"
#: Centre of the default Alaska domain in EPSG:3338 metres (about 67.5 N, 151 W).
DEFAULT_CENTER: tuple[float, float] = (130_000.0, 1_950_000.0)
#: Length of the default domain's longer side in metres.
DEFAULT_EXTENT = 1_000_000.0


@lru_cache(maxsize=4)
def _to_lonlat(crs: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


@lru_cache(maxsize=4)
def _from_lonlat(crs: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def axes(
    ny: int,
    nx: int,
    resolution: float | None = None,
    center: tuple[float, float] = DEFAULT_CENTER,
) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre coordinates ``(y, x)`` in metres; ``y`` runs north to south like a raster.

    ``resolution`` defaults to the one that makes the longer side :data:`DEFAULT_EXTENT` long,
    so grids of any size cover the same stretch of Alaska.
    """
    if ny < 1 or nx < 1:
        raise ValueError(f"ny and nx must be positive, got ny={ny}, nx={nx}")
    res = DEFAULT_EXTENT / max(ny, nx) if resolution is None else float(resolution)
    if not res > 0:
        raise ValueError(f"resolution must be positive metres, got {resolution}")
    cx, cy = center
    x = cx + (np.arange(nx) - (nx - 1) / 2) * res
    y = cy - (np.arange(ny) - (ny - 1) / 2) * res
    return y, x


def latlon(y: np.ndarray, x: np.ndarray, crs: str = CRS) -> tuple[np.ndarray, np.ndarray]:
    """2-D latitude and longitude (degrees) of the cells on the ``y`` x ``x`` grid."""
    xx, yy = np.meshgrid(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    lon, lat = _to_lonlat(crs).transform(xx, yy)
    return lat, lon


def spatial_ref(crs: str = CRS) -> xr.DataArray:
    """A scalar CF grid-mapping variable for ``crs`` (the ``grid_mapping`` of every variable)."""
    return xr.DataArray(np.int32(0), attrs=pyproj.CRS(crs).to_cf())


def grid(
    ny: int,
    nx: int,
    resolution: float | None = None,
    center: tuple[float, float] = DEFAULT_CENTER,
    crs: str = CRS,
) -> xr.Dataset:
    """An empty dataset of the grid's coordinates: ``y``, ``x``, 2-D ``lat``/``lon`` and CRS."""
    y, x = axes(ny, nx, resolution, center)
    return grid_from_axes(y, x, crs)


def grid_from_axes(y: np.ndarray, x: np.ndarray, crs: str = CRS) -> xr.Dataset:
    """Like :func:`grid`, for given cell-centre coordinates."""
    lat, lon = latlon(y, x, crs)
    return xr.Dataset(
        coords={
            "y": ("y", np.asarray(y, dtype=float), _axis_attrs("y")),
            "x": ("x", np.asarray(x, dtype=float), _axis_attrs("x")),
            "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
            "spatial_ref": spatial_ref(crs),
        }
    )


def _axis_attrs(dim: str) -> dict[str, str]:
    name = "projection_y_coordinate" if dim == "y" else "projection_x_coordinate"
    return {"units": "m", "standard_name": name, "axis": dim.upper()}


def locate(
    ds: xr.Dataset, lat: float | np.ndarray, lon: float | np.ndarray, crs: str = CRS
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(iy, ix)`` of the cells that hold the points ``(lat, lon)``.

    Raises
    ------
    ValueError
        If a point falls outside the grid (farther than half a cell from its edge cells).
    """
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    px, py = _from_lonlat(crs).transform(lon, lat)
    indices = []
    for dim, p in (("y", py), ("x", px)):
        coord = np.asarray(ds[dim].values, dtype=float)
        step = abs(coord[1] - coord[0]) if coord.size > 1 else np.inf
        i = np.abs(coord[None, :] - p[:, None]).argmin(axis=1)
        outside = np.abs(coord[i] - p) > step / 2 * (1 + 1e-9)
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"point lat={lat[k]:.4f}, lon={lon[k]:.4f} lies outside the grid "
                f"({dim} = {p[k]:.0f} m, grid spans {coord.min():.0f} to {coord.max():.0f} m)"
            )
        indices.append(i)
    return indices[0], indices[1]
