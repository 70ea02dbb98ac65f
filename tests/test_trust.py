"""Skill and calibration on a cube whose signal and noise are known.

The cube is built here, not by the synthetic Alaska, so that what a forecaster can know is
exact: each cell's CO2 flux is its own seasonal cycle plus a known multiple of the forcing's
anomaly in the same month (a driver, known when the forecast is made), and the sites observe it
with Gaussian noise of a declared standard deviation. A model that learns the driver must beat
climatology, the best baseline; its 90 % and 50 % intervals must hold about 90 % and 50 % of
held-out observations and truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import geocryo
from geocryo.forecast import FitConfig
from geocryo.preprocess import TimeSplit
from geocryo.train import TrainConfig

NOISE = 0.3  # the sites' measurement error, umol m-2 s-1
SIGNAL = 1.2  # flux anomaly per degree of forcing anomaly
# A fifth of the sites held out to calibrate the cells without one: here each cell's static maps
# are unique, so a network that trained on a site would recognise it even with its history
# hidden, and blind forecasts of the training sites would understate the errors elsewhere.
CONFIG = FitConfig(
    features=4,
    layers=1,
    batch_size=8,
    calibration_sites=0.2,
    train=TrainConfig(warmup_steps=2),
)


def known_cube(seed: int = 0, n: int = 12, years: int = 14, sites: int = 36):
    """``(cube, truth)``: CO2 flux = seasonal cycle + SIGNAL x forcing anomaly, sites + noise.

    Each cell's cycle (its level and amplitude) is random, and shown to the model by two static
    maps, so that the cells without a site can be forecast too.
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range("2000-01", periods=12 * years, freq="MS")
    month = time.month.to_numpy() - 1
    y = np.arange(n) * 10_000.0
    x = np.arange(n) * 10_000.0
    amplitude = rng.uniform(0.5, 3.0, (n, n))
    level = rng.uniform(-1.0, 1.0, (n, n))
    cycle = np.sin(2 * np.pi * (month - 3) / 12)[:, None, None]
    clim = level + amplitude * cycle
    # Forcing anomaly: a year-long part and a monthly part, smooth in space.
    yearly = rng.standard_normal(years).repeat(12)
    monthly = rng.standard_normal(len(time))
    gradient = np.linspace(0.6, 1.4, n)[None, :, None] * np.ones((1, 1, n))
    anomaly = (0.8 * yearly + 0.6 * monthly)[:, None, None] * gradient
    air = -5 + 15 * cycle + anomaly
    truth = clim + SIGNAL * anomaly
    observed = np.full(truth.shape, np.nan)
    cells = rng.choice(n * n, sites, replace=False)
    iy, ix = np.unravel_index(cells, (n, n))
    values = truth[:, iy, ix] + NOISE * rng.standard_normal((len(time), sites))
    keep = rng.uniform(size=values.shape) > 0.1
    observed[:, iy, ix] = np.where(keep, values, np.nan)
    coords = {"time": time, "y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})}
    flux = {"units": "umol m-2 s-1", "long_name": "net CO2 flux", "modality": "in_situ"}
    cube = xr.Dataset(
        {
            "co2_flux": (
                ("time", "y", "x"),
                observed.astype(np.float32),
                flux | {"observation_error": NOISE},
            ),
            "air_temperature": (
                ("time", "y", "x"),
                air.astype(np.float32),
                {"units": "degC", "long_name": "air temperature", "modality": "forcing"},
            ),
            "soil_organic_carbon": (
                ("y", "x"),
                (10 * amplitude).astype(np.float32),
                {"units": "kg m-2", "long_name": "soil organic carbon", "modality": "static"},
            ),
            "elevation": (
                ("y", "x"),
                (300 + 200 * level).astype(np.float32),
                {"units": "m", "long_name": "elevation", "modality": "static"},
            ),
        },
        coords=coords,
    )
    truth = xr.Dataset({"co2_flux": (("time", "y", "x"), truth.astype(np.float32), flux)}, coords)
    return cube, truth


@pytest.fixture(scope="module")
def scored():
    cube, truth = known_cube()
    model = geocryo.fit(
        cube,
        lookback=4,
        patch=6,
        ensemble=2,
        epochs=3,
        config=CONFIG,
        split=TimeSplit(gap=4),
        progress=False,
    )
    table = geocryo.evaluate(model, cube, truth, progress=False)
    return model, table["co2_flux"].sel(zone="all", model="multimodal")


def test_a_model_that_knows_the_driver_beats_climatology(scored):
    _, table = scored
    # the observations' noise is the floor at the sites: climatology misses the anomaly
    # (about 1.2 umol m-2 s-1), the model should come near the noise
    skill = float(table.sel(scope="sites", metric="skill_vs_best"))
    assert skill > 0.3, skill
    # off the sites the cycle must be learnt from the static maps: past the best oracle baseline
    assert float(table.sel(scope="field", metric="skill_vs_best")) > 0.1


@pytest.mark.parametrize("scope", ["sites", "field"])
def test_the_intervals_hold_what_they_claim(scored, scope):
    _, table = scored
    ninety = float(table.sel(scope=scope, metric="coverage"))
    half = float(table.sel(scope=scope, metric="coverage_50"))
    assert 0.82 <= ninety <= 0.97, ninety
    assert 0.38 <= half <= 0.62, half


def test_the_held_out_sites_never_trained_the_model(scored):
    model, _ = scored
    sited = model.calibration.sited["co2_flux"]
    cube, _ = known_cube()
    recorded = cube["co2_flux"].sel(time=model.periods["train"]).notnull().any("time").values
    held = recorded & ~sited
    assert held.sum() == round(0.2 * recorded.sum())  # a fifth of the sites calibrate
    assert model.calibration.residuals["co2_flux"][0].sum() > 0


def test_scoring_against_observations_adds_their_declared_error():
    """A predictive spread describes the true value; against observations, evaluate widens it
    by the measurement error the target declares, and against the truth it does not."""
    cube, truth = known_cube(seed=1)
    months = cube.indexes["time"]
    periods = {"train": months[:120], "test": months[120:]}
    forecast = truth.copy()
    forecast["co2_flux_std"] = xr.full_like(truth["co2_flux"], 0.5)
    table = geocryo.evaluate(
        None, cube, truth, predictions={"exact": forecast}, periods=periods, progress=False
    )["co2_flux"].sel(zone="all", model="exact", metric="spread")
    assert float(table.sel(scope="field")) == pytest.approx(0.5, rel=1e-5)
    assert float(table.sel(scope="sites")) == pytest.approx(np.hypot(0.5, NOISE), rel=1e-5)
