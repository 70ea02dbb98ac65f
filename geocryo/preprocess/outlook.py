"""Seasonal outlook: what a variable usually is in the month being forecast.

A forecast of month T from the months up to T - lead knows the calendar of T, and the
training-period climatology of the gridded covariates (process-model runs, forcing) for that
calendar month at each cell. :class:`Outlook` holds those climatologies, fitted on the training
months of a prepared (standardised) cube, and adds them to a cube as ``<name>_outlook``
variables whose value at month t is the climatology of month t + lead: the last step of a
look-back window then carries the expected state of the target month.

The targets can have an outlook too: at each cell where a target was observed in the training
period, its mean in each calendar month, which is the climatology baseline of the evaluation.
A target's outlook stays missing (NaN) where the cell has no training observation in that month,
so the model knows where it has one. It enters the ``"history"`` input group (see
:class:`~geocryo.batching.channels.Layout`), and the network predicts the departure from it
(:class:`~geocryo.models.network.GeoCryoNet`'s ``anchors``).

Only training months enter the climatology, so the outlook leaks nothing from validation or
test months.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["DRIVER_SUFFIX", "OUTLOOK_SUFFIX", "Outlook", "with_drivers"]

#: Suffix of an outlook variable, e.g. ``sibbork_alt_outlook``.
OUTLOOK_SUFFIX = "_outlook"

#: Suffix of a driver: a variable's value in the forecast month, e.g. ``air_temperature_driver``.
DRIVER_SUFFIX = "_driver"


def with_drivers(prepared: xr.Dataset, modalities: Sequence[str], lead: int) -> xr.Dataset:
    """``prepared`` with ``<name>_driver``: each (time, y, x) variable of ``modalities``, ``lead``
    months ahead.

    A driver is a variable whose value in the forecast month is known when the forecast is
    made: the forcing of a hindcast (a reanalysis) or of a projection (a climate scenario), and
    the process models run with it. Its value at month ``t + lead`` is placed at ``t``, so the
    last step of a look-back window carries the forecast month's; NaN where that month lies
    beyond the record. Lazy stays lazy.
    """
    out = {}
    for name, var in prepared.data_vars.items():
        if var.attrs.get("modality") not in tuple(modalities) or set(var.dims) != set(_DIMS):
            continue
        if str(name).endswith((OUTLOOK_SUFFIX, DRIVER_SUFFIX)):
            continue
        attrs = {**var.attrs, "long_name": f"{name}, {lead} month(s) ahead (a driver)"}
        out[f"{name}{DRIVER_SUFFIX}"] = var.shift(time=-int(lead)).assign_attrs(attrs)
    return prepared.assign(out)


_DIMS = ("time", "y", "x")


class Outlook:
    """Calendar-month climatologies (12 x y x x, standardised units) of some variables.

    Build it with :meth:`fit` or :meth:`load`.

    Parameters
    ----------
    climatology
        Variable name -> (12, ny, nx) float32 array, January first; 0 (the standardised mean)
        where a month has no training value, except for the targets' (NaN there).
    attrs
        Variable name -> its text attributes (``modality`` above all, which puts the outlook in
        the same input group as its variable).
    """

    def __init__(self, climatology: dict[str, np.ndarray], attrs: dict[str, dict]) -> None:
        self.climatology = {k: np.asarray(v, np.float32) for k, v in climatology.items()}
        self.attrs = {k: dict(attrs[k]) for k in self.climatology}

    def __repr__(self) -> str:
        return f"Outlook({list(self.climatology)})"

    @property
    def variables(self) -> list[str]:
        """The variables with an outlook, in order."""
        return list(self.climatology)

    @classmethod
    def fit(
        cls,
        prepared: xr.Dataset,
        train: pd.DatetimeIndex,
        modalities: Sequence[str],
        targets: Sequence[str] = (),
    ) -> Outlook:
        """Climatologies of every (time, y, x) variable of ``modalities`` over ``train``.

        Parameters
        ----------
        prepared
            The standardised cube (:meth:`FittedPreprocessor.transform`).
        train
            The training months.
        modalities
            Which variables get an outlook, by their ``modality`` attribute.
        targets
            Targets that get an outlook as well, NaN where a cell has no training value in a
            calendar month.
        """
        targets = [str(t) for t in targets]
        names = [
            str(name)
            for name, var in prepared.data_vars.items()
            if name not in targets
            and var.attrs.get("modality") in tuple(modalities)
            and set(var.dims) == set(_DIMS)
        ]
        names += [name for name in targets if name in prepared.data_vars]
        if not names:
            return cls({}, {})
        part = prepared[names].sel(time=pd.DatetimeIndex(train)).transpose(*_DIMS)
        means = part.groupby("time.month").mean("time").reindex(month=np.arange(1, 13))
        means = means.compute()
        climatology = {
            name: means[name].values if name in targets else np.nan_to_num(means[name].values)
            for name in names
        }
        attrs = {
            name: {k: v for k, v in prepared[name].attrs.items() if isinstance(v, str)}
            for name in names
        }
        return cls(climatology, attrs)

    def apply(self, prepared: xr.Dataset, lead: int) -> xr.Dataset:
        """``prepared`` with ``<name>_outlook`` added: the climatology of month ``t + lead``.

        Lazy when ``prepared`` is dask-backed (chunked like it along time, y and x).
        """
        if not self.climatology:
            return prepared
        time = pd.DatetimeIndex(prepared.indexes["time"])
        calendar = (time + pd.DateOffset(months=int(lead))).month.to_numpy() - 1
        index = xr.DataArray(calendar, dims="time")
        out = {}
        for name, clim in self.climatology.items():
            if name not in prepared.data_vars:
                raise KeyError(
                    f"outlook: the cube lacks {name!r}, whose climatology the model was fitted "
                    "with; predict on a cube with the training cube's variables"
                )
            var = prepared[name]
            if clim.shape[1:] != (var.sizes["y"], var.sizes["x"]):
                raise ValueError(
                    f"outlook: {name!r} is on a {var.sizes['y']} x {var.sizes['x']} grid, its "
                    f"climatology on {clim.shape[1]} x {clim.shape[2]}; use the training grid"
                )
            months = xr.DataArray(clim, dims=("month", "y", "x"))
            if var.chunks is not None:
                sizes = var.chunksizes
                months = months.chunk({"month": 12, "y": sizes["y"], "x": sizes["x"]})
            field = months.isel(month=index).transpose(*_DIMS)
            if var.chunks is not None:
                field = field.chunk({"time": var.chunksizes["time"]})
            attrs = {
                **self.attrs[name],
                "long_name": f"training-period climatology of {name}, {lead} month(s) ahead",
            }
            out[name + OUTLOOK_SUFFIX] = field.assign_attrs(attrs)
        return prepared.assign(out)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the climatologies to an ``.npz`` file (attributes go with the model's JSON)."""
        np.savez(Path(path), **self.climatology)

    @classmethod
    def load(cls, path: str | Path, attrs: dict[str, dict]) -> Outlook:
        """Read climatologies written by :meth:`save`, with the variables' ``attrs``."""
        with np.load(Path(path)) as arrays:
            return cls({name: arrays[name] for name in attrs}, attrs)
