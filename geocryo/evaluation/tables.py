"""The skill table of :func:`~geocryo.evaluation.evaluate` for people: Markdown."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from . import metrics
from .scores import ALL

__all__ = ["to_markdown"]


def to_markdown(
    evaluation: xr.Dataset,
    *,
    scope: str = "sites",
    zone: str = ALL,
    metrics_shown: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> str:
    """One scope and zone of :func:`evaluate`'s output as Markdown tables, one per target.

    Parameters
    ----------
    evaluation
        Output of :func:`evaluate`.
    scope, zone
        Which scope (``"sites"``, ``"field"``) and zone (``"all"``, ``"tundra"``, ...) to show.
    metrics_shown
        Columns to show (default: every metric); ``coverage`` and ``spread`` are n/a for
        baselines.
    models
        Rows to show (default: every row).

    Returns
    -------
    str
        A ``### target [units]`` heading, the number of pairs scored, and a pipe table per
        target.
    """
    for dim, value in (("scope", scope), ("zone", zone)):
        if value not in evaluation[dim].values:
            raise ValueError(
                f"{dim} {value!r} is not in the evaluation; it has {list(evaluation[dim].values)}"
            )
    selection = evaluation.sel(scope=scope, zone=zone)
    if metrics_shown is not None:
        selection = selection.sel(metric=list(metrics_shown))
    if models is not None:
        selection = selection.sel(model=list(models))
    what = "site-months" if scope == "sites" else "cell-months"
    blocks = []
    for name in selection.data_vars:
        text = metrics.to_markdown(selection[[name]].reset_coords(drop=True))
        heading, rest = text.split("\n", 1)
        count = int(selection[f"{name}_pairs"])
        blocks.append(f"{heading}\n\n{count:,} {what} scored by every row.\n{rest}")
    return "\n".join(blocks)
