"""The fitted :class:`Forecaster`: what :func:`~geocryo.forecast.fit` learnt, and its forecasts.

>>> model = geocryo.fit(cube, mode="multimodal", ensemble=4, epochs=10)
>>> pred = model.predict(cube, horizon=1)   # alt, ch4_flux, co2_flux and their *_std spreads
>>> members = model.predict(cube, members=True)   # every member on a "member" dim
>>> model.save("runs/alaska"); model = geocryo.load("runs/alaska")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import pandas as pd
import xarray as xr

from ..batching import WindowSpec
from ..models.network import GeoCryoNet, count_parameters
from ..preprocess import FittedPreprocessor, Outlook
from .config import FitConfig

if TYPE_CHECKING:
    from ..train import Trainer
    from .calibration import Calibration

__all__ = ["Forecaster"]


class Forecaster:
    """A fitted geocryo ensemble: preprocessing plan, network, parameters and history.

    Built by :func:`~geocryo.forecast.fit` and :func:`~geocryo.forecast.load`; its
    :attr:`config` holds every setting it was fitted with, its :attr:`calibration` the noise
    of its predictive distribution fitted on the validation period (None when there was
    nothing to fit it on).
    """

    def __init__(
        self,
        *,
        plan: FittedPreprocessor,
        network: GeoCryoNet,
        params,
        spec: WindowSpec,
        mode: str,
        targets: Sequence[str],
        channels: dict[str, list[str]],
        periods: dict[str, pd.DatetimeIndex],
        history: xr.Dataset,
        config: FitConfig,
        outlook: Outlook | None = None,
        ignored: Sequence[str] = (),
        calibration: Calibration | None = None,
    ) -> None:
        self.plan = plan
        self.calibration = calibration
        self.outlook = outlook
        self.ignored = list(ignored)
        self.network = network
        self.params = params
        self.spec = spec
        self.mode = mode
        self.targets = list(targets)
        self.channels = {k: list(v) for k, v in channels.items()}
        self.periods = periods
        self.history = history
        self.config = config

    def __repr__(self) -> str:
        return (
            f"Forecaster(mode={self.mode!r}, targets={self.targets}, members={self.members}, "
            f"parameters={self.parameter_count:,} per member, lookback={self.spec.lookback}, "
            f"lead={self.spec.lead}, patch={self.spec.patch})"
        )

    @property
    def members(self) -> int:
        """Ensemble size."""
        return int(jax.tree.leaves(self.params)[0].shape[0])

    @property
    def parameter_count(self) -> int:
        """Trainable parameters of one member."""
        return count_parameters(self.params) // self.members

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_trainer", None)  # compiled functions: rebuilt on first use
        return state

    @cached_property
    def _trainer(self) -> Trainer:
        from ..train import Trainer

        return Trainer(self.network, self.config.train, total_steps=1)

    def apply(self, inputs: Mapping[str, Any]) -> jax.Array:
        """Every member's standardised output for a batch of inputs, ``(E, B, p, p, K)``.

        The trainer's compiled apply, with the batch split over every JAX device.
        """
        return self._trainer.predict(self.params, inputs)

    def predict(
        self,
        cube: xr.Dataset,
        horizon: int | None = None,
        *,
        members: bool = False,
        progress: bool = True,
    ) -> xr.Dataset:
        """Forecasts for every month that has a full window, on the cube's grid.

        Parameters
        ----------
        cube
            A cube with the variables the model was trained on.
        horizon
            Months between the last input month and the forecast month; a multiple of the
            lead (default: the lead). Beyond the lead, the model rolls out on its own
            predictions: the target history of the last ``horizon - lead`` months of each window
            is the ensemble mean it predicted for them, never an observation.
        members
            Return every member on a ``member`` dim instead of their mean; the spread stays.
        progress
            Show a progress bar.

        Returns
        -------
        xr.Dataset
            In physical units on (time, y, x), NaN where no window fits (the first months of
            the record): the targets (member mean) and ``<target>_std``, the standard
            deviation of the predictive distribution (the members' variance plus the noise
            fitted on the validation period, :mod:`geocryo.forecast.calibration`; the members'
            alone when the model has no calibration; it is calibrated at the lead, so a
            roll-out's is a lower bound); with ``members=True`` the targets on
            (member, time, y, x). A bounded target carries its bound as ``valid_min``: no
            member goes below it.
        """
        from .prediction import predict

        return predict(self, cube, horizon, members=members, progress=progress)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the model to a directory, atomically (see :func:`~geocryo.forecast.save`)."""
        from .persistence import save

        return save(self, path, overwrite=overwrite)
