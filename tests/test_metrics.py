"""Skill metrics: numpy formulas on random data with gaps, hand values, masks, zones, laziness."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import xskillscore as xs

from geocryo.evaluation import metrics
from geocryo.evaluation.baselines import baseline_forecasts
from geocryo.evaluation.metrics import (
    METRICS,
    coverage,
    crps,
    ensemble_interval,
    score,
    score_table,
    to_markdown,
)

DIMS = ("time", "y", "x")


def is_lazy(ds: xr.Dataset) -> bool:
    return all(isinstance(v.data, dask.array.Array) for v in ds.data_vars.values())


def grid(values, name="alt", units="cm"):
    """A (time, y, x) dataset with a CF-flagged ``zone``: the first ny // 2 rows boreal."""
    nt, ny, nx = values.shape
    zone = (np.arange(ny)[:, None] >= ny // 2) * np.ones(nx)
    return xr.Dataset(
        {name: (DIMS, values, {"units": units, "long_name": "thaw depth"})},
        coords={
            "time": pd.date_range("2000-01", periods=nt, freq="MS"),
            "y": np.arange(ny, dtype=float),
            "x": np.arange(nx, dtype=float),
            "zone": (
                ("y", "x"),
                zone.astype(np.float32),
                {"flag_values": [0, 1], "flag_meanings": "boreal tundra"},
            ),
        },
    )


@pytest.fixture(scope="module")
def pair() -> tuple[xr.Dataset, xr.Dataset]:
    """(forecast, truth) on 24 x 4 x 5 with about 15 % NaN in each, at different places."""
    rng = np.random.default_rng(42)
    truth = rng.normal(50.0, 10.0, size=(24, 4, 5))
    forecast = truth + rng.normal(1.5, 4.0, size=truth.shape)
    truth[rng.random(truth.shape) < 0.15] = np.nan
    forecast[rng.random(truth.shape) < 0.15] = np.nan
    return grid(forecast), grid(truth)


def numpy_scores(f: np.ndarray, t: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(f) & np.isfinite(t)
    f, t = f[ok], t[ok]
    e = f - t
    return {
        "mae": np.mean(np.abs(e)),
        "mse": np.mean(e**2),
        "rmse": np.sqrt(np.mean(e**2)),
        "r2": 1 - np.sum(e**2) / np.sum((t - t.mean()) ** 2),
        "bias": np.mean(e),
    }


def test_scores_equal_the_numpy_formulas_over_finite_pairs(pair, backend):
    forecast, truth = pair
    out = score(backend(forecast), backend(truth))
    assert out.alt.dims == ("metric",) and list(out.metric.values) == list(METRICS)
    expected = numpy_scores(forecast.alt.values, truth.alt.values)
    for metric, value in expected.items():
        np.testing.assert_allclose(out.alt.sel(metric=metric), value, rtol=1e-12)
    assert out.alt.attrs["units"] == "cm"


def test_per_cell_scores_over_time(pair, backend):
    forecast, truth = pair
    out = score(backend(forecast), backend(truth), dims="time").compute()
    assert out.alt.dims == ("metric", "y", "x")
    for j, i in [(0, 0), (2, 3), (3, 4)]:
        expected = numpy_scores(forecast.alt.values[:, j, i], truth.alt.values[:, j, i])
        for metric, value in expected.items():
            np.testing.assert_allclose(out.alt.sel(metric=metric)[j, i], value, rtol=1e-12)


def test_scores_agree_with_xskillscore(pair):
    forecast, truth = pair
    f, t = forecast.alt, truth.alt
    out = score(forecast, truth, dims=("time",)).alt
    reference = {
        "mae": xs.mae(t, f, dim="time", skipna=True),
        "mse": xs.mse(t, f, dim="time", skipna=True),
        "rmse": xs.rmse(t, f, dim="time", skipna=True),
        "r2": xs.r2(t, f, dim="time", skipna=True),
        "bias": xs.me(f, t, dim="time", skipna=True),
    }
    for metric, value in reference.items():
        xr.testing.assert_allclose(
            out.sel(metric=metric, drop=True).reset_coords(drop=True),
            value.reset_coords(drop=True),
        )


def test_r2_is_one_for_a_perfect_forecast_and_zero_for_the_mean(pair):
    _, truth = pair
    perfect = score(truth, truth).alt
    np.testing.assert_allclose(perfect.sel(metric=["mae", "rmse", "bias"]), 0.0)
    assert float(perfect.sel(metric="r2")) == 1.0
    mean = truth.copy()
    mean["alt"] = xr.full_like(truth.alt, float(truth.alt.mean()))
    assert abs(float(score(mean, truth).alt.sel(metric="r2"))) < 1e-12


def test_bias_is_positive_for_a_forecast_that_is_too_high(pair):
    _, truth = pair
    warm = truth + 2.0
    out = score(warm, truth).alt
    np.testing.assert_allclose(out.sel(metric=["bias", "mae", "rmse", "mse"]), [2, 2, 2, 4])
    assert float(score(truth - 2.0, truth).alt.sel(metric="bias")) == pytest.approx(-2.0)


def test_where_scores_only_the_masked_pairs(pair, backend):
    forecast, truth = pair
    tundra = truth.zone == 1
    out = score(backend(forecast), backend(truth), where=tundra).alt
    rows = slice(2, None)  # the tundra half of the grid
    expected = numpy_scores(forecast.alt.values[:, rows], truth.alt.values[:, rows])
    for metric, value in expected.items():
        np.testing.assert_allclose(out.sel(metric=metric), value, rtol=1e-12)
    summer = truth.time.dt.month.isin([6, 7, 8])
    out = score(forecast, truth, where=summer).alt
    months = truth.time.dt.month.isin([6, 7, 8]).values
    expected = numpy_scores(forecast.alt.values[months], truth.alt.values[months])
    np.testing.assert_allclose(out.sel(metric="rmse"), expected["rmse"], rtol=1e-12)
    nothing = score(forecast, truth, where=xr.zeros_like(tundra, dtype=bool)).alt
    assert np.isnan(nothing).all()


def test_only_shared_variables_are_scored_on_shared_times(pair):
    forecast, truth = pair
    extra = forecast.assign(ndvi=forecast.alt * 0)
    assert list(score(extra, truth).data_vars) == ["alt"]
    late = forecast.isel(time=slice(12, None))
    expected = score(late, truth.isel(time=slice(12, None)))
    xr.testing.assert_allclose(score(late, truth), expected)


def test_bad_inputs_say_what_to_fix(pair):
    forecast, truth = pair
    with pytest.raises(ValueError, match="no data variable is present in all"):
        score(forecast.rename(alt="co2_flux"), truth)
    with pytest.raises(ValueError, match="share no 'time' labels"):
        score(forecast.assign_coords(time=forecast.time + np.timedelta64(3650, "D")), truth)
    with pytest.raises(TypeError, match="where must be a boolean"):
        score(forecast, truth, where=truth.zone)
    with pytest.raises(ValueError, match=r"cannot reduce over \['depth'\]"):
        score(forecast, truth, dims=("time", "depth"))
    with pytest.raises(TypeError, match="to_dataset"):
        score(forecast.alt, truth)


@pytest.fixture(scope="module")
def models(pair) -> dict[str, xr.Dataset]:
    forecast, truth = pair
    return {
        "persistence": forecast,
        "perfect": truth,
        "half_error": truth + (forecast - truth) / 2,
    }


def test_rmse_reduction_against_the_reference(pair, models, backend):
    _, truth = pair
    table = score_table({k: backend(v) for k, v in models.items()}, backend(truth))
    alt = table.alt.compute()
    assert alt.dims == ("model", "metric")
    assert list(alt.model.values) == ["persistence", "perfect", "half_error"]
    assert list(alt.metric.values) == [*METRICS, "rmse_reduction"]
    reduction = alt.sel(metric="rmse_reduction")
    np.testing.assert_allclose(reduction, [0.0, 1.0, 0.5], atol=1e-12)
    xr.testing.assert_allclose(
        alt.sel(model="persistence", metric=list(METRICS), drop=True),
        score(models["persistence"], truth).alt,
    )
    assert table.attrs["reference"] == "persistence"
    assert "rmse_reduction" not in score_table(models, truth, reference=None).metric


def test_per_zone_scores_match_manual_selection(pair, models, backend):
    _, truth = pair
    table = score_table({k: backend(v) for k, v in models.items()}, backend(truth), by="zone")
    assert table.alt.dims == ("model", "zone", "metric")
    assert list(table.zone.values) == ["boreal", "tundra"]
    for label, value in [("boreal", 0), ("tundra", 1)]:
        manual = score(models["half_error"], truth, where=truth.zone == value).alt
        xr.testing.assert_allclose(
            table.alt.sel(model="half_error", zone=label, metric=list(METRICS), drop=True),
            manual.reset_coords(drop=True),
        )
    xr.testing.assert_allclose(score_table(models, truth, by=truth.zone), table.compute())
    # Without CF flags the groups are the field's distinct values.
    plain = truth.assign_coords(zone=truth.zone.copy(data=truth.zone.values * 1).drop_attrs())
    assert list(score_table(models, plain, by="zone").zone.values) == [0.0, 1.0]


def test_a_model_without_a_target_has_a_nan_row(pair, models):
    _, truth = pair
    both = truth.assign(co2_flux=truth.alt / 10)
    full = {k: v.assign(co2_flux=v.alt / 10) for k, v in models.items()}
    table = score_table({**full, "alt_only": models["half_error"]}, both)
    assert np.isnan(table.co2_flux.sel(model="alt_only")).all()
    assert np.isfinite(table.alt.sel(model="alt_only")).all()


def test_score_table_refuses_what_it_cannot_do(pair, models):
    _, truth = pair
    with pytest.raises(ValueError, match="reference 'climatology' is not among the forecasts"):
        score_table(models, truth, reference="climatology")
    with pytest.raises(ValueError, match="by='biome' is neither a coordinate"):
        score_table(models, truth, by="biome")
    with pytest.raises(ValueError, match="forecasts is empty"):
        score_table({}, truth)


def test_coverage_of_a_known_interval(backend):
    truth = np.arange(12.0).reshape(12, 1, 1)
    truth[10] = np.nan  # not counted
    lower, upper = grid(np.full_like(truth, 2.0)), grid(np.full_like(truth, 5.0))
    upper.alt[0] = np.nan  # month 0 (truth 0, outside anyway) has no interval: not counted
    out = coverage(backend(lower), backend(upper), backend(grid(truth)))
    # truth 1..9 and 11 are scored (10 points); 2, 3, 4, 5 are inside, bounds included
    assert float(out.alt) == pytest.approx(4 / 10)
    assert out.alt.attrs["units"] == "1"


def test_a_calibrated_ensemble_covers_ninety_percent():
    rng = np.random.default_rng(7)
    ensemble = grid(rng.normal(size=(40, 5, 10, 100))[..., 0])  # template for coords
    members = xr.DataArray(rng.normal(size=(40, 5, 10, 100)), dims=(*DIMS, "member"))
    ensemble["alt"] = members.assign_coords(ensemble.coords)
    truth = grid(rng.normal(size=(40, 5, 10)))
    lower, upper = ensemble_interval(ensemble, 0.9)
    assert "member" not in lower.alt.dims
    assert float(coverage(lower, upper, truth).alt) == pytest.approx(0.9, abs=0.03)
    narrow = ensemble_interval(ensemble, 0.5)
    assert float(coverage(*narrow, truth).alt) == pytest.approx(0.5, abs=0.05)


def test_ensemble_interval_quantiles_by_hand():
    members = xr.DataArray(np.arange(101.0)[None, None, None, :], dims=(*DIMS, "member"))
    lower, upper = ensemble_interval(xr.Dataset({"alt": members}), 0.9)
    assert lower.alt.item() == pytest.approx(5.0) and upper.alt.item() == pytest.approx(95.0)
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        ensemble_interval(xr.Dataset({"alt": members}), 90)
    with pytest.raises(ValueError, match="no 'ensemble' dim"):
        ensemble_interval(xr.Dataset({"alt": members}), member_dim="ensemble")


def test_crps_of_one_member_is_the_mae(pair, backend):
    forecast, truth = pair
    ensemble = forecast.expand_dims(member=1, axis=-1)
    out = crps(backend(ensemble), backend(truth))
    mae = score(forecast, truth).alt.sel(metric="mae", drop=True)
    np.testing.assert_allclose(out.alt, mae, rtol=1e-12)


def test_crps_of_a_two_member_ensemble_by_hand():
    # members {0, 2}: CRPS = E|X - t| - E|X - X'| / 2 = E|X - t| - 0.5
    members = xr.DataArray(
        np.array([[0.0, 2.0], [0.0, 2.0], [0.0, np.nan]])[:, None, None, :],
        dims=(*DIMS, "member"),
    )
    truth = grid(np.array([1.0, 3.0, 1.0])[:, None, None])
    ensemble = xr.Dataset({"alt": members}).assign_coords(truth.coords)
    out = crps(ensemble, truth, dims=()).alt
    np.testing.assert_allclose(out[:, 0, 0], [0.5, 1.5, np.nan])  # a NaN member: not scored
    assert float(crps(ensemble, truth).alt) == pytest.approx(1.0)


def test_crps_refuses_a_missing_member_dim(pair):
    forecast, truth = pair
    with pytest.raises(ValueError, match="has no 'member' dim"):
        crps(forecast, truth)
    with pytest.raises(ValueError, match="must not include the member dim"):
        crps(forecast.expand_dims(member=2), truth, dims=("time", "member"))


def test_everything_stays_lazy_until_asked(pair, models, no_compute):
    forecast, truth = pair
    lazy = {k: v.chunk({"time": 6, "y": 2}) for k, v in models.items()}
    lazy_truth = truth.chunk({"time": 6, "y": 2})
    ensemble = forecast.expand_dims(member=3, axis=-1) + xr.DataArray([-1.0, 0, 1], dims="member")
    with no_compute():
        results = {
            "score": score(lazy["persistence"], lazy_truth),
            "table": score_table(lazy, lazy_truth, by="zone"),
            "coverage": coverage(lazy_truth - 1, lazy_truth + 1, lazy_truth),
            "crps": crps(ensemble.chunk({"time": 6, "member": 1}), lazy_truth),
            "interval": ensemble_interval(ensemble.chunk({"time": 6}))[0],
        }
    assert all(is_lazy(r) for r in results.values())
    xr.testing.assert_allclose(results["score"].compute(), score(models["persistence"], truth))
    xr.testing.assert_allclose(
        results["table"].compute(), score_table(models, truth, by="zone"), rtol=1e-10
    )
    xr.testing.assert_allclose(results["crps"].compute(), crps(ensemble, truth))


def test_to_markdown_prints_the_numbers(pair, models):
    _, truth = pair
    table = score_table(models, truth)
    text = to_markdown(table)
    rmse = float(table.alt.sel(model="persistence", metric="rmse"))
    assert text.startswith("### alt [cm]\n")
    assert "| model | MAE | MSE | RMSE | R² | bias | RMSE reduction |" in text
    assert (
        f"| persistence | {float(table.alt.sel(model='persistence', metric='mae')):.3f} |" in text
    )
    assert f"{rmse:.3f}" in text and "| 0.0 % |" in text and "| 100.0 % |" in text
    assert "| 50.0 % |" in text
    assert f"{rmse:.1f}" in to_markdown(table, floatfmt=".1f")
    zoned = to_markdown(score_table(models, truth, by="zone"))
    assert "| model | zone | MAE" in zoned and "| half_error | tundra |" in zoned
    empty = score(truth, truth, where=xr.zeros_like(truth.zone, dtype=bool))
    assert "| forecast | n/a | n/a |" in to_markdown(empty)


def test_the_season_beats_last_month_on_synthetic_alaska(small_cube):
    # Monthly targets follow a strong seasonal cycle, so on the noise-free fields of a test year
    # the training climatology and last year's month beat naive one-month persistence.
    _, truth = small_cube
    train, test = slice("2000-01", "2001-12"), slice("2002-01", "2002-12")
    forecasts = baseline_forecasts(truth, train)
    table = score_table(forecasts, truth.sel(time=test), by="zone").compute()
    for name in ("alt", "ch4_flux", "co2_flux"):
        reduction = table[name].sel(metric="rmse_reduction")
        assert (reduction.sel(model=["seasonal_persistence", "climatology"]) > 0.3).all(), name
        assert (table[name].sel(model="climatology", metric="r2") > 0.8).all(), name


def test_reliability_lies_on_the_diagonal_for_a_calibrated_gaussian():
    rng = np.random.default_rng(3)
    shape = (400, 5, 5)
    truth = xr.Dataset({"alt": (("time", "y", "x"), rng.standard_normal(shape))})
    mean = xr.zeros_like(truth)
    spread = xr.ones_like(truth)
    curve = metrics.reliability(mean, spread, truth)
    assert list(curve["level"].values) == list(metrics.RELIABILITY_LEVELS)
    np.testing.assert_allclose(curve["alt"].values, curve["level"].values, atol=0.02)
    # half the spread: over-confident, every level below the diagonal
    narrow = metrics.reliability(mean, spread / 2, truth)
    assert (narrow["alt"].values < narrow["level"].values).all()


def test_a_bounded_interval_stops_at_the_bound():
    mean = xr.Dataset({"alt": ("x", np.array([0.5, 3.0, 10.0]), {"valid_min": 0.0})})
    sd = xr.Dataset({"alt": ("x", np.array([2.0, 2.0, 2.0]))})
    lower, upper = metrics.normal_interval(mean, sd, 0.9)
    np.testing.assert_allclose(lower["alt"].values, [0.0, 0.0, 10 - 1.6448536 * 2], rtol=1e-6)
    np.testing.assert_allclose(upper["alt"].values, mean["alt"].values + 1.6448536 * 2, rtol=1e-6)
