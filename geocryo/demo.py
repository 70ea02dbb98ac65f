"""The main job, ``geocryo demo``: synthesise Alaska, fit two models, score them, report.

>>> from geocryo.demo import QUICK, run_demo
>>> result = run_demo("geocryo-demo", QUICK)  # doctest: +SKIP
>>> print(result.report)  # doctest: +SKIP

Steps: synthesise the embedded synthetic Alaska in memory (or open a catalog entry); fit a
teacher-forcing model (target history only) and a multimodal one (every modality); forecast the
test period (the multimodal model the whole record, for the thaw trend); score both against
persistence, seasonal persistence and climatology at the observed sites and on the complete
truth; draw the figures and write ``report.md`` beside them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from . import plots, synthetic
from ._checks import integer
from .evaluation import evaluate, metrics, to_markdown, trend_summary
from .forecast import FitConfig, Forecaster, fit, forecast_period, summarize
from .preprocess.plan import SPREAD_SUFFIX
from .report import calibration_markdown, headline, write_report

__all__ = [
    "DEFAULT",
    "QUICK",
    "DemoResult",
    "DemoSettings",
    "open_entry",
    "run_demo",
]

#: The two models the demo fits, in table order.
MODES: tuple[str, ...] = ("teacher_forcing", "multimodal")


@dataclass(frozen=True)
class DemoSettings:
    """Size of the synthetic world and of the fits; see :data:`DEFAULT` and :data:`QUICK`.

    Parameters
    ----------
    ny, nx
        Grid cells of the synthetic Alaska (its 1000 km square, so fewer cells are coarser).
    start, end
        First and last month of the record.
    n_sites
        In situ sites.
    lookback, patch
        Months of inputs and the side of the training patches (cells).
    epochs, ensemble
        Most epochs per fit, and ensemble members.
    seed
        Seed of the synthetic world and of the fits.
    config
        Network and optimiser settings (:class:`~geocryo.forecast.FitConfig`).
    """

    ny: int = 64
    nx: int = 64
    start: str = "2000-01"
    end: str = "2019-12"
    n_sites: int = 40
    lookback: int = 12
    patch: int = 16
    epochs: int = 10
    ensemble: int = 4
    seed: int = 0
    config: FitConfig = field(default_factory=FitConfig)

    def __post_init__(self) -> None:
        for name in ("ny", "nx", "n_sites", "lookback", "patch", "epochs", "ensemble"):
            value = integer(f"DemoSettings.{name}", getattr(self, name), low=1)
            object.__setattr__(self, name, value)
        if self.patch > min(self.ny, self.nx):
            raise ValueError(
                f"DemoSettings.patch ({self.patch}) must fit in the grid ({self.ny} x {self.nx})"
            )
        if pd.Period(self.end, "M") <= pd.Period(self.start, "M"):
            raise ValueError(f"DemoSettings.end ({self.end}) must come after start ({self.start})")


#: ``geocryo demo``: the default synthetic Alaska (64 x 64 cells, 2000-2019), 2 epochs of 2
#: members per model.
DEFAULT = DemoSettings(epochs=2, ensemble=2)

#: ``geocryo demo --quick``: a first look on a coarser grid (24 x 24 cells) over 2008-2019,
#: 3 epochs of 2 members per model.
QUICK = DemoSettings(ny=24, nx=24, start="2008-01", end="2019-12", patch=12, epochs=3, ensemble=2)


@dataclass
class DemoResult:
    """What :func:`run_demo` made.

    Attributes
    ----------
    evaluation
        The skill table (:func:`geocryo.evaluate`).
    report
        The Markdown of ``report.md``.
    directory
        Where the report and figures are.
    figures
        PNG paths by caption.
    models
        The fitted models by row name.
    predictions
        Their forecasts (the multimodal one over the whole record).
    seconds
        Wall time of each step.
    cube, truth
        The cube the models learnt from, and its truth (``None`` if there is none).
    """

    evaluation: xr.Dataset
    report: str
    directory: Path
    figures: dict[str, Path]
    models: dict[str, Forecaster]
    predictions: dict[str, xr.Dataset]
    seconds: dict[str, float]
    cube: xr.Dataset
    truth: xr.Dataset | None


def open_entry(
    catalog: str | os.PathLike | None, entry: str
) -> tuple[xr.Dataset, xr.Dataset | None]:
    """Open a catalog entry as a cube, with the entry ``<entry>_truth`` beside it if any.

    Parameters
    ----------
    catalog
        An Intake catalog YAML file (``None``: geocryo's own catalog).
    entry
        The dotted entry name, e.g. ``"synthetic.alaska"``.

    Returns
    -------
    tuple
        ``(cube, truth)``, lazy; ``truth`` is ``None`` where the catalog has no truth entry.
    """
    from .io import open_catalog, open_cube

    cat = open_catalog(catalog)
    try:
        cube = open_cube([entry], catalog=cat)
    except KeyError as error:
        raise ValueError(
            f"the catalog {catalog or 'of geocryo'} has no entry {entry!r}; its top-level "
            "entries are "
            f"{sorted(cat)} (nested ones are named like 'synthetic.alaska')"
        ) from error
    truth = None
    try:
        truth = open_cube([f"{entry}_truth"], catalog=cat)
    except (KeyError, FileNotFoundError):
        pass  # no truth beside the entry (or not on disk): only the sites scope is scored
    return cube, truth


def _focus_month(months: pd.DatetimeIndex) -> pd.Timestamp:
    """The last August of the period (thaw near its deepest, fluxes high), else its last month."""
    august = months[months.month == 8]
    return august[-1] if len(august) else months[-1]


def run_demo(
    out: str | os.PathLike = "geocryo-demo",
    settings: DemoSettings = DEFAULT,
    *,
    catalog: str | os.PathLike | None = None,
    entry: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the main job and write ``out/report.md`` with its PNG figures.

    Parameters
    ----------
    out
        Directory for the report and figures (created; files in it are replaced).
    settings
        World and fit sizes: :data:`DEFAULT`, :data:`QUICK` or your own :class:`DemoSettings`
        (e.g. ``replace(QUICK, ny=16, nx=16)`` for a smaller run).
    catalog, entry
        Instead of synthesising, open ``entry`` (``"synthetic.alaska"``) of this Intake catalog
        (``None``: geocryo's own); an entry ``<entry>_truth`` beside it, if any, is the truth.
        The grid settings are then unused.
    progress
        Show progress bars.
    log
        Where the one-line progress messages go.

    Returns
    -------
    DemoResult
        The evaluation, the report's text, the figure paths, the models and their forecasts.
    """
    if catalog is not None and entry is None:
        raise ValueError("a catalog needs an entry: pass entry= (--entry) too")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    s = settings

    def step(n: int, text: str) -> None:
        log(f"[{n}/6 {time.perf_counter() - clock:5.0f} s] {text}")

    if entry is None:
        step(1, f"synthesising Alaska: {s.ny} x {s.nx} cells, {s.start} to {s.end}, seed {s.seed}")
        cube, truth = synthetic.alaska(
            ny=s.ny, nx=s.nx, start=s.start, end=s.end, seed=s.seed, n_sites=s.n_sites
        )
        cube, truth = cube.load(), truth.load()
        source = (
            f"the synthetic Alaska (`geocryo.synthetic.alaska(ny={s.ny}, nx={s.nx}, "
            f"start={s.start!r}, end={s.end!r}, seed={s.seed}, n_sites={s.n_sites})`)"
        )
    else:
        step(1, f"opening {entry} from {catalog or 'the geocryo catalog'}")
        cube, truth = open_entry(catalog, entry)
        source = f"the catalog entry `{entry}` of `{catalog}`"
    seconds["data"] = time.perf_counter() - clock

    models: dict[str, Forecaster] = {}
    for n, mode in enumerate(MODES, start=2):
        step(n, f"fitting {mode}: {s.epochs} epochs, {s.ensemble} members")
        t = time.perf_counter()
        models[mode] = fit(
            cube,
            mode=mode,
            lookback=s.lookback,
            patch=s.patch,
            config=s.config.with_train(ensemble=s.ensemble, epochs=s.epochs, seed=s.seed),
            progress=progress,
        )
        seconds[mode] = time.perf_counter() - t
        history = models[mode].history
        log(
            f"    {models[mode]}\n    {seconds[mode]:.0f} s, best epoch "
            f"{int(history.attrs['best_epoch']) + 1} of {history.sizes['epoch']}, validation "
            f"loss {history.attrs['best_val_loss']:.4f}"
        )

    step(4, "forecasting the test period (and the whole record with the multimodal model)")
    t = time.perf_counter()
    test = models["multimodal"].periods["test"]
    members = {
        "teacher_forcing": forecast_period(
            models["teacher_forcing"], cube, test, members=True, progress=progress
        ),
        "multimodal": models["multimodal"].predict(cube, members=True, progress=progress),
    }
    predictions = {name: summarize(forecast) for name, forecast in members.items()}
    seconds["predict"] = time.perf_counter() - t

    step(5, "scoring against persistence, seasonal persistence and climatology")
    t = time.perf_counter()
    evaluation = evaluate(
        models,
        cube,
        truth,
        predictions={k: v.sel(time=test) for k, v in members.items()},
        progress=progress,
    )
    seconds["evaluate"] = time.perf_counter() - t

    step(6, f"drawing figures and writing {out / 'report.md'}")
    t = time.perf_counter()
    figures = _figures(out, cube, truth, models, predictions, evaluation, test)
    seconds["figures"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - clock
    unseen = models["multimodal"].ignored  # fit leaves out features never seen in training
    summary = (
        f"Data: {source}, {cube.sizes['y']} x {cube.sizes['x']} cells x "
        f"{cube.sizes['time']} months. Split in time: training "
        f"{_span(models['multimodal'].periods['train'])}, validation "
        f"{_span(models['multimodal'].periods['val'])}, test {_span(test)}. Two ConvLSTM "
        "ensembles: **teacher forcing** sees the in situ target history only; **multimodal** "
        "sees it with remote sensing, process models, forcing and static maps"
        + (f" (not {', '.join(unseen)}: never observed in the training months)." if unseen else ".")
    )
    trend = _trend_text(truth, predictions["multimodal"])
    if trend:
        summary += " " + trend
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    report = write_report(
        out,
        evaluation,
        figures={k: v.name for k, v in figures.items()},
        models=models,
        fit_seconds=seconds,
        title="geocryo demo: learning the permafrost carbon feedback over Alaska",
        summary=summary,
        notes=f"Wall time: {timing}.",
    )
    log(to_markdown(evaluation, scope="sites"))
    log(calibration_markdown(evaluation))
    log(headline(evaluation, "multimodal"))
    log(f"report: {out / 'report.md'} ({len(figures)} figures), {seconds['total']:.0f} s in all")
    return DemoResult(evaluation, report, out, figures, models, predictions, seconds, cube, truth)


def _trend_text(truth: xr.Dataset | None, forecast: xr.Dataset) -> str:
    """A sentence on the domain's ALT trend: the model's, the truth's, or that none can tell."""
    if "alt" not in forecast.data_vars:
        return ""
    model = trend_summary(forecast["alt"])
    parts = [f"multimodal {model['trend']:+.1f} ± {model['stderr']:.1f}"]
    significant = model["significant"]
    if truth is not None and "alt" in truth.data_vars:
        true = trend_summary(truth["alt"].sel(time=forecast["time"]))
        parts.insert(0, f"truth {true['trend']:+.1f} ± {true['stderr']:.1f}")
        significant = true["significant"]
    text = (
        f"Domain-mean ALT trend over {model['years']} complete years (cm per decade, ± one "
        f"standard error): {', '.join(parts)}."
    )
    if not significant:
        text += " The record is too short to tell the trend's sign (less than two standard errors)."
    return text


def _span(months: pd.DatetimeIndex) -> str:
    return f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}"


def _figures(
    out: Path,
    cube: xr.Dataset,
    truth: xr.Dataset | None,
    models: dict[str, Forecaster],
    predictions: dict[str, xr.Dataset],
    evaluation: xr.Dataset,
    test: pd.DatetimeIndex,
) -> dict[str, Path]:
    """Draw and save every figure; returns PNG paths by caption."""
    month = _focus_month(test)
    names = list(evaluation.data_vars)
    figures = {
        "Training and validation loss": plots.save(plots.loss_curves(models), out / "loss.png"),
        "RMSE per model and target": plots.save(plots.skill_bars(evaluation), out / "skill.png"),
    }
    tested = {k: v.sel(time=test) for k, v in predictions.items()}
    for name in names:
        label = plots.NAMES.get(name, name)
        figures[f"Multimodal {label}, {month:%B %Y}"] = plots.save(
            plots.field_maps(
                tested["multimodal"],
                name,
                month,
                truth=truth,
                sites=plots.observed_sites(cube, name),
                model="multimodal",
            ),
            out / f"map_{name}.png",
        )
        figures[f"{label} at observed sites, test period"] = plots.save(
            plots.site_series(tested, cube, name, truth=truth),
            out / f"sites_{name}.png",
        )
    curves = {}
    for model, forecast in tested.items():
        spread = {n: f"{n}{SPREAD_SUFFIX}" for n in names if f"{n}{SPREAD_SUFFIX}" in forecast}
        if not spread:
            continue
        mean = forecast[list(spread)]
        sd = forecast[list(spread.values())].rename({v: k for k, v in spread.items()})
        curves[f"{model}, sites"] = metrics.reliability(mean, sd, cube[list(spread)].sel(time=test))
        if truth is not None and model == "multimodal":
            curves[f"{model}, field"] = metrics.reliability(
                mean, sd, truth[list(spread)].sel(time=test)
            )
    if curves:
        figures["Reliability of the predictive intervals, test period"] = plots.save(
            plots.reliability_diagram(curves), out / "reliability.png"
        )
    if "alt" in names:
        fields = {"truth": truth["alt"]} if truth is not None else {}
        fields["multimodal"] = predictions["multimodal"]["alt"]
        caption = "Trend of the active layer thickness (multimodal: one-month-ahead forecasts "
        caption += "over the whole record, training years included)"
        figures[caption] = plots.save(plots.trend_maps(fields), out / "alt_trend.png")
    return figures
