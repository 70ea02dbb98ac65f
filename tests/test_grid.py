"""The EPSG:3338 grid: its axes, its latitudes and longitudes, finding cells, and its CRS."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from geocryo.grid import CRS, axes, grid, grid_from_axes, latlon, locate, spatial_ref

TO_ALBERS = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3338", always_xy=True)
TO_LONLAT = pyproj.Transformer.from_crs("EPSG:3338", "EPSG:4326", always_xy=True)
GEOD = pyproj.Geod(ellps="GRS80")

FAIRBANKS = (64.84, -147.72)
UTQIAGVIK = (71.29, -156.79)
TOOLIK = (68.63, -149.60)
ANCHORAGE = (61.22, -149.90)
JUNEAU = (58.30, -134.42)


def albers(lat: float, lon: float) -> tuple[float, float]:
    """``(y, x)`` in EPSG:3338 metres, from pyproj directly."""
    x, y = TO_ALBERS.transform(lon, lat)
    return y, x


@pytest.mark.parametrize(("ny", "nx"), [(64, 64), (8, 8), (12, 10), (32, 64), (65, 65)])
def test_default_axes_cover_1000_km_on_the_longer_side(ny: int, nx: int) -> None:
    y, x = axes(ny, nx)
    res = 1_000_000.0 / max(ny, nx)

    assert (y.shape, x.shape) == ((ny,), (nx,))
    np.testing.assert_allclose(np.diff(x), res)
    np.testing.assert_allclose(np.diff(y), -res)  # north to south, like a raster
    # edge to edge: the cell centres span one cell less than the domain
    assert max(ny, nx) * res == pytest.approx(1_000_000.0)
    assert (x[-1] - x[0] + res, y[0] - y[-1] + res) == pytest.approx((nx * res, ny * res))


def test_axes_with_a_resolution_and_a_centre() -> None:
    y, x = axes(3, 4, resolution=1000.0, center=(10_000.0, 2_000_000.0))
    np.testing.assert_allclose(x, [8_500.0, 9_500.0, 10_500.0, 11_500.0])
    np.testing.assert_allclose(y, [2_001_000.0, 2_000_000.0, 1_999_000.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ny": 0, "nx": 4}, "ny and nx must be positive, got ny=0"),
        ({"ny": 4, "nx": -1}, "got ny=4, nx=-1"),
        ({"ny": 4, "nx": 4, "resolution": 0.0}, "resolution must be positive metres"),
        ({"ny": 4, "nx": 4, "resolution": -500.0}, "got -500"),
    ],
)
def test_axes_refuse_empty_grids(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        axes(**kwargs)


def test_default_grid_is_centred_near_67_5_n_151_w() -> None:
    y, x = axes(65, 65)  # odd: the middle cell sits on the centre
    cy, cx = albers(67.5, -151.0)

    assert abs(y[32] - cy) < 5_000.0 and abs(x[32] - cx) < 5_000.0
    lat, lon = latlon(y[[32]], x[[32]])
    assert float(lat[0, 0]) == pytest.approx(67.5, abs=0.05)
    assert float(lon[0, 0]) == pytest.approx(-151.0, abs=0.1)


def test_latlon_agrees_with_pyproj() -> None:
    ds = grid(8, 6)
    lon, lat = TO_LONLAT.transform(*np.meshgrid(ds["x"].values, ds["y"].values))

    assert ds["lat"].dims == ("y", "x")
    np.testing.assert_allclose(ds["lat"].values, lat, atol=1e-9)
    np.testing.assert_allclose(ds["lon"].values, lon, atol=1e-9)
    # the first row is the northern edge; east is to the right of the central meridian
    assert ds["lat"].values[0].min() > ds["lat"].values[-1].max()
    assert ds["lon"].values[:, -1].min() > -154.0 > ds["lon"].values[:, 0].max()


@pytest.mark.parametrize("place", [FAIRBANKS, UTQIAGVIK, TOOLIK])
def test_default_grid_holds_the_permafrost_sites(place: tuple[float, float]) -> None:
    ds = grid(64, 64)
    lat, lon = place

    iy, ix = locate(ds, lat, lon)
    iy, ix = int(iy[0]), int(ix[0])

    # the nearest cell centre is within half a diagonal of 15.6 km cells
    _, _, metres = GEOD.inv(lon, lat, ds["lon"].values[iy, ix], ds["lat"].values[iy, ix])
    assert metres < 15_625.0 * np.sqrt(2) / 2
    # and no other centre is nearer (in the projected plane, where the cells are square)
    py, px = albers(lat, lon)
    yy, xx = np.meshgrid(ds["y"].values, ds["x"].values, indexing="ij")
    assert np.unravel_index(np.argmin(np.hypot(yy - py, xx - px)), yy.shape) == (iy, ix)


def test_locate_many_points_at_once() -> None:
    ds = grid(64, 64)
    lats, lons = zip(FAIRBANKS, UTQIAGVIK, TOOLIK, strict=True)

    iy, ix = locate(ds, np.array(lats), np.array(lons))

    assert (iy.shape, ix.shape) == ((3,), (3,))
    for k, place in enumerate((FAIRBANKS, UTQIAGVIK, TOOLIK)):
        assert (iy[k], ix[k]) == tuple(int(i[0]) for i in locate(ds, *place))
    # Utqiagvik is north and west of Fairbanks, so above and left of it on the grid
    assert iy[1] < iy[0] and ix[1] < ix[0]


@pytest.mark.parametrize(
    ("place", "name"),
    [(ANCHORAGE, "lat=61.2200, lon=-149.9000"), (JUNEAU, "lat=58.3000, lon=-134.4200")],
)
def test_locate_refuses_points_outside(place: tuple[float, float], name: str) -> None:
    ds = grid(64, 64)
    with pytest.raises(ValueError, match=f"point {name} lies outside the grid.*grid spans"):
        locate(ds, *place)
    # one point outside refuses the whole batch, and names that point
    with pytest.raises(ValueError, match=f"point {name}"):
        locate(ds, np.array([FAIRBANKS[0], place[0]]), np.array([FAIRBANKS[1], place[1]]))


def test_locate_accepts_half_a_cell_beyond_the_edge_centres() -> None:
    ds = grid(4, 5, resolution=1000.0)
    y, x = ds["y"].values, ds["x"].values

    def at(py: float, px: float) -> tuple[float, float]:
        lon, lat = TO_LONLAT.transform(px, py)
        return lat, lon

    inside = locate(ds, *at(y[0] + 490.0, x[-1] + 490.0))
    assert (int(inside[0][0]), int(inside[1][0])) == (0, 4)
    with pytest.raises(ValueError, match=r"outside the grid.*x = "):
        locate(ds, *at(y[0] - 10.0, x[-1] + 510.0))
    with pytest.raises(ValueError, match=r"outside the grid.*y = "):
        locate(ds, *at(y[-1] - 510.0, x[0]))


def test_grid_dataset_and_its_crs() -> None:
    ds = grid(6, 5, resolution=2000.0)

    assert dict(ds.sizes) == {"y": 6, "x": 5}
    assert list(ds.data_vars) == []
    assert ds["x"].attrs == {"units": "m", "standard_name": "projection_x_coordinate", "axis": "X"}
    assert ds["y"].attrs["standard_name"] == "projection_y_coordinate"
    assert ds["lat"].attrs["units"] == "degrees_north"
    assert ds["lon"].attrs["units"] == "degrees_east"
    assert pyproj.CRS.from_cf(ds["spatial_ref"].attrs) == pyproj.CRS(CRS)

    again = grid_from_axes(ds["y"].values, ds["x"].values)
    np.testing.assert_array_equal(again["lat"].values, ds["lat"].values)


def test_spatial_ref_is_alaska_albers() -> None:
    ref = spatial_ref()
    attrs = ref.attrs

    assert ref.dtype == np.int32 and ref.ndim == 0
    assert attrs["grid_mapping_name"] == "albers_conical_equal_area"
    assert tuple(attrs["standard_parallel"]) == (55.0, 65.0)
    assert attrs["longitude_of_central_meridian"] == -154.0
    assert attrs["latitude_of_projection_origin"] == 50.0
    assert (attrs["false_easting"], attrs["false_northing"]) == (0.0, 0.0)
    assert attrs["horizontal_datum_name"] == "North American Datum 1983"
    assert "NAD83 / Alaska Albers" in attrs["crs_wkt"]
    assert pyproj.CRS.from_cf(attrs).to_epsg() == 3338
