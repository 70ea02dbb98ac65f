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
from ..cube import CubeError, validate
from ..preprocess.plan import SPREAD_SUFFIX

if TYPE_CHECKING:
    from .forecaster import Forecaster

__all__ = ["MEMBER", "forecast_period", "predict", "predict_members", "summarize"]

#: Name of the ensemble dim of member forecasts.
MEMBER = "member"


def predict(
    model: Forecaster,
    cube: xr.Dataset,
    horizon: int | None = None,
    *,
    members: bool = False,
    progress: bool = True,
) -> xr.Dataset:
    """``model``'s forecasts of every month of ``cube`` that has a full window.

    Parameters are those of :meth:`Forecaster.predict <geocryo.forecast.Forecaster.predict>`.
    """
    ensemble = predict_members(model, cube, horizon, progress=progress)
    return ensemble if members else summarize(ensemble)


def predict_members(
    model: Forecaster, cube: xr.Dataset, horizon: int | None = None, *, progress: bool = True
) -> xr.Dataset:
    """Every member's forecast, on (member, time, y, x), in physical units.

    NaN where no window fits (the first months of the record).
    """
    lead = model.spec.lead
    horizon = lead if horizon is None else integer("horizon", horizon)
    if horizon < lead or horizon % lead:
        raise ValueError(f"horizon must be a positive multiple of the lead ({lead}), got {horizon}")
    validate(cube)
    prepared = model.plan.transform(cube).drop_vars(model.ignored, errors="ignore")
    if model.outlook is not None:
        prepared = model.outlook.apply(prepared, lead)
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
        fields = _field(model, stream, months, shape, rollout, progress)
    return _to_dataset(model, cube, fields)


def _field(model, stream, months, shape, rollout, progress) -> np.ndarray:
    """One pass over every window: each member's standardised field, ``(E, T, Y, X, K)``."""
    from tqdm.auto import tqdm

    total = np.zeros(shape, np.float32)
    counts = np.zeros(shape[1:-1], np.float32)
    p = model.spec.patch
    index = {t: i for i, t in enumerate(months.values.astype("datetime64[ns]"))}
    batches = tqdm(stream, total=len(stream), desc="predicting", disable=not progress, leave=False)
    for batch in batches:
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


def summarize(ensemble: xr.Dataset, *, member_dim: str = MEMBER) -> xr.Dataset:
    """Members -> their mean (``<target>``) and spread (``<target>_std``).

    The spread is the members' sample standard deviation (ddof 1), 0 for one member. Variables
    without ``member_dim`` pass through; the member dim is dropped.
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
        out[name] = var.mean(member_dim).astype(var.dtype).assign_attrs(var.attrs)
        spread = var.std(member_dim, ddof=1) if n > 1 else xr.zeros_like(var.isel({member_dim: 0}))
        spread = spread.astype(var.dtype)
        spread.attrs = {
            "units": var.attrs.get("units", ""),
            "long_name": f"ensemble spread (standard deviation) of {name}",
        }
        out[f"{name}{SPREAD_SUFFIX}"] = spread
    return out.drop_vars(member_dim, errors="ignore")


def forecast_period(
    model: Forecaster,
    cube: xr.Dataset,
    months: pd.DatetimeIndex,
    horizon: int | None = None,
    *,
    members: bool = False,
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
        Keep every member on a ``member`` dim instead of their mean and spread.
    progress
        Show a progress bar.
    """
    months = pd.DatetimeIndex(months)
    horizon = model.spec.lead if horizon is None else integer("horizon", horizon, low=1)
    # A window reaches back lookback + horizon months; a roll-out needs the earlier months'
    # own windows too, hence twice the horizon.
    start = months[0] - pd.DateOffset(months=model.spec.lookback + 2 * horizon)
    window = cube.sel(time=slice(start, months[-1]))
    out = predict(model, window, horizon, members=members, progress=progress)
    return out.sel(time=months)
