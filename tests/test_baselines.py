"""Baselines: hand-computed forecasts on tiny monthly series, training-only climatology."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geocryo.evaluation import baselines
from geocryo.evaluation.baselines import (
    BASELINES,
    baseline_forecasts,
    climatology,
    persistence,
    seasonal_persistence,
)


def monthly(values, start="2000-01", *, name="alt", drop=()):
    """A (time, x) dataset of ``values`` (rows = months from ``start``) less the ``drop`` months."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    time = pd.date_range(start, periods=values.shape[0], freq="MS")
    ds = xr.Dataset(
        {name: (("time", "x"), values, {"units": "cm"})},
        coords={"time": time, "x": np.arange(values.shape[1], dtype=float)},
    )
    return ds.drop_sel(time=pd.DatetimeIndex(drop)) if drop else ds


def test_persistence_shifts_by_the_lead(backend):
    obs = backend(monthly([10.0, 11.0, 12.0, 13.0, 14.0, 15.0]))
    one = persistence(obs)
    three = persistence(obs, lead=3)
    np.testing.assert_array_equal(one.alt[:, 0], [np.nan, 10, 11, 12, 13, 14])
    np.testing.assert_array_equal(three.alt[:, 0], [np.nan, np.nan, np.nan, 10, 11, 12])
    xr.testing.assert_identical(one.time, obs.time)
    assert one.alt.attrs["units"] == "cm"
    assert one.attrs["baseline"] == "naive persistence, lead 1 month"


def test_persistence_leaves_a_gap_after_a_missing_month(backend):
    # April is missing: May has no value from the month before; June gets May's.
    obs = backend(monthly([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], drop=["2000-04-01"]))
    forecast = persistence(obs)
    np.testing.assert_array_equal(forecast.alt[:, 0], [np.nan, 1, 2, np.nan, 5])
    # Seasonally: nothing a year before 2001-04 exists in the record either.
    obs = backend(monthly(np.arange(18.0), drop=["2000-04-01"]))
    np.testing.assert_array_equal(seasonal_persistence(obs).alt[-3:, 0], [np.nan, 4, 5])


def test_seasonal_persistence_is_last_years_month(backend):
    values = np.stack([np.arange(30.0), 100 + np.arange(30.0)], axis=1)
    forecast = seasonal_persistence(backend(monthly(values)))
    assert np.isnan(forecast.alt[:12]).all()
    np.testing.assert_array_equal(forecast.alt[12:], values[:18])
    half = seasonal_persistence(backend(monthly(values)), period=6)
    np.testing.assert_array_equal(half.alt[6:], values[:24])


def test_climatology_is_the_training_mean_of_each_calendar_month(backend):
    # Year k month m holds 100 k + m; cell 1 is cell 0 plus 1000. Train on 2000-2001.
    years = np.arange(3)[:, None] * 100 + np.arange(1, 13)[None, :]
    cell0 = years.ravel().astype(float)
    cell0[12] = np.nan  # January 2001 missing: January's mean is 2000's alone
    values = np.stack([cell0, cell0 + 1000], axis=1)
    forecast = climatology(backend(monthly(values)), train=slice("2000-01", "2001-12"))
    expected = 50.0 + np.arange(1, 13)
    expected[0] = 1.0
    for year in range(3):  # the same climatology in training and test years
        months = forecast.alt[12 * year : 12 * (year + 1)]
        np.testing.assert_allclose(months[:, 0], expected)
        np.testing.assert_allclose(months[:, 1], expected + 1000)
    assert forecast.alt.dims == ("time", "x")
    assert forecast.attrs["baseline"] == "climatology of 2000-01 to 2001-12"


def test_climatology_never_sees_the_test_period(backend):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(36, 3))
    train = slice("2000-01", "2001-12")
    before = climatology(backend(monthly(values)), train).compute()
    changed = values.copy()
    changed[24:] = 1e6  # rewrite 2002 entirely
    after = climatology(backend(monthly(changed)), train).compute()
    xr.testing.assert_identical(before, after)
    as_index = climatology(monthly(values), pd.date_range("2000-01", "2001-12", freq="MS"))
    xr.testing.assert_allclose(before, as_index)


def test_climatology_without_training_data_for_a_month_is_nan():
    forecast = climatology(monthly(np.arange(24.0)), train=slice("2000-01", "2000-06"))
    np.testing.assert_array_equal(forecast.alt[:12, 0], [0, 1, 2, 3, 4, 5, *[np.nan] * 6])


def test_datasets_keep_static_variables_and_coordinates(small_cube):
    cube, _ = small_cube
    forecast = persistence(cube)
    xr.testing.assert_identical(forecast.elevation, cube.elevation)
    xr.testing.assert_identical(forecast.hyperspectral_reflectance, cube.hyperspectral_reflectance)
    assert forecast.alt.attrs == cube.alt.attrs
    assert set(forecast.coords) == set(cube.coords)


def test_baselines_stay_lazy_and_match_the_loaded_result(small_cube, no_compute):
    _, truth = small_cube
    train = slice("2000-01", "2001-12")
    with no_compute():
        lazy = baseline_forecasts(truth, train)
        for forecast in lazy.values():
            assert all(isinstance(v.data, dask.array.Array) for v in forecast.data_vars.values())
    assert lazy["climatology"].alt.chunks == truth.alt.chunks
    loaded = baseline_forecasts(truth.compute(), train)
    for name in BASELINES:
        assert isinstance(loaded[name].alt.data, np.ndarray)
        xr.testing.assert_allclose(lazy[name].compute(), loaded[name])


def test_baseline_forecasts_builds_every_baseline():
    obs = monthly(np.arange(24.0))
    out = baseline_forecasts(obs, slice("2000", "2000"), lead=2, names=["persistence"])
    assert list(out) == ["persistence"]
    xr.testing.assert_identical(out["persistence"], persistence(obs, lead=2))
    assert list(baseline_forecasts(obs, slice("2000", "2000"))) == list(BASELINES)
    with pytest.raises(ValueError, match="unknown baselines"):
        baseline_forecasts(obs, slice("2000", "2000"), names=["ecmwf"])


@pytest.mark.parametrize("lead", [0, -1, 1.5, True])
def test_bad_lead_is_refused(lead):
    with pytest.raises(ValueError, match="lead must be a positive whole number"):
        persistence(monthly(np.arange(3.0)), lead=lead)


def test_bad_inputs_say_what_to_fix():
    static = xr.DataArray(np.ones((2, 2)), dims=("y", "x"))
    with pytest.raises(ValueError, match="needs a 'time' dim"):
        persistence(static)
    numbered = monthly(np.arange(3.0)).assign_coords(time=[0, 1, 2])
    with pytest.raises(ValueError, match="datetime64 coordinate"):
        persistence(numbered)
    with pytest.raises(
        ValueError, match=r"selects no month of obs, which covers 2000-01 to 2000-03"
    ):
        climatology(monthly(np.arange(3.0)), train=slice("1990", "1991"))
    with pytest.raises(TypeError, match="obs must be an xarray"):
        persistence(np.arange(3.0))
    assert baselines.BASELINES["seasonal_persistence"] is seasonal_persistence
