"""A Markdown report of an evaluation: skill tables, calibration, zones, figures.

>>> from geocryo.report import write_report
>>> text = write_report("runs/demo", evaluation, figures={"loss": "loss.png"})  # doctest: +SKIP

The report is plain Markdown (``DIR/report.md``) beside its PNG figures, readable on GitHub, in
JupyterLab or converted with pandoc.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .evaluation import ALL, SKILL_VS_BEST, to_markdown
from .forecast import Forecaster

__all__ = [
    "calibration_markdown",
    "headline",
    "models_markdown",
    "write_report",
    "zones_markdown",
]

_SCOPE_TEXT = {
    "sites": (
        "Scored against the in situ observations, at the site-months of the period where the "
        "target was observed and every row has a forecast. The baselines are built from the same "
        "observations: persistence takes the value observed {h} month(s) earlier at the site, "
        "seasonal persistence the value observed 12 months earlier, climatology the site's "
        "training-period mean of the calendar month."
    ),
    "field": (
        "Scored against the complete truth, every cell and month of the period. The baselines "
        "are built from the truth itself (an oracle that knows every past value, which favours "
        "them). The teacher-forcing model sees the target history only at the sites, so its "
        "field scores are shown for completeness, not as a fair test."
    ),
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float, fmt: str = ".3g") -> str:
    return "n/a" if not np.isfinite(value) else format(value, fmt)


def headline(evaluation: xr.Dataset, model: str | None = None) -> str:
    """One sentence: a model's RMSE change against the best baseline, per target and scope.

    Parameters
    ----------
    evaluation
        Output of :func:`geocryo.evaluate`.
    model
        The row to summarise (default: the last, i.e. the last model given).

    Returns
    -------
    str
        E.g. ``multimodal RMSE vs the best baseline: at the sites alt -12 % (vs climatology),
        ...; on the field ...`` (negative: lower RMSE than every baseline). Each target and
        scope names its own best baseline, the one with the least RMSE there.
    """
    model = str(evaluation["model"].values[-1]) if model is None else model
    parts = []
    for scope in evaluation["scope"].values:
        where = "at the sites" if scope == "sites" else "on the field"
        changes = []
        for name in evaluation.data_vars:
            table = evaluation[name].sel(scope=scope, zone=ALL, model=model)
            best = str(evaluation[f"{name}_best_baseline"].sel(scope=scope, zone=ALL).values)
            change = -100 * float(table.sel(metric=SKILL_VS_BEST)) + 0.0
            changes.append(f"{name} {_number(change, '+.0f')} % (vs {best.replace('_', ' ')})")
        parts.append(f"{where} {', '.join(changes)}")
    return f"{model} RMSE vs the best baseline: " + "; ".join(parts)


def calibration_markdown(evaluation: xr.Dataset, *, zone: str = ALL) -> str:
    """The ensembles' calibration: interval coverage, and spread against RMSE, as a table.

    Parameters
    ----------
    evaluation
        Output of :func:`geocryo.evaluate` (rows without a spread are left out).
    zone
        Which zone.

    Returns
    -------
    str
        A pipe table, one row per model and scope, one column per target with the share of
        the reference inside the interval, and the spread / RMSE ratio (1 for a calibrated
        ensemble; below 1, over-confident).
    """
    level = float(evaluation.attrs.get("level", 0.9))
    names = list(evaluation.data_vars)
    header = [
        "model",
        "scope",
        *[f"{n}: coverage {100 * level:.0f} % / 50 % (spread / RMSE; CRPS)" for n in names],
    ]
    rows = []
    for model in evaluation["model"].values:
        for scope in evaluation["scope"].values:
            cells = []
            for name in names:
                table = evaluation[name].sel(model=model, scope=scope, zone=zone)
                covered = float(table.sel(metric="coverage"))
                half = float(table.sel(metric="coverage_50"))
                ratio = float(table.sel(metric="spread")) / float(table.sel(metric="rmse"))
                crps = float(table.sel(metric="crps"))
                cells.append(
                    f"{_number(covered, '.2f')} / {_number(half, '.2f')} "
                    f"({_number(ratio, '.2f')}; {_number(crps)})"
                )
            if all(c.startswith("n/a") for c in cells):
                continue
            rows.append([str(model), str(scope), *cells])
    if not rows:
        return "No row has a predictive spread.\n"
    note = (
        f"Share of the reference inside the central {100 * level:.0f} % and 50 % intervals "
        f"({evaluation.attrs.get('interval', 'of the ensemble')}); a calibrated forecast covers "
        f"{level:.2f} and 0.50. In brackets, the root mean square predictive spread over the "
        "RMSE (about 1 when calibrated; below 1, over-confident) and the CRPS (in the "
        "target's units; the MAE of a forecast without spread)."
    )
    return f"{note}\n\n{_table(header, rows)}\n"


def zones_markdown(evaluation: xr.Dataset, scope: str) -> str:
    """RMSE and its reduction vs persistence per zone, models as rows, one table per scope.

    Parameters
    ----------
    evaluation
        Output of :func:`geocryo.evaluate`.
    scope
        ``"sites"`` or ``"field"``.

    Returns
    -------
    str
        A pipe table: one column per target and zone, cells ``RMSE (change vs persistence)``.
    """
    zones = [str(z) for z in evaluation["zone"].values if z != ALL]
    if not zones:
        return "The cube has no zone field.\n"
    names = list(evaluation.data_vars)
    header = ["model"]
    for name in names:
        units = evaluation[name].attrs.get("units", "")
        header += [f"{name} {zone} [{units}]" for zone in zones]
    rows = []
    for model in evaluation["model"].values:
        cells = [str(model)]
        for name in names:
            for zone in zones:
                table = evaluation[name].sel(model=model, scope=scope, zone=zone)
                rmse = float(table.sel(metric="rmse"))
                change = -100 * float(table.sel(metric="rmse_reduction")) + 0.0
                cells.append(
                    f"{_number(rmse)} ({_number(change, '+.0f')} %)"
                    if np.isfinite(change)
                    else _number(rmse)
                )
        rows.append(cells)
    pairs = ", ".join(
        f"{name} {zone}: {int(evaluation[f'{name}_pairs'].sel(scope=scope, zone=zone)):,}"
        for name in names
        for zone in zones
    )
    return f"{_table(header, rows)}\n\nPairs scored: {pairs}.\n"


def models_markdown(
    models: Mapping[str, Forecaster], seconds: Mapping[str, float] | None = None
) -> str:
    """One line per fitted model: inputs, ensemble, size, epochs and best validation loss."""
    seconds = seconds or {}
    rows = []
    for name, model in models.items():
        history = model.history
        rows.append(
            [
                name,
                model.mode,
                str(model.members),
                f"{model.parameter_count:,}",
                f"{model.spec.lookback} / {model.spec.lead} / {model.spec.patch}",
                str(history.sizes.get("epoch", 0)),
                str(int(history.attrs.get("best_epoch", -1)) + 1),
                _number(float(history.attrs.get("best_val_loss", np.nan)), ".4f"),
                f"{seconds[name]:.0f}" if name in seconds else "n/a",
            ]
        )
    header = [
        "row",
        "inputs",
        "members",
        "parameters per member",
        "look-back / lead / patch",
        "epochs",
        "best epoch",
        "best validation loss",
        "fit [s]",
    ]
    return _table(header, rows) + "\n"


def write_report(
    directory: str | os.PathLike,
    evaluation: xr.Dataset,
    *,
    figures: Mapping[str, str | os.PathLike] | None = None,
    models: Mapping[str, Forecaster] | None = None,
    fit_seconds: Mapping[str, float] | None = None,
    title: str = "geocryo report",
    summary: str = "",
    notes: str = "",
) -> str:
    """Write ``directory/report.md`` and return its text.

    Parameters
    ----------
    directory
        Where the report goes (created if needed); figure paths are written relative to it.
    evaluation
        Output of :func:`geocryo.evaluate`.
    figures
        PNG files by caption, shown in this order; each must exist, as given or inside
        ``directory``.
    models
        The fitted models, for a table of their settings and training.
    fit_seconds
        Wall time of each model's fit.
    title
        The report's heading.
    summary
        A paragraph after the heading: where the data came from and how the run was set up.
    notes
        Text appended at the end.

    Returns
    -------
    str
        The Markdown written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    horizon = evaluation.attrs.get("horizon", 1)
    period = evaluation.attrs.get("period", "")
    parts = [f"# {title}", ""]
    if summary:
        parts += [summary, ""]
    parts += [
        f"Evaluated period: **{period}** ({evaluation.attrs.get('split', '')} months), "
        f"forecasts {horizon} month(s) ahead. RMSE reduction is 1 − RMSE / RMSE of naive "
        "persistence, and 'vs best baseline' 1 − RMSE / RMSE of the best of the baselines in "
        "that scope (positive: better); bias is forecast minus reference.",
        "",
    ]
    if SKILL_VS_BEST in evaluation["metric"].values:
        parts += [
            f"**{headline(evaluation)}** (negative: lower RMSE than every baseline).",
            "",
        ]
    if models:
        parts += ["## Models", "", models_markdown(models, fit_seconds)]
    shown = ["mae", "rmse", "r2", "bias", "crps", "rmse_reduction", SKILL_VS_BEST]
    for scope in evaluation["scope"].values:
        heading = "Skill at the observed sites" if scope == "sites" else "Skill on the full field"
        parts += [
            f"## {heading}",
            "",
            _SCOPE_TEXT.get(str(scope), "").format(h=horizon),
            "",
            to_markdown(evaluation, scope=str(scope), metrics_shown=shown),
        ]
    parts += ["## Calibration", "", calibration_markdown(evaluation)]
    if len(evaluation["zone"]) > 1:
        parts += ["## Skill by zone", ""]
        for scope in evaluation["scope"].values:
            parts += [f"### {scope}", "", zones_markdown(evaluation, str(scope))]
    if figures:
        parts += ["## Figures", ""]
        for caption, path in figures.items():
            path = Path(path)
            if not path.is_file() and (directory / path).is_file():
                path = directory / path
            if not path.is_file():
                raise FileNotFoundError(
                    f"figure {caption!r}: no file at {path} (nor at {directory / path})"
                )
            relative = os.path.relpath(path, directory)
            parts += [f"### {caption}", "", f"![{caption}]({relative})", ""]
    if notes:
        parts += ["## Notes", "", notes, ""]
    text = "\n".join(parts).rstrip() + "\n"
    # The directory also holds the figures (the caller's, written before): only report.md is
    # this function's, replaced whole through geocryo.io.atomic.
    from .io.atomic import atomic_write

    with atomic_write(
        directory / "report.md",
        overwrite=True,
        replaceable=Path.is_file,
        what="a report file",
        directory=False,
    ) as staging:
        staging.write_text(text, encoding="utf-8")
    return text
