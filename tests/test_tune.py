"""geocryo.tune on a tiny cube: trials on Dask, a failing trial, the table, the final fit."""

import math

import dask
import pytest
from worlds import world

import geocryo
from geocryo.bayesopt import Categorical, Real
from geocryo.forecast import FitConfig, Forecaster
from geocryo.train import TrainConfig
from geocryo.tuning import KNOBS, default_space

TINY = FitConfig(features=4, layers=1, batch_size=8, train=TrainConfig(warmup_steps=1))
# 48 months: with lookback 12 (and a 12-month gap) the validation part cannot hold a window, so
# those trials raise inside fit; lookback 3 fits.
SPACE = {"lookback": Categorical((3, 12)), "learning_rate": Real(1e-3, 1e-2, log=True)}


@pytest.fixture(scope="module")
def cube():
    cube, _ = world("tune")
    return cube


@pytest.fixture(scope="module")
def run(cube):
    """The result, and dask's scheduler setting before and after (threaded trials share it)."""
    before = dask.config.get("scheduler", None)
    # Threaded workers: the final fit reuses the compiled steps of the best trial.
    result = geocryo.tune(
        cube,
        space=SPACE,
        n_trials=3,
        parallel=2,
        epochs=1,
        fixed={"patch": 8},
        config=TINY,
        final_epochs=1,
        final_ensemble=1,
        processes=False,
        progress=False,
    )
    return result, before, dask.config.get("scheduler", None)


@pytest.fixture(scope="module")
def result(run):
    return run[0]


def test_dask_settings_are_left_as_found(run):
    _, before, after = run
    assert after == before


def test_every_trial_is_in_the_table(result):
    table = result.trials
    assert list(table.index) == [0, 1, 2]
    assert list(table.columns) == [
        "lookback",
        "learning_rate",
        "score",
        "status",
        "seconds",
        "error",
    ]
    assert set(table["status"]) <= {"ok", "failed"}
    assert (table["seconds"] >= 0).all()
    assert table["learning_rate"].between(1e-3, 1e-2).all()


def test_a_trial_that_raises_does_not_stop_tune(result):
    table = result.trials
    failed = table[table["status"] == "failed"]
    ok = table[table["status"] == "ok"]
    assert len(failed) >= 1 and len(ok) >= 1
    assert (failed["lookback"] == 12).all() and failed["score"].isna().all()
    assert failed["error"].str.contains("lookback + horizon = 13", regex=False).all()
    # Scores are validation MSEs of standardised targets: positive, of order one.
    assert ok["score"].between(0.01, 10).all()
    assert ok["error"].isna().all()


def test_the_best_configuration_is_refitted(result):
    ok = result.trials[result.trials["status"] == "ok"]
    assert result.best_score == ok["score"].min()
    assert result.best_params == {
        "lookback": 3,
        "learning_rate": pytest.approx(ok.loc[ok["score"].idxmin(), "learning_rate"]),
    }
    model = result.model
    assert isinstance(model, Forecaster)
    assert model.spec.lookback == 3 and model.spec.patch == 8 and model.members == 1
    assert model.config.train.learning_rate == result.best_params["learning_rate"]
    assert model.config.features == 4
    # Same configuration, seed and budget as the best trial: the same validation loss.
    assert math.isclose(model.history.attrs["best_val_loss"], result.best_score, rel_tol=1e-5)
    assert len(result.optimizer.trials) == 3 and result.optimizer.pending == []


def test_trials_run_on_worker_processes_by_default(cube):
    # Both configurations fail fast in the split, so no network is compiled: every trial
    # failing is an error that lists why.
    with pytest.raises(RuntimeError, match=r"all 2 trials failed.*lookback \+ horizon"):
        geocryo.tune(
            cube,
            space={"lookback": Categorical((12, 13))},
            n_trials=2,
            parallel=2,
            fixed={"patch": 8},
            progress=False,
        )


def test_default_space_covers_the_knobs_and_fits_the_grid(cube):
    space = default_space()
    assert set(space) == {
        "learning_rate",
        "features",
        "layers",
        "kernel",
        "dropout",
        "lookback",
        "patch",
    }
    assert set(space) <= set(KNOBS)
    assert space["learning_rate"].log
    # An 8 x 8 grid holds only 8-cell patches: nothing left to search.
    assert "patch" not in default_space(cube)
    wider, _ = world("wide", load=False)
    assert default_space(wider)["patch"].choices == (8, 16)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"space": {"depth": Real(1, 2)}}, ValueError, r"unknown hyperparameters \['depth'\]"),
        (
            {"space": {"patch": Categorical((8, 16))}, "fixed": {"patch": 8}},
            ValueError,
            "both searched and fixed",
        ),
        ({"fixed": {"kernel": 4}}, ValueError, "kernel must be odd"),
        ({"n_trials": 0}, ValueError, "n_trials must be an int >= 1"),
        ({"parallel": 0}, ValueError, "parallel must be an int >= 1"),
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1"),
        ({"config": {"features": 4}}, TypeError, "FitConfig"),
    ],
)
def test_bad_arguments_are_refused_before_any_trial(cube, kwargs, error, match):
    with pytest.raises(error, match=match):
        geocryo.tune(cube, **{"space": SPACE, **kwargs}, progress=False)


def test_tune_is_exported():
    from geocryo.bayesopt import Optimizer

    assert callable(geocryo.tune) and geocryo.tune.__module__ == "geocryo.tuning"
    assert geocryo.bayesopt.Optimizer is Optimizer
