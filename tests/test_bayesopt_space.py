"""Search spaces: encodings onto the unit cube, decoding, snapping, validation."""

import math

import numpy as np
import pytest

from geocryo.bayesopt import Categorical, Integer, Real, Space


def test_real_linear_and_log_scales():
    linear = Real(-5.0, 10.0)
    assert linear.encode(2.5)[0] == pytest.approx(0.5)
    assert linear.decode(np.array([0.2])) == pytest.approx(-2.0)
    log = Real(1e-4, 1e-2, log=True)
    # Log scale: the geometric midpoint sits in the middle of the coordinate.
    assert log.encode(1e-3)[0] == pytest.approx(0.5)
    assert log.decode(np.array([0.25])) == pytest.approx(10**-3.5)
    # Decoding clips to the bounds.
    assert log.decode(np.array([1.7])) == 1e-2


def test_integer_bins_have_equal_width_and_round_trip():
    dim = Integer(1, 4)
    # Four values, four bins of width 1/4: the coordinate's quarters.
    decoded = [dim.decode(np.array([u])) for u in (0.0, 0.24, 0.26, 0.49, 0.51, 0.74, 0.76, 1.0)]
    assert decoded == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [dim.encode(v)[0] for v in (1, 2, 3, 4)] == pytest.approx([0.125, 0.375, 0.625, 0.875])
    log = Integer(1, 64, log=True)
    for value in range(1, 65):
        assert log.decode(log.encode(value)) == value
    # On a log scale small values own wider bins than large ones.
    assert log.encode(2)[0] - log.encode(1)[0] > 10 * (log.encode(64)[0] - log.encode(63)[0])


def test_categorical_is_one_hot_and_keeps_types():
    dim = Categorical(("tanh", "relu", 3, True))
    np.testing.assert_array_equal(dim.encode("relu"), [0, 1, 0, 0])
    assert dim.decode(np.array([0.1, 0.2, 0.9, 0.3])) == 3
    assert dim.decode(dim.encode(True)) is True
    with pytest.raises(ValueError, match="not one of the choices"):
        dim.encode("gelu")


def test_space_round_trip_and_snap():
    space = Space(
        {
            "lr": Real(1e-4, 1e-1, log=True),
            "layers": Integer(1, 3),
            "act": Categorical(("tanh", "relu")),
        }
    )
    assert space.width == 4
    params = {"lr": 1e-3, "layers": 2, "act": "relu"}
    u = space.encode(params)
    assert u.shape == (4,) and np.all((u >= 0) & (u <= 1))
    decoded = space.decode(u)
    assert decoded["layers"] == 2 and decoded["act"] == "relu"
    assert math.isclose(decoded["lr"], 1e-3, rel_tol=1e-12)
    # Any point of the cube snaps onto an encoding, and snapping twice changes nothing.
    rng = np.random.default_rng(0)
    points = rng.random((20, 4))
    snapped = space.snap(points)
    np.testing.assert_allclose(space.snap(snapped), snapped)
    assert set(np.unique(snapped[:, 2:])) <= {0.0, 1.0}
    assert Space.from_dict(space.to_dict()) == space


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Real(1.0, 1.0), "low < high"),
        (lambda: Real(0.0, 1.0, log=True), "low > 0"),
        (lambda: Real(0.0, math.inf), "finite"),
        (lambda: Integer(1.5, 3), "must be an int"),
        (lambda: Integer(0, 8, log=True), "low >= 1"),
        (lambda: Categorical(("a",)), "at least two"),
        (lambda: Categorical(("a", "a")), "distinct"),
        (lambda: Categorical("ab"), "list of values"),
        (lambda: Space({}), "non-empty dict"),
        (lambda: Space({"x": (0, 1)}), "Real, Integer or Categorical"),
    ],
)
def test_bad_dimensions_are_refused(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_bad_params_name_the_dimension():
    space = Space({"lr": Real(1e-4, 1e-1, log=True), "layers": Integer(1, 3)})
    with pytest.raises(ValueError, match=r"missing \['layers'\], unknown \['depth'\]"):
        space.encode({"lr": 1e-3, "depth": 2})
    with pytest.raises(ValueError, match=r"'layers'.*outside"):
        space.encode({"lr": 1e-3, "layers": 7})
    with pytest.raises(ValueError, match="shape"):
        space.decode(np.zeros(3))
