"""Time splits and the preprocessing plan: nothing from after the training period gets in."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from worlds import world

from geocryo import TARGETS
from geocryo.preprocess import FittedPreprocessor, PreprocessConfig, Preprocessor, TimeSplit

# The default split of 2000-2019 trains before SMAP (2015) and the SAR campaigns (2017): every
# fit warns about soil_moisture and sar_alt. test_unobserved_variable_warns checks the warning.
pytestmark = pytest.mark.filterwarnings("ignore:preprocess.*no observed value:UserWarning")

MONTHS = pd.date_range("2000-01", "2019-12", freq="MS")  # 240 months


@pytest.fixture(scope="module")
def record() -> xr.Dataset:
    """A loaded 8 x 8 synthetic Alaska over 2000-2019 (240 months, warming)."""
    cube, _ = world("twenty_years")
    return cube


@pytest.fixture(scope="module")
def parts() -> dict[str, pd.DatetimeIndex]:
    return TimeSplit().periods(MONTHS, lookback=12)


@pytest.fixture(scope="module")
def fitted(record, parts) -> FittedPreprocessor:
    return Preprocessor().fit(record, parts["train"], progress=False)


@pytest.fixture(scope="module")
def fitted_detrend(record, parts) -> FittedPreprocessor:
    return Preprocessor(PreprocessConfig(detrend=True)).fit(record, parts["train"], progress=False)


def _train_values(var: xr.DataArray, months: pd.DatetimeIndex) -> np.ndarray:
    if "time" in var.dims:
        var = var.sel(time=months)
    return var.values.astype(np.float64)


# -- TimeSplit ------------------------------------------------------------------------------------


def test_periods_of_240_months_with_12_month_lookback(parts):
    assert [len(parts[p]) for p in ("train", "val", "test")] == [151, 33, 32]
    assert parts["train"][0] == MONTHS[0] and parts["test"][-1] == MONTHS[-1]
    # 12 months belong to no part between train and val, and between val and test.
    assert parts["val"][0] == parts["train"][-1] + pd.DateOffset(months=13)
    assert parts["test"][0] == parts["val"][-1] + pd.DateOffset(months=13)
    assert 151 + 33 + 32 + 2 * 12 == 240
    for name, fraction in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
        index = parts[name]
        assert index.is_monotonic_increasing and (np.diff(index.to_period("M").asi8) == 1).all()
        assert abs(len(index) / 216 - fraction) <= 1 / 216  # fractions of the non-gap months
    assert not set(parts["train"]) & set(parts["val"]) and not set(parts["val"]) & set(
        parts["test"]
    )


def test_periods_gap_and_horizon_options():
    no_gap = TimeSplit(gap=0).periods(MONTHS)
    assert [len(no_gap[p]) for p in ("train", "val", "test")] == [168, 36, 36]
    assert no_gap["val"][0] == no_gap["train"][-1] + pd.DateOffset(months=1)
    lookback_6 = TimeSplit(0.6, 0.2, 0.2).periods(MONTHS, lookback=6)
    assert [len(lookback_6[p]) for p in ("train", "val", "test")] == [137, 45, 46]  # of 228 months
    with pytest.raises(ValueError, match=r"lookback \+ horizon = 15"):
        TimeSplit().periods(MONTHS[:90], lookback=12, horizon=3)


def test_periods_take_a_cube_time_axis(record, parts):
    from_cube = TimeSplit().periods(record)
    for name in parts:
        assert (from_cube[name] == parts[name]).all()


def test_from_dates():
    split = TimeSplit.from_dates(train_end="2013-12", val_end="2016-12")
    parts = split.periods(MONTHS, lookback=12)
    assert (parts["train"][0], parts["train"][-1]) == (MONTHS[0], pd.Timestamp("2013-12-01"))
    assert (parts["val"][0], parts["val"][-1]) == (pd.Timestamp("2015-01"), pd.Timestamp("2016-12"))
    assert (parts["test"][0], parts["test"][-1]) == (pd.Timestamp("2018-01"), MONTHS[-1])
    assert [len(parts[p]) for p in ("train", "val", "test")] == [168, 24, 24]
    with pytest.raises(ValueError, match="val_end"):
        TimeSplit.from_dates(train_end="2016-12", val_end="2013-12")
    with pytest.raises(ValueError, match="no months after"):
        TimeSplit.from_dates(train_end="2013-12", val_end="2019-12").periods(MONTHS)
    with pytest.raises(ValueError, match="before the record"):
        TimeSplit.from_dates(train_end="1999-06", val_end="2013-12").periods(MONTHS)
    with pytest.raises(ValueError, match="go together"):
        TimeSplit(train_end="2013-12")


def test_too_short_record_is_refused():
    # 60 months: 36 outside the gaps, of which validation gets 6 < lookback + 1 = 13.
    with pytest.raises(
        ValueError, match=r"'val' part .* has 6 months, but .* lookback \+ horizon = 13"
    ):
        TimeSplit().periods(MONTHS[:60], lookback=12)
    short = TimeSplit().periods(MONTHS[:60], lookback=2)  # 56 months outside the gaps
    assert [len(short[p]) for p in ("train", "val", "test")] == [39, 9, 8]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": 0.8}, "sum to 1.1"),
        ({"train": 0.9, "val": -0.05, "test": 0.15}, "TimeSplit.val"),
        ({"train": 1.0, "val": 0.0, "test": 0.0}, "TimeSplit.train"),
        ({"gap": -1}, "TimeSplit.gap"),
    ],
)
def test_bad_split_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimeSplit(**kwargs)


def test_irregular_time_axis_is_refused():
    with pytest.raises(ValueError, match="consecutive months"):
        TimeSplit().periods(MONTHS.delete(100))
    with pytest.raises(ValueError, match="lookback"):
        TimeSplit().periods(MONTHS, lookback=0)


# -- statistics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["air_temperature", "lst", "ndvi", "alt", "co2_flux", "elevation", "sibbork_alt"]
)
def test_scaler_uses_the_training_period_alone(record, parts, fitted, name):
    stats = fitted.statistics.sel(variable=name)
    train = _train_values(record[name], parts["train"])
    np.testing.assert_allclose(float(stats["mean"]), np.nanmean(train), rtol=1e-10)
    np.testing.assert_allclose(float(stats["std"]), np.nanstd(train), rtol=1e-10)
    assert int(stats["count"]) == np.isfinite(train).sum()
    assert stats["units"].item() == record[name].attrs["units"]


def test_training_statistics_differ_from_the_whole_record(record, fitted):
    # The synthetic Alaska warms about 0.45 degC per decade: the whole record is warmer.
    whole = record["air_temperature"].values.astype(np.float64)
    mean = float(fitted.statistics["mean"].sel(variable="air_temperature"))
    assert np.nanmean(whole) - mean > 0.15
    assert abs(float(fitted.statistics["std"].sel(variable="lst")) - np.nanstd(record.lst)) > 0.05


def test_statistics_on_numpy_and_dask_agree(record, parts, fitted):
    lazy = record.chunk({"time": 60, "y": 3, "x": 5})
    on_dask = Preprocessor().fit(lazy, parts["train"], progress=False)
    xr.testing.assert_allclose(on_dask.statistics, fitted.statistics, rtol=1e-9)


def test_later_months_never_influence_the_plan(record, parts):
    config = PreprocessConfig(detrend=True)
    plan = Preprocessor(config).fit(record, parts["train"], progress=False)
    later = record["time"] > parts["train"][-1]
    changed = record.copy()
    for name, var in record.data_vars.items():
        if "time" in var.dims:
            wild = xr.where(later & var.notnull(), 1e6, var).where(~later | (var.x > 0))
            changed[name] = wild.transpose(*var.dims).astype(var.dtype).assign_attrs(var.attrs)
    assert not changed.equals(record)
    refit = Preprocessor(config).fit(changed, parts["train"], progress=False)
    xr.testing.assert_identical(refit.statistics, plan.statistics)
    xr.testing.assert_identical(refit.trends, plan.trends)


def test_fit_is_one_compute(record, parts):
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return dask.get(*args, **kwargs)

    lazy = record.chunk({"time": 120, "y": 4, "x": 4})
    features = tuple(n for n in record.data_vars if n != "hyperspectral_reflectance")
    with dask.config.set(scheduler=counting):
        Preprocessor(PreprocessConfig(detrend=True, variables=features)).fit(
            lazy, parts["train"], progress=False
        )
        assert len(calls) == 1
        Preprocessor().fit(lazy, parts["train"], progress=False)
        assert len(calls) == 3  # dask-ml's PCA (the SVD) is one more


def test_constant_variable_gets_unit_std(record, parts):
    cube = record[["alt", "air_temperature"]].assign(flat=record.air_temperature * 0 + 5.0)
    cube["flat"].attrs = {"units": "K", "modality": "forcing"}
    plan = Preprocessor().fit(cube, parts["train"], progress=False)
    stats = plan.statistics.sel(variable="flat")
    assert float(stats["std"]) == 1.0 and float(stats["mean"]) == 5.0
    assert stats["fallback"].item().startswith("constant")
    assert float(plan.transform(cube)["flat"].max()) == 0.0


def test_unobserved_variable_warns(record, parts):
    with pytest.warns(UserWarning, match=r"\['soil_moisture', 'sar_alt'\] have no observed"):
        plan = Preprocessor().fit(record, parts["train"], progress=False)
    stats = plan.statistics.sel(variable="soil_moisture")
    assert (float(stats["mean"]), float(stats["std"]), int(stats["count"])) == (0.0, 1.0, 0)
    assert stats["fallback"].item().startswith("unobserved")


# -- transform ------------------------------------------------------------------------------------


def test_transform_is_lazy_on_dask(record, fitted_detrend, no_compute):
    lazy = record.chunk({"time": 60, "y": 4, "x": 4})
    with no_compute():
        out = fitted_detrend.transform(lazy)
        back = fitted_detrend.inverse_targets(out[list(TARGETS)])
    for ds in (out, back):
        assert all(v.chunks is not None for v in ds.data_vars.values())
    assert out["lst"].chunksizes["time"] == lazy["lst"].chunksizes["time"]


@pytest.mark.parametrize("detrend", [False, True])
def test_transform_same_on_numpy_and_dask(record, fitted, fitted_detrend, backend, detrend):
    plan = fitted_detrend if detrend else fitted
    cube = record.chunk({"time": 60, "y": 3, "x": 5}) if backend.lazy else record
    out = plan.transform(cube)
    assert all((v.chunks is not None) == backend.lazy for v in out.data_vars.values())
    reference = plan.transform(record)
    xr.testing.assert_allclose(out.compute(), reference, rtol=1e-6, atol=1e-6)
    for name, var in out.data_vars.items():
        assert var.dtype == np.float32, name


def test_transformed_training_period_is_standard(record, parts, fitted):
    out = fitted.transform(record).sel(time=parts["train"])
    for name in ("air_temperature", "lst", "alt", "elevation"):
        values = out[name].values.astype(np.float64)
        assert abs(np.nanmean(values)) < 1e-5 and abs(np.nanstd(values) - 1) < 1e-5, name


def test_nan_stays_nan(record, fitted_detrend):
    out = fitted_detrend.transform(record)
    for name in record.data_vars:
        if name == "hyperspectral_reflectance":
            continue
        np.testing.assert_array_equal(out[name].isnull(), record[name].isnull(), err_msg=name)
        assert np.isfinite(out[name].values[out[name].notnull().values]).all()
    assert out["alt"].isnull().mean() > 0.9  # sparse sites stay sparse: nothing filled


def test_attributes(record, fitted):
    out = fitted.transform(record)
    lst = out["lst"].attrs
    assert lst["units"] == "1" and lst["geocryo_units"] == "K"
    assert {k: lst[k] for k in ("modality", "source", "long_name")} == {
        k: record.lst.attrs[k] for k in ("modality", "source", "long_name")
    }
    pcs = out["hyperspectral_reflectance_pc"]
    assert pcs.dims == ("component", "y", "x") and pcs.attrs["geocryo_units"] == "1"
    assert pcs.attrs["modality"] == "remote_sensing" and "band" not in out.dims
    assert "hyperspectral_reflectance" not in out and out.attrs == record.attrs
    xr.testing.assert_identical(out["zone"], record["zone"])


# -- PCA of the hyperspectral mosaic ---------------------------------------------------------------


def test_pca_explains_the_mosaic_with_four_uncorrelated_components(record, fitted):
    ratio = fitted.statistics["explained_variance_ratio"].sel(pca="hyperspectral_reflectance_pc")
    assert ratio.sizes["component"] == 4 and float(ratio.sum()) > 0.95
    assert (np.diff(ratio.values) < 0).all()
    scores = fitted.transform(record)["hyperspectral_reflectance_pc"]
    flat = scores.values.reshape(4, -1).astype(np.float64)
    corr = np.corrcoef(flat)
    assert np.abs(corr - np.eye(4)).max() < 1e-4
    # Standardised as one variable: mean 0, std 1 over all components and training pixels.
    assert abs(flat.mean()) < 1e-6 and abs(flat.std() - 1) < 1e-6
    # The same numbers as an exact PCA in numpy.
    bands = record.hyperspectral_reflectance.values.reshape(64, -1).T.astype(np.float64)
    centred = bands - bands.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    np.testing.assert_allclose(ratio, (singular**2 / (singular**2).sum())[:4], rtol=1e-8)
    loadings = fitted.components["hyperspectral_reflectance"]
    assert loadings.dims == ("component", "band")
    np.testing.assert_allclose(loadings.values @ loadings.values.T, np.eye(4), atol=1e-10)


def test_pca_leaves_out_nan_pixels(record, parts):
    cube = record[["alt", "hyperspectral_reflectance"]].copy(deep=True)
    cube["hyperspectral_reflectance"][5, 2, 3] = np.nan  # one band missing at one pixel
    plan = Preprocessor().fit(cube, parts["train"], progress=False)
    scores = plan.transform(cube)["hyperspectral_reflectance_pc"]
    assert scores.isnull().sum() == 4 and scores[:, 2, 3].isnull().all()
    bands = cube.hyperspectral_reflectance.values.reshape(64, -1).T.astype(np.float64)
    bands = bands[~np.isnan(bands).any(axis=1)]
    singular = np.linalg.svd(bands - bands.mean(axis=0), compute_uv=False)
    ratio = plan.statistics["explained_variance_ratio"].values[0]
    np.testing.assert_allclose(ratio, (singular**2 / (singular**2).sum())[:4], rtol=1e-8)


def test_time_varying_many_band_variable(record, parts):
    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(3, 6))
    latent = rng.normal(size=(240, 3, 8, 8))
    values = np.einsum("tkyx,kb->tbyx", latent, loadings) + 0.01 * rng.normal(size=(240, 6, 8, 8))
    cube = record[["alt"]].assign(
        spectra=(("time", "depth", "y", "x"), values.astype(np.float32), {"units": "1"})
    )
    plan = Preprocessor(PreprocessConfig(pca_components=3)).fit(
        cube, parts["train"], progress=False
    )
    out = plan.transform(cube.chunk({"time": 60}))["spectra_pc"]
    assert out.dims == ("time", "component", "y", "x") and out.sizes["component"] == 3
    assert float(plan.statistics["explained_variance_ratio"].sum()) > 0.999
    kept = Preprocessor(PreprocessConfig(pca_components=0)).fit(cube, progress=False)
    assert kept.transform(cube)["spectra"].dims == ("time", "depth", "y", "x")


# -- detrending ----------------------------------------------------------------------------------


def _injected(record: xr.Dataset) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """A variable with a known per-pixel linear trend, noise (sd 0.2) and gaps; one pixel is
    seen in three months only."""
    rng = np.random.default_rng(7)
    intercept = rng.uniform(-5, 5, size=(8, 8))
    slope = rng.uniform(-0.05, 0.05, size=(8, 8))  # per month
    t = np.arange(240, dtype=np.float64)[:, None, None]
    values = intercept + slope * t + rng.normal(0, 0.2, size=(240, 8, 8))
    values[rng.uniform(size=values.shape) < 0.3] = np.nan
    values[:, 0, 0] = np.nan
    values[[3, 40, 100], 0, 0] = 1.0  # too few months: takes the variable-wide trend
    attrs = {"units": "K", "modality": "forcing", "long_name": "injected"}
    cube = record[["alt", "air_temperature"]].assign(
        injected=(("time", "y", "x"), values.astype(np.float32), attrs)
    )
    return cube, intercept, slope


def test_detrending_removes_an_injected_trend(record, parts):
    cube, intercept, slope = _injected(record)
    plan = Preprocessor(PreprocessConfig(detrend=True)).fit(cube, parts["train"], progress=False)
    trends = plan.trends
    local = trends["injected_local"].values
    assert not local[0, 0] and local.sum() == 63
    a = trends["injected_intercept"].values
    b = trends["injected_slope"].values / 12  # per year -> per month
    # The injected trend comes back within the noise (slope s.e. about 5e-4 per month) ...
    np.testing.assert_allclose(b[local], slope[local], atol=2.5e-3)
    np.testing.assert_allclose(a[local], intercept[local], atol=0.2)
    # ... and is exactly the least-squares line through each pixel's training months.
    train = cube["injected"].sel(time=parts["train"]).values.astype(np.float64)
    t = np.arange(len(parts["train"]), dtype=np.float64)
    seen = np.isfinite(train[:, 3, 5])
    np.testing.assert_allclose(
        [b[3, 5], a[3, 5]], np.polyfit(t[seen], train[seen, 3, 5], 1), rtol=1e-9
    )
    # What is left in the training months has no trend at any pixel, and the noise's spread.
    out = plan.transform(cube)["injected"].sel(time=parts["train"]).values.astype(np.float64)
    for iy, ix in [(1, 1), (3, 5), (7, 2)]:
        seen = np.isfinite(out[:, iy, ix])
        assert abs(np.polyfit(t[seen], out[seen, iy, ix], 1)[0]) < 1e-5
    mean = float(plan.statistics["mean"].sel(variable="injected"))
    std = float(plan.statistics["std"].sel(variable="injected"))
    assert 0.18 < std < 0.22
    # The statistics are numpy's over v - (a + b t) in the training months.
    residual = train - (a + b * t[:, None, None])
    np.testing.assert_allclose([mean, std], [np.nanmean(residual), np.nanstd(residual)], rtol=1e-8)


def test_detrended_warming_is_flat_in_the_training_period(record, parts, fitted_detrend):
    air = fitted_detrend.transform(record)["air_temperature"].sel(time=parts["train"])
    t = np.arange(air.sizes["time"], dtype=np.float64)
    slopes = np.polyfit(t, air.values.reshape(len(t), -1).astype(np.float64), 1)[0]
    assert np.abs(slopes).max() < 1e-5  # std units per month, at every pixel
    slope = fitted_detrend.trends["air_temperature_slope"]
    assert slope.attrs["units"] == "degC yr-1"
    assert bool(fitted_detrend.trends["air_temperature_local"].all())


# -- inverse ------------------------------------------------------------------------------------


@pytest.mark.parametrize("detrend", [False, True])
def test_inverse_targets_is_exact(record, fitted, fitted_detrend, backend, detrend):
    plan = fitted_detrend if detrend else fitted
    cube = backend(record)
    standard = plan.transform(cube)[list(TARGETS)]
    back = plan.inverse_targets(standard)
    assert all((v.chunks is not None) == backend.lazy for v in back.data_vars.values())
    xr.testing.assert_allclose(back.compute(), record[list(TARGETS)], rtol=1e-5, atol=1e-4)
    for name in TARGETS:
        assert back[name].attrs == record[name].attrs


def test_inverse_targets_on_patches_and_spreads(record, fitted_detrend):
    standard = fitted_detrend.transform(record)
    patch = standard[["alt", "co2_flux"]].isel(time=slice(200, 212), y=slice(2, 6), x=slice(1, 4))
    members = xr.concat([patch, patch], dim="member")
    members["alt_std"] = xr.ones_like(patch["alt"])
    back = fitted_detrend.inverse_targets(members)
    expected = record[["alt", "co2_flux"]].isel(time=slice(200, 212), y=slice(2, 6), x=slice(1, 4))
    xr.testing.assert_allclose(back[["alt", "co2_flux"]].isel(member=1), expected, atol=1e-4)
    std = float(fitted_detrend.statistics["std"].sel(variable="alt"))
    np.testing.assert_allclose(back["alt_std"], std, rtol=1e-6)  # no shift, no trend
    assert back["alt_std"].attrs["units"] == "cm"
    with pytest.raises(ValueError, match="'time' coordinate"):
        fitted_detrend.inverse_targets(patch.isel(time=0, drop=True))


# -- saving with the model -----------------------------------------------------------------------


@pytest.mark.parametrize("detrend", [False, True])
def test_save_load_round_trip(tmp_path, record, fitted, fitted_detrend, detrend):
    plan = fitted_detrend if detrend else fitted
    plan.save(tmp_path / "plan")
    assert sorted(p.name for p in (tmp_path / "plan").iterdir()) == ["arrays.npz", "plan.json"]
    loaded = FittedPreprocessor.load(tmp_path / "plan")
    assert loaded.config == plan.config and loaded.origin == plan.origin
    xr.testing.assert_identical(loaded.statistics, plan.statistics)
    xr.testing.assert_identical(loaded.transform(record), plan.transform(record))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        plan.save(tmp_path / "plan")
    fitted.save(tmp_path / "plan", overwrite=True)
    assert not FittedPreprocessor.load(tmp_path / "plan").config.detrend
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan"]  # no staging left behind


def test_load_missing_plan(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"FittedPreprocessor\.save"):
        FittedPreprocessor.load(tmp_path / "nothing")


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pca_components": -1}, ValueError, "PreprocessConfig.pca_components"),
        ({"trend_min_months": 1}, ValueError, "PreprocessConfig.trend_min_months"),
        ({"detrend": "yes"}, TypeError, "PreprocessConfig.detrend"),
        ({"variables": "lst"}, TypeError, "PreprocessConfig.variables"),
        ({"variables": ()}, ValueError, "PreprocessConfig.variables"),
    ],
)
def test_bad_config_is_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        PreprocessConfig(**kwargs)


def test_variables_selects_and_keeps_targets(record, parts):
    plan = Preprocessor(PreprocessConfig(variables=["lst", "elevation"])).fit(
        record, parts["train"], progress=False
    )
    assert list(plan.variables) == ["alt", "ch4_flux", "co2_flux", "lst", "elevation"]
    assert list(plan.transform(record).data_vars) == list(plan.variables)
    with pytest.raises(KeyError, match="snow"):
        Preprocessor(PreprocessConfig(variables=("snow",))).fit(record, progress=False)
    with pytest.raises(KeyError, match="lacks"):
        plan.transform(record.drop_vars("lst"))
    with pytest.raises(ValueError, match="not in the cube's time axis"):
        Preprocessor().fit(record, pd.date_range("1990-01", "2001-01", freq="MS"), progress=False)


def test_preprocessor_computes_nothing_until_fit(record, no_compute):
    with no_compute():
        plan = Preprocessor(PreprocessConfig(detrend=True))
    assert "detrend=True" in repr(plan)
