"""The synthetic world's random fields: counter-hashed noise and smooth plane-wave fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from geocryo.synthetic import landscape
from geocryo.synthetic.landscape import Landscape, hash_normal, stream_key

MONTHS, ROWS, COLS = np.arange(600, 660), np.arange(40, 104), np.arange(7, 71)


@pytest.fixture(scope="module")
def drawn():
    return hash_normal(np, stream_key(3, "lst"), MONTHS, ROWS, COLS)


def test_hashed_noise_is_standard_normal_and_uncorrelated(drawn):
    assert drawn.dtype == np.float32 and drawn.shape == (60, 64, 64)
    sample = drawn.ravel()
    assert abs(sample.mean()) < 0.01 and abs(sample.std() - 1) < 0.01
    assert stats.kstest(sample[::3], "norm").pvalue > 1e-3
    for axis in range(3):  # neighbours in time, y and x
        a = np.moveaxis(drawn, axis, 0)
        assert abs(np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]) < 0.02


def test_hashed_noise_depends_on_the_cell_alone_and_runs_compiled(drawn):
    key = stream_key(3, "lst")
    part = hash_normal(np, key, MONTHS[17:30], ROWS[5:22], COLS[31:32])
    np.testing.assert_array_equal(part, drawn[17:30, 5:22, 31:32])
    draw = jax.jit(lambda m, r, c: hash_normal(jnp, key, m, r, c))
    full = np.asarray(draw(MONTHS, ROWS, COLS))
    np.testing.assert_array_equal(
        np.asarray(draw(MONTHS[3:9], ROWS[:5], COLS[60:])), full[3:9, :5, 60:]
    )
    np.testing.assert_allclose(full, drawn, atol=1e-5)  # the same numbers, up to float rounding


def test_streams_and_seeds_are_independent(drawn):
    other_stream = hash_normal(np, stream_key(3, "ndvi"), MONTHS, ROWS, COLS)
    other_seed = hash_normal(np, stream_key(4, "lst"), MONTHS, ROWS, COLS)
    for other in (other_stream, other_seed):
        assert abs(np.corrcoef(drawn.ravel(), other.ravel())[0, 1]) < 0.02


def test_smooth_fields_on_axes_equal_fields_on_every_cell():
    land = Landscape(seed=5, n_months=24)
    y, x = np.linspace(-4e5, 4e5, 30), np.linspace(-5e5, 2e5, 20)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    on_axes = land.smooth("maat", y[:, None], x[None, :])
    np.testing.assert_array_equal(on_axes, land.smooth("maat", yy, xx))
    assert on_axes.shape == (30, 20) and 0.3 < on_axes.std() < 2.0
    basis = land.basis("temperature", y[:, None], x[None, :])
    np.testing.assert_array_equal(basis, land.basis("temperature", yy, xx))
    anomaly = land.anomaly("temperature", np.arange(12), y[:, None], x[None, :])
    assert anomaly.shape == (12, 30, 20)
    np.testing.assert_allclose(
        anomaly,
        np.einsum("tm,myx->tyx", land.amplitudes("temperature", np.arange(12)), basis),
        rtol=1e-5,
        atol=1e-5,
    )


def test_weather_beyond_the_series_is_refused():
    with pytest.raises(ValueError, match="beyond the landscape's weather series"):
        Landscape(seed=0, n_months=12).amplitudes("cloud", np.arange(13))
    assert set(landscape.STREAMS) >= {"lst", "ndvi", "soil_moisture", "sar"}
