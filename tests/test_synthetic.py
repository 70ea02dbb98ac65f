"""The synthetic Alaska: laziness, determinism, and its physics in numbers."""

import dask
import numpy as np
import pandas as pd
import pytest
import worlds
import xarray as xr

import geocryo
from geocryo import synthetic


@pytest.fixture(scope="module")
def world():
    """Thirty years on a coarse grid, computed once: (cube, truth)."""
    return worlds.world("three_decades")


@pytest.fixture(scope="module")
def annual_alt(world):
    _, truth = world
    return truth.alt.groupby("time.year").max()


def test_cube_is_lazy_and_valid():
    cube, truth = worlds.world("four_years", load=False)
    assert all(isinstance(v.data, dask.array.Array) for v in cube.data_vars.values())
    geocryo.validate(cube)
    geocryo.validate(truth)
    assert set(geocryo.targets(cube).data_vars) == {"alt", "ch4_flux", "co2_flux"}
    assert cube.sizes == {"time": 48, "y": 16, "x": 16, "band": 64}
    modalities = {v.attrs["modality"] for v in cube.data_vars.values()}
    assert modalities == {"in_situ", "remote_sensing", "process_model", "forcing", "static"}
    assert cube.time.dtype == np.dtype("datetime64[ns]")


def test_values_do_not_depend_on_chunking():
    kwargs = {"ny": 20, "nx": 18, "start": "2003-05", "end": "2006-02", "seed": 4}
    a = dask.compute(*synthetic.alaska(**kwargs, chunks={"time": 120, "y": 64, "x": 64}))
    b = dask.compute(*synthetic.alaska(**kwargs, chunks={"time": 7, "y": 6, "x": 5}))
    for left, right in zip(a, b, strict=True):
        xr.testing.assert_identical(left, right)


def test_same_seed_same_world_and_other_seed_another():
    a, _ = synthetic.alaska(ny=8, nx=8, start="2001-01", end="2001-12", seed=1)
    b, _ = synthetic.alaska(ny=8, nx=8, start="2001-01", end="2001-12", seed=1)
    c, _ = synthetic.alaska(ny=8, nx=8, start="2001-01", end="2001-12", seed=2)
    xr.testing.assert_identical(a.compute(), b.compute())
    assert not np.allclose(a.air_temperature, c.air_temperature)


def test_a_later_start_sees_the_same_months():
    early, _ = synthetic.alaska(ny=8, nx=8, start="2000-01", end="2002-12")
    late, _ = synthetic.alaska(ny=8, nx=8, start="2002-01", end="2002-12")
    window = early.sel(time=slice("2002-01", None))
    for name in ("air_temperature", "sibbork_alt", "lst"):
        np.testing.assert_array_equal(window[name].values, late[name].values)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="no months"):
        synthetic.alaska(start="2005-01", end="2004-01")
    with pytest.raises(ValueError, match="1951 or later"):
        synthetic.alaska(start="1950-01")
    with pytest.raises(ValueError, match="chunks may name"):
        synthetic.alaska(chunks={"band": 4})


def test_climate_gradient_and_degree_days(world):
    cube, _ = world
    maat = cube.air_temperature.mean("time")
    north, south = maat.where(cube.lat > 70.5).mean(), maat.where(cube.lat < 65.5).mean()
    assert -13 < north < -8  # Utqiagvik -10.9 degC
    assert south - north > 5
    days = cube.time.dt.days_in_month
    tdd = (np.maximum(cube.air_temperature, 0) * days).groupby("time.year").sum().mean("year")
    assert 250 < tdd.where(cube.lat > 70.5).mean() < 550  # Utqiagvik ~300 degC d
    boreal = (cube.zone == 0) & (cube.lat < 65.5)
    assert 1500 < tdd.where(boreal).mean() < 2300  # Fairbanks ~1900 degC d


def test_active_layer_thickness_by_zone(world, annual_alt):
    cube, _ = world
    tundra = annual_alt.where(cube.zone == 1).mean()
    boreal = annual_alt.where(cube.zone == 0).mean()
    coast = annual_alt.where(cube.lat > 70.5).mean()
    assert 22 < coast < 50  # Barrow CALM grids: mean 35 cm, 22-45 cm across years
    assert 30 < tundra < 70  # vegetated tundra 21-63 cm
    assert 60 < boreal < 130  # interior 60-100+ cm
    assert float(annual_alt.min()) >= 0 and float(annual_alt.max()) < 250
    assert (annual_alt > 5).mean() > 0.99  # only the highest peaks may stay frozen all summer


def test_thaw_season(world):
    _, truth = world
    month = truth.time.dt.month
    assert (truth.alt.sel(time=month == 3) == 0).mean() > 0.99  # frozen in March
    assert (truth.alt.sel(time=month == 8) > 0).mean() > 0.98  # thawed in August but on peaks
    # Thaw deepens through the summer: monthly means rise from May to August.
    seasonal = truth.alt.groupby("time.month").mean(...)
    assert np.all(np.diff(seasonal.sel(month=[5, 6, 7, 8]).values) > 0)


def test_alt_deepens_with_warming(annual_alt):
    mean = annual_alt.mean(["y", "x"])
    slope, intercept = np.polyfit(mean.year, mean, 1)
    residual = mean - (slope * mean.year + intercept)
    stderr = np.sqrt(
        (residual**2).sum() / (len(mean) - 2) / ((mean.year - mean.year.mean()) ** 2).sum()
    )
    assert slope > 0.05  # cm per year
    assert slope / stderr > 2


def test_zero_curtain_holds_thaw_after_air_freezes(world):
    cube, truth = world
    boreal = cube.zone == 0
    air = cube.air_temperature.where(boreal).groupby("time.month").mean(...)
    alt = truth.alt.where(boreal).groupby("time.month").mean(...)
    thawed = (truth.alt > 0).where(boreal).groupby("time.month").mean(...)
    first_freezing = int(air.month[(air.month > 8) & (air < 0)][0])  # October
    assert first_freezing == 10
    # The air is below zero, but the ground still holds a thawed layer for weeks to months:
    # the zero curtain, fully frozen only in winter.
    assert thawed.sel(month=first_freezing) > 0.95
    assert alt.sel(month=first_freezing) > 0.5 * alt.sel(month=8)
    assert thawed.sel(month=12) > 0.4
    assert thawed.sel(month=3) < 0.05


def test_ch4_seasonal_cycle_and_autumn_shoulder(world):
    cube, truth = world
    tundra = truth.ch4_flux.where(cube.zone == 1).groupby("time.month").mean(...)
    assert float(truth.ch4_flux.min()) >= 0
    assert tundra.sel(month=7) > 4 * tundra.sel(month=2)
    # Emissions continue through the zero curtain: September-October carry a large share and
    # the cold season (September to May) holds about half of the year's CH4.
    assert tundra.sel(month=9) > tundra.sel(month=7)
    cold = tundra.sel(month=[9, 10, 11, 12, 1, 2, 3, 4, 5]).sum() / tundra.sum()
    assert 0.45 < cold < 0.8
    july = truth.ch4_flux.sel(time=truth.time.dt.month == 7).mean("time")
    wet = july.where(cube.wetland_fraction > 0.6).mean() / 0.722  # mg CH4 m-2 d-1
    dry = july.where((cube.wetland_fraction < 0.15) & (cube.zone == 0)).mean() / 0.722
    assert 40 < wet < 120  # wet tundra about 90
    assert 4 < dry < 25  # taiga about 11


def test_co2_signs_and_magnitudes(world):
    cube, truth = world
    monthly = truth.co2_flux.groupby("time.month").mean(...)
    assert 0.05 < monthly.sel(month=1) < 0.4  # winter efflux 0.1-0.2
    assert monthly.sel(month=7) < -1.5  # summer uptake
    boreal_july = truth.co2_flux.where(cube.zone == 0).sel(time=truth.time.dt.month == 7).mean()
    assert -5 < boreal_july < -2.5  # about 3-4
    assert (monthly > 0).sum() >= 6  # a source for the cold half of the year


def test_in_situ_sites(world):
    cube, truth = world
    observed = cube.alt.notnull() | cube.co2_flux.notnull() | cube.ch4_flux.notnull()
    sites = observed.any("time")
    assert 1 <= int(sites.sum()) <= 30
    assert not bool(observed.where(~sites, False).any())
    error = (cube.alt - truth.alt).values
    error = np.abs(error[~np.isnan(error)])
    assert error.size > 100 and np.percentile(error, 99) < 8
    # Gappy records: winter CH4 is missing more often than summer CH4.
    at_sites = cube.ch4_flux.where(sites & cube.ch4_flux.notnull().any("time"))
    winter = at_sites.sel(time=at_sites.time.dt.month.isin([12, 1, 2])).notnull().mean()
    summer = at_sites.sel(time=at_sites.time.dt.month.isin([6, 7, 8])).notnull().mean()
    assert winter < summer


def test_remote_sensing_gaps(world):
    cube, _ = world
    assert cube.lst.sel(time=slice(None, "2000-01")).notnull().sum() == 0  # before MODIS
    assert cube.soil_moisture.sel(time=slice(None, "2015-03")).notnull().sum() == 0  # SMAP
    recent = cube.lst.sel(time=slice("2001", None))
    assert 0.05 < recent.isnull().mean() < 0.5  # clouds
    ndvi = cube.ndvi.sel(time=slice("2001", None))
    assert ndvi.sel(time=ndvi.time.dt.month == 1).notnull().mean() < 0.02  # snow, polar night
    assert float(ndvi.sel(time=ndvi.time.dt.month == 7).mean()) > 0.4
    sar = cube.sar_alt.notnull().mean(["y", "x"])
    campaigns = pd.DatetimeIndex(cube.time.values[sar.values > 0]).strftime("%Y-%m")
    assert list(campaigns) == ["2017-08", "2018-08", "2019-09"]
    assert all(0.05 < f < 0.6 for f in sar.values[sar.values > 0])


def test_process_models_complete_but_biased(world, annual_alt):
    cube, truth = world
    for name in ("sibbork_alt", "tcfm_ch4_flux", "tcfm_co2_flux"):
        assert cube[name].notnull().all()
    model = cube.sibbork_alt.groupby("time.year").max()
    assert 1.05 < model.mean() / annual_alt.mean() < 1.3  # SIBBORK thaws too deep
    july = cube.time.dt.month == 7
    assert cube.tcfm_ch4_flux.sel(time=july).mean() > truth.ch4_flux.sel(time=july).mean()
    # Run on coarse maps: relative to its mean, less cell-to-cell contrast than the truth.
    roughness = lambda field: field.diff("x").std() / field.mean()  # noqa: E731
    assert roughness(model) < 0.95 * roughness(annual_alt)


def test_hyperspectral_bands_mix_a_few_latent_properties(world):
    cube, _ = world
    spectra = cube.hyperspectral_reflectance
    assert spectra.sizes["band"] >= 64
    assert float(spectra.min()) > 0 and float(spectra.max()) < 1
    flat = spectra.values.reshape(spectra.sizes["band"], -1)
    variance = np.linalg.svd(flat - flat.mean(axis=1, keepdims=True), compute_uv=False) ** 2
    explained = np.cumsum(variance) / variance.sum()
    assert explained[3] > 0.97  # four components carry nearly everything
    assert explained[0] < 0.95  # but not one


def test_forcing_and_static_fields_are_complete(world):
    cube, _ = world
    for name in (
        "air_temperature",
        "precipitation",
        "snow_depth",
        "shortwave_radiation",
        "elevation",
        "wetland_fraction",
        "soil_organic_carbon",
    ):
        assert cube[name].notnull().all(), name
    snow = cube.snow_depth.groupby("time.month")
    assert snow.mean(...).sel(month=3) > 0.1
    assert (snow[7] < 0.01).mean() > 0.9  # snow-free in July but on high mountains
