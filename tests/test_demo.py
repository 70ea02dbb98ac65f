"""The main job, run once for the whole module: its table, report, figures and models.

The run is ``geocryo demo --quick``'s path (:func:`geocryo.demo.run_demo`) with a smaller
world through its ``settings`` parameter (:data:`SETTINGS`: 16 x 16 cells, 2008-2019,
6-month look-back, 8-cell patches, 4 epochs of 2 members), so that it takes about a minute
and a half on two cores instead of the few minutes of :data:`geocryo.demo.QUICK`.
"""

import re
from dataclasses import replace

import matplotlib.image
import numpy as np
import pytest
import xarray as xr

from geocryo import plots
from geocryo.demo import QUICK, DemoSettings, run_demo
from geocryo.forecast import forecast_period

SETTINGS = replace(QUICK, ny=16, nx=16, lookback=6, patch=8, epochs=4)
NAMES = ["alt", "ch4_flux", "co2_flux"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    lines = []
    result = run_demo(tmp_path_factory.mktemp("demo"), SETTINGS, progress=False, log=lines.append)
    return result, "\n".join(lines)


def test_table_numbers_are_finite(demo):
    evaluation = demo[0].evaluation
    assert list(evaluation.model.values) == [
        "persistence",
        "seasonal_persistence",
        "climatology",
        "teacher_forcing",
        "multimodal",
    ]
    skill = ["mae", "mse", "rmse", "r2", "bias", "rmse_reduction", "skill_vs_best"]
    for name in NAMES:
        assert np.isfinite(evaluation[name].sel(metric=skill)).all()
        calibration = evaluation[name].sel(
            model=["teacher_forcing", "multimodal"],
            metric=["crps", "coverage", "coverage_50", "spread"],
        )
        assert np.isfinite(calibration).all()
        assert evaluation[f"{name}_pairs"].sel(scope="sites", zone="all") > 50


def test_multimodal_beats_persistence_at_the_sites(demo):
    """At the observed site-months of the test period, every target's RMSE is below naive
    persistence's (built from the same observations), and no member is negative where physics
    forbids it."""
    evaluation = demo[0].evaluation
    for name in NAMES:
        rmse = evaluation[name].sel(scope="sites", zone="all", metric="rmse")
        assert float(rmse.sel(model="multimodal")) < float(rmse.sel(model="persistence")), name
    for name in ("alt", "ch4_flux"):
        assert float(demo[0].predictions["multimodal"][name].min()) >= 0, name


def test_calibration_is_a_share(demo):
    coverage = (
        demo[0]
        .evaluation.to_dataarray()
        .sel(metric="coverage", model=["teacher_forcing", "multimodal"])
    )
    assert ((coverage >= 0) & (coverage <= 1)).all()
    assert "## Calibration" in demo[0].report


def test_report_references_the_figures_it_wrote(demo):
    result = demo[0]
    text = (result.directory / "report.md").read_text()
    assert text == result.report
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert sorted(linked) == sorted(p.name for p in result.figures.values())
    # loss, skill, maps and sites, reliability, ALT trend
    assert len(linked) == 2 + 2 * len(NAMES) + 2
    for name in linked:
        image = matplotlib.image.imread(result.directory / name)
        height, width = image.shape[:2]
        assert width >= 600 and height >= 300, name
        assert image.std() > 0.05, name  # something is drawn
    for heading in ("Skill at the observed sites", "Skill on the full field", "Skill by zone"):
        assert f"## {heading}" in text


def test_the_table_is_printed(demo):
    result, printed = demo
    assert "### alt [cm]" in printed and "| multimodal |" in printed
    assert "[6/6" in printed and "report.md" in printed
    assert "multimodal RMSE vs the best baseline: at the sites" in printed
    assert result.seconds["total"] > 0


def test_loss_curves_of_the_fitted_models(demo):
    models = demo[0].models
    fig = plots.loss_curves(models)
    panels = fig.axes
    assert [ax.get_title() for ax in panels] == ["teacher forcing", "multimodal"]
    assert panels[0].get_ylabel() == "masked MSE of standardised targets [1]"
    assert all(ax.get_xlabel() == "epoch" for ax in panels)
    # The validation curve is the history's.
    val = panels[1].get_lines()[-2].get_ydata()  # members first, then training, validation
    expected = models["multimodal"].history["value"].sel(metric="loss", split="val").values
    np.testing.assert_allclose(val, expected)


def test_forecast_period_equals_the_whole_record_forecast(demo):
    """Predicting only the test years (and their look-back) gives the same numbers."""
    result = demo[0]
    model = result.models["multimodal"]
    test = model.periods["test"]
    short = forecast_period(model, result.cube, test, progress=False)
    xr.testing.assert_allclose(
        short[NAMES], result.predictions["multimodal"][NAMES].sel(time=test), rtol=1e-5
    )


def test_settings_are_checked():
    with pytest.raises(ValueError, match="patch"):
        DemoSettings(ny=8, nx=8, patch=16)
    with pytest.raises(ValueError, match="epochs"):
        DemoSettings(epochs=0)
    with pytest.raises(ValueError, match="must come after"):
        DemoSettings(start="2010-01", end="2009-12")
