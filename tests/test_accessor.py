"""The ``ds.geocryo`` accessor: each method gives what the library function it names gives."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import worlds
import xarray as xr
from matplotlib.figure import Figure

import geocryo
from geocryo.evaluation import evaluate
from geocryo.forecast import FitConfig
from geocryo.preprocess import TimeSplit
from geocryo.train import TrainConfig

pytestmark = pytest.mark.filterwarnings("ignore:preprocess.*no observed value:UserWarning")

TINY = FitConfig(features=4, layers=1, batch_size=8, train=TrainConfig(warmup_steps=2))
FIT = dict(
    mode="teacher_forcing",
    lookback=4,
    patch=8,
    ensemble=2,
    epochs=2,
    config=TINY,
    split=TimeSplit(gap=4),
    seed=1,
    progress=False,
)


@pytest.fixture(scope="module")
def world() -> tuple[xr.Dataset, xr.Dataset]:
    return worlds.world("six_years_seed2")


@pytest.fixture(scope="module")
def model(world) -> geocryo.Forecaster:
    return world[0].geocryo.fit(**FIT)


@pytest.fixture(scope="module")
def prediction(world, model) -> xr.Dataset:
    return world[0].geocryo.predict(model, progress=False)


def test_import_geocryo_registers_the_accessor() -> None:
    code = (
        "import xarray as xr; assert not hasattr(xr.Dataset, 'geocryo'); "
        "import geocryo; print(type(xr.Dataset().geocryo).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "GeocryoAccessor"


def test_validate_returns_the_cube_or_names_the_broken_variable(world) -> None:
    cube = world[0]
    assert cube.geocryo.validate() is cube
    broken = cube.copy()
    broken["lst"] = broken["lst"].assign_attrs(units="")
    with pytest.raises(geocryo.CubeError, match=r"'lst'.*units"):
        broken.geocryo.validate()
    filled = cube.copy()
    filled["alt"] = filled["alt"].fillna(-9999.0)
    assert filled.geocryo.validate() is filled  # metadata alone are fine...
    with pytest.raises(geocryo.CubeError, match=r"'alt'.*fill value"):
        filled.geocryo.validate(scan=True)  # ...the values are not


def test_targets_features_and_modalities(world) -> None:
    cube = world[0]
    assert list(cube.geocryo.targets.data_vars) == ["alt", "ch4_flux", "co2_flux"]
    xr.testing.assert_identical(cube.geocryo.features, geocryo.features(cube))
    groups = cube.geocryo.modalities
    assert list(groups) == ["in_situ", "remote_sensing", "process_model", "forcing", "static"]
    assert groups["in_situ"] == ["alt", "ch4_flux", "co2_flux"]
    assert groups["process_model"] == ["sibbork_alt", "tcfm_ch4_flux", "tcfm_co2_flux"]
    assert "hyperspectral_reflectance" in groups["remote_sensing"]
    assert sorted(n for names in groups.values() for n in names) == sorted(map(str, cube.data_vars))


def test_fit_and_predict_delegate(world, model, prediction) -> None:
    cube, truth = world
    # the keywords reached geocryo.fit
    assert model.mode == "teacher_forcing" and model.members == 2
    assert model.spec.lookback == 4 and model.spec.patch == 8
    assert model.history.sizes["epoch"] <= 2
    xr.testing.assert_identical(prediction, model.predict(cube, progress=False))
    assert prediction.geocryo.modalities == {
        "prediction": ["alt", "ch4_flux", "co2_flux"],
        "None": ["alt_std", "ch4_flux_std", "co2_flux_std"],
    }
    # thaw depths come back in centimetres, near the truth's range
    assert prediction["alt"].attrs["units"] == "cm"
    later = prediction["alt"].isel(time=slice(12, None))
    assert float(later.min()) > -20 and float(later.max()) < 3 * float(truth["alt"].max())


def test_evaluate_delegates(world, model, prediction) -> None:
    cube, truth = world
    rows = {"teacher_forcing": prediction}
    table = cube.geocryo.evaluate(model, truth, predictions=rows, progress=False)
    xr.testing.assert_identical(
        table, evaluate(model, cube, truth, predictions=rows, progress=False)
    )
    # persistence is the reference of the RMSE reduction: its own reduction is 0
    reduction = table["alt"].sel(scope="field", zone="all", model="persistence")
    assert float(reduction.sel(metric="rmse_reduction")) == pytest.approx(0.0, abs=1e-9)


def test_to_zarr_round_trip(world, tmp_path) -> None:
    cube = world[0]
    path = cube.geocryo.to_zarr(tmp_path / "alaska.zarr", progress=False)
    assert path == (tmp_path / "alaska.zarr").absolute()
    back = geocryo.open_zarr(path)
    np.testing.assert_array_equal(back["alt"].values, cube["alt"].values)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        cube.geocryo.to_zarr(path, progress=False)


def test_plots_delegate(world, model, prediction) -> None:
    cube, truth = world
    maps = prediction.geocryo.plot.map("alt", "2005-08", truth=truth)
    assert isinstance(maps, Figure)
    titles = [ax.get_title() for ax in maps.axes]
    assert titles[:4] == [
        "truth",
        "prediction (ensemble mean)",
        "error (prediction − truth)",
        "ensemble spread (std)",
    ]
    assert "teacher forcing" in maps.get_suptitle()  # the forecast's mode names the model
    with pytest.raises(ValueError, match="2030-08 is not in the data"):
        prediction.geocryo.plot.map("alt", "2030-08")

    series = prediction.geocryo.plot.sites(cube, "alt", truth=truth, n=2)
    assert len([ax for ax in series.axes if ax.get_title().startswith("site")]) == 2

    trend = prediction.geocryo.plot.trend(truth)
    titles = [ax.get_title().split(" (")[0] for ax in trend.axes if ax.get_title()]
    assert titles == ["truth", "teacher forcing"]
    assert isinstance(model.history.geocryo.plot.loss(), Figure)
