"""The ``ds.geocryo`` accessor: geocryo's functions as methods of any :class:`xarray.Dataset`.

Registered when ``import geocryo`` runs. Every method delegates to a library function and adds
nothing of its own, so ``cube.geocryo.fit(epochs=5)`` is ``geocryo.fit(cube, epochs=5)``:

>>> import geocryo
>>> cube, truth = geocryo.synthetic.alaska(ny=32, nx=32)
>>> cube.geocryo.validate()             # geocryo.validate(cube)
>>> cube.geocryo.targets                # alt, ch4_flux, co2_flux
>>> cube.geocryo.modalities["static"]   # ['elevation', 'wetland_fraction', ...]
>>> model = cube.geocryo.fit(epochs=2)  # geocryo.fit(cube, epochs=2)
>>> pred = cube.geocryo.predict(model)  # model.predict(cube)
>>> pred.geocryo.plot.map("alt", "2017-08", truth=truth)  # geocryo.plots.field_maps
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from .cube import MODALITIES, features, targets, validate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .forecast import Forecaster

__all__ = ["GeocryoAccessor", "PlotAccessor"]


@xr.register_dataset_accessor("geocryo")
class GeocryoAccessor:
    """geocryo on a dataset: ``ds.geocryo.validate()``, ``.fit(...)``, ``.plot.map(...)``.

    Parameters
    ----------
    ds
        The dataset the accessor is reached from (a cube, a forecast or a truth).
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    # -- the cube's conventions -----------------------------------------------------------------

    def validate(self, *, scan: bool = False) -> xr.Dataset:
        """Check the cube conventions: :func:`geocryo.validate` (raises a ``CubeError``).

        Parameters
        ----------
        scan
            Also read the values to refuse fill values, infinities and negative thaw depths.

        Returns
        -------
        xr.Dataset
            The dataset itself, so that the call can be chained.
        """
        return validate(self._ds, scan=scan)

    @property
    def targets(self) -> xr.Dataset:
        """The standard targets present (``alt``, ``ch4_flux``, ``co2_flux``):
        :func:`geocryo.targets`."""
        return targets(self._ds)

    @property
    def features(self) -> xr.Dataset:
        """Every data variable that is not a target: :func:`geocryo.features`."""
        return features(self._ds)

    @property
    def modalities(self) -> dict[str, list[str]]:
        """Data variables by their ``modality`` attribute: the cube's modalities in the order of
        :data:`geocryo.cube.MODALITIES` (those without a variable left out), then any other
        value (``"prediction"`` in a forecast; ``"None"`` where the attribute is missing)."""
        groups: dict[str, list[str]] = {}
        for name, var in self._ds.data_vars.items():
            groups.setdefault(str(var.attrs.get("modality")), []).append(str(name))
        return {m: groups[m] for m in (*MODALITIES, *groups) if m in groups}

    # -- learning ----------------------------------------------------------------------------------

    def fit(self, **kwargs: Any) -> Forecaster:
        """Learn this cube's targets: :func:`geocryo.fit` with the dataset as ``cube``.

        Parameters
        ----------
        **kwargs
            Any argument of :func:`geocryo.fit` (``mode``, ``epochs``, ``ensemble``, ...).

        Returns
        -------
        Forecaster
        """
        from .forecast import fit

        return fit(self._ds, **kwargs)

    def predict(self, model: Forecaster, **kwargs: Any) -> xr.Dataset:
        """Forecasts of a fitted model on this cube: :meth:`geocryo.Forecaster.predict`.

        Parameters
        ----------
        model
            A fitted :class:`~geocryo.Forecaster`.
        **kwargs
            ``horizon`` and ``progress``.

        Returns
        -------
        xr.Dataset
            The targets and their ``<target>_std`` spreads on this cube's grid.
        """
        return model.predict(self._ds, **kwargs)

    def evaluate(
        self,
        model: Forecaster | Mapping[str, Forecaster],
        truth: xr.Dataset | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """The skill table of models against baselines on this cube: :func:`geocryo.evaluate`.

        Parameters
        ----------
        model
            A fitted model, or models by row name.
        truth
            The complete truth (the synthetic Alaska's), adding the whole-field scores.
        **kwargs
            Any other argument of :func:`geocryo.evaluate` (``split``, ``predictions``, ...).

        Returns
        -------
        xr.Dataset
        """
        from .evaluation import evaluate

        return evaluate(model, self._ds, truth, **kwargs)

    # -- storage -----------------------------------------------------------------------------------

    def to_zarr(self, path: str | os.PathLike, **kwargs: Any) -> Path:
        """Write the cube to a Zarr v3 store, atomically: :func:`geocryo.write_zarr`.

        Parameters
        ----------
        path
            The store's local path.
        **kwargs
            ``overwrite``, ``chunks``, ``progress``, ``validate_cube``, ``client``.

        Returns
        -------
        pathlib.Path
        """
        from .io import write_zarr

        return write_zarr(self._ds, path, **kwargs)

    # -- figures -----------------------------------------------------------------------------------

    @property
    def plot(self) -> PlotAccessor:
        """Figures of this dataset (:mod:`geocryo.plots`): ``ds.geocryo.plot.map(...)``."""
        return PlotAccessor(self._ds)


class PlotAccessor:
    """Figures of a forecast or a truth, each from a :mod:`geocryo.plots` function.

    Every method returns a :class:`matplotlib.figure.Figure`, which shows inline in a notebook
    and is written to a PNG with :func:`geocryo.plots.save`.

    Parameters
    ----------
    ds
        A forecast (from :meth:`~geocryo.Forecaster.predict`), or any dataset with target fields
        on (time, y, x), such as the synthetic truth.
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def map(
        self,
        target: str,
        month: str | pd.Timestamp,
        *,
        truth: xr.Dataset | None = None,
        sites: xr.DataArray | None = None,
        model: str = "",
    ) -> Figure:
        """Maps of one month: :func:`geocryo.plots.field_maps` of this dataset.

        Parameters
        ----------
        target
            The variable to map (``"alt"``).
        month
            The month (``"2019-08"``).
        truth
            The complete truth: adds truth and error panels.
        sites
            Boolean (y, x) mask of observed cells to mark.
        model
            Name for the title; by default the forecast's ``mode`` attribute.
        """
        from .plots import field_maps

        model = model or str(self._ds.attrs.get("mode", ""))
        return field_maps(self._ds, target, month, truth=truth, sites=sites, model=model)

    def sites(
        self,
        cube: xr.Dataset,
        target: str,
        *,
        truth: xr.Dataset | None = None,
        n: int = 4,
        level: float = 0.9,
    ) -> Figure:
        """Time series at the cube's observed sites: :func:`geocryo.plots.site_series`.

        Parameters
        ----------
        cube
            The cube whose in situ ``target`` holds the observations.
        target
            Which target.
        truth
            The complete truth, drawn as a thin line.
        n
            How many sites.
        level
            Probability of the shaded ensemble band.
        """
        from .plots import site_series

        return site_series(self._ds, cube, target, truth=truth, sites=n, level=level)

    def trend(
        self, truth: xr.Dataset | None = None, *, target: str = "alt", min_years: int = 3
    ) -> Figure:
        """Maps of the thaw-depth trend: :func:`geocryo.plots.trend_maps`.

        Parameters
        ----------
        truth
            The complete truth, mapped beside this dataset.
        target
            The thaw-depth variable.
        min_years
            Fewest complete years for a trend.
        """
        from .plots import trend_maps

        name = str(self._ds.attrs.get("mode", "")) or "this dataset"
        fields = {name: self._ds[target]}
        if truth is not None:
            fields = {"truth": truth[target], **fields}
        return trend_maps(fields, min_years=min_years)

    def loss(self) -> Figure:
        """Training and validation loss per epoch of a fit's history (``model.history``):
        :func:`geocryo.plots.loss_curves`."""
        from .plots import loss_curves

        return loss_curves(self._ds)

    def skill(
        self, *, metric: str = "rmse", zone: str = "all", scopes: Sequence[str] | None = None
    ) -> Figure:
        """Bars of one metric per model of a skill table (from :func:`geocryo.evaluate`):
        :func:`geocryo.plots.skill_bars`.

        Parameters
        ----------
        metric
            ``"rmse"``, ``"mae"``, ``"r2"``, ...
        zone
            ``"all"`` or one zone (``"tundra"``).
        scopes
            Which scopes (default: all of them).
        """
        from .plots import skill_bars

        return skill_bars(self._ds, metric=metric, zone=zone, scopes=scopes)
