"""Checks of arguments, shared by every public function: one message for one mistake."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = ["ArgumentTypeError", "flag", "integer", "number"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (``lead=1.5``, ``patch=True``).

    A ``TypeError``, and a ``ValueError`` too: the checks these helpers replaced raised one or
    the other for it, and code that caught either keeps catching it.
    """


def flag(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (numpy booleans taken), or an error naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def integer(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    what: str | None = None,
) -> int:
    """``value`` as an ``int``, or an error naming ``name`` and what it must be.

    Booleans are refused (``True`` is no count); numpy integers are taken.

    Parameters
    ----------
    name
        The argument or field as the caller wrote it (``"lead"``, ``"TrainConfig.epochs"``).
    value
        What the caller passed.
    low, high
        Inclusive bounds, if any.
    what
        What ``value`` must be, in the caller's words (``"a positive whole number of months"``);
        it replaces ``"an int"``, ``"an int >= low"``, ... in every message.

    Raises
    ------
    ArgumentTypeError
        (a ``TypeError`` and a ``ValueError``) when ``value`` is no integer.
    ValueError
        When it lies outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ArgumentTypeError(f"{name} must be {what or 'an int'}, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be {what or f'an int >= {low}'}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be {what or f'an int <= {high}'}, got {value}")
    return value


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
    what: str | None = None,
) -> float:
    """``value`` as a finite ``float``, or an error naming ``name`` and what it must be.

    Parameters
    ----------
    name
        The argument or field as the caller wrote it.
    value
        What the caller passed.
    low, high
        Bounds, if any; inclusive unless ``low_open`` / ``high_open``.
    finite
        Refuse NaN and infinities (default); ``False`` takes them (and then skips the bounds
        for NaN).
    what
        What ``value`` must be, in the caller's words (``"a number in [0, 1]"``); it replaces
        ``"a number"``, ``"finite"``, ``">= low"``, ... in every message.

    Raises
    ------
    ArgumentTypeError
        (a ``TypeError`` and a ``ValueError``) when ``value`` is no real number.
    ValueError
        When it is not finite or lies outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ArgumentTypeError(f"{name} must be {what or 'a number'}, got {value!r}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be {what or 'finite'}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = f"{'>' if low_open else '>='} {low}"
        raise ValueError(f"{name} must be {what or bound}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"{'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be {what or bound}, got {value}")
    return value
