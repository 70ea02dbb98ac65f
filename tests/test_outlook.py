"""The seasonal outlook: training climatologies of the forecast month, as input channels."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geocryo.preprocess import DRIVER_SUFFIX, OUTLOOK_SUFFIX, Outlook, with_drivers

TIME = pd.date_range("2000-01-01", periods=48, freq="MS")
TRAIN = TIME[:36]


def prepared(seed: int = 0) -> xr.Dataset:
    """A standardised-looking cube: a seasonal cycle that differs by cell, plus noise."""
    rng = np.random.default_rng(seed)
    month = TIME.month.to_numpy()[:, None, None]
    cell = np.arange(12, dtype=float).reshape(3, 4)[None]
    cycle = np.sin(2 * np.pi * month / 12) * (1 + cell / 10)
    values = cycle + 0.1 * rng.standard_normal((48, 3, 4))
    return xr.Dataset(
        {
            "tcfm_co2_flux": (("time", "y", "x"), values, {"modality": "process_model"}),
            "air_temperature": (("time", "y", "x"), values + 1, {"modality": "forcing"}),
            "lst": (("time", "y", "x"), values, {"modality": "remote_sensing"}),
            "elevation": (("y", "x"), cell[0], {"modality": "static"}),
        },
        coords={"time": TIME, "y": [3.0, 2.0, 1.0], "x": [0.0, 1.0, 2.0, 3.0]},
    )


def test_climatology_is_the_training_mean_of_each_calendar_month():
    ds = prepared()
    outlook = Outlook.fit(ds, TRAIN, ["process_model", "forcing"])
    assert outlook.variables == ["tcfm_co2_flux", "air_temperature"]
    clim = outlook.climatology["tcfm_co2_flux"]
    assert clim.shape == (12, 3, 4) and clim.dtype == np.float32
    july = ds.tcfm_co2_flux.sel(time=TRAIN[TRAIN.month == 7]).mean("time").values
    np.testing.assert_allclose(clim[6], july, rtol=1e-6)
    # Changing the months after the training period changes nothing.
    later = ds.copy(deep=True)
    later["tcfm_co2_flux"][36:] = 1e6
    np.testing.assert_array_equal(
        Outlook.fit(later, TRAIN, ["process_model"]).climatology["tcfm_co2_flux"], clim
    )


@pytest.mark.parametrize("lead", [1, 3])
def test_each_month_carries_the_climatology_of_its_forecast_month(lead):
    ds = prepared()
    outlook = Outlook.fit(ds, TRAIN, ["process_model"])
    out = outlook.apply(ds, lead)
    name = "tcfm_co2_flux" + OUTLOOK_SUFFIX
    assert out[name].dims == ("time", "y", "x")
    assert out[name].attrs["modality"] == "process_model"
    for i in (0, 11, 40):  # January, December (-> next year's January + lead - 1), a test month
        target = TIME[i] + pd.DateOffset(months=lead)
        np.testing.assert_array_equal(
            out[name].values[i], outlook.climatology["tcfm_co2_flux"][target.month - 1]
        )
    xr.testing.assert_identical(out[list(ds.data_vars)], ds)


def test_lazy_in_lazy_out(no_compute):
    ds = prepared().chunk({"time": 12, "y": 2, "x": 2})
    outlook = Outlook.fit(ds, TRAIN, ["forcing"])
    with no_compute():
        out = outlook.apply(ds, 1)
    field = out["air_temperature" + OUTLOOK_SUFFIX]
    assert field.chunks == ds.air_temperature.chunks
    np.testing.assert_array_equal(field.values, outlook.apply(ds.compute(), 1)[field.name].values)


def test_save_load_and_bad_cubes(tmp_path):
    ds = prepared()
    outlook = Outlook.fit(ds, TRAIN, ["process_model", "forcing"])
    outlook.save(tmp_path / "outlook.npz")
    back = Outlook.load(tmp_path / "outlook.npz", outlook.attrs)
    for name in outlook.variables:
        np.testing.assert_array_equal(back.climatology[name], outlook.climatology[name])
    with pytest.raises(KeyError, match="lacks 'air_temperature'"):
        outlook.apply(ds.drop_vars("air_temperature"), 1)
    with pytest.raises(ValueError, match="use the training grid"):
        outlook.apply(ds.isel(x=slice(0, 2)), 1)
    assert Outlook.fit(ds, TRAIN, ["in_situ"]).apply(ds, 1) is ds


def test_a_target_outlook_stays_missing_where_the_cell_has_no_record():
    ds = prepared()
    site = np.full((48, 3, 4), np.nan)
    site[:, 0, 0] = np.arange(48.0)
    site[5, 0, 0] = np.nan  # one June missing: the other Junes still make its climatology
    ds["co2_flux"] = (("time", "y", "x"), site, {"modality": "in_situ"})
    outlook = Outlook.fit(ds, TRAIN, ("forcing",), targets=("co2_flux",))
    assert outlook.variables == ["air_temperature", "co2_flux"]
    clim = outlook.climatology["co2_flux"]
    assert np.isnan(clim[:, 1:, :]).all() and np.isnan(clim[:, 0, 1:]).all()
    np.testing.assert_allclose(clim[0, 0, 0], np.mean([0.0, 12.0, 24.0]))
    np.testing.assert_allclose(clim[5, 0, 0], np.mean([17.0, 29.0]))
    out = outlook.apply(ds, lead=1)
    # December's row carries January's climatology: the forecast month's
    np.testing.assert_allclose(out[f"co2_flux{OUTLOOK_SUFFIX}"].values[11, 0, 0], clim[0, 0, 0])


@pytest.mark.parametrize("lead", [1, 3])
def test_drivers_carry_the_forecast_months_value(lead):
    ds = prepared()
    out = with_drivers(ds, ("forcing", "process_model"), lead)
    added = sorted(set(out.data_vars) - set(ds.data_vars))
    assert added == [f"air_temperature{DRIVER_SUFFIX}", f"tcfm_co2_flux{DRIVER_SUFFIX}"]
    driver = out[f"air_temperature{DRIVER_SUFFIX}"]
    np.testing.assert_array_equal(driver.values[:-lead], ds["air_temperature"].values[lead:])
    assert np.isnan(driver.values[-lead:]).all()  # beyond the record
    assert driver.attrs["modality"] == "forcing"
    # lazy stays lazy
    lazy = with_drivers(ds.chunk({"time": 12}), ("forcing",), lead)
    assert lazy[f"air_temperature{DRIVER_SUFFIX}"].chunks is not None
