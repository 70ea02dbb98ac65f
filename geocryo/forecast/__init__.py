"""Forecasting: :func:`fit` a cube, :class:`Forecaster` predictions, saving and loading.

:mod:`~geocryo.forecast.config`
    :class:`FitConfig`, every setting of a fit besides the cube.
:mod:`~geocryo.forecast.fitting`
    :func:`fit`.
:mod:`~geocryo.forecast.forecaster`
    :class:`Forecaster`, the fitted ensemble.
:mod:`~geocryo.forecast.prediction`
    The one prediction path: members on a ``member`` dim, their mean and spread, roll-outs.
:mod:`~geocryo.forecast.persistence`
    :func:`save` and :func:`load`, atomic.
"""

from .config import MODES as MODES
from .config import FitConfig as FitConfig
from .fitting import fit as fit
from .forecaster import Forecaster as Forecaster
from .persistence import load as load
from .persistence import save as save
from .prediction import MEMBER as MEMBER
from .prediction import forecast_period as forecast_period
from .prediction import summarize as summarize

__all__ = [
    "MEMBER",
    "MODES",
    "FitConfig",
    "Forecaster",
    "fit",
    "forecast_period",
    "load",
    "save",
    "summarize",
]
