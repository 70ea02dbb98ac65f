"""What :func:`~geocryo.forecast.fit` can be told besides the cube: :class:`FitConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .._checks import integer, number
from ..cube import BOUNDS, MODALITIES, TARGETS
from ..preprocess import PreprocessConfig
from ..train.config import TrainConfig

__all__ = ["MODES", "FitConfig"]

#: Input modes: the in situ target history alone, or with every other modality.
MODES: tuple[str, ...] = ("teacher_forcing", "multimodal")


@dataclass(frozen=True)
class FitConfig:
    """Everything :func:`fit` can be told besides the cube; sane defaults for the synthetic Alaska.

    Parameters
    ----------
    features, layers, kernel, activation, dropout
        The network: hidden channels, ConvLSTM layers per encoder, kernel size, cell activation,
        dropout rate.
    overlap, batch_size
        Cells shared by neighbouring training patches; samples per batch.
    train
        Optimiser, ensemble, epochs, early-stopping and seed settings
        (:class:`~geocryo.train.TrainConfig`). :func:`fit`'s ``ensemble``, ``epochs`` and
        ``seed`` keywords are a short way to set the same three fields: give each in one place.
    preprocess
        The preprocessing plan (:class:`~geocryo.preprocess.PreprocessConfig`).
    outlook
        Modalities whose gridded variables also enter (multimodal mode) as their
        training-period climatology of the forecast month (:class:`~geocryo.preprocess.Outlook`):
        the seasonal state the target month usually has. ``()`` for none.
    drivers
        Modalities known in the forecast month when the forecast is made, whose gridded
        variables also enter (multimodal mode) with that month's value
        (:func:`~geocryo.preprocess.with_drivers`): the forcing of a hindcast or a projection
        (a reanalysis, a climate scenario) and the process models run with it. The forecast is
        then conditional on them, as a land model's is on its forcing. ``()`` for a forecast
        from what is known up to the last input month alone.
    skip
        Add a linear map of the last input month to the network's output
        (:class:`~geocryo.models.network.GeoCryoNet`).
    history_dropout
        Multimodal mode: the share of training cells whose target history is hidden
        (:class:`~geocryo.batching.augment.HistoryDropout`), so that the network learns to
        forecast the many cells without a site, too. 0 hides none.
    climatology
        Give the network each target's training-period climatology of the forecast month,
        where a cell has one (the sites), and have it predict the departure from it: a network
        that learns nothing there forecasts the climatology baseline, not worse.
    bounds
        Lower bounds of the targets in their units, overriding :data:`geocryo.cube.BOUNDS`
        (``alt`` >= 0 cm, ``ch4_flux`` >= 0, ``co2_flux`` unbounded): e.g.
        ``{"ch4_flux": None}`` for sites that take methane up. The network's output holds them
        by construction (:class:`~geocryo.models.network.GeoCryoNet`'s ``lower``).
    calibrate
        Fit the predictive spread on the validation period (:mod:`geocryo.forecast.calibration`):
        the members' variance plus a noise term, so that the ensemble's intervals hold the
        truth as often as they claim. False reports the members' spread alone.
    calibration_sites
        The share of the sites held out of training to calibrate the spread of the cells
        without a site on (:func:`~geocryo.forecast.calibration.hold_out`). 0 (the default)
        holds none out and calibrates those cells on every site, forecast blind: no site is
        lost to training, but where the network can recognise a site by its static maps the
        intervals off the sites come out too narrow, and holding a share out (0.2) widens
        them to the errors of cells the network never learnt.
    """

    features: int = 16
    layers: int = 2
    kernel: int = 3
    activation: str = "tanh"
    dropout: float = 0.0
    overlap: int = 0
    batch_size: int = 32
    train: TrainConfig = field(default_factory=TrainConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    outlook: tuple[str, ...] = ("process_model", "forcing")
    drivers: tuple[str, ...] = ("process_model", "forcing")
    skip: bool = True
    history_dropout: float = 0.5
    climatology: bool = True
    bounds: Mapping[str, float | None] | None = None
    calibrate: bool = True
    calibration_sites: float = 0.0

    def __post_init__(self) -> None:
        for name in ("outlook", "drivers"):
            given = getattr(self, name)
            modalities = (given,) if isinstance(given, str) else tuple(given)
            unknown = [m for m in modalities if m not in MODALITIES]
            if unknown:
                raise ValueError(
                    f"FitConfig.{name} names {unknown}, which are not modalities; choose from "
                    f"{MODALITIES}"
                )
            object.__setattr__(self, name, modalities)
        for name in ("features", "layers", "kernel", "batch_size"):
            value = integer(f"FitConfig.{name}", getattr(self, name), low=1)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "overlap", integer("FitConfig.overlap", self.overlap, low=0))
        history_dropout = number(
            "FitConfig.history_dropout", self.history_dropout, low=0, high=1, what="in [0, 1]"
        )
        dropout = number(
            "FitConfig.dropout", self.dropout, low=0, high=1, high_open=True, what="in [0, 1)"
        )
        object.__setattr__(self, "history_dropout", history_dropout)
        share = number(
            "FitConfig.calibration_sites",
            self.calibration_sites,
            low=0,
            high=1,
            high_open=True,
            what="in [0, 1)",
        )
        object.__setattr__(self, "calibration_sites", share)
        object.__setattr__(self, "dropout", dropout)
        bounds = {} if self.bounds is None else dict(self.bounds)
        for name, value in bounds.items():
            if name not in TARGETS:
                raise ValueError(
                    f"FitConfig.bounds names {name!r}, which is not a target; choose from "
                    f"{list(TARGETS)}"
                )
            if value is not None:
                bounds[name] = number(f"FitConfig.bounds[{name!r}]", value)
        object.__setattr__(self, "bounds", bounds)
        if self.kernel % 2 == 0:
            raise ValueError(f"FitConfig.kernel must be odd, got {self.kernel}")

    def lower_bound(self, target: str) -> float | None:
        """The lower bound of ``target`` this fit holds: :attr:`bounds`, else the default."""
        return self.bounds.get(target, BOUNDS.get(target))

    def with_train(self, **changes) -> FitConfig:
        """A copy with some :class:`~geocryo.train.TrainConfig` fields changed.

        >>> FitConfig(features=8).with_train(epochs=20, ensemble=8)  # doctest: +SKIP
        """
        return replace(self, train=replace(self.train, **changes))
