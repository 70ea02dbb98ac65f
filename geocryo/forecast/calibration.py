"""A predictive spread that means what it says: the members' variance plus a fitted noise term.

The members of an ensemble trained on the same data agree more than the forecast deserves: their
spread measures how the fit varies with its seed and bootstrap draws, not how far the truth lies
from the forecast. :func:`fit_calibration` measures the rest on the validation period, which the
ensemble never trained on: per target, per calendar month and per kind of cell, the mean squared
error of the members' mean beyond the members' own variance. The predictive distribution of a
cell and month is then a Gaussian around the members' mean ``mu`` with variance

    sigma^2 = (members' variance) + a[kind, month] + b[kind, month] * mu^2

The second term lets the noise grow with the size of the forecast value: a methane flux of 40
misses by more than one of 2, and one noise level for both would make the intervals too wide at
the one and too narrow at the other. ``a`` and ``b`` are fitted by non-negative least squares of
the squared error beyond the members' variance on ``(1, mu^2)``.

The observations carry measurement error, which the truth does not: where a target declares it
(:data:`geocryo.cube.OBSERVATION_ERROR_ATTRS`), its variance is taken out of the squared
errors, so that the distribution is that of the true value. :func:`geocryo.evaluate` adds it
back when it scores the forecast against observations.

(Gneiting and Raftery 2007 call this kind of second-moment fit "ensemble model output
statistics"; here only the variance is fitted, the mean stays the network's.)

Two kinds of cell are told apart, because their errors differ by a factor of several: cells with
an in situ record of the target in the training period (the sites, whose history and climatology
the network sees), and the rest. The sites' noise is measured on the validation months. The
errors of the cells without a site can only be measured where there are observations, at sites:
the model forecasts every site with its history and climatology hidden, as every other cell
looks to it, over the validation months. Where the network could recognise a site by its static
maps even then, those errors understate the errors elsewhere, and
``FitConfig(calibration_sites=0.2)`` holds a fifth of the sites out of training instead (their
targets never enter the loss, :class:`~geocryo.batching.augment.MaskCells`): the blind
forecasts of those, over the training and validation months, are the errors of cells the
network never learnt, at the price of fewer sites to learn from.

A bounded target's interval stops at its bound (``valid_min``), where its distribution is
censored: the truth cannot lie below it, so this changes no coverage.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import nnls

from ..cube import observation_variance

if TYPE_CHECKING:
    from .forecaster import Forecaster

__all__ = ["KINDS", "MIN_HELD_OUT", "MIN_RESIDUALS", "Calibration", "fit_calibration", "hold_out"]

#: The kinds of cell, in the order of :attr:`Calibration.noise`'s first axis.
KINDS: tuple[str, ...] = ("unsited", "sited")

#: Fewest site cells :func:`hold_out` holds out (and leaves to train on).
MIN_HELD_OUT = 5

#: Residuals a (kind, month) needs for a noise term of its own; with fewer, the neighbouring
#: months join in, and then every month of the kind.
MIN_RESIDUALS = 20


@dataclass
class Calibration:
    """Fitted noise variances and where the sites are.

    Attributes
    ----------
    noise
        Target -> ``(2, 12, 2)``: ``a`` (in the target's squared units) and ``b`` (unitless) of
        the noise variance ``a + b mu^2``, for cells without and with a training-period record
        of the target (:data:`KINDS`), January first.
    sited
        Target -> ``(ny, nx)`` bool: the cells with a training-period record of the target.
    residuals
        Target -> ``(2, 12)``: the validation residuals behind each noise term.
    """

    noise: dict[str, np.ndarray]
    sited: dict[str, np.ndarray]
    residuals: dict[str, np.ndarray]

    @property
    def targets(self) -> list[str]:
        """The targets with a calibrated spread."""
        return list(self.noise)

    def variance(self, target: str, mean: xr.DataArray) -> xr.DataArray:
        """The noise variance of ``target`` given the members' ``mean`` on (time, y, x)."""
        like = mean
        sited = self.sited[target]
        if sited.shape != (like.sizes["y"], like.sizes["x"]):
            raise ValueError(
                f"calibration: {target!r} was calibrated on a {sited.shape[0]} x {sited.shape[1]} "
                f"grid, the forecast is {like.sizes['y']} x {like.sizes['x']}; predict on the "
                "training grid"
            )
        month = pd.DatetimeIndex(mean["time"].values).month.to_numpy() - 1
        month = xr.DataArray(month, dims="time")
        kind = xr.DataArray(sited.astype(np.int64), dims=("y", "x"))
        table = xr.DataArray(self.noise[target], dims=("kind", "month", "term"))
        terms = table.isel(kind=kind, month=month)
        variance = terms.isel(term=0) + terms.isel(term=1) * mean.reset_coords(drop=True) ** 2
        return variance.transpose(*mean.dims)

    def to_dict(self) -> dict[str, np.ndarray]:
        """Flat arrays for an ``.npz`` file (:meth:`from_dict` reads them back)."""
        out = {}
        for target in self.noise:
            out[f"{target}/noise"] = self.noise[target]
            out[f"{target}/sited"] = self.sited[target]
            out[f"{target}/residuals"] = self.residuals[target]
        return out

    @classmethod
    def from_dict(cls, arrays) -> Calibration:
        """The calibration :meth:`to_dict` flattened."""
        targets = sorted({key.split("/")[0] for key in arrays})
        return cls(
            noise={t: np.asarray(arrays[f"{t}/noise"], np.float64) for t in targets},
            sited={t: np.asarray(arrays[f"{t}/sited"], bool) for t in targets},
            residuals={t: np.asarray(arrays[f"{t}/residuals"], np.int64) for t in targets},
        )


def _terms(excess: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``(a, b) >= 0`` with ``a + b mean^2`` the least-squares fit of ``excess``."""
    design = np.stack([np.ones_like(mean), mean**2], axis=1)
    scale = np.maximum(np.abs(design).max(axis=0), 1e-12)
    terms = nnls(design / scale, excess)[0] / scale
    return terms


def _noise(
    excess: np.ndarray, mean: np.ndarray, month: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per calendar month, the noise terms ``(12, 2)``, pooling months that have too few."""
    noise, counts = np.zeros((12, 2)), np.zeros(12, np.int64)
    pooled = _terms(excess, mean) if len(excess) >= 2 else np.zeros(2)
    for m in range(12):
        counts[m] = int((month == m).sum())
        for width in (0, 1):
            near = np.abs((month - m + 6) % 12 - 6) <= width
            if near.sum() >= MIN_RESIDUALS:
                noise[m] = _terms(excess[near], mean[near])
                break
        else:
            noise[m] = pooled
    return noise, counts


def hold_out(
    cube: xr.Dataset, train: pd.DatetimeIndex, share: float, seed: int
) -> np.ndarray | None:
    """The site cells held out of training, to calibrate the cells without a site on.

    A ``share`` of the cells with a training-period record of any target, drawn with ``seed``;
    None (nothing held out) when that leaves fewer than :data:`MIN_HELD_OUT` held out or as
    few to train on.
    """
    if share <= 0:
        return None
    records = cube.sel(time=pd.DatetimeIndex(train)).notnull()
    sited = np.zeros((cube.sizes["y"], cube.sizes["x"]), bool)
    for name in records.data_vars:
        sited |= np.asarray(records[name].any("time").transpose("y", "x"))
    cells = np.flatnonzero(sited)
    n = round(share * len(cells))
    if n < MIN_HELD_OUT or len(cells) - n < MIN_HELD_OUT:
        return None
    rng = np.random.default_rng([int(seed), 0x63616C])
    held = np.zeros(sited.size, bool)
    held[rng.choice(cells, n, replace=False)] = True
    return held.reshape(sited.shape)


def fit_calibration(
    model: Forecaster,
    cube: xr.Dataset,
    periods: dict[str, pd.DatetimeIndex],
    held_out: np.ndarray | None = None,
    *,
    progress: bool = False,
) -> Calibration | None:
    """Noise variances of ``model``'s predictive distribution, from what it never trained on.

    Parameters
    ----------
    model
        The fitted model (its members and its sites).
    cube
        The cube it was fitted on: its in situ targets are the residuals' truth.
    periods
        The split's months: the sites' noise comes from the ``val`` months (never trained on).
    held_out
        ``(ny, nx)`` bool, the site cells whose targets never entered training
        (:func:`hold_out`): the noise of the cells without a site comes from them, forecast
        with their history hidden, over the training and validation months. None: from every
        site, history hidden, over the validation months (optimistic where the network could
        recognise a site by its static maps).
    progress
        Show progress bars while predicting.

    Returns
    -------
    Calibration or None
        None when no residual is to be had (a warning says so): the forecasts then carry no
        spread, since an uncalibrated one would mislead.
    """
    from .prediction import forecast_period

    val = pd.DatetimeIndex(periods["val"])
    if not len(val):
        warnings.warn(
            "fit: no validation months, so the predictive spread cannot be calibrated and the "
            "forecasts carry none; give TimeSplit a validation share to have one",
            UserWarning,
            stacklevel=3,
        )
        return None
    names = model.targets
    train = cube[names].sel(time=model.periods["train"])
    held = np.zeros((cube.sizes["y"], cube.sizes["x"]), bool) if held_out is None else held_out
    blind_months = val if held_out is None else pd.DatetimeIndex(periods["train"]).union(val)
    months = {"sited": val, "unsited": blind_months}
    passes = {
        kind: forecast_period(
            model, cube, months[kind], members=True, blind=kind == "unsited", progress=progress
        )
        for kind in KINDS
    }
    noise, sited_cells, residuals = {}, {}, {}
    for name in names:
        sited = train[name].notnull().any("time").values & ~held
        table, count = np.zeros((2, 12, 2)), np.zeros((2, 12), np.int64)
        for k, kind in enumerate(KINDS):
            truth = cube[name].sel(time=months[kind]).values
            members = passes[kind][name].values.astype(np.float64)  # (E, T, Y, X)
            mean = members.mean(axis=0)
            var = members.var(axis=0, ddof=1) if members.shape[0] > 1 else np.zeros_like(mean)
            use = np.isfinite(truth) & np.isfinite(mean)
            if kind == "sited":
                use &= sited[None]
            elif held_out is not None:
                use &= held[None]
            error = observation_variance(cube[name].attrs, mean)
            excess = ((truth - mean) ** 2 - var - error)[use]
            calendar = months[kind].month.to_numpy()[:, None, None] - 1
            month = np.broadcast_to(calendar, use.shape)[use]
            table[k], count[k] = _noise(excess, mean[use], month)
        if not count.sum():
            continue
        noise[name], sited_cells[name], residuals[name] = table, sited, count
    if not noise:
        warnings.warn(
            f"fit: the validation period ({val[0]:%Y-%m} to {val[-1]:%Y-%m}) has no "
            f"observation of {', '.join(names)}, so the predictive spread cannot be calibrated "
            "and the forecasts carry none; lengthen the validation share of the TimeSplit",
            UserWarning,
            stacklevel=3,
        )
        return None
    return Calibration(noise=noise, sited=sited_cells, residuals=residuals)
