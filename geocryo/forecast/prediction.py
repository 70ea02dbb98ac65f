"""The one prediction path: every member's forecast of every month, on the cube's grid.

:func:`predict_members` tiles the grid with the model's patches, runs every member on each batch
through the trainer's compiled, device-sharded apply, averages each member's values where
patches overlap, and returns the members on a ``member`` dim in physical units. A horizon
beyond the lead rolls out: the target history of the last ``horizon - lead`` months of a window
is the ensemble mean the model predicted for them. :func:`summarize` reduces members to their
mean and spread; :meth:`Forecaster.predict <geocryo.forecast.Forecaster.predict>`,
:func:`geocryo.evaluate`, :func:`geocryo.tune` and the ``geocryo predict`` command all go
through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from .._checks import integer
from ..batching import PatchStream
from ..batching.augment import hide_history
from ..cube import CubeError, validate
from ..preprocess import with_drivers
from ..preprocess.plan import SPREAD_SUFFIX

if TYPE_CHECKING:
    from .calibration import Calibration
    from .forecaster import Forecaster

__all__ = [
    "MEMBER",
    "forecast_period",
    "predict",
    "predict_members",
    "summarize",
    "with_spread",
]

#: Name of the ensemble dim of member forecasts.
MEMBER = "member"


def predict(
    model: Forecaster,
    cube: xr.Dataset,
    horizon: int | None = None,
    *,
    members: bool = False,
    blind: bool = False,
    progress: bool = True,
) -> xr.Dataset:
    """``model``'s forecasts of every month of ``cube`` that has a full window.

    Parameters are those of :meth:`Forecaster.predict <geocryo.forecast.Forecaster.predict>`,
    and ``blind`` that of :func:`predict_members`.
    """
    ensemble = predict_members(model, cube, horizon, blind=blind, progress=progress)
    calibration = None if blind else getattr(model, "calibration", None)
    if members:
        return with_spread(ensemble, calibration, keep_members=True)
    return summarize(ensemble, calibration=calibration)


def predict_members(
    model: Forecaster,
    cube: xr.Dataset,
    horizon: int | None = None,
    *,
    blind: bool = False,
    progress: bool = True,
) -> xr.Dataset:
    """Every member's forecast, on (member, time, y, x), in physical units.

    NaN where no window fits (the first months of the record). ``blind`` hides the target
    history (and climatology) of every cell, as if the grid had no site: how the calibration
    measures the errors of the cells without one.
    """
    lead = model.spec.lead
    horizon = lead if horizon is None else integer("horizon", horizon)
    if horizon < lead or horizon % lead:
        raise ValueError(f"horizon must be a positive multiple of the lead ({lead}), got {horizon}")
    validate(cube)
    prepared = model.plan.transform(cube).drop_vars(model.ignored, errors="ignore")
    if model.outlook is not None:
        prepared = model.outlook.apply(prepared, lead)
    if model.mode == "multimodal" and model.config.drivers:
        prepared = with_drivers(prepared, model.config.drivers, lead)
    months = pd.DatetimeIndex(cube.indexes["time"])
    stream = PatchStream(
        prepared,
        months,
        model.spec,
        model.mode,
        model.targets,
        shuffle=False,
        require_target=False,
        drop_last=False,
    )
    if stream.channels != model.channels:
        raise CubeError(
            "<dataset>",
            "does not give the inputs the model was trained on: expected channels "
            f"{model.channels}, got {stream.channels}; predict on a cube with the same "
            "variables as the training cube",
        )
    shape = (model.members, len(months), cube.sizes["y"], cube.sizes["x"], len(model.targets))
    fields = None
    for step in range(horizon // lead):
        rollout = None
        if step:
            rollout = Rollout(
                previous=fields.mean(axis=0),
                months=step * lead,
                lead=lead,
                lookback=model.spec.lookback,
                patch=model.spec.patch,
                channels=stream.history_channels,
            )
        fields = _field(model, stream, months, shape, rollout, blind, progress)
    return _to_dataset(model, cube, fields)


def _field(model, stream, months, shape, rollout, blind, progress) -> np.ndarray:
    """One pass over every window: each member's standardised field, ``(E, T, Y, X, K)``."""
    from tqdm.auto import tqdm

    total = np.zeros(shape, np.float32)
    counts = np.zeros(shape[1:-1], np.float32)
    p = model.spec.patch
    index = {t: i for i, t in enumerate(months.values.astype("datetime64[ns]"))}
    hidden = stream.site_channels
    batches = tqdm(stream, total=len(stream), desc="predicting", disable=not progress, leave=False)
    for batch in batches:
        if blind:
            batch = hide_history(batch, np.ones(batch.targets.shape[:3], bool), *hidden)
        inputs = dict(batch.inputs)
        target_index = np.array([index[t] for t in batch.time.astype("datetime64[ns]")])
        if rollout is not None:
            inputs["history"] = rollout.history(inputs["history"], target_index, batch.y0, batch.x0)
        members = np.asarray(model.apply(inputs))  # (E, B, p, p, K)
        for b, (t, y0, x0) in enumerate(zip(target_index, batch.y0, batch.x0, strict=True)):
            total[:, t, y0 : y0 + p, x0 : x0 + p] += members[:, b]
            counts[t, y0 : y0 + p, x0 : x0 + p] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / counts[None, ..., None]


@dataclass(frozen=True)
class Rollout:
    """How a roll-out step replaces observed target history by earlier predictions.

    Attributes
    ----------
    previous
        The ensemble mean of the previous step, standardised, ``(T, Y, X, K)``.
    months
        How many of the last months of each window are replaced.
    lead, lookback, patch
        The model's window geometry.
    channels
        Positions in the ``"history"`` group of each target's value and missing indicator.
    """

    previous: np.ndarray
    months: int
    lead: int
    lookback: int
    patch: int
    channels: tuple[list[int], list[int]]

    def history(self, history: np.ndarray, target_index, y0, x0) -> np.ndarray:
        """``history`` ``(B, L, p, p, C)`` with its last :attr:`months` months predicted.

        Every window lies inside the record, so each replaced month has a (possibly NaN)
        prediction; NaN becomes 0 with its missing indicator set, as in the batches.
        """
        values, indicators = self.channels
        p = self.patch
        history = history.copy()
        for b, (t, yy, xx) in enumerate(zip(target_index, y0, x0, strict=True)):
            for j in range(min(self.months, self.lookback)):
                predicted = self.previous[t - self.lead - j, yy : yy + p, xx : xx + p]
                missing = np.isnan(predicted)
                step = history[b, self.lookback - 1 - j]  # a view: (p, p, channels)
                step[..., values] = np.where(missing, 0.0, predicted)
                step[..., indicators] = missing
        return history


def _to_dataset(model: Forecaster, cube: xr.Dataset, fields: np.ndarray) -> xr.Dataset:
    coords = {k: v for k, v in cube.coords.items() if set(v.dims) <= {"time", "y", "x"}}
    coords[MEMBER] = np.arange(fields.shape[0])
    dims = (MEMBER, "time", "y", "x")
    standardised = xr.Dataset(
        {
            name: (dims, fields[..., k].astype(np.float32), {"units": "1"})
            for k, name in enumerate(model.targets)
        },
        coords=coords,
    )
    out = model.plan.inverse_targets(standardised)
    for name in model.targets:
        attrs = {
            **cube[name].attrs,
            "modality": "prediction",
            "long_name": f"predicted {cube[name].attrs.get('long_name', name)}",
        }
        attrs.pop("source", None)
        bound = model.config.lower_bound(name)
        if bound is not None:
            attrs["valid_min"] = np.float32(bound)
        out[name] = out[name].astype(np.float32).assign_attrs(attrs)
    out[MEMBER].attrs = {"long_name": "ensemble member"}
    out.attrs = {
        "title": "geocryo forecast",
        "mode": model.mode,
        "lookback": model.spec.lookback,
        "lead": model.spec.lead,
        "members": model.members,
    }
    return out


def with_spread(
    ensemble: xr.Dataset,
    calibration: Calibration | None = None,
    *,
    keep_members: bool = False,
    member_dim: str = MEMBER,
) -> xr.Dataset:
    """Members -> their mean (``<target>``) and the predictive spread (``<target>_std``).

    With a ``calibration``, the spread is the standard deviation of the calibrated predictive
    distribution: the members' variance (ddof 1) plus the fitted noise of each cell's kind
    and month (:mod:`geocryo.forecast.calibration`); without one it is the members' standard
    deviation alone (0 for one member), and says so in its ``long_name``; a ``<target>_std``
    that came with the members (``predict(..., members=True)``'s) is kept. ``keep_members``
    keeps every member on ``member_dim`` in place of the mean. Variables without
    ``member_dim`` pass through.
    """
    if member_dim not in ensemble.dims:
        raise ValueError(
            f"summarize() needs a {member_dim!r} dim; got dims {tuple(ensemble.dims)} "
            "(predict(..., members=True) gives one)"
        )
    n = ensemble.sizes[member_dim]
    out = xr.Dataset(attrs=ensemble.attrs)
    for name, var in ensemble.data_vars.items():
        if member_dim not in var.dims:
            out[name] = var
            continue
        mean = var.mean(member_dim).astype(var.dtype).assign_attrs(var.attrs)
        out[name] = var if keep_members else mean
        given = f"{name}{SPREAD_SUFFIX}"
        if calibration is None and given in ensemble.data_vars:
            continue  # the predictive spread came with the members: kept as it is
        variance = var.var(member_dim, ddof=1) if n > 1 else xr.zeros_like(mean)
        calibrated = calibration is not None and name in calibration.targets
        if calibrated:
            variance = variance + calibration.variance(name, mean)
        spread = np.sqrt(variance).astype(var.dtype)
        what = "predictive spread" if calibrated else "ensemble spread"
        spread.attrs = {
            "units": var.attrs.get("units", ""),
            "long_name": f"{what} (standard deviation) of {name}",
            "calibrated": int(calibrated),
        }
        if "valid_min" in var.attrs:
            spread.attrs["censored_below"] = var.attrs["valid_min"]
        out[f"{name}{SPREAD_SUFFIX}"] = spread
    return out.drop_vars(member_dim, errors="ignore") if not keep_members else out


def summarize(
    ensemble: xr.Dataset, *, calibration: Calibration | None = None, member_dim: str = MEMBER
) -> xr.Dataset:
    """Members -> their mean (``<target>``) and spread (``<target>_std``); see :func:`with_spread`.

    The member dim is dropped.
    """
    return with_spread(ensemble, calibration, member_dim=member_dim)


def forecast_period(
    model: Forecaster,
    cube: xr.Dataset,
    months: pd.DatetimeIndex,
    horizon: int | None = None,
    *,
    members: bool = False,
    blind: bool = False,
    progress: bool = True,
) -> xr.Dataset:
    """The model's forecasts of ``months``, predicting over no more of the record than needed.

    The windows of a few test years need only those years and the look-back before them. The
    values are those of ``model.predict(cube, horizon, members=members)`` at ``months``.

    Parameters
    ----------
    model
        A fitted model.
    cube
        The cube it was fitted on (or one with the same variables).
    months
        The months to forecast, inside the cube's time axis.
    horizon
        Months between the last input month and the forecast month (default: the model's lead).
    members
        Keep every member on a ``member`` dim instead of their mean (the spread is kept).
    blind
        Hide every cell's target history (:func:`predict_members`).
    progress
        Show a progress bar.
    """
    months = pd.DatetimeIndex(months)
    horizon = model.spec.lead if horizon is None else integer("horizon", horizon, low=1)
    # A window reaches back lookback + horizon months; a roll-out needs the earlier months'
    # own windows too, hence twice the horizon.
    start = months[0] - pd.DateOffset(months=model.spec.lookback + 2 * horizon)
    window = cube.sel(time=slice(start, months[-1]))
    out = predict(model, window, horizon, members=members, blind=blind, progress=progress)
    return out.sel(time=months)
