"""``geocryo.tune``: Bayesian search of :func:`geocryo.fit`'s hyperparameters, trials on Dask.

>>> result = geocryo.tune(cube, n_trials=20, parallel=2)    # a LocalCluster of 2 processes
>>> result.trials                                           # one row per trial
>>> result.best_params, result.best_score
>>> pred = result.model.predict(cube)                       # fitted with the best configuration

Each trial fits a short model (``epochs`` epochs, ``ensemble`` members) with one configuration
from the :class:`~geocryo.bayesopt.Optimizer` and scores it by its best validation loss (the
masked MSE of the standardised targets on the validation period of the chronological split;
lower is better). Trials run as futures on a ``dask.distributed`` client, ``parallel`` at a time:
whenever one finishes it is told to the optimiser and the next configuration is asked for, with
the running ones in the GP as fantasies. A trial that raises (a configuration the cube cannot
hold, a diverging loss) is recorded as failed and the search goes on. The best configuration is
then fitted again with the full budget (``final_epochs``, ``final_ensemble``).

Knobs a search space may name (:data:`KNOBS`): ``lookback`` and ``patch`` (arguments of
:func:`~geocryo.fit`); ``features`` (hidden channels), ``layers``, ``kernel``, ``dropout``,
``activation``, ``batch_size``, ``overlap`` (:class:`~geocryo.forecast.FitConfig`);
``learning_rate``, ``weight_decay``, ``warmup_steps``, ``clip_norm``
(:class:`~geocryo.train.TrainConfig`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import dask
import pandas as pd
import xarray as xr

from ._checks import integer
from .bayesopt import Categorical, Integer, Optimizer, Real, Space
from .cube import validate
from .forecast import FitConfig, Forecaster, fit
from .preprocess import TimeSplit

__all__ = ["KNOBS", "TuneResult", "default_space", "tune"]

_FIT_ARGS = ("lookback", "patch")
_FIT_CONFIG = ("features", "layers", "kernel", "dropout", "activation", "batch_size", "overlap")
_TRAIN_CONFIG = ("learning_rate", "weight_decay", "warmup_steps", "clip_norm")
#: Hyperparameters a search space may name.
KNOBS: tuple[str, ...] = _FIT_ARGS + _FIT_CONFIG + _TRAIN_CONFIG


def default_space(cube: xr.Dataset | None = None) -> dict[str, Real | Integer | Categorical]:
    """The default search: learning rate, hidden channels, layers, kernel size, dropout,
    look-back and patch size.

    Parameters
    ----------
    cube
        When given, patch sizes larger than its grid are left out.

    Returns
    -------
    dict
        ``{knob: dimension}``, to pass to :func:`tune` as it is or edited.
    """
    patches = [8, 16, 32]
    if cube is not None:
        side = min(cube.sizes["y"], cube.sizes["x"])
        patches = [p for p in patches if p <= side] or [side]
    space: dict[str, Real | Integer | Categorical] = {
        "learning_rate": Real(1e-4, 3e-2, log=True),
        "features": Integer(4, 64, log=True),
        "layers": Integer(1, 3),
        "kernel": Categorical((3, 5)),
        "dropout": Real(0.0, 0.4),
        "lookback": Integer(6, 24),
    }
    if len(patches) > 1:
        space["patch"] = Categorical(tuple(patches))
    return space


@dataclass(frozen=True, eq=False)
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    trials
        One row per trial, in submission order: the searched knobs, ``score`` (best validation
        loss; NaN when failed), ``status`` (``"ok"`` or ``"failed"``), ``seconds`` and ``error``.
    best_params
        The searched knobs of the trial with the lowest score.
    best_score
        Its score.
    settings
        Every knob's value in the final fit (searched and fixed), and the fit arguments.
    model
        The model fitted with the best configuration and the final budget (``None`` with
        ``refit=False``).
    optimizer
        The optimiser, with every trial told (:meth:`~geocryo.bayesopt.Optimizer.save` keeps it).
    """

    trials: pd.DataFrame
    best_params: dict[str, Any]
    best_score: float
    settings: dict[str, Any]
    model: Forecaster | None
    optimizer: Optimizer

    def __repr__(self) -> str:
        failed = int((self.trials["status"] == "failed").sum())
        return (
            f"TuneResult({len(self.trials)} trials, {failed} failed, best score "
            f"{self.best_score:.4g} with {self.best_params})"
        )


def _fit_arguments(values: Mapping[str, Any], base: FitConfig) -> tuple[dict, FitConfig]:
    """:func:`fit` keyword arguments and the :class:`FitConfig` of one configuration."""
    kwargs = {k: values[k] for k in _FIT_ARGS if k in values}
    train = replace(base.train, **{k: values[k] for k in _TRAIN_CONFIG if k in values})
    config = replace(base, **{k: values[k] for k in _FIT_CONFIG if k in values}, train=train)
    return kwargs, config


_CONFIG_LOCK = threading.Lock()
_local_trials = 0
_local_config: Any = None


@contextmanager
def _synchronous_scheduler() -> Iterator[None]:
    """Compute dask graphs in the calling thread while any trial of this process runs.

    ``dask.config`` is global to the process: trials on threaded workers share it, so the first
    trial to start sets it and the last to end restores it (a plain nested ``dask.config.set``
    per trial could leave it changed when trials end out of order).
    """
    global _local_trials, _local_config
    with _CONFIG_LOCK:
        if _local_trials == 0:
            _local_config = dask.config.set(scheduler="synchronous")
        _local_trials += 1
    try:
        yield
    finally:
        with _CONFIG_LOCK:
            _local_trials -= 1
            if _local_trials == 0:
                _local_config.__exit__(None, None, None)
                _local_config = None


def run_trial(
    cube: xr.Dataset, values: Mapping[str, Any], base: FitConfig, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Fit one configuration and score it; never raises (a failure is part of the result).

    Runs on a Dask worker: the cube's own dask graph (if any) is computed there with the
    synchronous scheduler, so that a trial never waits for workers that are busy with trials.

    Returns
    -------
    dict
        ``score`` (best validation loss, or ``None``), ``error`` (``None`` or the message) and
        ``seconds``.
    """
    start = time.perf_counter()
    try:
        kwargs, config = _fit_arguments(values, base)
        with _synchronous_scheduler():
            model = fit(cube, config=config, progress=False, **kwargs, **options)
        score = float(model.history.attrs["best_val_loss"])
        if not math.isfinite(score):
            raise FloatingPointError(f"the best validation loss is {score}")
        error = None
    except Exception as exc:  # a failed trial is data for the search, not the end of it
        score, error = None, f"{type(exc).__name__}: {exc}"
    return {"score": score, "error": error, "seconds": time.perf_counter() - start}


def _check_knobs(space: Space, fixed: Mapping[str, Any]) -> None:
    unknown = [k for k in [*space.names, *fixed] if k not in KNOBS]
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; tune knows {list(KNOBS)}")
    both = [k for k in space.names if k in fixed]
    if both:
        raise ValueError(f"{both} are both searched and fixed; drop them from space or fixed")


def tune(
    cube: xr.Dataset,
    space: Space | Mapping[str, Real | Integer | Categorical] | None = None,
    n_trials: int = 20,
    parallel: int = 2,
    client=None,
    *,
    epochs: int = 3,
    ensemble: int = 1,
    fixed: Mapping[str, Any] | None = None,
    config: FitConfig | None = None,
    targets: Sequence[str] | None = None,
    mode: str = "multimodal",
    lead: int = 1,
    split: TimeSplit | None = None,
    refit: bool = True,
    final_epochs: int = 10,
    final_ensemble: int = 4,
    processes: bool = True,
    n_initial: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TuneResult:
    """Search the hyperparameters of :func:`geocryo.fit` by Bayesian optimisation.

    Parameters
    ----------
    cube
        A valid cube (:func:`geocryo.validate`), in memory or lazy.
    space
        ``{knob: Real | Integer | Categorical}`` over :data:`KNOBS` (default
        :func:`default_space` of the cube).
    n_trials
        Trials in all, failed ones included.
    parallel
        Trials running at once.
    client
        A ``dask.distributed.Client`` to run the trials on; ``None`` starts a ``LocalCluster``
        of ``parallel`` single-threaded workers (processes, or threads with
        ``processes=False``) and closes it at the end.
    epochs, ensemble
        Budget of each trial's fit (short: a trial ranks configurations, it is not the model).
    fixed
        Knobs that are not searched, ``{knob: value}`` (e.g. ``{"patch": 8}``).
    config
        Base :class:`~geocryo.forecast.FitConfig` for everything neither searched nor fixed.
    targets, mode, lead, split
        As in :func:`geocryo.fit`, the same for every trial and the final fit.
    refit, final_epochs, final_ensemble
        Whether to fit the best configuration again at the end, and with what budget.
    processes
        Worker processes (default) or threads, for the ``LocalCluster`` started without a client.
    n_initial
        Trials from the initial quasi-random design (default: one per encoded coordinate plus
        one, at most half the trials, at least ``parallel``).
    seed
        Seed of the search and of every fit (each trial differs only by its configuration).
    progress
        A progress bar over the trials (and the final fit's bars).

    Returns
    -------
    TuneResult
        The table of trials, the best configuration and its score, and the final model.

    Raises
    ------
    RuntimeError
        When every trial failed (the errors are in the message).
    """

    validate(cube)
    space = Space(default_space(cube) if space is None else space)
    fixed = dict(fixed or {})
    _check_knobs(space, fixed)
    n_trials = integer("n_trials", n_trials, low=1)
    parallel = integer("parallel", parallel, low=1)
    if config is not None and not isinstance(config, FitConfig):
        raise TypeError(f"config must be a geocryo.FitConfig, got {config!r}")
    base = config or FitConfig()
    _fit_arguments(fixed, base)  # a bad fixed value fails here, not in every trial
    options = {"targets": targets, "mode": mode, "lead": lead, "split": split}
    budget = {
        "epochs": integer("epochs", epochs, low=1),
        "ensemble": integer("ensemble", ensemble, low=1),
        "seed": integer("seed", seed, low=0),
    }
    final_budget = {
        "epochs": integer("final_epochs", final_epochs, low=1),
        "ensemble": integer("final_ensemble", final_ensemble, low=1),
        "seed": budget["seed"],
    }
    if n_initial is None:
        n_initial = max(parallel, min(space.width + 1, n_trials // 2))
    optimizer = Optimizer(space, n_initial=n_initial, seed=seed)

    own_cluster = client is None
    cluster = None
    if own_cluster:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=parallel,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=":0",  # a free port: never clash with a running cluster
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    rows: list[dict[str, Any]] = []
    try:
        trials = base.with_train(**budget)
        rows = _search(
            client, cube, optimizer, trials, fixed, options, n_trials, parallel, progress
        )
    finally:
        if own_cluster:
            client.close()
            cluster.close()

    table = pd.DataFrame(rows).set_index("trial")
    ok = table[table["status"] == "ok"]
    if ok.empty:
        errors = "; ".join(sorted(set(table["error"].astype(str))))
        raise RuntimeError(f"all {len(table)} trials failed: {errors}")
    best_params = optimizer.best_params  # the lowest score, with the exact values asked
    values = {**fixed, **best_params}
    model = None
    if refit:
        kwargs, final_config = _fit_arguments(values, base.with_train(**final_budget))
        model = fit(cube, config=final_config, progress=progress, **kwargs, **options)
    return TuneResult(
        trials=table,
        best_params=best_params,
        best_score=optimizer.best_value,
        settings={**values, **options, **budget},
        model=model,
        optimizer=optimizer,
    )


def _search(client, cube, optimizer, base, fixed, options, n_trials, parallel, progress):
    """Keep ``parallel`` trials running until ``n_trials`` are done; the rows of the table."""
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    data = client.scatter(cube, broadcast=True)
    futures: dict[Any, tuple[int, dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    submitted = 0

    def submit(count: int) -> list:
        nonlocal submitted
        new = []
        for params in optimizer.ask(count):
            values = {**fixed, **params}
            future = client.submit(run_trial, data, values, base, options, pure=False)
            futures[future] = (submitted, params)
            submitted += 1
            new.append(future)
        return new

    bar = tqdm(total=n_trials, desc="tuning", disable=not progress)
    queue = as_completed(submit(min(parallel, n_trials)))
    for future in queue:
        number, params = futures.pop(future)
        try:
            outcome = future.result()
        except Exception as exc:  # the worker itself died: still only one failed trial
            outcome = {"score": None, "error": f"{type(exc).__name__}: {exc}", "seconds": math.nan}
        optimizer.tell(params, outcome["score"], outcome["error"])
        rows.append(
            {
                "trial": number,
                **params,
                "score": math.nan if outcome["score"] is None else outcome["score"],
                "status": "failed" if outcome["score"] is None else "ok",
                "seconds": outcome["seconds"],
                "error": outcome["error"],
            }
        )
        bar.update(1)
        best = optimizer.best_value
        if best is not None:
            bar.set_postfix(best=f"{best:.4g}")
        if submitted < n_trials:
            queue.update(submit(1))
    bar.close()
    return sorted(rows, key=lambda row: row["trial"])
