"""Chronological train / validation / test periods with a look-back gap between them.

Time series must not be split at random: a model would see the months around each test month.
:class:`TimeSplit` cuts the record into three contiguous parts in time order and leaves ``gap``
months (the look-back, by default) between them that belong to no part, so that the windows of
one part never reach into the months of another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .._checks import integer, number

__all__ = ["PARTS", "TimeSplit"]

#: The parts of a split, in time order.
PARTS: tuple[str, ...] = ("train", "val", "test")


def _month(value: str | pd.Timestamp | pd.Period, field: str) -> pd.Period:
    try:
        return pd.Period(value, freq="M")
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"TimeSplit.{field} must be a month such as '2013-12', got {value!r}"
        ) from err


def _as_index(time) -> pd.DatetimeIndex:
    if isinstance(time, xr.Dataset | xr.DataArray) and "time" in time.coords:
        time = time["time"]
    if isinstance(time, xr.DataArray):
        time = time.values
    try:
        index = pd.DatetimeIndex(time)
    except (TypeError, ValueError) as err:
        raise TypeError(
            "periods() needs the months as a pandas.DatetimeIndex, datetime64 values or a "
            f"dataset with a 'time' coordinate; got {type(time).__name__}"
        ) from err
    if len(index) == 0:
        raise ValueError("periods() got an empty time axis")
    if index.hasnans:
        raise ValueError("periods() got a time axis with NaT; drop or fix those months")
    months = index.to_period("M")
    steps = np.diff(months.asi8)
    if len(steps) and not (steps == 1).all():
        at = int(np.argmax(steps != 1))
        raise ValueError(
            "periods() needs consecutive months in time order (sorted, unique, no gaps); "
            f"found {index[at]:%Y-%m} followed by {index[at + 1]:%Y-%m}. "
            "Sort with ds.sortby('time') and reindex missing months to NaN"
        )
    return index


@dataclass(frozen=True)
class TimeSplit:
    """Train / validation / test periods by date, in time order, with gaps between them.

    A window (``lookback`` input months and a target month ``horizon`` months later) belongs to
    a part when all its months lie in that part; :meth:`periods` returns the months of each
    part. Between two parts lie ``gap`` months that belong to none.

    Parameters
    ----------
    train, val, test
        Fractions of the months that go to each part (gap months excluded); each in (0, 1),
        summing to 1. Ignored when ``train_end`` and ``val_end`` are given.
    gap
        Months left out between two parts; ``None`` uses the ``lookback`` given to
        :meth:`periods`.
    train_end, val_end
        Explicit boundaries instead of fractions (see :meth:`from_dates`): the last month of
        the training part, and the last month of the validation part.

    Examples
    --------
    >>> split = TimeSplit()  # 70 / 15 / 15 of the months
    >>> parts = split.periods(cube.time, lookback=12)
    >>> fitted = Preprocessor().fit(cube, parts["train"])
    """

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15
    gap: int | None = None
    train_end: str | None = None
    val_end: str | None = None

    def __post_init__(self) -> None:
        fraction = {"low": 0, "high": 1, "low_open": True, "high_open": True}
        fraction["what"] = "a fraction strictly between 0 and 1"
        for field in PARTS:
            value = number(f"TimeSplit.{field}", getattr(self, field), **fraction)
            object.__setattr__(self, field, value)
        total = self.train + self.val + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(
                f"TimeSplit fractions train={self.train}, val={self.val}, test={self.test} "
                f"sum to {total:g}; they must sum to 1"
            )
        if self.gap is not None:
            gap = integer("TimeSplit.gap", self.gap, low=0, what="None or an int >= 0")
            object.__setattr__(self, "gap", gap)
        if (self.train_end is None) != (self.val_end is None):
            raise ValueError(
                "TimeSplit.train_end and TimeSplit.val_end go together: give both "
                "(TimeSplit.from_dates(train_end=..., val_end=...)) or neither"
            )
        if self.train_end is not None:
            train_end = _month(self.train_end, "train_end")
            val_end = _month(self.val_end, "val_end")
            if not train_end < val_end:
                raise ValueError(
                    f"TimeSplit.val_end ({val_end}) must come after train_end ({train_end})"
                )

    @classmethod
    def from_dates(cls, train_end: str, val_end: str, gap: int | None = None) -> TimeSplit:
        """A split at explicit months.

        Training runs from the first month of the record to ``train_end``; validation from
        ``gap`` months after it to ``val_end``; test from ``gap`` months after that to the end.

        Parameters
        ----------
        train_end, val_end
            Last month of the training and validation parts, e.g. ``"2013-12"``.
        gap
            Months left out at the start of the validation and test parts (``None``: the
            look-back given to :meth:`periods`).
        """
        return cls(gap=gap, train_end=str(train_end), val_end=str(val_end))

    def _date_bounds(self, index: pd.DatetimeIndex, gap: int) -> list[tuple[int, int]]:
        ordinals = index.to_period("M").asi8
        span = f"the record runs from {index[0]:%Y-%m} to {index[-1]:%Y-%m}"
        stops = {}
        for field in ("train_end", "val_end"):
            value = getattr(self, field)
            stop = int(np.searchsorted(ordinals, pd.Period(value, "M").ordinal, side="right"))
            if stop == 0:
                raise ValueError(f"TimeSplit.{field}={value!r} is before the record starts; {span}")
            if stop == len(index):
                raise ValueError(f"TimeSplit.{field}={value!r} leaves no months after it; {span}")
            stops[field] = stop
        n_train, val_stop = stops["train_end"], stops["val_end"]
        return [(0, n_train), (n_train + gap, val_stop), (val_stop + gap, len(index))]

    def periods(self, time, lookback: int = 12, horizon: int = 1) -> dict[str, pd.DatetimeIndex]:
        """The months of each part.

        Parameters
        ----------
        time
            The record's months: a ``pandas.DatetimeIndex``, datetime64 values, or a dataset or
            data array with a ``time`` coordinate. Consecutive months in order.
        lookback
            Input months of a window; the default gap.
        horizon
            Months from the last input month to the target month.

        Returns
        -------
        dict[str, pandas.DatetimeIndex]
            ``{"train": ..., "val": ..., "test": ...}``: contiguous, chronological, disjoint,
            separated by ``gap`` months that belong to no part.

        Raises
        ------
        ValueError
            When a part is too short to hold one window of ``lookback + horizon`` months, or a
            boundary lies outside the record.
        """
        lookback = integer("lookback", lookback, low=1)
        # geocryo.fit's lead arrives here as the horizon: the message names both.
        horizon = integer("horizon (the lead of geocryo.fit)", horizon, low=1)
        index = _as_index(time)
        gap = lookback if self.gap is None else self.gap
        n = len(index)
        if self.train_end is not None:
            bounds = self._date_bounds(index, gap)
        else:
            usable = n - 2 * gap
            # Cumulative rounding keeps every part within one month of its fraction.
            cut1 = round(self.train * usable + 1e-9) if usable > 0 else 0
            cut2 = round((self.train + self.val) * usable + 1e-9) if usable > 0 else 0
            bounds = [(0, cut1), (cut1 + gap, cut2 + gap), (cut2 + 2 * gap, n)]
        need = lookback + horizon
        parts = {}
        for name, (start, stop) in zip(PARTS, bounds, strict=True):
            length = max(0, stop - start)
            if length < need:
                raise ValueError(
                    f"TimeSplit: the {name!r} part of the {n}-month record "
                    f"({index[0]:%Y-%m} to {index[-1]:%Y-%m}) has {length} months, but one "
                    f"window needs lookback + horizon = {need}; use a longer record, a shorter "
                    f"lookback, a smaller gap (now {gap}) or other fractions / dates"
                )
            parts[name] = index[start:stop]
        return parts
