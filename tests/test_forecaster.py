"""geocryo.fit / Forecaster.predict / save / load on a tiny synthetic cube."""

import numpy as np
import pytest
import xarray as xr

import geocryo
from geocryo.forecaster import FitConfig
from geocryo.preprocess import TimeSplit
from geocryo.train import TrainConfig

TINY = FitConfig(features=4, layers=1, batch_size=8, train=TrainConfig(warmup_steps=2))


@pytest.fixture(scope="module")
def cube():
    cube, _ = geocryo.synthetic.alaska(ny=16, nx=16, start="2000-01", end="2005-12", n_sites=20)
    return cube.load()


@pytest.fixture(scope="module")
def model(cube):
    return geocryo.fit(
        cube,
        lookback=4,
        patch=8,
        ensemble=2,
        epochs=2,
        config=TINY,
        split=TimeSplit(gap=4),
        progress=False,
    )


@pytest.fixture(scope="module")
def prediction(model, cube):
    return model.predict(cube, progress=False)


def test_fit_reports_its_model(model):
    assert model.members == 2
    assert model.parameter_count > 0
    assert set(model.history.dims) >= {"epoch", "metric", "split"}
    assert "multimodal" in repr(model)


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
    again = loaded.predict(cube, progress=False)
    xr.testing.assert_identical(again, prediction)


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
