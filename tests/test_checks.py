"""The one argument validator: what it takes, what it refuses, and how it says so."""

import numpy as np
import pytest

from geocryo._checks import ArgumentTypeError, flag, integer, number


def test_integer_takes_python_and_numpy_integers():
    assert integer("lead", 3, low=1) == 3
    value = integer("lead", np.int64(4), low=1, high=4)
    assert value == 4 and type(value) is int


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, ArgumentTypeError, "lead must be an int, got True"),
        (1.5, ArgumentTypeError, "lead must be an int, got 1.5"),
        ("2", ArgumentTypeError, "lead must be an int, got '2'"),
        (0, ValueError, "lead must be an int >= 1, got 0"),
        (9, ValueError, "lead must be an int <= 8, got 9"),
    ],
)
def test_integer_names_the_argument_and_the_rule(value, error, message):
    with pytest.raises(error) as caught:
        integer("lead", value, low=1, high=8)
    assert str(caught.value) == message


def test_a_wrong_type_is_both_a_type_and_a_value_error():
    for exception in (TypeError, ValueError):
        with pytest.raises(exception):
            integer("patch", True)


def test_the_callers_words_replace_the_rule():
    with pytest.raises(ValueError, match="lead must be a whole number of months, got 0"):
        integer("lead", 0, low=1, what="a whole number of months")


def test_number_bounds_open_and_closed():
    assert number("rate", 0, low=0) == 0.0
    with pytest.raises(ValueError, match="rate must be > 0"):
        number("rate", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match="dropout must be < 1"):
        number("dropout", 1.0, high=1, high_open=True)
    with pytest.raises(ValueError, match="rate must be finite"):
        number("rate", float("nan"))
    assert np.isnan(number("score", float("nan"), finite=False))
    with pytest.raises(ArgumentTypeError, match="rate must be a number"):
        number("rate", "fast")


def test_flag():
    assert flag("bootstrap", np.bool_(True)) is True
    with pytest.raises(ArgumentTypeError, match="bootstrap must be True or False, got 1"):
        flag("bootstrap", 1)
