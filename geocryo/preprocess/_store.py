"""A fitted plan on disk: a directory with ``plan.json`` (config, scalars, attributes) and
``arrays.npz`` (grid, per-pixel trends, PCA loadings), written atomically.

Both are plain formats a model checkpoint can carry and a person can read; no pickle.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._fitting import Projection, Scaling, Trend, VariablePlan

if TYPE_CHECKING:
    from .plan import FittedPreprocessor

__all__ = ["read", "write"]

FORMAT = "geocryo.preprocess"
VERSION = 1
_JSON, _NPZ = "plan.json", "arrays.npz"


def _plain(value):
    """JSON for the numpy values attributes may hold."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store a {type(value).__name__} attribute in {_JSON}")


def _contents(fitted: FittedPreprocessor) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {"y": fitted._y, "x": fitted._x}
    variables = []
    for i, plan in enumerate(fitted._plans.values()):
        entry = {
            "name": plan.name,
            "output": plan.output,
            "dims": list(plan.dims),
            "attrs": plan.attrs,
            "scaling": asdict(plan.scaling),
            "trend": plan.trend is not None,
            "projection": None,
        }
        if plan.trend is not None:
            arrays[f"v{i}_intercept"] = plan.trend.intercept
            arrays[f"v{i}_slope"] = plan.trend.slope
            arrays[f"v{i}_local"] = plan.trend.local
        if plan.projection is not None:
            proj = plan.projection
            entry["projection"] = {"dim": proj.dim, "n_samples": proj.n_samples}
            arrays[f"v{i}_pca_coord"] = proj.coord
            arrays[f"v{i}_pca_mean"] = proj.mean
            arrays[f"v{i}_pca_components"] = proj.components
            arrays[f"v{i}_pca_explained_variance"] = proj.explained_variance
            arrays[f"v{i}_pca_explained_variance_ratio"] = proj.explained_variance_ratio
        variables.append(entry)
    config = asdict(fitted.config)
    if config["variables"] is not None:
        config["variables"] = list(config["variables"])
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        "origin": str(fitted._origin) if fitted._origin is not None else None,
        "variables": variables,
    }
    for name, array in arrays.items():
        if array.dtype == object:
            raise TypeError(f"cannot store object array {name!r}; give the coordinate a real dtype")
    return meta, arrays


def _is_plan(path: Path) -> bool:
    return (path / _JSON).is_file()


def write(path: str | os.PathLike, fitted: FittedPreprocessor, *, overwrite: bool) -> Path:
    """Write ``fitted`` to the directory ``path``, atomically (:mod:`geocryo.io.atomic`)."""
    from ..io.atomic import atomic_write  # here: geocryo.io imports the catalogs' stack

    meta, arrays = _contents(fitted)
    with atomic_write(
        path, overwrite=overwrite, replaceable=_is_plan, what="a saved preprocessing plan"
    ) as staging:
        with open(staging / _NPZ, "wb") as handle:
            np.savez(handle, **arrays)
        (staging / _JSON).write_text(json.dumps(meta, indent=1, default=_plain) + "\n")
    return Path(path).expanduser()


def read(path: str | os.PathLike):
    """``(config dict, plans, y, x, origin)`` of the plan saved at ``path``."""
    path = Path(path).expanduser()
    if not (path / _JSON).is_file() or not (path / _NPZ).is_file():
        raise FileNotFoundError(
            f"no saved preprocessing plan at {path} (expected {_JSON} and {_NPZ}); write one "
            "with FittedPreprocessor.save(path)"
        )
    meta = json.loads((path / _JSON).read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(
            f"{path / _JSON} is not a {FORMAT} plan of version {VERSION} "
            f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
        )
    with np.load(path / _NPZ, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    plans = {}
    for i, entry in enumerate(meta["variables"]):
        trend = projection = None
        if entry["trend"]:
            trend = Trend(arrays[f"v{i}_intercept"], arrays[f"v{i}_slope"], arrays[f"v{i}_local"])
        if entry["projection"] is not None:
            projection = Projection(
                dim=entry["projection"]["dim"],
                coord=arrays[f"v{i}_pca_coord"],
                mean=arrays[f"v{i}_pca_mean"],
                components=arrays[f"v{i}_pca_components"],
                explained_variance=arrays[f"v{i}_pca_explained_variance"],
                explained_variance_ratio=arrays[f"v{i}_pca_explained_variance_ratio"],
                n_samples=int(entry["projection"]["n_samples"]),
            )
        plans[entry["name"]] = VariablePlan(
            name=entry["name"],
            output=entry["output"],
            dims=tuple(entry["dims"]),
            attrs=entry["attrs"],
            scaling=Scaling(**entry["scaling"]),
            trend=trend,
            projection=projection,
        )
    config = dict(meta["config"])
    if config.get("variables") is not None:
        config["variables"] = tuple(config["variables"])
    origin = pd.Period(meta["origin"], freq="M") if meta["origin"] is not None else None
    return config, plans, arrays["y"], arrays["x"], origin
