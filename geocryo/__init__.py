"""geocryo: learning the permafrost carbon feedback from multimodal Earth observations.

``import geocryo`` is light: it registers the ``ds.geocryo`` accessor and nothing heavier than
xarray; JAX, Flax, Intake, zarr and xskillscore load on first use of the names that need them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from . import accessor as accessor  # registers the ds.geocryo accessor
from .cube import TARGETS as TARGETS
from .cube import CubeError as CubeError
from .cube import features as features
from .cube import targets as targets
from .cube import validate as validate

if TYPE_CHECKING:
    from . import bayesopt, evaluation, forecast, io, readers, synthetic
    from .evaluation import evaluate
    from .forecast import FitConfig, Forecaster, fit, load
    from .io import open_catalog, open_cube, open_zarr, write_zarr
    from .preprocess import TimeSplit
    from .train import TrainConfig
    from .tuning import tune

__all__ = [
    "TARGETS",
    "CubeError",
    "FitConfig",
    "Forecaster",
    "TimeSplit",
    "TrainConfig",
    "accessor",
    "bayesopt",
    "evaluate",
    "evaluation",
    "features",
    "fit",
    "forecast",
    "io",
    "load",
    "open_catalog",
    "open_cube",
    "open_zarr",
    "readers",
    "synthetic",
    "targets",
    "tune",
    "validate",
    "write_zarr",
]

#: Public names loaded on first use: name -> (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "FitConfig": (".forecast", "FitConfig"),
    "Forecaster": (".forecast", "Forecaster"),
    "TimeSplit": (".preprocess", "TimeSplit"),
    "TrainConfig": (".train", "TrainConfig"),
    "evaluate": (".evaluation", "evaluate"),
    "fit": (".forecast", "fit"),
    "load": (".forecast", "load"),
    "open_catalog": (".io", "open_catalog"),
    "open_cube": (".io", "open_cube"),
    "open_zarr": (".io", "open_zarr"),
    "tune": (".tuning", "tune"),
    "write_zarr": (".io", "write_zarr"),
    **{
        name: (f".{name}", None)
        for name in ("bayesopt", "evaluation", "forecast", "io", "readers", "synthetic")
    },
}

#: Names that moved, kept for one release: old name -> (module, attribute).
_MOVED: dict[str, tuple[str, str | None]] = {
    "metrics": (".evaluation.metrics", None),
    "baselines": (".evaluation.baselines", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
    elif name in _MOVED:
        from ._moved import warn_moved

        module, attribute = _MOVED[name]
        warn_moved(f"geocryo.{name}", f"geocryo{module}" + (f".{attribute}" if attribute else ""))
    else:
        raise AttributeError(f"module 'geocryo' has no attribute {name!r}")
    value = importlib.import_module(module, __name__)
    if attribute is not None:
        value = getattr(value, attribute)
    if name in _LAZY:
        globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


try:
    __version__ = version("geocryo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
