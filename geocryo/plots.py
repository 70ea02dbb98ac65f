"""Figures of a fit and its forecasts, for people: losses, maps, site series, skill, thaw trend.

Every function returns a :class:`matplotlib.figure.Figure` built with matplotlib's object
interface (no pyplot, no global state, nothing drawn on screen), labelled with the units of the
data: it shows inline in a notebook, and :func:`save` writes it as a PNG.

>>> from geocryo import plots
>>> fig = plots.field_maps(prediction, "alt", "2019-08", truth=truth)  # doctest: +SKIP
>>> plots.save(fig, "report/alt_map.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from scipy.stats import norm

from .evaluation import thaw_trend
from .forecast import Forecaster
from .preprocess.plan import SPREAD_SUFFIX

__all__ = [
    "field_maps",
    "loss_curves",
    "observed_sites",
    "reliability_diagram",
    "save",
    "site_series",
    "skill_bars",
    "trend_maps",
    "units_label",
]

#: Short names of the targets for axis labels.
NAMES = {"alt": "thaw depth", "ch4_flux": "CH4 flux", "co2_flux": "CO2 flux"}

_COLORS = {
    "persistence": "0.55",
    "seasonal_persistence": "0.7",
    "climatology": "0.82",
    "teacher_forcing": "tab:orange",
    "multimodal": "tab:blue",
}
_CMAPS = {"alt": "YlOrBr", "ch4_flux": "viridis", "co2_flux": "RdBu_r"}
_DIVERGING = {"RdBu_r", "PuOr_r"}


def units_label(units: str) -> str:
    """UDUNITS text as axis-label mathtext: ``"nmol m-2 s-1"`` -> ``nmol m$^{-2}$ s$^{-1}$``."""
    words = []
    for word in str(units).split():
        word = re.sub(r"^umol", "µmol", word)
        match = re.fullmatch(r"([^\d-]+)(-?\d+)", word)
        words.append(f"{match[1]}$^{{{match[2]}}}$" if match else word)
    return " ".join(words)


def _label(da: xr.DataArray, name: str | None = None) -> str:
    name = name or str(da.name)
    what = NAMES.get(name, da.attrs.get("long_name", name))
    units = da.attrs.get("units")
    return f"{what} [{units_label(units)}]" if units else what


def _color(name: str, i: int) -> str:
    return _COLORS.get(name, f"C{i % 10}")


def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Write a figure as a PNG (matplotlib's Agg renderer; no display needed).

    Parameters
    ----------
    fig
        A figure from this module (or any matplotlib figure).
    path
        The PNG file to write; its directory is created.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


# ---------------------------------------------------------------------------------------------
# Training


def _histories(
    models: Forecaster | xr.Dataset | Mapping[str, Forecaster | xr.Dataset],
) -> dict[str, xr.Dataset]:
    if isinstance(models, Forecaster):
        return {models.mode: models.history}
    if isinstance(models, xr.Dataset):
        return {"model": models}
    if isinstance(models, Mapping):
        return {name: m.history if isinstance(m, Forecaster) else m for name, m in models.items()}
    raise TypeError(
        f"pass a Forecaster, its history, or a dict of them by name, got {type(models).__name__}"
    )


def loss_curves(
    models: Forecaster | xr.Dataset | Mapping[str, Forecaster | xr.Dataset],
) -> Figure:
    """Training and validation loss per epoch, one panel per model.

    Parameters
    ----------
    models
        Fitted models (or their :attr:`~geocryo.Forecaster.history`), by name.

    Returns
    -------
    matplotlib.figure.Figure
        The ensemble-mean loss (solid: training, dashed: validation), each member's
        validation loss in thin lines, and the best epoch marked.
    """
    histories = _histories(models)
    fig = Figure(figsize=(4.2 * len(histories) + 0.6, 3.6), layout="constrained")
    axes = fig.subplots(1, len(histories), sharey=True, squeeze=False)[0]
    for ax, (name, history) in zip(axes, histories.items(), strict=True):
        if "value" not in history or "loss" not in history["metric"].values:
            raise ValueError(f"{name!r}: not a geocryo training history (no 'value' of 'loss')")
        epochs = history["epoch"].values + 1
        color = _color(name, 0)
        loss = history["value"].sel(metric="loss")
        if "member_value" in history:
            for member in history["member"].values:
                ax.plot(
                    epochs,
                    history["member_value"].sel(member=member, metric="loss", split="val"),
                    color=color,
                    lw=0.6,
                    alpha=0.4,
                )
        ax.plot(epochs, loss.sel(split="train"), "-o", color=color, ms=3, label="training")
        ax.plot(epochs, loss.sel(split="val"), "--s", color=color, ms=3, label="validation")
        best = history.attrs.get("best_epoch")
        if best is not None:
            ax.axvline(int(best) + 1, color="0.5", lw=0.8, ls=":", label="best epoch")
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("masked MSE of standardised targets [1]")
    fig.suptitle("training history")
    return fig


# ---------------------------------------------------------------------------------------------
# Maps


def _km(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    return da["x"].values / 1000.0, da["y"].values / 1000.0


def _map(
    ax, fig, da: xr.DataArray, title: str, label: str, extend: str = "neither", **kwargs
) -> None:
    x, y = _km(da)
    mesh = ax.pcolormesh(x, y, np.asarray(da.values, dtype=np.float64), shading="auto", **kwargs)
    ax.set_aspect("equal")
    ax.set_xlabel("x [km, EPSG:3338]")
    ax.set_ylabel("y [km, EPSG:3338]")
    ax.set_title(title, fontsize="medium")
    fig.colorbar(mesh, ax=ax, label=label, shrink=0.85, extend=extend)


def _month(ds: xr.Dataset, month: str | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(month)
    if stamp not in ds.indexes["time"]:
        times = ds.indexes["time"]
        raise ValueError(
            f"month {stamp:%Y-%m} is not in the data, which covers {times[0]:%Y-%m} to "
            f"{times[-1]:%Y-%m}"
        )
    return stamp


def field_maps(
    prediction: xr.Dataset,
    target: str,
    month: str | pd.Timestamp,
    *,
    truth: xr.Dataset | None = None,
    sites: xr.DataArray | None = None,
    model: str = "",
) -> Figure:
    """Maps of one month: truth, prediction, error and ensemble spread.

    Parameters
    ----------
    prediction
        A forecast with ``target`` and, optionally, ``<target>_std``.
    target
        Which target to map.
    month
        The month to map (``"2019-08"``).
    truth
        The complete truth; adds the truth and error panels.
    sites
        Optional boolean (y, x) mask of the observed sites, marked on the maps.
    model
        Name of the model, for the title.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per field, in EPSG:3338 km, each with a colour bar in the target's units.
    """
    if target not in prediction:
        raise ValueError(f"the prediction has no {target!r}; it has {list(prediction.data_vars)}")
    stamp = _month(prediction, month)
    predicted = prediction[target].sel(time=stamp)
    units = units_label(prediction[target].attrs.get("units", ""))
    panels = []
    if truth is not None:
        true = truth[target].sel(time=_month(truth, stamp))
        panels.append(("truth", true, {}))
    panels.append(("prediction (ensemble mean)", predicted, {}))
    if truth is not None:
        error = predicted - true
        limit = float(np.nanmax(np.abs(error.values))) or 1.0
        panels.append(
            ("error (prediction − truth)", error, {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit})
        )
    spread_name = target + SPREAD_SUFFIX
    if spread_name in prediction:
        panels.append(("ensemble spread (std)", prediction[spread_name].sel(time=stamp), {}))
    values = [p[1].values for p in panels[: 2 if truth is not None else 1]]
    low = float(np.nanmin([np.nanmin(v) for v in values]))
    high = float(np.nanmax([np.nanmax(v) for v in values]))
    fig = Figure(figsize=(4.1 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, da, style) in zip(axes, panels, strict=True):
        if title == "truth" or title.startswith("prediction"):
            cmap = _CMAPS.get(target, "viridis")
            if cmap in _DIVERGING and low < 0 < high:
                # A signed flux: white at zero, uptake blue, release red.
                style = {"cmap": cmap, "norm": TwoSlopeNorm(0.0, low, high)}
            else:
                style = {"cmap": cmap, "vmin": low, "vmax": high}
        elif title.startswith("ensemble"):
            style = {"cmap": "magma_r", "vmin": 0.0}
        _map(ax, fig, da, title, f"{NAMES.get(target, target)} [{units}]", **style)
        if sites is not None:
            yy, xx = np.nonzero(np.asarray(sites))
            x, y = _km(da)
            ax.plot(x[xx], y[yy], "k.", ms=3, label="sites")
    for ax in axes[1:]:
        ax.set_ylabel("")
    name = f"{model.replace('_', ' ')}: " if model else ""
    fig.suptitle(f"{name}{NAMES.get(target, target)}, {stamp:%B %Y}")
    return fig


def trend_maps(fields: Mapping[str, xr.DataArray], *, min_years: int = 3) -> Figure:
    """Maps of the active layer thickness trend (cm per decade), one per field.

    Parameters
    ----------
    fields
        Monthly thaw depth fields [cm] on (time, y, x) by name (``{"truth": ...,
        "multimodal": ...}``); each cell's trend is the slope of a straight line through its
        yearly maxima (:func:`geocryo.evaluation.thaw_trend`).
    min_years
        Fewest complete years for a trend.

    Returns
    -------
    matplotlib.figure.Figure
        One map per field on a shared diverging scale, with the domain mean in each title.
    """
    if not fields:
        raise ValueError("fields is empty; pass {name: thaw depth field}")
    trends = {name: thaw_trend(da, min_years=min_years) for name, da in fields.items()}
    values = np.concatenate([np.abs(t.values).ravel() for t in trends.values()])
    if not np.isfinite(values).any():
        raise ValueError(f"no cell has {min_years} complete years for a trend")
    # A few noisy cells should not wash out the map: the scale covers 98 % of them.
    limit = float(np.nanpercentile(values, 98)) or 1.0
    fig = Figure(figsize=(4.3 * len(trends), 4.0), layout="constrained")
    axes = fig.subplots(1, len(trends), sharey=True, squeeze=False)[0]
    for ax, (name, trend) in zip(axes, trends.items(), strict=True):
        mean = float(trend.mean())
        title = (
            f"{name.replace('_', ' ')} ({trend.attrs['years']})\n"
            f"mean {mean:+.1f} cm decade$^{{-1}}$"
        )
        _map(
            ax,
            fig,
            trend,
            title,
            f"ALT trend [{units_label(trend.attrs['units'])}]",
            extend="both",
            cmap="PuOr_r",
            vmin=-limit,
            vmax=limit,
        )
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.suptitle("trend of the active layer thickness (yearly maximum thaw depth)")
    return fig


# ---------------------------------------------------------------------------------------------
# Sites


def observed_sites(cube: xr.Dataset, target: str) -> xr.DataArray:
    """Boolean (y, x) mask of the cells where ``target`` is ever observed in ``cube``."""
    return cube[target].notnull().any("time").reset_coords(drop=True)


def _pick_sites(observed: xr.DataArray, n: int, zone: xr.DataArray | None) -> list[tuple[int, int]]:
    """The ``n`` cells with the most observations, alternating between zones where there are."""
    counts = np.asarray(observed.sum("time"))
    order = [tuple(ix) for ix in np.argwhere(counts > 0)]
    order.sort(key=lambda ix: (-counts[ix], ix))
    if zone is None:
        return order[:n]
    zones = np.asarray(zone)
    by_zone: dict[float, list] = {}
    for ix in order:
        by_zone.setdefault(float(zones[ix]), []).append(ix)
    picked: list[tuple[int, int]] = []
    while len(picked) < min(n, len(order)):
        for cells in by_zone.values():
            if cells and len(picked) < n:
                picked.append(cells.pop(0))
    return picked


def site_series(
    predictions: xr.Dataset | Mapping[str, xr.Dataset],
    cube: xr.Dataset,
    target: str,
    *,
    truth: xr.Dataset | None = None,
    sites: int = 4,
    level: float = 0.9,
) -> Figure:
    """Time series at observed sites: observations, forecasts and their ensemble band.

    Sites are cells where the cube's in situ ``target`` is ever observed; the ones with the most
    observations in the forecasts' months are shown (alternating between zones).

    Parameters
    ----------
    predictions
        A forecast, or forecasts by model name, each with ``target`` and ``<target>_std``.
    cube
        The cube whose in situ ``target`` holds the observations.
    target
        Which target to plot.
    truth
        Optional complete truth, drawn as a thin line.
    sites
        How many sites (panels).
    level
        Probability of the shaded band: mean ± z · spread of a Gaussian.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per site, titled with its position and zone.
    """
    if isinstance(predictions, xr.Dataset):
        predictions = {str(predictions.attrs.get("mode", "forecast")): predictions}
    first = next(iter(predictions.values()))
    months = first.indexes["time"]
    observed = cube[target].sel(time=slice(months[0], months[-1]))
    zone = cube["zone"] if "zone" in cube.variables else None
    cells = _pick_sites(observed.notnull(), sites, zone)
    if not cells:
        raise ValueError(
            f"{target!r} is never observed in {months[0]:%Y-%m} to {months[-1]:%Y-%m}; "
            "no site to plot"
        )
    z = float(norm.ppf(0.5 + level / 2))
    fig = Figure(figsize=(10, 2.3 * len(cells) + 0.6), layout="constrained")
    axes = fig.subplots(len(cells), 1, sharex=True, squeeze=False)[:, 0]
    flags = str(zone.attrs.get("flag_meanings", "")).split() if zone is not None else []
    for ax, (iy, ix) in zip(axes, cells, strict=True):
        if truth is not None:
            true = truth[target].isel(y=iy, x=ix).sel(time=slice(months[0], months[-1]))
            ax.plot(true["time"], true, color="k", lw=0.8, label="truth")
        for i, (name, forecast) in enumerate(predictions.items()):
            mean = forecast[target].isel(y=iy, x=ix)
            color = _color(name, i)
            ax.plot(mean["time"], mean, color=color, lw=1.4, label=name.replace("_", " "))
            spread_name = target + SPREAD_SUFFIX
            if spread_name in forecast:
                spread = forecast[spread_name].isel(y=iy, x=ix)
                bound = forecast[target].attrs.get("valid_min", -np.inf)
                ax.fill_between(
                    mean["time"].values,
                    np.maximum(mean - z * spread, bound).values,  # censored at the bound
                    (mean + z * spread).values,
                    color=color,
                    alpha=0.25,
                    lw=0,
                    label=f"{100 * level:.0f} % band ({name.replace('_', ' ')})",
                )
        obs = observed.isel(y=iy, x=ix)
        ax.plot(obs["time"], obs, "o", color="crimson", ms=3.5, label="observed")
        ax.set_ylabel(_label(cube[target], target), fontsize="small")
        where = f"{float(cube['lat'][iy, ix]):.1f}° N, {-float(cube['lon'][iy, ix]):.1f}° W"
        if zone is not None:
            value = int(np.asarray(zone)[iy, ix])
            where += f", {flags[value] if value < len(flags) else f'zone {value}'}"
        ax.set_title(f"site at cell (y {iy}, x {ix}): {where}", fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", ncol=4, loc="upper left")
    axes[-1].set_xlabel("month")
    fig.suptitle(f"{NAMES.get(target, target)} at observed sites")
    return fig


# ---------------------------------------------------------------------------------------------
# Skill


def _change(reduction: float) -> str:
    return "" if not np.isfinite(reduction) else f"{-100 * reduction + 0.0:+.0f}%"


def skill_bars(
    evaluation: xr.Dataset,
    *,
    metric: str = "rmse",
    zone: str = "all",
    scopes: Sequence[str] | None = None,
) -> Figure:
    """Bars of one metric per target (columns) and scope (rows), one bar per model.

    Parameters
    ----------
    evaluation
        Output of :func:`geocryo.evaluate`.
    metric
        The metric to draw (``"rmse"``, ``"mae"``, ``"r2"``...); bars of ``rmse`` are labelled
        with the RMSE change against the best baseline of their scope (marked "best").
    zone
        Which zone (``"all"``, ``"tundra"``...).
    scopes
        Which scopes (default: every one in the evaluation).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per scope and target, the y axis in the target's units.
    """
    scopes = list(evaluation["scope"].values) if scopes is None else list(scopes)
    names = list(evaluation.data_vars)
    models = [str(m) for m in evaluation["model"].values]
    fig = Figure(figsize=(3.9 * len(names), 3.3 * len(scopes) + 0.5), layout="constrained")
    axes = fig.subplots(len(scopes), len(names), squeeze=False)
    positions = np.arange(len(models))
    colors = [_color(m, i) for i, m in enumerate(models)]
    for row, scope in enumerate(scopes):
        for col, name in enumerate(names):
            ax = axes[row, col]
            table = evaluation[name].sel(scope=scope, zone=zone)
            values = table.sel(metric=metric).values
            bars = ax.bar(positions, values, color=colors, edgecolor="k", lw=0.5)
            if metric == "rmse" and "skill_vs_best" in table["metric"].values:
                reduction = table.sel(metric="skill_vs_best").values
                best = str(evaluation[f"{name}_best_baseline"].sel(scope=scope, zone=zone).values)
                labels = [
                    "best" if m == best else _change(r)
                    for m, r in zip(models, reduction, strict=True)
                ]
                ax.bar_label(bars, labels=labels, fontsize="x-small", padding=1)
            units = evaluation[name].attrs.get("units", "")
            if metric in ("r2", "coverage", "coverage_50", "rmse_reduction", "skill_vs_best"):
                units = "1"
            elif metric == "mse":
                units = f"({units})$^2$"
            else:
                units = units_label(units)
            ax.set_ylabel(f"{metric.upper() if metric != 'r2' else 'R²'} [{units}]")
            ax.set_xticks(positions, [m.replace("_", "\n") for m in models], fontsize="x-small")
            ax.set_title(f"{NAMES.get(name, name)}, {scope}", fontsize="medium")
            ax.grid(axis="y", alpha=0.3)
            ax.margins(y=0.15)
    fig.suptitle(
        f"{metric.upper()} per model, {evaluation.attrs.get('period', '')}"
        + (" (labels: change vs the best baseline)" if metric == "rmse" else "")
    )
    return fig


def reliability_diagram(curves: Mapping[str, xr.Dataset]) -> Figure:
    """Observed against nominal coverage of the central intervals, one panel per target.

    Parameters
    ----------
    curves
        Label (``"multimodal, sites"``...) -> the output of
        :func:`geocryo.evaluation.metrics.reliability`: per target, the covered share on a
        ``level`` dim.

    Returns
    -------
    matplotlib.figure.Figure
        The diagonal is perfect calibration; the band around it is the 85-95 % target of the
        90 % interval, and the 45-55 % one of the 50 % interval.
    """
    if not curves:
        raise ValueError("curves is empty: pass {label: metrics.reliability(...)}")
    names = list(dict.fromkeys(n for c in curves.values() for n in c.data_vars))
    fig = Figure(figsize=(3.6 * len(names), 3.6), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--", label="calibrated")
        for level, half in ((0.9, 0.05), (0.5, 0.05)):
            ax.fill_between(
                [level - 0.02, level + 0.02], level - half, level + half, color="0.85", lw=0
            )
        for i, (label, curve) in enumerate(curves.items()):
            if name not in curve.data_vars:
                continue
            model = label.split(",")[0].strip()
            ax.plot(
                curve["level"],
                curve[name],
                marker="o",
                ms=3.5,
                color=_color(model, i),
                ls="-" if "site" in label else ":",
                label=label,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("nominal coverage of the central interval")
        ax.set_ylabel("observed coverage")
        ax.set_title(NAMES.get(name, name), fontsize="medium")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize="small"
    )
    fig.suptitle("Reliability of the predictive intervals")
    return fig
