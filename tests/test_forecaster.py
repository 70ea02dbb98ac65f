"""geocryo.fit / Forecaster.predict / save / load on a tiny synthetic cube."""

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr
from worlds import world

import geocryo
from geocryo.evaluation import metrics
from geocryo.forecast import FitConfig
from geocryo.preprocess import TimeSplit
from geocryo.train import TrainConfig

TINY = FitConfig(features=4, layers=1, batch_size=8, train=TrainConfig(warmup_steps=2))


@pytest.fixture(scope="module")
def cube():
    cube, _ = world("six_years")
    return cube


def fit_tiny(cube, config=TINY, ensemble=2, epochs=2):
    """A tiny fit: 4 months of look-back, 8 x 8 patches."""
    split = TimeSplit(gap=4)
    return geocryo.fit(
        cube,
        lookback=4,
        patch=8,
        ensemble=ensemble,
        epochs=epochs,
        config=config,
        split=split,
        progress=False,
    )


@pytest.fixture(scope="module")
def model(cube):
    return fit_tiny(cube)


@pytest.fixture(scope="module")
def prediction(model, cube):
    return model.predict(cube, progress=False)


def test_fit_reports_its_model(model):
    assert model.members == 2
    assert model.parameter_count > 0
    assert set(model.history.dims) >= {"epoch", "metric", "split"}
    assert "multimodal" in repr(model)
    # The forecast month's training climatology of every process-model and forcing field
    # comes in beside the field itself.
    outlooks = {"sibbork_alt_outlook", "tcfm_co2_flux_outlook", "air_temperature_outlook"}
    assert outlooks <= set(model.channels["process_model"] + model.channels["forcing"])
    assert not any("outlook" in c for c in model.channels["remote_sensing"])


def test_features_never_observed_in_training_are_left_out(model, cube, prediction):
    # 2000-2005 is before SMAP and the UAVSAR campaigns: nothing to learn from those two.
    assert sorted(model.ignored) == ["sar_alt", "soil_moisture"]
    assert not {"sar_alt", "soil_moisture"} & set(model.channels["remote_sensing"])
    wild = cube.assign(soil_moisture=cube.soil_moisture.fillna(0.3) * 1e3)
    xr.testing.assert_identical(model.predict(wild, progress=False), prediction)


def test_the_outlook_can_be_left_out():
    with pytest.raises(ValueError, match="not modalities"):
        FitConfig(outlook=("satellite",))
    assert FitConfig(outlook="forcing").outlook == ("forcing",)


def test_history_dropout_must_be_a_share():
    with pytest.raises(ValueError, match="history_dropout must be in"):
        FitConfig(history_dropout=1.5)


def test_predictions_are_on_the_grid_in_physical_units(prediction, cube):
    for name in ("alt", "ch4_flux", "co2_flux"):
        assert prediction[name].dims == ("time", "y", "x")
        assert prediction[name].attrs["units"] == cube[name].attrs["units"]
        assert prediction[f"{name}_std"].attrs["units"] == cube[name].attrs["units"]
        assert float(prediction[f"{name}_std"].min()) >= 0
    # No window before lookback + lead months; every later month is predicted everywhere.
    assert prediction.alt.isel(time=slice(0, 4)).isnull().all()
    assert prediction.alt.isel(time=slice(4, None)).notnull().all()
    xr.testing.assert_equal(prediction.lat, cube.lat)
    # Standardised outputs went back through the plan: thaw depths come out in centimetres.
    assert 0 < float(np.abs(prediction.alt).mean()) < 500


def test_save_load_round_trip_gives_identical_predictions(model, cube, prediction, tmp_path):
    model.save(tmp_path / "model")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "model")
    loaded = geocryo.load(tmp_path / "model")
    assert loaded.config == model.config
    xr.testing.assert_identical(loaded.history, model.history)
    assert loaded.calibration.targets == model.calibration.targets
    for name in model.calibration.targets:
        np.testing.assert_array_equal(loaded.calibration.noise[name], model.calibration.noise[name])
    assert (
        loaded.network.lower == model.network.lower
        and loaded.network.anchors == model.network.anchors
    )
    again = loaded.predict(cube, progress=False)
    xr.testing.assert_identical(again, prediction)


def test_a_model_saved_before_the_linear_skip_still_loads(cube, tmp_path):
    model = fit_tiny(cube, dataclasses.replace(TINY, skip=False), ensemble=1, epochs=1)
    model.save(tmp_path / "old")
    settings = json.loads((tmp_path / "old" / "model.json").read_text())
    del settings["network"]["skip"], settings["config"]["skip"]
    del settings["config"]["history_dropout"]
    (tmp_path / "old" / "model.json").write_text(json.dumps(settings))
    loaded = geocryo.load(tmp_path / "old")
    assert loaded.network.skip is False
    assert not loaded.config.skip and loaded.config.history_dropout == 0
    xr.testing.assert_identical(
        loaded.predict(cube, progress=False), model.predict(cube, progress=False)
    )


def test_rollout_horizon(model, cube, prediction):
    rolled = model.predict(cube, horizon=2, progress=False)
    assert rolled.alt.isel(time=slice(4, None)).notnull().all()
    assert not np.allclose(
        rolled.alt.isel(time=slice(6, None)), prediction.alt.isel(time=slice(6, None))
    )
    with pytest.raises(ValueError, match="multiple of the lead"):
        model.predict(cube, horizon=0)


def test_bad_cubes_are_refused(cube):
    with pytest.raises(geocryo.CubeError, match="none of the targets"):
        geocryo.fit(cube.drop_vars(["alt", "ch4_flux", "co2_flux"]), progress=False)
    with pytest.raises(ValueError, match="mode"):
        geocryo.fit(cube, mode="persistence", progress=False)
    with pytest.raises(ValueError):
        geocryo.fit(cube.isel(time=slice(0, 10)), lookback=12, progress=False)


def test_a_setting_given_twice_with_two_values_is_refused(cube):
    config = dataclasses.replace(TINY, train=TrainConfig(warmup_steps=2, epochs=20))
    with pytest.raises(ValueError, match=r"fit\(epochs=3\) and config.train.epochs=20"):
        geocryo.fit(cube, epochs=3, config=config, progress=False)
    with pytest.raises(ValueError, match="ensemble"):
        geocryo.fit(cube, ensemble=2, config=TINY.with_train(ensemble=3), progress=False)


def test_the_config_is_the_one_source_of_settings(model, cube):
    # fit's keywords landed in the config the model keeps, with the defaults filled in
    assert model.config.train.epochs == 2 and model.config.train.ensemble == 2
    assert model.config.train.seed == 0
    # a config's own setting is kept, never overwritten by fit's defaults
    one = dataclasses.replace(TINY, train=TrainConfig(warmup_steps=2, epochs=1, ensemble=1))
    fitted = geocryo.fit(
        cube, lookback=4, patch=8, config=one, split=TimeSplit(gap=4), progress=False
    )
    assert fitted.history.sizes["epoch"] == 1 and fitted.members == 1
    assert fitted.config.train == dataclasses.replace(one.train, seed=0)


def test_members_and_their_summary_come_from_one_path(model, cube, prediction):
    members = model.predict(cube, members=True, progress=False)
    assert members.sizes["member"] == model.members
    spreads = {f"{name}_std" for name in model.targets}
    assert set(members.data_vars) == set(model.targets) | spreads
    for name in spreads:
        assert "member" not in members[name].dims
    xr.testing.assert_allclose(geocryo.forecast.summarize(members), prediction)
    alt = members["alt"].values
    np.testing.assert_allclose(prediction["alt"].values, alt.mean(axis=0), rtol=1e-5, atol=1e-6)
    # the predictive spread is the members' variance (ddof 1) plus the calibrated noise
    noise = model.calibration.variance("alt", prediction["alt"]).values
    np.testing.assert_allclose(
        prediction["alt_std"].values ** 2, alt.var(axis=0, ddof=1) + noise, rtol=1e-4, atol=1e-5
    )
    assert prediction["alt_std"].attrs["calibrated"] == 1
    # without a calibration the spread is the members' alone, and says so
    bare = geocryo.forecast.summarize(members.drop_vars(list(spreads)))
    np.testing.assert_allclose(
        bare["alt_std"].values, alt.std(axis=0, ddof=1), rtol=1e-5, atol=1e-6
    )
    assert bare["alt_std"].attrs["calibrated"] == 0


def test_no_member_and_no_interval_end_is_negative(model, cube):
    """A fitted model: every member of thaw depth and CH4 flux, and the ends of their 50 and
    90 % intervals, are at or above 0 over the whole record, and carry ``valid_min``."""
    members = model.predict(cube, members=True, progress=False)
    summary = geocryo.forecast.summarize(members)
    for name in ("alt", "ch4_flux"):
        values = members[name].values
        assert np.nanmin(values) >= 0, name
        assert members[name].attrs["valid_min"] == 0
        sd = summary[[f"{name}_std"]].rename({f"{name}_std": name})
        for level in (0.5, 0.9):
            lower, upper = metrics.normal_interval(summary[[name]], sd, level)
            assert float(lower[name].min()) >= 0 and float(upper[name].min()) >= 0
    assert "valid_min" not in members["co2_flux"].attrs
