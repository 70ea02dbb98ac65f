"""The formulas behind the synthetic Alaska, against the literature's worked numbers."""

import numpy as np
import pytest
from scipy import integrate, stats

from geocryo.synthetic import physics


@pytest.mark.parametrize(
    ("k", "n", "tdd", "theta", "expected_cm"),
    [
        (0.5, 0.8, 450, 0.7, 36),  # peat
        (0.8, 0.6, 1900, 0.5, 97),  # boreal moss
        (1.2, 0.9, 1900, 0.35, 174),  # mineral soil
    ],
)
def test_stefan_depth_matches_design_checks(k, n, tdd, theta, expected_cm):
    depth_cm = 100 * physics.stefan_depth(k, n, tdd, theta)
    assert depth_cm == pytest.approx(expected_cm, rel=0.02)


def test_stefan_depth_grows_as_square_root_of_degree_days():
    shallow, deep = physics.stefan_depth(1.0, 1.0, np.array([400.0, 1600.0]), 0.5)
    assert deep / shallow == pytest.approx(2.0)


@pytest.mark.parametrize("mu", [-12.0, -2.0, 0.0, 1.5, 9.0])
def test_degree_days_equal_expected_positive_part_of_daily_scatter(mu):
    spread, days = 2.5, 31
    law = stats.logistic(mu, spread * np.sqrt(3) / np.pi)
    assert law.std() == pytest.approx(spread)
    thaw = integrate.quad(lambda t: t * law.pdf(t), 0, np.inf)[0] * days
    freeze = integrate.quad(lambda t: -t * law.pdf(t), -np.inf, 0)[0] * days
    tdd, fdd = physics.degree_days(np.float64(mu), days, spread)
    assert tdd == pytest.approx(thaw, rel=1e-6, abs=1e-9)
    assert fdd == pytest.approx(freeze, rel=1e-6, abs=1e-9)
    assert tdd - fdd == pytest.approx(mu * days)


@pytest.mark.parametrize(("maat", "amplitude", "tdd"), [(-2.5, 20.0, 1900), (-10.9, 15.7, 300)])
def test_sinusoidal_year_gives_published_thawing_degree_days(maat, amplitude, tdd):
    # Fairbanks and Utqiagvik: the air-temperature normals of docs/science.md.
    days = np.arange(1, 366)
    temperature = physics.seasonal_temperature(maat, amplitude, days)
    assert np.maximum(temperature, 0).sum() == pytest.approx(tdd, rel=0.02)
    assert days[temperature.argmax()] in range(194, 200)  # mid-July


def test_q10_and_light_response():
    assert physics.arrhenius_q10(20.0, 2.0) == pytest.approx(2.0)
    assert physics.arrhenius_q10(0.0, 3.0) == pytest.approx(1 / 3)
    light = physics.light_response(np.array([0.0, 10.0, 1e6]), 0.04, 8.0)
    assert light[0] == 0
    assert light[1] == pytest.approx(0.4 * 8 / 8.4)
    assert light[2] == pytest.approx(8.0, rel=1e-3)  # saturates at Pmax


def test_toa_insolation():
    # Equinox on the equator: S0 / pi. Polar night at 70 N in late December, and more daily
    # sunshine at 70 N than at 65 N at the June solstice (24 hours of daylight).
    equinox = 81
    assert physics.toa_insolation(0.0, equinox) == pytest.approx(1361 / np.pi, rel=0.01)
    assert physics.toa_insolation(70.0, 355) == 0
    assert physics.toa_insolation(70.0, 172) > physics.toa_insolation(65.0, 172) > 450
