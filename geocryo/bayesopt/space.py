"""Search spaces: named dimensions, each encoded onto its own coordinates of the unit cube.

>>> space = Space({"lr": Real(1e-4, 1e-1, log=True), "layers": Integer(1, 3),
...                "activation": Categorical(["tanh", "relu"])})
>>> u = space.encode({"lr": 1e-3, "layers": 2, "activation": "relu"})  # 4 numbers in [0, 1]
>>> space.decode(u)
{'lr': 0.001, 'layers': 2, 'activation': 'relu'}

A :class:`Real` takes one coordinate (linear, or linear in the logarithm with ``log=True``); an
:class:`Integer` one coordinate split into equal bins, one per value (of the logarithm with
``log=True``); a :class:`Categorical` one coordinate per choice (one-hot, the largest wins). The
Gaussian process lives in that cube; :meth:`Space.snap` maps any point of the cube onto the
encoding of the configuration it decodes to, so that points the optimiser proposes are points
that can be evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import integer, number

__all__ = ["Categorical", "Dimension", "Integer", "Real", "Space"]


@dataclass(frozen=True)
class Real:
    """A real number in ``[low, high]``, searched on a linear or a logarithmic scale.

    Parameters
    ----------
    low, high
        Bounds, ``low < high`` (both > 0 with ``log=True``).
    log
        Search the logarithm (learning rates, regularisation strengths).
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        low = number("Real.low", self.low)
        high = number("Real.high", self.high)
        if not low < high:
            raise ValueError(f"Real needs low < high, got low={low}, high={high}")
        if self.log and low <= 0:
            raise ValueError(f"Real(log=True) needs low > 0, got low={low}; use log=False")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(self.log))

    @property
    def width(self) -> int:
        """Coordinates of the unit cube it takes."""
        return 1

    def _scale(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high)
        return self.low, self.high

    def encode(self, value: Any) -> np.ndarray:
        """The value as one coordinate in [0, 1]."""
        value = number("a Real value", value)
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} lies outside the Real's bounds [{self.low}, {self.high}]")
        a, b = self._scale()
        x = math.log(value) if self.log else value
        return np.array([(x - a) / (b - a)])

    def decode(self, u: np.ndarray) -> float:
        """The value at coordinate ``u[0]`` (clipped to [0, 1])."""
        a, b = self._scale()
        x = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        value = math.exp(x) if self.log else x
        return float(min(max(value, self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Real", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Integer:
    """An integer in ``[low, high]`` (both included), on a linear or a logarithmic scale.

    Each value owns a bin of equal width on the coordinate (of equal width in the logarithm
    with ``log=True``: the bin of ``v`` is ``[log(v - 1/2), log(v + 1/2)]``), and decoding
    rounds to the value whose bin holds the coordinate.

    Parameters
    ----------
    low, high
        Bounds, ``low < high`` (``low >= 1`` with ``log=True``).
    log
        Search the logarithm (hidden channels, batch sizes).
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            object.__setattr__(self, name, integer(f"Integer.{name}", getattr(self, name)))
        if not self.low < self.high:
            raise ValueError(
                f"Integer needs low < high, got low={self.low}, high={self.high}; "
                "a fixed value is not a dimension to search"
            )
        if self.log and self.low < 1:
            raise ValueError(f"Integer(log=True) needs low >= 1, got low={self.low}")
        object.__setattr__(self, "log", bool(self.log))

    @property
    def width(self) -> int:
        return 1

    def _scale(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low - 0.5), math.log(self.high + 0.5)
        return self.low - 0.5, self.high + 0.5

    def encode(self, value: Any) -> np.ndarray:
        """The value as one coordinate in [0, 1]: the centre of its bin."""
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)  # 3.0 (from JSON, or a float-typed sampler) is the value 3
        value = integer("an Integer value", value)
        if not self.low <= value <= self.high:
            raise ValueError(f"{value} lies outside the Integer's bounds [{self.low}, {self.high}]")
        a, b = self._scale()
        if self.log:
            centre = 0.5 * (math.log(value - 0.5) + math.log(value + 0.5))
        else:
            centre = float(value)
        return np.array([(centre - a) / (b - a)])

    def decode(self, u: np.ndarray) -> int:
        """The value whose bin holds ``u[0]`` (clipped to [0, 1])."""
        a, b = self._scale()
        x = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        value = math.exp(x) if self.log else x
        return int(min(max(math.floor(value + 0.5), self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Integer", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Categorical:
    """One of a few choices (strings, numbers, booleans), encoded one-hot.

    Parameters
    ----------
    choices
        At least two distinct values that JSON can hold (so a search can be saved).
    """

    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, str) or not isinstance(self.choices, Sequence):
            raise TypeError(f"Categorical.choices must be a list of values, got {self.choices!r}")
        choices = tuple(self.choices)
        if len(choices) < 2:
            raise ValueError(f"Categorical needs at least two choices, got {list(choices)}")
        for choice in choices:
            if not isinstance(choice, str | int | float | bool) or choice is None:
                raise TypeError(
                    f"Categorical choices must be str, int, float or bool, got {choice!r}"
                )
        if len({(type(c), c) for c in choices}) != len(choices):
            raise ValueError(f"Categorical choices must be distinct, got {list(choices)}")
        object.__setattr__(self, "choices", choices)

    @property
    def width(self) -> int:
        return len(self.choices)

    def _index(self, value: Any) -> int:
        for i, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return i
        for i, choice in enumerate(self.choices):  # 2 == 2.0, np.str_ == str
            if choice == value and not isinstance(value, bool) and not isinstance(choice, bool):
                return i
        raise ValueError(f"{value!r} is not one of the choices {list(self.choices)}")

    def encode(self, value: Any) -> np.ndarray:
        """The value one-hot over the choices."""
        u = np.zeros(len(self.choices))
        u[self._index(value)] = 1.0
        return u

    def decode(self, u: np.ndarray) -> Any:
        """The choice with the largest coordinate (the first one on ties)."""
        return self.choices[int(np.argmax(u))]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "Categorical", "choices": list(self.choices)}


#: Any of the dimension types.
Dimension = Real | Integer | Categorical
_TYPES = {"Real": Real, "Integer": Integer, "Categorical": Categorical}


class Space:
    """Named dimensions and their joint encoding onto the unit cube ``[0, 1]^width``.

    Parameters
    ----------
    dimensions
        ``{name: Real | Integer | Categorical}``, in the order the coordinates take.
    """

    def __init__(self, dimensions: Mapping[str, Dimension]) -> None:
        if isinstance(dimensions, Space):
            dimensions = dimensions.dimensions
        if not isinstance(dimensions, Mapping) or not dimensions:
            raise TypeError(
                "a Space needs a non-empty dict {name: Real | Integer | Categorical}, "
                f"got {dimensions!r}"
            )
        for name, dim in dimensions.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"dimension names must be non-empty strings, got {name!r}")
            if not isinstance(dim, Real | Integer | Categorical):
                raise TypeError(
                    f"dimension {name!r} must be a Real, Integer or Categorical, got {dim!r}"
                )
        self.dimensions: dict[str, Dimension] = dict(dimensions)
        self._slices: dict[str, slice] = {}
        start = 0
        for name, dim in self.dimensions.items():
            self._slices[name] = slice(start, start + dim.width)
            start += dim.width
        self.width = start

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self.dimensions.items())
        return f"Space({{{inner}}})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.dimensions == other.dimensions

    def __len__(self) -> int:
        return len(self.dimensions)

    @property
    def names(self) -> list[str]:
        """The dimension names, in order."""
        return list(self.dimensions)

    @property
    def log_dims(self) -> list[str]:
        """Names of the dimensions searched on a log scale."""
        return [k for k, d in self.dimensions.items() if getattr(d, "log", False)]

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """One configuration as a point of the unit cube (float64, ``(width,)``)."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict {{name: value}}, got {params!r}")
        missing = [k for k in self.dimensions if k not in params]
        extra = [k for k in params if k not in self.dimensions]
        if missing or extra:
            raise ValueError(
                f"params do not match the space: missing {missing}, unknown {extra}; "
                f"the space has {self.names}"
            )
        u = np.empty(self.width)
        for name, dim in self.dimensions.items():
            try:
                u[self._slices[name]] = dim.encode(params[name])
            except (TypeError, ValueError) as error:
                raise type(error)(f"dimension {name!r}: {error}") from None
        return u

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """The configuration at a point of the unit cube (values clipped to their bounds)."""
        u = np.asarray(u, dtype=float)
        if u.shape != (self.width,):
            raise ValueError(f"a point of this space has shape ({self.width},), got {u.shape}")
        return {name: dim.decode(u[self._slices[name]]) for name, dim in self.dimensions.items()}

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Points of the cube moved onto the encodings of the configurations they decode to.

        Works on one point ``(width,)`` or many ``(n, width)``.
        """
        u = np.asarray(u, dtype=float)
        if u.ndim == 1:
            return self.encode(self.decode(u))
        return np.stack([self.encode(self.decode(row)) for row in u])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description; :meth:`from_dict` reads it back."""
        return {name: dim.to_dict() for name, dim in self.dimensions.items()}

    @classmethod
    def from_dict(cls, description: Mapping[str, Mapping[str, Any]]) -> Space:
        """The space written by :meth:`to_dict`."""
        dimensions = {}
        for name, spec in description.items():
            spec = dict(spec)
            kind = spec.pop("type", None)
            if kind not in _TYPES:
                raise ValueError(f"dimension {name!r} has unknown type {kind!r}")
            if kind == "Categorical":
                spec["choices"] = tuple(spec["choices"])
            dimensions[name] = _TYPES[kind](**spec)
        return cls(dimensions)
