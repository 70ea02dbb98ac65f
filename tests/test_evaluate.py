"""geocryo.evaluate: scores checked against a direct numpy computation on a small tiny_world."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

from geocryo.cube import observation_variance
from geocryo.evaluation import evaluate, thaw_trend, to_markdown
from geocryo.report import write_report

NAMES = ["alt", "ch4_flux", "co2_flux"]


def _forecast(truth: xr.Dataset, noise: float, claimed: float, seed: int = 0) -> xr.Dataset:
    """Truth plus Gaussian noise of ``noise`` x the field's std, claiming a spread ``claimed``."""
    rng = np.random.default_rng(seed)
    out = xr.Dataset(coords=truth.coords)
    for name in NAMES:
        scale = float(truth[name].std())
        draw = rng.standard_normal(truth[name].shape).astype(np.float32)
        out[name] = truth[name] + noise * scale * xr.DataArray(draw, dims=truth[name].dims)
        out[name].attrs = truth[name].attrs
        out[f"{name}_std"] = xr.full_like(truth[name], claimed * scale)
    return out


@pytest.fixture(scope="module")
def forecast(tiny_world):
    return _forecast(tiny_world[1], noise=0.2, claimed=0.2)


@pytest.fixture(scope="module")
def evaluation(tiny_world, tiny_periods, forecast):
    cube, truth = tiny_world
    return evaluate(
        None, cube, truth, predictions={"noisy": forecast}, periods=tiny_periods, progress=False
    )


def _numpy_rows(reference: np.ndarray, time: pd.DatetimeIndex, train: pd.DatetimeIndex):
    """Persistence, seasonal persistence and climatology of a (time, y, x) array, by hand."""
    persistence = np.full_like(reference, np.nan)
    persistence[1:] = reference[:-1]
    seasonal = np.full_like(reference, np.nan)
    seasonal[12:] = reference[:-12]
    climatology = np.full_like(reference, np.nan)
    in_train = time.isin(train)
    for month in range(1, 13):
        same = time.month == month
        if (same & in_train).any():
            with warnings.catch_warnings():
                # cells never observed in that month give NaN (and numpy's warning)
                warnings.simplefilter("ignore", RuntimeWarning)
                climatology[same] = np.nanmean(reference[same & in_train], axis=0)
    return {
        "persistence": persistence,
        "seasonal_persistence": seasonal,
        "climatology": climatology,
    }


def _scores(f: np.ndarray, t: np.ndarray) -> dict[str, float]:
    error = f - t
    mse = np.mean(error**2)
    return {
        "mae": np.mean(np.abs(error)),
        "mse": mse,
        "rmse": np.sqrt(mse),
        "r2": 1 - np.sum(error**2) / np.sum((t - t.mean()) ** 2),
        "bias": np.mean(error),
    }


@pytest.mark.parametrize("scope", ["sites", "field"])
@pytest.mark.parametrize("zone", ["all", "tundra"])
def test_scores_match_numpy(tiny_world, tiny_periods, forecast, evaluation, scope, zone):
    cube, truth = tiny_world
    time = cube.indexes["time"]
    test = time.isin(tiny_periods["test"])
    zone_mask = np.ones((8, 8), bool) if zone == "all" else cube.zone.values == 1
    z = norm.ppf(0.95)
    for name in NAMES:
        source = cube if scope == "sites" else truth
        reference = source[name].values.astype(np.float64)
        rows = _numpy_rows(reference, time, tiny_periods["train"])
        rows["noisy"] = forecast[name].values.astype(np.float64)
        spread = forecast[f"{name}_std"].values.astype(np.float64)
        if scope == "sites":  # against observations, widened by their declared error
            spread = np.sqrt(spread**2 + observation_variance(cube[name].attrs, rows["noisy"]))
        valid = np.isfinite(reference) & test[:, None, None] & zone_mask
        for row in rows.values():
            valid &= np.isfinite(row)
        got = evaluation[name].sel(scope=scope, zone=zone)
        assert int(evaluation[f"{name}_pairs"].sel(scope=scope, zone=zone)) == valid.sum() > 5
        expected = {row: _scores(values[valid], reference[valid]) for row, values in rows.items()}
        for row, scores in expected.items():
            for metric, value in scores.items():
                np.testing.assert_allclose(
                    float(got.sel(model=row, metric=metric)), value, rtol=1e-5, err_msg=row
                )
            np.testing.assert_allclose(
                float(got.sel(model=row, metric="rmse_reduction")),
                1 - scores["rmse"] / expected["persistence"]["rmse"],
                rtol=1e-5,
            )
        inside = np.abs(reference[valid] - rows["noisy"][valid]) <= z * spread[valid]
        np.testing.assert_allclose(float(got.sel(model="noisy", metric="coverage")), inside.mean())
        np.testing.assert_allclose(
            float(got.sel(model="noisy", metric="spread")),
            np.sqrt(np.mean(spread[valid] ** 2)),
            rtol=1e-6,
        )


def test_layout_rows_and_units(evaluation, tiny_periods):
    assert list(evaluation.model.values) == [
        "persistence",
        "seasonal_persistence",
        "climatology",
        "noisy",
    ]
    assert list(evaluation.scope.values) == ["sites", "field"]
    assert list(evaluation.zone.values) == ["all", "boreal", "tundra"]
    assert evaluation.alt.attrs["units"] == "cm"
    assert evaluation.alt_pairs.attrs["units"] == "1"
    assert evaluation.co2_flux.dims == ("scope", "zone", "model", "metric")
    # The field scope scores every cell of every test month; the sites far fewer.
    field = evaluation.alt_pairs.sel(scope="field", zone="all")
    assert field == 8 * 8 * len(tiny_periods["test"])
    assert evaluation.alt_pairs.sel(scope="sites", zone="all") < field / 4
    # Zones partition the cells.
    for scope in ("sites", "field"):
        pairs = evaluation.alt_pairs.sel(scope=scope)
        assert pairs.sel(zone="all") == pairs.sel(zone="boreal") + pairs.sel(zone="tundra")


def test_calibration(tiny_world, tiny_periods):
    """A Gaussian forecast with the right spread covers about 90 %; an over-confident one, less."""
    cube, truth = tiny_world
    honest = _forecast(truth, noise=0.3, claimed=0.3, seed=1)
    overconfident = _forecast(truth, noise=0.3, claimed=0.075, seed=1)
    table = evaluate(
        None,
        cube,
        truth,
        predictions={"honest": honest, "overconfident": overconfident},
        periods=tiny_periods,
        baselines=["persistence"],
        progress=False,
    )
    for name in NAMES:
        coverage = table[name].sel(metric="coverage")
        assert coverage.sel(model="persistence").isnull().all()  # no spread, no interval
        models = coverage.sel(model=["honest", "overconfident"])
        assert ((models >= 0) & (models <= 1)).all()
        assert abs(float(coverage.sel(model="honest", scope="field", zone="all")) - 0.9) < 0.04
        assert float(coverage.sel(model="overconfident", scope="field", zone="all")) < 0.4
        # Spread about equal to the RMSE for the honest one: a calibrated ensemble.
        row = table[name].sel(model="honest", scope="field", zone="all")
        ratio = float(row.sel(metric="spread") / row.sel(metric="rmse"))
        assert 0.9 < ratio < 1.1


def test_without_truth_only_the_sites(tiny_world, tiny_periods, forecast):
    cube, _ = tiny_world
    table = evaluate(
        None, cube, predictions={"noisy": forecast}, periods=tiny_periods, progress=False
    )
    assert list(table.scope.values) == ["sites"]
    assert np.isfinite(table.alt.sel(metric="rmse")).all()


def test_refuses_bad_input(tiny_world, tiny_periods, forecast):
    cube, truth = tiny_world
    with pytest.raises(ValueError, match="periods="):
        evaluate(None, cube, truth, predictions={"noisy": forecast})
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate(None, cube, predictions={"f": forecast}, periods=tiny_periods, baselines=["mean"])
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate(None, cube, predictions={"f": forecast}, periods=tiny_periods, split="future")
    short = truth.isel(time=slice(0, 30))
    with pytest.raises(ValueError, match="the truth lacks"):
        evaluate(None, cube, short, predictions={"f": forecast}, periods=tiny_periods)
    with pytest.raises(ValueError, match="would replace the baselines"):
        evaluate(None, cube, predictions={"climatology": forecast}, periods=tiny_periods)
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        evaluate(None, cube, predictions={"f": forecast}, periods=tiny_periods, level=90)
    with pytest.raises(TypeError, match="Forecaster"):
        evaluate({"f": forecast}, cube, periods=tiny_periods)


def test_to_markdown(evaluation):
    text = to_markdown(evaluation, scope="field", zone="tundra")
    pairs = int(evaluation.ch4_flux_pairs.sel(scope="field", zone="tundra"))
    assert "### ch4_flux [nmol m-2 s-1]" in text
    assert f"{pairs:,} cell-months scored by every row" in text
    assert "| noisy |" in text and "| persistence |" in text
    with pytest.raises(ValueError, match="zone 'arctic'"):
        to_markdown(evaluation, zone="arctic")


def test_thaw_trend_recovers_a_known_slope():
    time = pd.date_range("2000-01", "2009-12", freq="MS")
    years = time.year.values - 2000
    season = np.clip(np.sin(np.pi * (time.month.values - 4) / 6), 0, None)  # thaw May-Sep
    slope = np.array([[0.5, 2.0], [-1.0, 0.0]])  # cm per year, per cell
    depth = season[:, None, None] * (40 + slope[None] * years[:, None, None])
    alt = xr.DataArray(depth, dims=("time", "y", "x"), coords={"time": time}, attrs={"units": "cm"})
    alt[:5, 0, 0] = np.nan  # an incomplete first year is left out, not read as a shallow one
    trend = thaw_trend(alt)
    np.testing.assert_allclose(trend.values, 10 * slope, atol=1e-9)
    assert trend.attrs["units"] == "cm decade-1"
    assert trend.attrs["years"] == "2000-2009"
    assert thaw_trend(alt.isel(time=slice(0, 24))).isnull().all()  # two years: too few


def test_a_row_without_a_target_leaves_the_others_alone(
    tiny_world, tiny_periods, forecast, evaluation
):
    cube, truth = tiny_world
    alt_only = forecast[["alt", "alt_std"]]
    table = evaluate(
        None,
        cube,
        truth,
        predictions={"noisy": forecast, "alt_only": alt_only},
        periods=tiny_periods,
        progress=False,
    )
    assert table.ch4_flux.sel(model="alt_only").isnull().all()
    assert np.isfinite(table.alt.sel(model="alt_only", metric="rmse")).all()
    xr.testing.assert_allclose(
        table.ch4_flux.sel(model="noisy"), evaluation.ch4_flux.sel(model="noisy")
    )


def test_write_report(evaluation, tmp_path):
    (tmp_path / "skill.png").write_bytes(b"\x89PNG")  # the report links files; it reads none
    text = write_report(tmp_path, evaluation, figures={"Skill": "skill.png"}, title="t")
    assert (tmp_path / "report.md").read_text() == text
    assert "![Skill](skill.png)" in text
    for heading in ("Skill at the observed sites", "Skill on the full field", "Skill by zone"):
        assert f"## {heading}" in text
    # The calibration table holds the evaluation's coverage.
    covered = float(evaluation.alt.sel(scope="field", zone="all", model="noisy", metric="coverage"))
    assert f"| noisy | field | {covered:.2f} / " in text
    assert "noisy RMSE vs the best baseline: at the sites alt " in text
    with pytest.raises(FileNotFoundError, match="no file at"):
        write_report(tmp_path, evaluation, figures={"Maps": "maps.png"})


def test_members_are_scored_as_an_ensemble(tiny_world, tiny_periods):
    """Members keep their dim until scoring: CRPS from the members, the same point scores as
    their mean, and a calibrated ensemble covers about its level."""
    cube, truth = tiny_world
    rng = np.random.default_rng(3)
    members = []
    centre = {name: 0.3 * float(truth[name].std()) for name in NAMES}
    shift = {name: rng.standard_normal(truth[name].shape) for name in NAMES}
    for _ in range(16):
        member = xr.Dataset(coords=truth.coords)
        for name in NAMES:
            draw = rng.standard_normal(truth[name].shape)
            noise = centre[name] * (shift[name] + draw)
            member[name] = (truth[name] + noise).astype(np.float32)
            member[name].attrs = truth[name].attrs
        members.append(member)
    ensemble = xr.concat(members, dim="member")
    mean = ensemble.mean("member")
    table = evaluate(
        None,
        cube,
        truth,
        predictions={"ensemble": ensemble, "mean": mean},
        periods=tiny_periods,
        baselines=["persistence"],
        progress=False,
    )
    months = tiny_periods["test"]
    for name in NAMES:
        row = table[name].sel(scope="field", zone="all")
        for metric in ("mae", "rmse", "bias"):
            assert float(row.sel(model="ensemble", metric=metric)) == pytest.approx(
                float(row.sel(model="mean", metric=metric)), rel=1e-5
            )
        # CRPS = E|X - t| - E|X - X'| / 2, by hand over the pairs every row has
        x = ensemble[name].sel(time=months).values
        t = truth[name].sel(time=months).values
        valid = np.isfinite(t) & np.isfinite(x).all(0)
        persisted = truth[name].shift(time=1).sel(time=months).values
        valid &= np.isfinite(persisted)
        x, t = x[:, valid], t[valid]
        by_hand = np.abs(x - t).mean(0) - 0.5 * np.abs(x[:, None] - x[None]).mean((0, 1))
        crps = float(row.sel(model="ensemble", metric="crps"))
        assert crps == pytest.approx(by_hand.mean(), rel=1e-4)
        # one member's CRPS is its absolute error
        assert float(row.sel(model="mean", metric="crps")) == pytest.approx(
            float(row.sel(model="mean", metric="mae")), rel=1e-5
        )
        assert np.isnan(float(row.sel(model="mean", metric="coverage")))
        # 16 members drawn from the truth's own distribution: a Gaussian 90 % interval of
        # their mean and spread holds the truth about 0.9 of the time (a little less: the
        # spread is estimated from 16 draws)
        assert 0.83 < float(row.sel(model="ensemble", metric="coverage")) < 0.92


def test_every_row_is_measured_against_the_best_baseline(evaluation):
    for name in NAMES:
        table = evaluation[name]
        rmse = table.sel(metric="rmse")
        baselines = rmse.sel(model=["persistence", "seasonal_persistence", "climatology"])
        best = evaluation[f"{name}_best_baseline"]
        assert best.dims == ("scope", "zone")
        for scope in evaluation.scope.values:
            for zone in evaluation.zone.values:
                least = baselines.sel(scope=scope, zone=zone)
                named = str(best.sel(scope=scope, zone=zone).values)
                assert named == str(least.idxmin("model").values)
                expected = 1 - rmse.sel(scope=scope, zone=zone) / least.min()
                np.testing.assert_allclose(
                    table.sel(scope=scope, zone=zone, metric="skill_vs_best"), expected
                )
                # the best baseline itself scores exactly 0 against itself
                assert (
                    float(table.sel(scope=scope, zone=zone, model=named, metric="skill_vs_best"))
                    == 0
                )


def test_the_half_interval_and_the_headline(evaluation):
    from geocryo.report import headline

    half = evaluation["alt"].sel(metric="coverage_50", model="noisy", zone="all")
    # a forecast whose claimed spread equals its error covers about half at 50 %
    assert 0.4 < float(half.sel(scope="field")) < 0.6
    text = headline(evaluation, "noisy")
    assert text.startswith("noisy RMSE vs the best baseline: at the sites")
    for name in NAMES:
        best = str(evaluation[f"{name}_best_baseline"].sel(scope="field", zone="all").values)
        assert f"(vs {best.replace('_', ' ')})" in text


def test_trend_summary_tells_a_trend_from_noise():
    from geocryo.evaluation import trend_summary

    time = pd.date_range("2000-01", periods=12 * 20, freq="MS")
    year = time.year.to_numpy() - 2000
    season = np.clip(np.sin(2 * np.pi * (time.month.to_numpy() - 4) / 12), 0, None)
    rng = np.random.default_rng(0)
    for slope, noise, significant in ((0.3, 0.5, True), (0.0, 2.0, False)):
        jitter = noise * rng.standard_normal(20).repeat(12)
        values = (40 + slope * year + jitter) * season
        alt = xr.DataArray(
            np.broadcast_to(values[:, None, None], (len(time), 2, 2)).copy(),
            dims=("time", "y", "x"),
            coords={"time": time},
        )
        summary = trend_summary(alt)
        assert summary["years"] == 20
        assert summary["significant"] is significant
        if significant:
            assert summary["trend"] == pytest.approx(10 * slope, abs=3 * summary["stderr"])
