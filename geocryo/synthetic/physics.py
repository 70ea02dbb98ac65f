"""Permafrost physics used by the synthetic Alaska: degree days, Stefan thaw, flux responses.

Vectorised, dtype-preserving functions of NumPy arrays, or of JAX arrays (then they run inside
compiled code). Formulas and constants follow published field and laboratory values; the
science page of the documentation lists them with their sources.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "LATENT_HEAT_FUSION",
    "RHO_WATER",
    "SECONDS_PER_DAY",
    "arrhenius_q10",
    "degree_days",
    "light_response",
    "seasonal_temperature",
    "stefan_depth",
    "toa_insolation",
]

#: Latent heat of fusion of water, J kg-1.
LATENT_HEAT_FUSION = 3.34e5
#: Density of water, kg m-3.
RHO_WATER = 1000.0
SECONDS_PER_DAY = 86400.0
#: Solar constant, W m-2.
SOLAR_CONSTANT = 1361.0


def _namespace(*values):
    """``jax.numpy`` when any of ``values`` is a JAX array (or tracer), else ``numpy``."""
    for value in values:
        get = getattr(value, "__array_namespace__", None)
        if get is not None and (xp := get()) is not np:
            return xp
    return np


def seasonal_temperature(maat, amplitude, day_of_year):
    """Air temperature T(d) = MAAT - A cos(2 pi (d - 15) / 365), in the units of ``maat``.

    The coldest day is mid-January (d = 15), the warmest mid-July.
    """
    return maat - amplitude * np.cos(2 * np.pi * (day_of_year - 15.0) / 365.0)


def degree_days(mean_temperature, days, spread=4.0):
    """Thawing and freezing degree days (degC d) of a period with a given mean temperature.

    Daily temperatures within the period scatter around ``mean_temperature`` with standard
    deviation ``spread`` (synoptic weather plus the seasonal slope within a month), so a month
    whose mean is just below zero still thaws a little. The scatter is taken as logistic, whose
    positive part has a closed form: with T ~ Logistic(mu, s), s = spread sqrt(3) / pi,
    E[max(T, 0)] = s log(1 + exp(mu / s)), and E[max(-T, 0)] = E[max(T, 0)] - mu.

    Returns
    -------
    tdd, fdd
        Thawing and freezing degree days, both >= 0.
    """
    xp = _namespace(mean_temperature)
    mu = xp.asarray(mean_temperature)
    scale = spread * np.sqrt(3.0) / np.pi
    z = mu / scale
    # softplus(z) = max(z, 0) + log1p(exp(-|z|)), stable for any z.
    positive = scale * (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z))))
    positive = positive.astype(mu.dtype)
    return days * positive, days * xp.maximum(positive - mu, 0)


def stefan_depth(conductivity, n_factor, degree_days, water_content):
    """Stefan solution for the depth (m) of a thaw (or freeze) front.

    Z = sqrt(2 k n DD 86400 / (L rho_w theta)), with ``conductivity`` k in W m-1 K-1, the
    surface n-factor n, degree days DD in degC d, and volumetric water content theta.
    Peat (k 0.5, n 0.8, DD 450, theta 0.7) gives about 0.36 m.
    """
    xp = _namespace(conductivity, n_factor, degree_days, water_content)
    energy = 2.0 * conductivity * n_factor * degree_days * SECONDS_PER_DAY
    return xp.sqrt(energy / (LATENT_HEAT_FUSION * RHO_WATER * water_content))


def arrhenius_q10(temperature, q10, reference=10.0):
    """The Q10 temperature response q10 ** ((T - reference) / 10), as exp(log(q10) ...): one
    exponential, where a general power costs several times as much in compiled code."""
    xp = _namespace(temperature, q10)
    log_q10 = math.log(q10) if isinstance(q10, int | float) else xp.log(q10)
    return xp.exp(log_q10 * ((temperature - reference) / 10.0))


def light_response(par, alpha, pmax):
    """Rectangular-hyperbola light response alpha PAR Pmax / (alpha PAR + Pmax)."""
    light = alpha * par
    return light * pmax / (light + pmax)


def toa_insolation(latitude, day_of_year):
    """Daily-mean top-of-atmosphere shortwave radiation (W m-2) at ``latitude`` (degrees).

    Handles polar day and polar night; the Earth-Sun distance is taken as constant.
    """
    phi = np.deg2rad(latitude)
    declination = np.deg2rad(23.44) * np.sin(2 * np.pi * (284.0 + day_of_year) / 365.0)
    cos_h0 = np.clip(-np.tan(phi) * np.tan(declination), -1.0, 1.0)
    h0 = np.arccos(cos_h0)
    daily = h0 * np.sin(phi) * np.sin(declination) + np.cos(phi) * np.cos(declination) * np.sin(h0)
    return SOLAR_CONSTANT / np.pi * np.maximum(daily, 0.0)
