"""Scoring forecasts: metrics, baselines, the skill table and its Markdown.

>>> table = geocryo.evaluate({"teacher_forcing": m1, "multimodal": m2}, cube, truth)
>>> print(geocryo.evaluation.to_markdown(table, scope="sites"))

:mod:`~geocryo.evaluation.metrics`
    Masked deterministic scores, CRPS and interval coverage, xarray in and out.
:mod:`~geocryo.evaluation.baselines`
    Persistence, seasonal persistence and climatology forecasts.
:mod:`~geocryo.evaluation.scores`
    :func:`evaluate`: every row scored on the same pairs, at the sites and on the field.
:mod:`~geocryo.evaluation.tables`
    :func:`to_markdown`.
:mod:`~geocryo.evaluation.trend`
    :func:`thaw_trend`, the active layer's trend per cell.
"""

from . import baselines as baselines
from . import metrics as metrics
from .scores import ALL as ALL
from .scores import BASELINES as BASELINES
from .scores import EXTRA_METRICS as EXTRA_METRICS
from .scores import SCOPES as SCOPES
from .scores import SKILL_VS_BEST as SKILL_VS_BEST
from .scores import against_best as against_best
from .scores import evaluate as evaluate
from .tables import to_markdown as to_markdown
from .trend import thaw_trend as thaw_trend
from .trend import trend_summary as trend_summary

__all__ = [
    "ALL",
    "BASELINES",
    "EXTRA_METRICS",
    "SCOPES",
    "SKILL_VS_BEST",
    "against_best",
    "baselines",
    "evaluate",
    "metrics",
    "thaw_trend",
    "to_markdown",
    "trend_summary",
]
