"""Skill of geocryo's models against every baseline on the synthetic Alaska's test period.

Fits a teacher-forcing and a multimodal ensemble on the default synthetic cube (64 x 64 cells,
2000-2019), predicts one month ahead, and scores every row with :func:`geocryo.evaluate` in its
two scopes: at the **sites** (the observed site-months; baselines built from the same
observations) and on the **field** (the complete truth; baselines built from the truth, an
oracle). Prints the skill tables and the calibration table, then as its last lines:

- ``skill: ALT -A%, CH4 -B%, CO2 -C%``: the multimodal model's RMSE change against naive
  persistence on the field (negative: better);
- ``ALT trend ...``: the domain-mean trend of the yearly thaw depth, truth and multimodal
  (one-month-ahead forecasts over the whole record);
- ``teacher forcing vs best baseline (sites): ...`` and ``coverage50: ...`` (see below);
- ``skill vs best baseline (sites): ALT +x% CH4 +y% CO2 +z%`` and the same for the field: the
  RMSE reduction against the best of persistence, seasonal persistence and climatology in each
  scope (positive: better than every baseline; the baseline is named in the tables);
- ``coverage90: ALT a CH4 b CO2 c``: the share of the field's truth inside the multimodal
  model's central 90 % predictive interval (``coverage50``: the 50 % one);
- ``negative share: ALT p CH4 q``: the share of the multimodal members' values below zero,
  over the whole record.

Usage::

    python benchmarks/bench_skill.py [--epochs 10] [--ensemble 4] [--ny 64 --nx 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import geocryo
from geocryo.evaluation import to_markdown, trend_summary
from geocryo.report import calibration_markdown
from geocryo.runtime import tune_allocator

LABELS = (("ALT", "alt"), ("CH4", "ch4_flux"), ("CO2", "co2_flux"))


def _line(table, metric: str, model: str, scope: str, percent: bool) -> str:
    cells = []
    for label, name in LABELS:
        value = float(table[name].sel(scope=scope, zone="all", model=model, metric=metric))
        cells.append(f"{label} {100 * value:+.0f}%" if percent else f"{label} {value:.2f}")
    return " ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ny", type=int, default=64)
    parser.add_argument("--nx", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--ensemble", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sites", type=int, default=40, help="in situ sites of the cube")
    args = parser.parse_args()
    tune_allocator()  # as the geocryo command line does, before JAX computes anything
    warnings.filterwarnings("ignore", message="preprocess: .* no observed value")

    cube, truth = geocryo.synthetic.alaska(
        ny=args.ny, nx=args.nx, seed=args.seed, n_sites=args.sites
    )
    cube, truth = cube.load(), truth.load()
    models, members = {}, {}
    for mode in ("teacher_forcing", "multimodal"):
        start = time.perf_counter()
        model = geocryo.fit(
            cube,
            mode=mode,
            ensemble=args.ensemble,
            epochs=args.epochs,
            seed=args.seed,
            progress=False,
        )
        members[mode] = model.predict(cube, members=True, progress=False)
        models[mode] = model
        print(
            f"{mode}: {model}; fit + predict {time.perf_counter() - start:.0f} s; best epoch "
            f"{int(model.history.attrs.get('best_epoch', -1)) + 1} of "
            f"{model.history.sizes.get('epoch', 0)}",
            flush=True,
        )
    test = models["multimodal"].periods["test"]
    table = geocryo.evaluate(
        models,
        cube,
        truth,
        predictions={k: v.sel(time=test) for k, v in members.items()},
        progress=False,
    )
    print(f"test period {test[0]:%Y-%m} to {test[-1]:%Y-%m}")
    shown = ["rmse", "bias", "crps", "coverage", "coverage_50", "rmse_reduction", "skill_vs_best"]
    for scope in ("sites", "field"):
        print(f"\n## {scope}\n")
        print(to_markdown(table, scope=scope, metrics_shown=shown))
        best = ", ".join(
            f"{name}: {table[f'{name}_best_baseline'].sel(scope=scope, zone='all').item()}"
            for _, name in LABELS
        )
        print(f"best baselines ({scope}): {best}")
    print(calibration_markdown(table))
    field = table.sel(scope="field", zone="all", model="multimodal", metric="rmse_reduction")
    print(
        "skill: "
        + ", ".join(f"{label} {-100 * float(field[name]):+.0f}%" for label, name in LABELS)
    )
    months = members["multimodal"]["time"]
    trends = {
        "truth": trend_summary(truth["alt"].sel(time=months)),
        "multimodal": trend_summary(members["multimodal"]["alt"].mean("member")),
    }
    print(
        "ALT trend (domain mean, cm per decade, +- one standard error): "
        + ", ".join(f"{k} {v['trend']:+.2f} +- {v['stderr']:.2f}" for k, v in trends.items())
        + ("" if trends["truth"]["significant"] else " (the record is too short to tell)")
    )
    line = _line(table, "skill_vs_best", "teacher_forcing", "sites", percent=True)
    print(f"teacher forcing vs best baseline (sites): {line}")
    print("coverage50: " + _line(table, "coverage_50", "multimodal", "field", percent=False))
    for scope in ("sites", "field"):
        line = _line(table, "skill_vs_best", "multimodal", scope, percent=True)
        print(f"skill vs best baseline ({scope}): {line}")
    print("coverage90: " + _line(table, "coverage", "multimodal", "field", percent=False))
    ensemble = members["multimodal"]
    shares = {
        label: float(np.mean(np.asarray(ensemble[name]) < 0))
        for label, name in LABELS[:2]
        if name in ensemble
    }
    print("negative share: " + " ".join(f"{k} {v:.3g}" for k, v in shares.items()))


if __name__ == "__main__":
    main()
