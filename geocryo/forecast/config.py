"""What :func:`~geocryo.forecast.fit` can be told besides the cube: :class:`FitConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .._checks import integer, number
from ..cube import MODALITIES
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
    skip
        Add a linear map of the last input month to the network's output
        (:class:`~geocryo.models.network.GeoCryoNet`).
    history_dropout
        Multimodal mode: the share of training cells whose target history is hidden
        (:class:`~geocryo.batching.augment.HistoryDropout`), so that the network learns to
        forecast the many cells without a site, too. 0 hides none.
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
    skip: bool = True
    history_dropout: float = 0.5

    def __post_init__(self) -> None:
        outlook = (self.outlook,) if isinstance(self.outlook, str) else tuple(self.outlook)
        unknown = [m for m in outlook if m not in MODALITIES]
        if unknown:
            raise ValueError(
                f"FitConfig.outlook names {unknown}, which are not modalities; choose from "
                f"{MODALITIES}"
            )
        object.__setattr__(self, "outlook", outlook)
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
        object.__setattr__(self, "dropout", dropout)
        if self.kernel % 2 == 0:
            raise ValueError(f"FitConfig.kernel must be odd, got {self.kernel}")

    def with_train(self, **changes) -> FitConfig:
        """A copy with some :class:`~geocryo.train.TrainConfig` fields changed.

        >>> FitConfig(features=8).with_train(epochs=20, ensemble=8)  # doctest: +SKIP
        """
        return replace(self, train=replace(self.train, **changes))
