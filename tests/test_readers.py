"""Readers of real tables: small files in each format, written from factories with known values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import xarray as xr

from geocryo.cube import SENTINELS, validate
from geocryo.grid import CRS, grid, locate
from geocryo.readers import (
    GEOCRYOAI_SOURCE,
    read_ameriflux,
    read_calm,
    read_geocryoai,
)

RES = 1000.0


@pytest.fixture(scope="module")
def target() -> xr.Dataset:
    """A 6 x 5 grid of 1-km cells in the default Alaska domain."""
    return grid(6, 5, resolution=RES)


def lat_lon(ds: xr.Dataset, iy: int, ix: int, dy: float = 0.0, dx: float = 0.0):
    """Degrees of a point ``dy``, ``dx`` metres from the centre of cell ``(iy, ix)``."""
    to_lonlat = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(ds["x"].values[ix] + dx, ds["y"].values[iy] + dy)
    return float(lat), float(lon)


def months(start: str, end: str) -> np.ndarray:
    return pd.date_range(start, end, freq="MS").to_numpy().astype("datetime64[ns]")


def only_finite(da: xr.DataArray) -> dict[tuple[str, int, int], float]:
    """``{(YYYY-MM, iy, ix): value}`` of every non-NaN value of a (time, y, x) variable."""
    it, iy, ix = np.nonzero(np.isfinite(da.values))
    stamps = pd.DatetimeIndex(da["time"].values[it]).strftime("%Y-%m")
    return {
        (s, int(j), int(i)): float(da.values[t, j, i])
        for s, t, j, i in zip(stamps, it, iy, ix, strict=True)
    }


def check_common(out: xr.Dataset, modality: str, source: str) -> None:
    validate(out, scan=True)
    assert out["time"].dtype == np.dtype("datetime64[ns]")
    assert {"lat", "lon", "spatial_ref"} <= set(out.coords)
    for name, var in out.data_vars.items():
        assert var.dims == ("time", "y", "x"), name
        assert var.attrs["modality"] == modality
        assert var.attrs["source"] == source
        assert var.attrs["grid_mapping"] == "spatial_ref"
        assert var.attrs["units"] and var.attrs["long_name"]
        assert not np.isin(var.values, SENTINELS).any()


# ---------------------------------------------------------------------------------------------
# GeoCryoAI


def write_geocryoai(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows, columns=["datetime", "lat", "lon", "alt", "fc", "fch4"]).to_csv(
        path, index=False
    )
    return path


@pytest.fixture
def geocryoai_file(tmp_path: Path, target: xr.Dataset) -> Path:
    a, b = lat_lon(target, 1, 2), lat_lon(target, 4, 0, dy=300.0, dx=-350.0)
    rows = [
        {"datetime": "2015-07-01", "lat": a[0], "lon": a[1], "alt": 45.0, "fc": 1.5, "fch4": 20.0},
        {"datetime": "2015-09-01", "lat": a[0], "lon": a[1], "alt": 50.0, "fc": -9999, "fch4": 30},
        {"datetime": "2015-07-15", "lat": b[0], "lon": b[1], "alt": 80.0, "fc": -2.0, "fch4": 5.0},
    ]
    return write_geocryoai(tmp_path / "geocryoai.csv", rows)


@pytest.mark.filterwarnings("error")
def test_geocryoai_values_land_in_their_cells(geocryoai_file: Path, target: xr.Dataset) -> None:
    out = read_geocryoai(geocryoai_file, target)

    check_common(out, "process_model", GEOCRYOAI_SOURCE)
    np.testing.assert_array_equal(out["time"].values, months("2015-07", "2015-09"))
    np.testing.assert_allclose(out["y"], target["y"])
    (ya,), (xa,) = locate(target, *lat_lon(target, 1, 2))
    (yb,), (xb,) = locate(target, *lat_lon(target, 4, 0, dy=300.0, dx=-350.0))
    assert (ya, xa, yb, xb) == (1, 2, 4, 0)
    # mid-month dates land on their month's start; August has no rows and stays NaN
    assert only_finite(out["alt"]) == {
        ("2015-07", 1, 2): 45.0,
        ("2015-09", 1, 2): 50.0,
        ("2015-07", 4, 0): 80.0,
    }
    assert only_finite(out["co2_flux"]) == {("2015-07", 1, 2): 1.5, ("2015-07", 4, 0): -2.0}
    assert only_finite(out["ch4_flux"]) == {
        ("2015-07", 1, 2): 20.0,
        ("2015-09", 1, 2): 30.0,
        ("2015-07", 4, 0): 5.0,
    }
    assert out["alt"].attrs["units"] == "cm"
    assert out["co2_flux"].attrs["units"] == "umol m-2 s-1"
    assert out["ch4_flux"].attrs["units"] == "nmol m-2 s-1"


def test_geocryoai_rows_sharing_a_cell_average(tmp_path: Path, target: xr.Dataset) -> None:
    p, q = lat_lon(target, 2, 3, dx=-300.0), lat_lon(target, 2, 3, dy=250.0, dx=300.0)
    rows = [
        {"datetime": "2010-06", "lat": p[0], "lon": p[1], "alt": 30.0, "fc": 1.0, "fch4": 10.0},
        {"datetime": "2010-06", "lat": q[0], "lon": q[1], "alt": 40.0, "fc": 2.0, "fch4": -9999},
    ]
    out = read_geocryoai(write_geocryoai(tmp_path / "g.csv", rows), target)

    assert only_finite(out["alt"]) == {("2010-06", 2, 3): 35.0}
    assert only_finite(out["co2_flux"]) == {("2010-06", 2, 3): 1.5}
    assert only_finite(out["ch4_flux"]) == {("2010-06", 2, 3): 10.0}  # the fill value is no value


def test_geocryoai_units_are_converted(tmp_path: Path, target: xr.Dataset) -> None:
    p = lat_lon(target, 0, 0)
    rows = [{"datetime": "2012-08", "lat": p[0], "lon": p[1], "alt": 0.62, "fc": 2.0, "fch4": 10}]
    path = write_geocryoai(tmp_path / "g.csv", rows)

    units = {"alt": "m", "fc": "g C m-2 d-1", "fch4": "mg CH4 m-2 day-1"}
    out = read_geocryoai(path, target, units=units)

    # 0.62 m = 62 cm; 2 g C m-2 d-1 = 2 / 12.011 mol / 86400 s; 10 mg CH4 = 10e-3 / 16.043 mol
    np.testing.assert_allclose(out["alt"][0, 0, 0], 62.0, rtol=1e-6)
    np.testing.assert_allclose(out["co2_flux"][0, 0, 0], 2e6 / 12.011 / 86400, rtol=1e-6)
    np.testing.assert_allclose(out["ch4_flux"][0, 0, 0], 10e6 / 16.043 / 86400, rtol=1e-6)
    # 10 mg m-2 d-1, at 0.722 nmol m-2 s-1 per mg m-2 d-1
    np.testing.assert_allclose(out["ch4_flux"][0, 0, 0], 7.214, rtol=1e-3)
    with pytest.raises(ValueError, match="'furlong' of column 'alt' is not supported"):
        read_geocryoai(path, target, units={"alt": "furlong"})


@pytest.mark.filterwarnings("error")
def test_geocryoai_without_grid_snaps_a_covering_grid(tmp_path: Path, target: xr.Dataset) -> None:
    points = [lat_lon(target, 0, 0, dy=120.0, dx=-80.0), lat_lon(target, 5, 4, dx=410.0)]
    rows = [
        {"datetime": "2001-01-01", "lat": lat, "lon": lon, "alt": 0.0, "fc": 0.2, "fch4": 1.0}
        for lat, lon in points
    ]
    path = write_geocryoai(tmp_path / "g.csv", rows)

    out = read_geocryoai(path, resolution=500.0)

    for dim in ("y", "x"):
        steps = np.diff(out[dim].values)
        np.testing.assert_allclose(np.abs(steps), 500.0)
        np.testing.assert_allclose(out[dim].values % 500.0, 0.0, atol=1e-6)
    assert out["y"].values[0] > out["y"].values[-1]  # north to south
    assert (out.sizes["y"], out.sizes["x"]) == (11, 10)  # 5 km by 4 km of corner to corner
    cells = [locate(out, lat, lon) for lat, lon in points]
    assert sorted(only_finite(out["co2_flux"])) == sorted(
        ("2001-01", int(iy[0]), int(ix[0])) for iy, ix in cells
    )
    assert sorted(only_finite(out["alt"]).values()) == [0.0, 0.0]  # frozen is 0, not missing
    check_common(out, "process_model", GEOCRYOAI_SOURCE)


def test_geocryoai_pixels_sharing_a_snapped_cell_are_warned(
    tmp_path: Path, target: xr.Dataset
) -> None:
    # two pixels 900 m apart (x = 49 700 and 50 600 m) round into the 2-km cell at 50 000 m
    points = [lat_lon(target, 2, 2, dx=-300.0), lat_lon(target, 2, 2, dx=600.0)]
    rows = [
        {"datetime": "2001-07", "lat": lat, "lon": lon, "alt": alt, "fc": 1.0, "fch4": 1.0}
        for (lat, lon), alt in zip(points, (40.0, 60.0), strict=True)
    ]
    path = write_geocryoai(tmp_path / "g.csv", rows)

    with pytest.warns(UserWarning, match="1 location.* share a 2000 m cell"):
        out = read_geocryoai(path, resolution=2000.0)
    assert list(only_finite(out["alt"]).values()) == [50.0]


def test_geocryoai_points_outside_are_dropped_with_a_count(
    geocryoai_file: Path, target: xr.Dataset
) -> None:
    table = pd.read_csv(geocryoai_file)
    far = {"datetime": "2015-08-01", "lat": 61.2, "lon": -149.9, "alt": 99.0, "fc": 9, "fch4": 9}
    path = write_geocryoai(geocryoai_file, [*table.to_dict("records"), far])  # Anchorage

    with pytest.warns(UserWarning, match=r"1 of 3 location\(s\) \(1 row\(s\)\) lie outside"):
        out = read_geocryoai(path, target)
    assert 99.0 not in out["alt"].values
    assert out.sizes["time"] == 3  # the dropped August row still spans nothing new

    write_geocryoai(path, [far])
    with pytest.raises(ValueError, match="all 1 location"):
        read_geocryoai(path, target)


def test_geocryoai_errors(tmp_path: Path, target: xr.Dataset) -> None:
    with pytest.raises(FileNotFoundError, match=r"10\.3334/ORNLDAAC/2371"):
        read_geocryoai(tmp_path / "absent.csv", target)

    pd.DataFrame({"datetime": ["2015-07-01"], "latitude": [65.0], "alt": [3.0]}).to_csv(
        tmp_path / "nolon.csv", index=False
    )
    with pytest.raises(ValueError, match=r"missing required column.*'lon'"):
        read_geocryoai(tmp_path / "nolon.csv", target)

    p = lat_lon(target, 1, 1)
    rows = [{"datetime": "2015-07-01", "lat": p[0], "lon": p[1], "alt": -9999, "fc": None}]
    with pytest.raises(ValueError, match="no valid data"):
        read_geocryoai(write_geocryoai(tmp_path / "empty.csv", rows), target)


def test_geocryoai_reads_parquet(geocryoai_file: Path, target: xr.Dataset) -> None:
    parquet = geocryoai_file.with_suffix(".parquet")
    pd.read_csv(geocryoai_file).to_parquet(parquet)

    from_parquet, from_csv = read_geocryoai(parquet, target), read_geocryoai(geocryoai_file, target)
    xr.testing.assert_identical(from_parquet.drop_attrs(), from_csv.drop_attrs())


# ---------------------------------------------------------------------------------------------
# AmeriFlux BASE


def write_ameriflux(
    path: Path, step: int = 30, end: str = "2016-03-08", comments: bool = True
) -> Path:
    """Records from 2016-01-01 to ``end`` (exclusive) with these known monthly contents.

    FC: January alternates 2 and 3 (mean 2.5) with a day of -9999 in the middle; February is
    valid on its first 10 days only (value 4.0), -9999 after. FCH4: 10 in January, 20 in
    February. Shallow soil sensors TS_1_1_1 (-5 Jan, -9999 Feb) and its replicate TS_1_1_2
    (-3 Jan, -2 Feb); a deeper TS_1_2_1 (-10) is ignored. FC_PI_F (gap-filled, 999) is ignored.
    March has rows for its first 7 days only.
    """
    start = pd.date_range("2016-01-01", end, freq=f"{step}min", inclusive="left")
    january, february = start.month == 1, start.month == 2
    n = len(start)
    fc = np.where(np.arange(n) % 2 == 0, 2.0, 3.0)
    fc[(start >= "2016-01-15") & (start < "2016-01-16")] = -9999
    fc[february] = np.where(start[february].day <= 10, 4.0, -9999)
    table = pd.DataFrame(
        {
            "TIMESTAMP_START": start.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (start + pd.Timedelta(minutes=step)).strftime("%Y%m%d%H%M"),
            "FC": fc,
            "FCH4": np.where(january, 10.0, 20.0),
            "TS_1_1_1": np.where(january, -5.0, -9999),
            "TS_1_1_2": np.where(january, -3.0, -2.0),
            "TS_1_2_1": -10.0,
            "FC_PI_F": 999.0,
        }
    )
    with path.open("w") as file:
        if comments:
            file.write("# Site: US-Tst\n# Version: 1-5\n")
        table.to_csv(file, index=False)
    return path


@pytest.fixture
def site(target: xr.Dataset) -> tuple[float, float]:
    return lat_lon(target, 3, 1, dy=-420.0, dx=150.0)


@pytest.mark.filterwarnings("error")
def test_ameriflux_monthly_means_at_the_site(
    tmp_path: Path, target: xr.Dataset, site: tuple[float, float]
) -> None:
    path = write_ameriflux(tmp_path / "flux.csv")

    out = read_ameriflux(path, target, lat=site[0], lon=site[1])

    check_common(out, "in_situ", "AmeriFlux BASE US-Tst")
    assert tuple(int(i[0]) for i in locate(target, *site)) == (3, 1)
    np.testing.assert_array_equal(out["time"].values, months("2016-01", "2016-03"))
    # February's FC covers 10 of 29 days (34 %) and March's rows 7 of 31 days: both NaN
    assert only_finite(out["co2_flux"]) == {("2016-01", 3, 1): 2.5}
    assert only_finite(out["ch4_flux"]) == {("2016-01", 3, 1): 10.0, ("2016-02", 3, 1): 20.0}
    assert only_finite(out["soil_temperature"]) == {
        ("2016-01", 3, 1): -4.0,  # mean of the two shallow replicates, deeper sensor ignored
        ("2016-02", 3, 1): -2.0,  # the replicate that worked
    }
    assert out["soil_temperature"].attrs["units"] == "degC"
    assert out.attrs["site"] == "US-Tst"


def test_ameriflux_coverage_threshold(
    tmp_path: Path, target: xr.Dataset, site: tuple[float, float]
) -> None:
    path = write_ameriflux(tmp_path / "flux.csv")
    lenient = read_ameriflux(path, target, *site, min_coverage=0.3)
    strict = read_ameriflux(path, target, *site, min_coverage=0.35)

    # 480 valid half-hours of 1392 in February 2016: 0.345
    assert lenient["co2_flux"].sel(time="2016-02-01")[3, 1] == 4.0
    assert np.isnan(strict["co2_flux"].sel(time="2016-02-01")[3, 1])
    assert np.isnan(lenient["co2_flux"].sel(time="2016-03-01")[3, 1])  # 7 of 31 days
    short = write_ameriflux(tmp_path / "short.csv", end="2016-01-10")  # 9 days of January
    with pytest.raises(ValueError, match="no month has 50% of its records valid"):
        read_ameriflux(short, target, *site)


def test_ameriflux_hourly_records(
    tmp_path: Path, target: xr.Dataset, site: tuple[float, float]
) -> None:
    path = write_ameriflux(tmp_path / "AMF_US-Abc_BASE_HR_2-5.csv", step=60, comments=False)

    out = read_ameriflux(path, target, *site, min_coverage=0.3)

    assert out["co2_flux"].attrs["source"] == "AmeriFlux BASE US-Abc"  # from the file name
    assert only_finite(out["co2_flux"]) == {("2016-01", 3, 1): 2.5, ("2016-02", 3, 1): 4.0}


def test_ameriflux_on_a_grid_with_time(
    tmp_path: Path, target: xr.Dataset, site: tuple[float, float]
) -> None:
    cube_grid = target.assign_coords(time=months("2015-12", "2016-01"))
    path = write_ameriflux(tmp_path / "flux.csv")

    with pytest.warns(UserWarning, match="outside the grid's months 2015-12 to 2016-01"):
        out = read_ameriflux(path, cube_grid, *site)

    np.testing.assert_array_equal(out["time"].values, months("2015-12", "2016-01"))
    assert only_finite(out["ch4_flux"]) == {("2016-01", 3, 1): 10.0}


def test_ameriflux_errors(tmp_path: Path, target: xr.Dataset, site: tuple[float, float]) -> None:
    path = write_ameriflux(tmp_path / "flux.csv")
    with pytest.raises(ValueError, match="pass lat= and lon="):
        read_ameriflux(path, target)
    with pytest.raises(ValueError, match="outside the grid"):
        read_ameriflux(path, target, lat=61.2, lon=-149.9)
    with pytest.raises(FileNotFoundError, match=r"ameriflux\.lbl\.gov"):
        read_ameriflux(tmp_path / "AMF_US-Xyz_BASE_HH_1-5.csv", target, *site)

    pd.read_csv(path, comment="#").drop(columns="TIMESTAMP_START").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing required column.*TIMESTAMP_START"):
        read_ameriflux(path, target, *site)


# ---------------------------------------------------------------------------------------------
# CALM


@pytest.fixture
def calm_file(tmp_path: Path, target: xr.Dataset) -> Path:
    """Sites A1 and A2 share cell (1, 1), B is alone in cell (4, 3).

    2015: A1 40, A2 50 (cell mean 45); B "inundated". 2016: A1 probed twice (30, 34: site mean
    32), A2 50, so the cell holds (32 + 50) / 2 = 41, not the row mean 38; B 60.
    """
    a1, a2 = lat_lon(target, 1, 1), lat_lon(target, 1, 1, dy=-300.0, dx=400.0)
    b = lat_lon(target, 4, 3)
    rows = [
        ("A1", *a1, 2015, "40"),
        ("A2", *a2, 2015, "50"),
        ("B", *b, 2015, "inundated"),
        ("A1", *a1, 2016, "30"),
        ("A1", *a1, 2016, "34"),
        ("A2", *a2, 2016, "50"),
        ("B", *b, 2016, "60"),
        ("B", *b, 2017, "-999"),
    ]
    path = tmp_path / "calm.csv"
    pd.DataFrame(rows, columns=["SITE", "LAT", "LON", "YEAR", "ALT"]).to_csv(path, index=False)
    return path


@pytest.mark.filterwarnings("error")
def test_calm_sites_in_one_cell_average(calm_file: Path, target: xr.Dataset) -> None:
    out = read_calm(calm_file, target)

    check_common(out, "in_situ", "CALM")
    # 2017 holds only a fill value, so the axis ends in 2016
    np.testing.assert_array_equal(out["time"].values, months("2015-08", "2016-08"))
    assert only_finite(out["alt"]) == {
        ("2015-08", 1, 1): 45.0,
        ("2016-08", 1, 1): 41.0,
        ("2016-08", 4, 3): 60.0,
    }


def test_calm_month_and_grid_time(calm_file: Path, target: xr.Dataset) -> None:
    september = read_calm(calm_file, target, month=9)
    assert set(only_finite(september["alt"])) == {
        ("2015-09", 1, 1),
        ("2016-09", 1, 1),
        ("2016-09", 4, 3),
    }

    cube_grid = target.assign_coords(time=months("2016-01", "2016-12"))
    with pytest.warns(UserWarning, match=r"2 record\(s\) outside the grid's months"):
        out = read_calm(calm_file, cube_grid)
    assert out.sizes["time"] == 12
    assert only_finite(out["alt"]) == {("2016-08", 1, 1): 41.0, ("2016-08", 4, 3): 60.0}


def test_calm_errors(tmp_path: Path, calm_file: Path, target: xr.Dataset) -> None:
    with pytest.raises(FileNotFoundError, match="CALM"):
        read_calm(tmp_path / "absent.csv", target)
    with pytest.raises(ValueError, match="month"):
        read_calm(calm_file, target, month=13)
    pd.read_csv(calm_file).drop(columns=["ALT", "YEAR"]).to_csv(calm_file, index=False)
    with pytest.raises(ValueError, match=r"'year'.*'alt'"):
        read_calm(calm_file, target)


# ---------------------------------------------------------------------------------------------
# Onto an existing cube


def test_readers_fill_a_synthetic_cube(tmp_path: Path) -> None:
    from worlds import world

    cube, _ = world("two_years", load=False)
    sites = [
        ("S1", *lat_lon(cube, 2, 5, dx=30e3), 2000, 52.0),
        ("S2", *lat_lon(cube, 6, 1), 2001, 71.0),
    ]
    path = tmp_path / "calm.csv"
    pd.DataFrame(sites, columns=["site", "lat", "lon", "year", "alt"]).to_csv(path, index=False)

    calm = read_calm(path, cube)

    np.testing.assert_array_equal(calm["time"].values, cube["time"].values)
    assert only_finite(calm["alt"]) == {("2000-08", 2, 5): 52.0, ("2001-08", 6, 1): 71.0}
    merged = cube.drop_vars("alt").merge(calm)
    validate(merged)
    xr.testing.assert_identical(merged["lat"], cube["lat"])
