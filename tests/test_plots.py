"""geocryo.plots: the figures carry what a reader needs (labels with units, colour bars, titles)
and show the numbers they claim to show. Figures are inspected as objects before any saving."""

import matplotlib.image
import numpy as np
import pytest
import xarray as xr

from geocryo import plots
from geocryo.evaluation import evaluate, thaw_trend

NAMES = ["alt", "ch4_flux", "co2_flux"]


@pytest.fixture(scope="module")
def forecast(tiny_world):
    """A forecast on the truth's grid: the truth plus noise, with a spread, in the truth's units."""
    truth = tiny_world[1]
    rng = np.random.default_rng(0)
    out = xr.Dataset(coords=truth.coords)
    for name in NAMES:
        scale = 0.2 * float(truth[name].std())
        noise = xr.DataArray(rng.standard_normal(truth[name].shape), dims=truth[name].dims)
        out[name] = (truth[name] + scale * noise).assign_attrs(truth[name].attrs)
        out[f"{name}_std"] = xr.full_like(truth[name], scale).assign_attrs(
            units=truth[name].attrs["units"]
        )
    return out


@pytest.fixture(scope="module")
def evaluation(tiny_world, tiny_periods, forecast):
    cube, truth = tiny_world
    return evaluate(
        None,
        cube,
        truth,
        predictions={"multimodal": forecast},
        periods=tiny_periods,
        progress=False,
    )


def _colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_units_label():
    assert plots.units_label("nmol m-2 s-1") == "nmol m$^{-2}$ s$^{-1}$"
    assert plots.units_label("umol m-2 s-1") == "µmol m$^{-2}$ s$^{-1}$"
    assert plots.units_label("cm") == "cm"
    assert plots.units_label("cm decade-1") == "cm decade$^{-1}$"


@pytest.mark.parametrize("name", NAMES)
def test_field_maps(tiny_world, forecast, name):
    cube, truth = tiny_world
    fig = plots.field_maps(
        forecast, name, "2003-08", truth=truth, sites=plots.observed_sites(cube, name)
    )
    panels, bars = _panels(fig), _colorbars(fig)
    assert [ax.get_title() for ax in panels] == [
        "truth",
        "prediction (ensemble mean)",
        "error (prediction − truth)",
        "ensemble spread (std)",
    ]
    units = plots.units_label(truth[name].attrs["units"])
    assert len(bars) == 4
    assert all(f"[{units}]" in bar.get_ylabel() for bar in bars)
    assert all(ax.get_xlabel() == "x [km, EPSG:3338]" for ax in panels)
    assert panels[0].get_ylabel() == "y [km, EPSG:3338]"
    assert "August 2003" in fig.get_suptitle()
    # The maps show the month's values, in km: the error panel is prediction minus truth.
    error = panels[2].collections[0].get_array()
    expected = (forecast[name] - truth[name]).sel(time="2003-08").values.ravel()
    np.testing.assert_allclose(np.asarray(error).ravel(), expected, rtol=1e-5)
    x0, x1 = panels[0].get_xlim()
    assert x0 < cube.x.min() / 1000 < cube.x.max() / 1000 < x1
    # The error colour scale is symmetric about 0.
    low, high = panels[2].collections[0].get_clim()
    assert low == -high


def test_field_maps_without_truth_show_prediction_and_spread(forecast):
    fig = plots.field_maps(forecast, "alt", "2003-08")
    assert len(_panels(fig)) == 2 and len(_colorbars(fig)) == 2
    with pytest.raises(ValueError, match="2010-08 is not in the data"):
        plots.field_maps(forecast, "alt", "2010-08")


def test_site_series(tiny_world, forecast):
    cube, truth = tiny_world
    test = forecast.sel(time=slice("2003-01", None))
    fig = plots.site_series({"multimodal": test}, cube, "ch4_flux", truth=truth, sites=3)
    panels = _panels(fig)
    assert len(panels) == 3
    observed = plots.observed_sites(cube.sel(time=slice("2003-01", None)), "ch4_flux").values
    for ax in panels:
        assert ax.get_ylabel() == "CH4 flux [nmol m$^{-2}$ s$^{-1}$]"
        # Every panel is a cell where CH4 was observed in the period.
        title = ax.get_title()
        iy = int(title.split("(y ")[1].split(",")[0])
        ix = int(title.split("x ")[1].split(")")[0])
        assert observed[iy, ix]
        assert "° N" in title and ("boreal" in title or "tundra" in title)
    assert panels[-1].get_xlabel() == "month"
    legend = [t.get_text() for t in panels[0].get_legend().get_texts()]
    assert {"truth", "multimodal", "observed", "90 % band (multimodal)"} <= set(legend)


def test_skill_bars_show_the_table(evaluation):
    fig = plots.skill_bars(evaluation)
    panels = _panels(fig)
    assert len(panels) == 2 * 3  # scopes x targets
    by_title = {ax.get_title(): ax for ax in panels}
    ax = by_title["CO2 flux, field"]
    heights = [bar.get_height() for bar in ax.patches]
    expected = evaluation.co2_flux.sel(scope="field", zone="all", metric="rmse").values
    np.testing.assert_allclose(heights, expected)
    assert ax.get_ylabel() == "RMSE [µmol m$^{-2}$ s$^{-1}$]"
    assert by_title["thaw depth, sites"].get_ylabel() == "RMSE [cm]"
    labels = [t.get_text() for t in ax.texts]
    table = evaluation.co2_flux.sel(scope="field", zone="all")
    best = str(evaluation.co2_flux_best_baseline.sel(scope="field", zone="all").values)
    models = list(evaluation.model.values)
    assert labels[models.index(best)] == "best"
    skill = float(table.sel(model="multimodal", metric="skill_vs_best"))
    assert labels[-1] == f"{-100 * skill:+.0f}%"


def test_trend_maps(tiny_world, forecast):
    _, truth = tiny_world
    fig = plots.trend_maps({"truth": truth.alt, "multimodal": forecast.alt})
    panels, bars = _panels(fig), _colorbars(fig)
    assert len(panels) == 2 and len(bars) == 2
    assert all(bar.get_ylabel() == "ALT trend [cm decade$^{-1}$]" for bar in bars)
    mean = float(thaw_trend(truth.alt).mean())
    assert f"mean {mean:+.1f} cm decade" in panels[0].get_title()
    assert panels[0].collections[0].get_clim() == panels[1].collections[0].get_clim()


def test_loss_curves_refuse_what_is_not_a_history(tiny_world):
    with pytest.raises(ValueError, match="not a geocryo training history"):
        plots.loss_curves({"model": tiny_world[1]})


def test_save_writes_a_png(tmp_path, forecast, tiny_world):
    fig = plots.field_maps(forecast, "alt", "2003-08", truth=tiny_world[1])
    path = plots.save(fig, tmp_path / "maps" / "alt.png", dpi=80)
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width > 800 and 200 < height < width
    assert image.std() > 0.05  # not a blank canvas


def test_a_signed_flux_is_white_at_zero(tiny_world, forecast):
    fig = plots.field_maps(forecast, "co2_flux", "2003-08", truth=tiny_world[1])  # both signs
    mesh = _panels(fig)[0].collections[0]
    assert mesh.norm.vmin < 0 < mesh.norm.vmax
    np.testing.assert_allclose(mesh.norm(0.0), 0.5)  # the middle of the diverging map
