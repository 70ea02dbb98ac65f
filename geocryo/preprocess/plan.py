"""The preprocessing plan: fitted on the training period only, applied lazily to the whole cube.

>>> parts = TimeSplit().periods(cube.time, lookback=12)
>>> fitted = Preprocessor(PreprocessConfig(detrend=True)).fit(cube, parts["train"])
>>> model_input = fitted.transform(cube)  # lazy; standardised, detrended, PCA of the bands
>>> physical = fitted.inverse_targets(predictions)  # back to cm, nmol m-2 s-1, umol m-2 s-1

Statistics from the whole record would leak the future into training (the test period's warming
would set the scale); so :meth:`Preprocessor.fit` reads the training months alone, and the
fitted plan is then applied to every month without looking at their values.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .._checks import flag, integer
from .._progress import dask_progress
from ..cube import TARGETS
from . import _store
from ._fitting import (
    UNOBSERVED,
    VariablePlan,
    fit_plans,
    month_offsets,
    project,
    select_variables,
)

__all__ = ["SPREAD_SUFFIX", "FittedPreprocessor", "PreprocessConfig", "Preprocessor"]

#: Suffix of a target's spread (ensemble standard deviation) in predictions, e.g. ``alt_std``.
SPREAD_SUFFIX = "_std"


@dataclass(frozen=True)
class PreprocessConfig:
    """What the preprocessing plan does.

    Parameters
    ----------
    detrend
        Remove a per-pixel linear trend (fitted on the training months) from every variable on
        (time, y, x) before standardising; the trend is kept and added back by
        :meth:`FittedPreprocessor.inverse_targets`.
    pca_components
        Principal components kept for every variable with a dim other than time, y and x (the
        ``band`` of a hyperspectral mosaic); at most the size of that dim. 0 keeps such
        variables whole (standardised, no PCA).
    variables
        Data variables to preprocess (``None``: all). The targets present in the cube are
        always included, since the model learns them and predictions go back through them.
    trend_min_months
        Observed training months a pixel needs for a trend of its own; sparser pixels (most
        in situ ones) take the trend of the variable fitted over all pixels together.
    """

    detrend: bool = False
    pca_components: int = 4
    variables: tuple[str, ...] | None = None
    trend_min_months: int = 24

    def __post_init__(self) -> None:
        object.__setattr__(self, "detrend", flag("PreprocessConfig.detrend", self.detrend))
        for field, low in (("pca_components", 0), ("trend_min_months", 2)):
            value = integer(f"PreprocessConfig.{field}", getattr(self, field), low=low)
            object.__setattr__(self, field, value)
        if self.variables is not None:
            if isinstance(self.variables, str):
                raise TypeError(
                    "PreprocessConfig.variables must be a sequence of names, not one string; "
                    f"write variables=({self.variables!r},)"
                )
            names = tuple(self.variables)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise ValueError(
                    "PreprocessConfig.variables must be None or a non-empty sequence of "
                    f"variable names, got {self.variables!r}"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"PreprocessConfig.variables repeats a name: {names}")
            object.__setattr__(self, "variables", names)


def _training(cube: xr.Dataset, train) -> xr.Dataset:
    if "time" not in cube.dims or train is None:
        return cube
    if isinstance(train, slice):
        sub = cube.sel(time=train)
    else:
        try:
            months = pd.DatetimeIndex(train)
        except (TypeError, ValueError) as err:
            raise TypeError(
                "fit(train=...) takes the training months as a pandas.DatetimeIndex (e.g. "
                f"TimeSplit().periods(cube.time)['train']) or a slice; got {type(train).__name__}"
            ) from err
        missing = months.difference(cube.indexes["time"])
        if len(missing):
            raise ValueError(
                f"fit(train=...): {len(missing)} training months are not in the cube's time axis "
                f"(first {missing[0]:%Y-%m}); the cube runs from "
                f"{cube.indexes['time'][0]:%Y-%m} to {cube.indexes['time'][-1]:%Y-%m}"
            )
        sub = cube.sel(time=months)
    if sub.sizes["time"] == 0:
        raise ValueError(f"fit(train={train!r}) selects no month of the cube")
    return sub


class Preprocessor:
    """The preprocessing plan, unfitted: cheap to build, computes nothing.

    Parameters
    ----------
    config
        What to do (default :class:`PreprocessConfig()`: standardise every variable, PCA of
        many-band variables to 4 components, no detrending).
    """

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        if config is None:
            config = PreprocessConfig()
        if not isinstance(config, PreprocessConfig):
            raise TypeError(f"Preprocessor takes a PreprocessConfig, got {type(config).__name__}")
        self.config = config

    def __repr__(self) -> str:
        return f"Preprocessor({self.config!r})"

    def fit(
        self,
        cube: xr.Dataset,
        train: pd.DatetimeIndex | slice | None = None,
        *,
        progress: bool = True,
    ) -> FittedPreprocessor:
        """Fit the plan's statistics on the training months of ``cube``.

        Parameters
        ----------
        cube
            A geocryo cube, lazy or loaded.
        train
            The training months (``TimeSplit.periods(...)["train"]``, or a slice of dates);
            ``None`` uses every month. Variables without ``time`` use all their values.
        progress
            Show a progress bar during the compute.

        Returns
        -------
        FittedPreprocessor

        Notes
        -----
        Statistics ignore NaN. All means, standard deviations and trends come from a single
        dask compute; each many-band variable's PCA (dask-ml, exact SVD) is one more before it.
        A variable with no observed training value is scaled with mean 0 and std 1, a constant
        one with std 1; both are recorded in ``statistics["fallback"]`` (the first also warned).
        """
        if not isinstance(cube, xr.Dataset):
            raise TypeError(f"fit() takes an xarray.Dataset cube, got {type(cube).__name__}")
        names = select_variables(cube, self.config.variables)
        if not names:
            raise ValueError("fit(): the cube has no data variables to preprocess")
        train_cube = _training(cube, train)
        origin = (
            pd.Timestamp(train_cube["time"].values[0]).to_period("M")
            if "time" in cube.dims
            else None
        )
        with dask_progress(progress, "preprocess: fitting on the training period"):
            plans = fit_plans(
                cube,
                train_cube,
                names,
                detrend=self.config.detrend,
                pca_components=self.config.pca_components,
                trend_min_months=self.config.trend_min_months,
                origin=origin,
            )
        unobserved = [name for name, plan in plans.items() if plan.scaling.fallback == UNOBSERVED]
        if unobserved:
            warnings.warn(
                f"preprocess: {unobserved} have no observed value in the training period; they "
                "are scaled with mean 0 and std 1. Leave them out "
                "(PreprocessConfig(variables=...)) or train on a period that observes them",
                UserWarning,
                stacklevel=2,
            )
        return FittedPreprocessor(
            self.config,
            plans,
            y=np.asarray(cube["y"].values),
            x=np.asarray(cube["x"].values),
            origin=origin,
        )


def _match_chunks(small: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """``small`` as dask with ``like``'s chunks when ``like`` is lazy, else as it is."""
    if like.chunks is None:
        return small
    sizes = like.chunksizes
    return small.chunk({d: sizes.get(d, -1) for d in small.dims})


class FittedPreprocessor:
    """A fitted preprocessing plan: transform cubes, invert targets, save with a model.

    Build it with :meth:`Preprocessor.fit` or :meth:`load`.

    Attributes
    ----------
    config : PreprocessConfig
        What the plan does.
    """

    def __init__(
        self,
        config: PreprocessConfig,
        plans: dict[str, VariablePlan],
        *,
        y: np.ndarray,
        x: np.ndarray,
        origin: pd.Period | None,
    ) -> None:
        self.config = config
        self._plans = dict(plans)
        self._y = np.asarray(y)
        self._x = np.asarray(x)
        self._origin = origin

    def __repr__(self) -> str:
        outputs = ", ".join(plan.output for plan in self._plans.values())
        return f"<FittedPreprocessor {self.config!r}: {outputs}>"

    @property
    def variables(self) -> dict[str, str]:
        """Input variable name -> output variable name (``<name>_pc`` for projected ones)."""
        return {name: plan.output for name, plan in self._plans.items()}

    @property
    def origin(self) -> pd.Period | None:
        """First training month: where the trends' time axis ``t`` (in months) is 0."""
        return self._origin

    # -- applying the plan ------------------------------------------------------------------

    def _grid(self, field: np.ndarray, like: xr.DataArray) -> xr.DataArray:
        """A (y, x) field of the fitted grid, placed on ``like``'s y and x."""
        iy, ix = slice(None), slice(None)
        for dim, fitted in (("y", self._y), ("x", self._x)):
            if dim in like.coords:
                values = np.asarray(like[dim].values)
                if np.array_equal(values, fitted):
                    continue
                where = pd.Index(fitted).get_indexer(values)
                if (where < 0).any():
                    raise ValueError(
                        f"preprocess: the {dim!r} coordinate has values that are not on the grid "
                        f"the plan was fitted on (e.g. {values[where < 0][0]!r}); detrending "
                        "needs the fitted grid or a subset of it"
                    )
            elif like.sizes[dim] == len(fitted):
                continue
            else:
                raise ValueError(
                    f"preprocess: {dim!r} has {like.sizes[dim]} cells and no coordinate; the plan "
                    f"was fitted on {len(fitted)}; add the {dim!r} coordinate"
                )
            if dim == "y":
                iy = where
            else:
                ix = where
        return xr.DataArray(field[iy][:, ix].astype(like.dtype), dims=("y", "x"))

    def _time(self, like: xr.DataArray, what: str) -> xr.DataArray:
        if "time" not in like.coords:
            raise ValueError(
                f"preprocess: {what} was detrended, so it needs a 'time' coordinate to put the "
                f"trend back; it has dims {like.dims}"
            )
        time = like["time"]
        offsets = month_offsets(time.values.ravel(), self._origin).reshape(time.shape)
        return xr.DataArray(offsets.astype(like.dtype), dims=time.dims)

    def _trend(self, plan: VariablePlan, like: xr.DataArray, with_mean: bool) -> xr.DataArray:
        intercept = plan.trend.intercept + (plan.scaling.mean if with_mean else 0.0)
        a = _match_chunks(self._grid(intercept, like), like)
        b = _match_chunks(self._grid(plan.trend.slope, like), like)
        t = _match_chunks(self._time(like, repr(plan.name)), like)
        return a + b * t

    def _output_attrs(self, plan: VariablePlan) -> dict:
        attrs = {k: v for k, v in plan.attrs.items() if k not in ("units", "standard_name")}
        steps = ["standardised with training-period statistics"]
        if plan.trend is not None:
            steps.insert(0, "per-pixel linear trend removed")
        if plan.projection is not None:
            k = len(plan.projection.components)
            steps.insert(0, f"{k} principal components over {plan.projection.dim!r}")
            attrs["long_name"] = f"principal components of {plan.attrs.get('long_name', plan.name)}"
        attrs["units"] = "1"
        attrs["geocryo_units"] = plan.attrs.get("units", "")
        attrs["geocryo_preprocessing"] = "; ".join(steps)
        return attrs

    def _forward(self, var: xr.DataArray, plan: VariablePlan) -> xr.DataArray:
        if var.dims != plan.dims:
            raise ValueError(
                f"preprocess: {plan.name!r} has dims {var.dims}, but the plan was fitted on "
                f"{plan.dims}"
            )
        scaling = plan.scaling
        if plan.projection is not None:
            proj = plan.projection
            if proj.dim in var.coords and not np.array_equal(var[proj.dim].values, proj.coord):
                raise ValueError(
                    f"preprocess: {plan.name!r} has other {proj.dim!r} values than the PCA was "
                    "fitted on; select the same bands"
                )
            scores = project(var, proj, var.dtype)
            out = (scores - scaling.mean) / scaling.std
            out = out.assign_coords(component=np.arange(len(proj.components)))
        elif plan.trend is not None:
            out = ((var - self._trend(plan, var, with_mean=True)) / scaling.std).transpose(
                *var.dims
            )
        else:
            out = (var - scaling.mean) / scaling.std
        out.attrs = self._output_attrs(plan)
        out.encoding = {}
        return out.rename(plan.output)

    def transform(self, cube: xr.Dataset) -> xr.Dataset:
        """The cube in the model's units: standardised, detrended, bands reduced. Lazy.

        Parameters
        ----------
        cube
            A cube with the variables the plan was fitted on (targets may be absent, as when
            predicting), on any months; dask-backed stays dask-backed (nothing is computed),
            numpy stays numpy.

        Returns
        -------
        xr.Dataset
            Every fitted variable ``(value - trend - mean) / std`` (trend only when detrending),
            NaN where the input is NaN; a many-band variable ``<name>`` becomes ``<name>_pc``
            on (component, y, x) or (time, component, y, x). ``units`` is ``"1"``, the original
            in ``geocryo_units``. Coordinates and dataset attributes are kept; the reduced
            dims' coordinates (``band``, ``wavelength``) go. Variables the plan does not cover
            are left out.
        """
        if not isinstance(cube, xr.Dataset):
            raise TypeError(f"transform() takes an xarray.Dataset, got {type(cube).__name__}")
        missing = [n for n in self._plans if n not in cube.data_vars and n not in TARGETS]
        if missing:
            raise KeyError(
                f"transform(): the cube lacks {missing}, which the plan was fitted on; "
                "fit a plan on the variables this cube has (PreprocessConfig(variables=...))"
            )
        out = {
            self._plans[name].output: self._forward(cube[name], self._plans[name])
            for name in cube.data_vars
            if name in self._plans
        }
        result = cube.drop_vars(list(cube.data_vars)).assign(out)
        for plan in self._plans.values():
            dim = plan.projection.dim if plan.projection is not None else None
            if dim in result.dims and not any(dim in v.dims for v in result.data_vars.values()):
                result = result.drop_dims(dim)
        return result

    def inverse_targets(self, ds: xr.Dataset) -> xr.Dataset:
        """Targets back in physical units: the exact inverse of :meth:`transform` for them.

        Parameters
        ----------
        ds
            Standardised targets (``alt``, ``ch4_flux``, ``co2_flux``) and/or their spreads
            (``alt_std``, ...), on any dims that include y and x (and a ``time`` coordinate
            when the plan detrends: the trend of each value's month is added back). Lazy stays
            lazy.

        Returns
        -------
        xr.Dataset
            ``ds`` with each target as ``value * std + mean (+ trend)``, each spread as
            ``value * std``, with the original units and attributes; other variables as they
            were.
        """
        if not isinstance(ds, xr.Dataset):
            raise TypeError(f"inverse_targets() takes an xarray.Dataset, got {type(ds).__name__}")
        out = {}
        for name in ds.data_vars:
            base = str(name)
            spread = base.endswith(SPREAD_SUFFIX) and base[: -len(SPREAD_SUFFIX)] in TARGETS
            if spread:
                base = base[: -len(SPREAD_SUFFIX)]
            elif base not in TARGETS:
                continue
            if base not in self._plans:
                raise KeyError(
                    f"inverse_targets(): the plan has no statistics for target {base!r}; fit it "
                    "on a cube that holds that target"
                )
            plan, var = self._plans[base], ds[name]
            if spread:
                value = var * plan.scaling.std
            elif plan.trend is not None:
                value = var * plan.scaling.std + self._trend(plan, var, with_mean=True)
                value = value.transpose(*var.dims)
            else:
                value = var * plan.scaling.std + plan.scaling.mean
            attrs = dict(plan.attrs)
            if spread:
                attrs["long_name"] = (
                    f"spread (standard deviation) of {attrs.get('long_name', base)}"
                )
                attrs.pop("standard_name", None)
            value.attrs = attrs
            out[name] = value
        return ds.assign(out)

    def standardise(self, target: str, value: float) -> float:
        """A constant physical value of ``target`` (a bound) in the standardised units.

        Raises ``ValueError`` when the plan detrends the target, since a constant is then a
        different standardised value at every cell and month.
        """
        plan = self._plans.get(target)
        if plan is None:
            raise KeyError(f"standardise(): the plan has no statistics for {target!r}")
        if plan.trend is not None:
            raise ValueError(
                f"the plan removes a trend from {target!r} (PreprocessConfig(detrend=True)), so "
                f"its bound of {value} is not one standardised value; fit with "
                f"FitConfig(bounds={{{target!r}: None}}) to drop the bound, or without detrend"
            )
        return (float(value) - plan.scaling.mean) / plan.scaling.std

    # -- for people -------------------------------------------------------------------------

    @property
    def statistics(self) -> xr.Dataset:
        """Mean and std of every output variable, and the PCAs' explained variance.

        Dims ``variable`` (output names) for ``mean``, ``std``, ``count`` (observed training
        values), ``fallback`` (why std or mean are not the data's, empty when they are),
        ``units`` (original units), ``detrended``; and (``pca``, ``component``) for
        ``explained_variance`` and ``explained_variance_ratio``.
        """
        plans = list(self._plans.values())
        scal = [p.scaling for p in plans]
        stats = xr.Dataset(
            {
                "mean": ("variable", [s.mean for s in scal], {"long_name": "training mean"}),
                "std": ("variable", [s.std for s in scal], {"long_name": "training std (ddof 0)"}),
                "count": ("variable", np.array([s.count for s in scal], dtype=np.int64)),
                "fallback": ("variable", np.array([s.fallback for s in scal], dtype=str)),
                "units": (
                    "variable",
                    np.array([p.attrs.get("units", "") for p in plans], dtype=str),
                ),
                "detrended": ("variable", [p.trend is not None for p in plans]),
            },
            coords={"variable": [p.output for p in plans]},
            attrs={"train_start": str(self._origin) if self._origin is not None else ""},
        )
        projected = [p for p in plans if p.projection is not None]
        if projected:
            k = max(len(p.projection.components) for p in projected)
            ev = np.full((len(projected), k), np.nan)
            evr = np.full((len(projected), k), np.nan)
            for i, p in enumerate(projected):
                n = len(p.projection.components)
                ev[i, :n] = p.projection.explained_variance
                evr[i, :n] = p.projection.explained_variance_ratio
            stats["explained_variance"] = (("pca", "component"), ev)
            stats["explained_variance_ratio"] = (("pca", "component"), evr)
            stats = stats.assign_coords(pca=[p.output for p in projected], component=np.arange(k))
        return stats

    @property
    def trends(self) -> xr.Dataset:
        """Per-pixel trends: ``<name>_intercept`` (at :attr:`origin`), ``<name>_slope`` (per
        year), ``<name>_local`` (False where the variable-wide trend stands in)."""
        out = {}
        for name, plan in self._plans.items():
            if plan.trend is None:
                continue
            units = plan.attrs.get("units", "")
            out[f"{name}_intercept"] = (("y", "x"), plan.trend.intercept, {"units": units})
            out[f"{name}_slope"] = (("y", "x"), plan.trend.slope * 12, {"units": f"{units} yr-1"})
            out[f"{name}_local"] = (("y", "x"), plan.trend.local)
        return xr.Dataset(out, coords={"y": self._y, "x": self._x})

    @property
    def components(self) -> dict[str, xr.DataArray]:
        """Principal-component loadings on (component, band) of each projected variable."""
        return {
            name: xr.DataArray(
                plan.projection.components,
                dims=("component", plan.projection.dim),
                coords={
                    "component": np.arange(len(plan.projection.components)),
                    plan.projection.dim: plan.projection.coord,
                },
                name=f"{name}_loadings",
            )
            for name, plan in self._plans.items()
            if plan.projection is not None
        }

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the plan to the directory ``path``: ``plan.json`` and ``arrays.npz``.

        Atomic: written beside ``path`` and renamed into place, so a reader never sees half a
        plan and a failed save leaves what was there.

        Parameters
        ----------
        path
            The directory to create.
        overwrite
            Replace a plan already at ``path``.
        """
        _store.write(path, self, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FittedPreprocessor:
        """Read a plan written by :meth:`save`."""
        config, plans, y, x, origin = _store.read(path)
        return cls(PreprocessConfig(**config), plans, y=y, x=x, origin=origin)
