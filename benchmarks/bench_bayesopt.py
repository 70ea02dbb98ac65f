"""geocryo's Bayesian optimiser against scikit-optimize and Optuna on standard test functions.

Usage::

    python benchmarks/bench_bayesopt.py            # 10 seeds, every function and method
    python benchmarks/bench_bayesopt.py --quick    # 3 seeds: a smoke run of a few minutes
    python benchmarks/bench_bayesopt.py --seeds 20 --jobs 4

Functions (minimised on their usual boxes): Branin (2-D, target: within 0.01 of 0.397887),
Hartmann-3 (3-D, target: within 0.01 of -3.86278) and Hartmann-6 (6-D, target: below -3.20).
Methods, each with its library's defaults: geocryo (:class:`geocryo.bayesopt.Optimizer`),
scikit-optimize ``gp_minimize``, Optuna's ``TPESampler`` and Optuna's ``GPSampler``.

Every run lasts 50 evaluations, longer if the target is not reached by then, up to the function's
budget. Printed per function and method, over the seeds:

- **evals to target**: the median number of evaluations until the first value at or below the
  target. A run that never reaches it is censored at the budget and counts as ``budget + 1``;
  a median that is censored prints as ``>budget``.
- **best@50**: the median best value after 50 evaluations (and the share of runs on target).
- **s/suggestion@100**: seconds one method takes to produce a suggestion with 100 observations
  (Hartmann-6 values at 100 random points), the median of a few repeats after a warm-up, timed
  one method at a time in this process (every method's numerics on one BLAS thread).

The last line is ``bayesopt: evals ratio vs best peer X, time ratio vs skopt Y`` with

- ``X = max over functions of (geocryo's median evals to target / the lowest median among the
  peers)``: ``X < 1`` means geocryo needed fewer evaluations than every peer on every function;
- ``Y = geocryo's seconds per suggestion at 100 observations / scikit-optimize's``.
"""

from __future__ import annotations

import os

# One BLAS thread for every method (set before numpy loads): the matrices are small, and
# threaded BLAS on a shared machine only adds waiting. Fair to all methods alike.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import concurrent.futures as cf  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

MIN_EVALS = 50
PEERS = ("skopt", "optuna-tpe", "optuna-gp")
METHODS = ("geocryo", *PEERS)


# -- test functions ---------------------------------------------------------------------------


def branin(x: np.ndarray) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at three points."""
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(x: np.ndarray) -> float:
    """Hartmann-3 on [0, 1]^3; minimum -3.86278."""
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H3_A * (np.asarray(x) - _H3_P) ** 2, axis=1))))


def hartmann6(x: np.ndarray) -> float:
    """Hartmann-6 on [0, 1]^6; minimum -3.32237."""
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H6_A * (np.asarray(x) - _H6_P) ** 2, axis=1))))


@dataclass(frozen=True)
class Problem:
    """A test function, its box, the value to reach and the most evaluations a run gets."""

    name: str
    function: Callable[[np.ndarray], float]
    bounds: tuple[tuple[float, float], ...]
    target: float
    budget: int


PROBLEMS = {
    "branin": Problem("branin", branin, ((-5.0, 10.0), (0.0, 15.0)), 0.397887 + 0.01, 80),
    "hartmann3": Problem("hartmann3", hartmann3, ((0.0, 1.0),) * 3, -3.86278 + 0.01, 80),
    "hartmann6": Problem("hartmann6", hartmann6, ((0.0, 1.0),) * 6, -3.20, 120),
}


def _stop_after(problem: Problem, values: list[float]) -> bool:
    """Whether a run has done its job: 50 evaluations and the target, or the budget."""
    n = len(values)
    return n >= problem.budget or (n >= MIN_EVALS and min(values) <= problem.target)


# -- the methods: each returns the values in evaluation order ---------------------------------


def run_geocryo(problem: Problem, seed: int) -> list[float]:
    from geocryo.bayesopt import Optimizer, Real

    space = {f"x{i}": Real(lo, hi) for i, (lo, hi) in enumerate(problem.bounds)}
    optimizer = Optimizer(space, seed=seed)
    values: list[float] = []
    while not _stop_after(problem, values):
        (params,) = optimizer.ask()
        value = problem.function(np.array(list(params.values())))
        optimizer.tell(params, value)
        values.append(value)
    return values


def run_skopt(problem: Problem, seed: int) -> list[float]:
    from skopt import gp_minimize

    values: list[float] = []

    def objective(x):
        values.append(problem.function(np.array(x)))
        return values[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp_minimize(
            objective,
            list(problem.bounds),
            n_calls=problem.budget,
            random_state=seed,
            callback=lambda _: _stop_after(problem, values),
        )
    return values


def _run_optuna(problem: Problem, sampler) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    values: list[float] = []
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(problem.bounds)]
        values.append(problem.function(np.array(x)))
        return values[-1]

    def stop(study, _trial):
        if _stop_after(problem, values):
            study.stop()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=problem.budget, callbacks=[stop])
    return values


def run_optuna_tpe(problem: Problem, seed: int) -> list[float]:
    import optuna

    return _run_optuna(problem, optuna.samplers.TPESampler(seed=seed))


def run_optuna_gp(problem: Problem, seed: int) -> list[float]:
    import optuna

    return _run_optuna(problem, optuna.samplers.GPSampler(seed=seed))


RUNNERS = {
    "geocryo": run_geocryo,
    "skopt": run_skopt,
    "optuna-tpe": run_optuna_tpe,
    "optuna-gp": run_optuna_gp,
}


def _task(method: str, problem: str, seed: int) -> tuple[str, str, int, list[float], float]:
    _limit_threads()
    start = time.perf_counter()
    values = RUNNERS[method](PROBLEMS[problem], seed)
    return method, problem, seed, values, time.perf_counter() - start


def _limit_threads() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # optuna's GP sampler needs torch; the others do not
        pass


# -- seconds per suggestion at 100 observations -----------------------------------------------


def _observations(seed: int, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).random((n, 6))
    return x, np.array([hartmann6(row) for row in x])


def _time_geocryo(x: np.ndarray, y: np.ndarray) -> float:
    from geocryo.bayesopt import Optimizer, Real

    optimizer = Optimizer({f"x{i}": Real(0.0, 1.0) for i in range(6)}, seed=0)
    names = list(optimizer.space.names)
    optimizer.tell([dict(zip(names, row, strict=True)) for row in x], list(y))
    start = time.perf_counter()
    optimizer.ask()
    return time.perf_counter() - start


def _time_skopt(x: np.ndarray, y: np.ndarray) -> float:
    from skopt import Optimizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = Optimizer(
            [(0.0, 1.0)] * 6,
            base_estimator="GP",
            acq_func="gp_hedge",
            acq_optimizer="lbfgs",
            n_initial_points=10,
            random_state=0,
        )
        optimizer.tell([list(r) for r in x[:-1]], list(y[:-1]))
        start = time.perf_counter()
        optimizer.tell(list(x[-1]), float(y[-1]))  # skopt fits and picks the next point here
        optimizer.ask()
        return time.perf_counter() - start


def _time_optuna(sampler_name: str, x: np.ndarray, y: np.ndarray) -> float:
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = getattr(optuna.samplers, sampler_name)(seed=0)
    study = optuna.create_study(sampler=sampler)
    distributions = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={f"x{i}": float(v) for i, v in enumerate(row)},
                distributions=distributions,
                value=float(value),
            )
            for row, value in zip(x, y, strict=True)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        trial = study.ask()
        for name, distribution in distributions.items():
            trial._suggest(name, distribution)
        return time.perf_counter() - start


TIMERS = {
    "geocryo": _time_geocryo,
    "skopt": _time_skopt,
    "optuna-tpe": lambda x, y: _time_optuna("TPESampler", x, y),
    "optuna-gp": lambda x, y: _time_optuna("GPSampler", x, y),
}


def suggestion_seconds(method: str, repeats: int) -> float:
    """Median seconds per suggestion at 100 observations, after one warm-up (compilation)."""
    TIMERS[method](*_observations(seed=1000))
    return statistics.median(TIMERS[method](*_observations(seed=s)) for s in range(repeats))


# -- report -----------------------------------------------------------------------------------


def evals_to_target(values: list[float], problem: Problem) -> int:
    """Evaluations until the first value on target; ``budget + 1`` when never (censored)."""
    for i, value in enumerate(values):
        if value <= problem.target:
            return i + 1
    return problem.budget + 1


def _median_label(median: float, problem: Problem) -> str:
    return f">{problem.budget}" if median > problem.budget else f"{median:g}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per function and method")
    parser.add_argument("--quick", action="store_true", help="3 seeds and 1 timing repeat")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    repeats = 1 if args.quick else 3
    if seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be >= 1")
    _limit_threads()
    start = time.perf_counter()

    tasks = [(m, p, s) for p in args.problems for s in range(seeds) for m in args.methods]
    results: dict[tuple[str, str], list[list[float]]] = {}
    seconds: dict[str, float] = dict.fromkeys(args.methods, 0.0)
    with cf.ProcessPoolExecutor(args.jobs) as pool:
        for method, problem, _seed, values, took in pool.map(_task, *zip(*tasks, strict=True)):
            results.setdefault((method, problem), []).append(values)
            seconds[method] += took
    print(
        f"{seeds} seeds, {args.jobs} processes; runs: {MIN_EVALS} evaluations or until the "
        "target, up to the budget; evals to target censored at the budget (never: budget + 1)"
    )
    print(f"{'function':<10} {'method':<11} {'evals to target':>16} {'best@50':>11} {'hit':>5}")
    medians: dict[tuple[str, str], float] = {}
    for name in args.problems:
        problem = PROBLEMS[name]
        for method in args.methods:
            runs = results[(method, name)]
            evals = [evals_to_target(v, problem) for v in runs]
            medians[(method, name)] = statistics.median(evals)
            best50 = statistics.median(min(v[:MIN_EVALS]) for v in runs)
            hits = sum(e <= problem.budget for e in evals)
            print(
                f"{name:<10} {method:<11} "
                f"{_median_label(medians[(method, name)], problem):>16} "
                f"{best50:>11.4f} {hits:>2}/{len(runs):<2}"
            )
    print("method wall time (all runs, summed over processes): ", end="")
    print(", ".join(f"{m} {s:.0f} s" for m, s in seconds.items()))

    timing = {m: suggestion_seconds(m, repeats) for m in args.methods}
    print("s/suggestion@100 (Hartmann-6): " + ", ".join(f"{m} {t:.3f}" for m, t in timing.items()))
    print(f"benchmark took {time.perf_counter() - start:.0f} s")

    peers = [m for m in args.methods if m in PEERS]
    if "geocryo" in args.methods and peers:
        ratio = max(
            medians[("geocryo", p)] / min(medians[(m, p)] for m in peers) for p in args.problems
        )
        time_ratio = timing["geocryo"] / timing["skopt"] if "skopt" in timing else math.nan
        print(
            f"bayesopt: evals ratio vs best peer {ratio:.2f}, time ratio vs skopt {time_ratio:.2f}"
        )


if __name__ == "__main__":
    main()
