"""Physical bounds: no network output, member or interval end leaves a target's range."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geocryo
from geocryo.cube import BOUNDS
from geocryo.forecast import FitConfig
from geocryo.models.network import GeoCryoNet, bounded
from geocryo.preprocess import PreprocessConfig

GROUPS = ("history", "forcing", "static")
CHANNELS = {"history": 4, "forcing": 3, "static": 2}


def _inputs(rng: np.random.Generator, scale: float, batch: int = 2) -> dict[str, np.ndarray]:
    return {
        g: (scale * rng.standard_normal((batch, 3, 6, 6, c))).astype(np.float32)
        for g, c in CHANNELS.items()
    }


@settings(max_examples=60, deadline=None)
@given(
    # normal floats: XLA flushes subnormal ones to zero, and no physical bound is one
    lower=st.floats(-5, 5).filter(lambda v: v == 0 or abs(v) > 1e-30),
    sharpness=st.floats(0.5, 50),
    values=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=50),
)
def test_bounded_never_goes_below_its_bound(lower, sharpness, values):
    u = jnp.asarray(np.array(values, np.float32)[:, None])
    out = np.asarray(bounded(u, (lower,), sharpness))
    assert np.all(out >= np.float32(lower))
    # and is the unbounded value itself well above the bound
    far = np.asarray(values) > lower + 20 / sharpness
    np.testing.assert_allclose(
        out[far, 0], np.asarray(values, np.float32)[far], rtol=1e-5, atol=1e-5 * (1 + abs(lower))
    )


def test_an_unbounded_target_is_left_alone():
    u = jnp.asarray(np.linspace(-100, 100, 11, dtype=np.float32)[:, None].repeat(2, axis=1))
    out = np.asarray(bounded(u, (None, 0.0), 10.0))
    np.testing.assert_array_equal(out[:, 0], np.asarray(u[:, 0]))
    assert (out[:, 1] >= 0).all()


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 30), weight=st.floats(0.1, 20))
def test_the_network_holds_its_bounds_for_any_inputs_and_weights(seed, scale, weight):
    """Random inputs, random (and inflated) weights: the bounded outputs stay in range."""
    net = GeoCryoNet(
        groups=GROUPS,
        targets=("alt", "ch4_flux", "co2_flux"),
        features=4,
        layers=1,
        anchors=((0, 2), (-1, -1), (-1, -1)),
        lower=(-1.3, -0.4, None),
    )
    rng = np.random.default_rng(seed)
    inputs = _inputs(rng, scale)
    params = net.init(jax.random.key(seed), inputs)["params"]
    params = jax.tree.map(lambda p: p * weight + 0.1 * weight, params)  # heads away from zero
    out = np.asarray(net.apply({"params": params}, inputs))
    assert np.isfinite(out).all()
    assert (out[..., 0] >= np.float32(-1.3)).all()
    assert (out[..., 1] >= np.float32(-0.4)).all()


def test_the_default_bounds_are_physical():
    assert BOUNDS == {"alt": 0.0, "ch4_flux": 0.0, "co2_flux": None}
    assert FitConfig().lower_bound("alt") == 0.0
    assert FitConfig(bounds={"ch4_flux": None}).lower_bound("ch4_flux") is None
    with pytest.raises(ValueError, match="not a target"):
        FitConfig(bounds={"lst": 0.0})
    with pytest.raises(ValueError, match=r"bounds\['alt'\]"):
        FitConfig(bounds={"alt": "deep"})


def test_a_detrended_bounded_target_is_refused_with_the_way_out(tiny_world):
    cube, _ = tiny_world
    config = FitConfig(features=4, layers=1, preprocess=PreprocessConfig(detrend=True))
    with pytest.raises(ValueError, match=r"FitConfig\(bounds=\{'alt': None\}\)"):
        geocryo.fit(
            cube,
            mode="teacher_forcing",
            epochs=1,
            ensemble=1,
            config=config,
            lookback=4,
            patch=8,
            progress=False,
        )


def test_ch4_uptake_can_be_allowed():
    net = GeoCryoNet(
        groups=("history",), targets=("ch4_flux",), features=2, layers=1, lower=(None,)
    )
    inputs = {"history": -50 * np.ones((1, 2, 4, 4, 2), np.float32)}
    params = net.init(jax.random.key(0), inputs)["params"]
    params = jax.tree.map(lambda p: p + 1.0, params)
    out = np.asarray(net.apply({"params": params}, inputs))
    assert (out < 0).any()  # nothing holds it above 0
