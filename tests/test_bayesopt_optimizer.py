"""The ask/tell optimiser: convergence, batches, failures, discrete spaces, save and resume."""

import math

import numpy as np
import pytest

from geocryo.bayesopt import Categorical, Integer, Optimizer, Real, minimize

BOX = {"x": Real(-2.0, 2.0), "y": Real(-2.0, 2.0)}


def quadratic(x, y):
    return (x - 0.3) ** 2 + 2 * (y + 1.2) ** 2 + 1.0


@pytest.mark.parametrize("acquisition", ["log_ei", "ucb"])
def test_finds_the_minimum_of_a_quadratic_within_20_evaluations(acquisition):
    optimizer = minimize(quadratic, BOX, 20, seed=0, acquisition=acquisition)
    assert len(optimizer.trials) == 20
    assert optimizer.best_value - 1.0 < 1e-3
    best = optimizer.best_params
    assert abs(best["x"] - 0.3) < 0.05 and abs(best["y"] + 1.2) < 0.05


def run(optimizer, steps, batch=1):
    """Ask and tell ``steps`` batches; the configurations asked, in order."""
    asked = []
    for _ in range(steps):
        params = optimizer.ask(batch)
        optimizer.tell(params, [quadratic(**p) for p in params])
        asked += params
    return asked


def test_a_resumed_search_continues_exactly(tmp_path):
    original = Optimizer(BOX, seed=3)
    run(original, 6)
    pending = original.ask(2)
    original.tell(pending[0], quadratic(**pending[0]))  # one trial still running at the save
    path = original.save(tmp_path / "search.json")
    resumed = Optimizer.load(path)
    assert resumed.pending == [pending[1]]
    assert resumed.trials == original.trials

    for optimizer in (original, resumed):
        optimizer.tell(pending[1], quadratic(**pending[1]))
    assert run(resumed, 4, batch=2) == run(original, 4, batch=2)
    assert resumed.best_value == original.best_value


@pytest.mark.parametrize("batch", ["kriging_believer", "constant_liar"])
def test_batches_are_distinct_and_new(batch):
    optimizer = Optimizer(BOX, seed=1, batch=batch)
    run(optimizer, 5)
    params = optimizer.ask(4)
    assert len(optimizer.pending) == 4
    points = np.array([[p["x"], p["y"]] for p in params])
    told = np.array([[t.params["x"], t.params["y"]] for t in optimizer.trials])
    # Every pair of suggestions is apart, and none repeats an evaluation.
    gaps = np.abs(points[:, None] - points[None]).max(-1) + np.eye(4)
    assert gaps.min() > 1e-3
    assert np.abs(points[:, None] - told[None]).max(-1).min() > 1e-6
    optimizer.tell(params, [quadratic(**p) for p in params])
    assert optimizer.pending == []


def test_failed_trials_do_not_stop_the_search():
    def objective(x, y):
        if x > 1.0:
            raise RuntimeError("diverged")
        return quadratic(x, y) if x > -1.5 else math.nan

    optimizer = minimize(objective, BOX, 25, seed=0)
    failed = [t for t in optimizer.trials if not t.ok]
    assert failed, "the design covers the failing regions"
    assert any("RuntimeError: diverged" in t.error for t in failed)
    assert all(t.params["x"] > 1.0 or t.params["x"] <= -1.5 for t in failed)
    assert optimizer.best_value - 1.0 < 1e-2
    # A failed configuration is never asked again.
    keys = [tuple(t.params.values()) for t in optimizer.trials]
    assert len(set(keys)) == len(keys)


def test_discrete_space_is_covered_without_duplicates():
    space = {"n": Integer(0, 3), "kind": Categorical(("a", "b"))}
    optimizer = Optimizer(space, seed=0)
    seen = []
    for _ in range(8):
        (params,) = optimizer.ask()
        optimizer.tell(params, params["n"] + (params["kind"] == "b"))
        seen.append((params["n"], params["kind"]))
    assert sorted(seen) == [(n, k) for n in range(4) for k in ("a", "b")]
    assert optimizer.best_params == {"n": 0, "kind": "a"}


def test_mixed_space_with_log_scale():
    space = {
        "lr": Real(1e-5, 1e-1, log=True),
        "depth": Integer(1, 8),
        "act": Categorical(("tanh", "relu")),
    }

    def objective(lr, depth, act):
        return (math.log10(lr) + 3) ** 2 + 0.1 * (depth - 5) ** 2 + (act == "tanh")

    optimizer = minimize(objective, space, 25, seed=0)
    best = optimizer.best_params
    assert best["act"] == "relu" and best["depth"] in (4, 5, 6)
    assert abs(math.log10(best["lr"]) + 3) < 0.3


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="acquisition must be one of"):
        Optimizer(BOX, acquisition="ei")
    with pytest.raises(ValueError, match="batch must be one of"):
        Optimizer(BOX, batch="liar")
    with pytest.raises(ValueError, match="n_initial"):
        Optimizer(BOX, n_initial=0)
    optimizer = Optimizer(BOX)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        optimizer.ask(0)
    with pytest.raises(ValueError, match="missing"):
        optimizer.tell({"x": 0.0}, 1.0)
    with pytest.raises(TypeError, match="number or None"):
        optimizer.tell({"x": 0.0, "y": 0.0}, "low")
    with pytest.raises(ValueError, match="2 configurations but 1 values"):
        optimizer.tell([{"x": 0.0, "y": 0.0}] * 2, [1.0])
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a saved geocryo optimiser"):
        Optimizer.load(tmp_path / "other.json")
