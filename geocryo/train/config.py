"""The training configuration and the optimiser it builds: AdamW, warm-up then cosine decay."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import optax

from .._checks import flag, integer, number

__all__ = ["DEFAULTS", "TrainConfig", "make_optimizer", "make_schedule"]

#: What ``None`` stands for in the fields that :func:`geocryo.fit` also takes as keywords.
DEFAULTS: dict[str, int] = {"epochs": 10, "ensemble": 4, "seed": 0}


@dataclass(frozen=True)
class TrainConfig:
    """How to train an ensemble of networks; validated on construction.

    Parameters
    ----------
    learning_rate
        Peak learning rate of AdamW, reached at the end of the warm-up.
    weight_decay
        Decoupled weight decay of AdamW (scaled by the learning rate).
    warmup_steps
        Steps of linear warm-up from 0 to ``learning_rate``; a cosine decay to 0 follows until
        the last step. Capped at half the run (see :func:`make_schedule`).
    clip_norm
        Gradients are clipped to this global norm (per member) before AdamW.
    epochs
        Passes over the training batches at most. ``None`` (default): 10, or what
        :func:`geocryo.fit`'s ``epochs`` says.
    patience
        Early stopping: training stops after this many epochs without a lower validation loss.
    ensemble
        Members trained together, each from its own initial key (and bootstrap draws).
        ``None`` (default): 4, or :func:`geocryo.fit`'s ``ensemble``.
    bootstrap
        Online bootstrap: at every step each member weights every training sample by its own
        Poisson(1) draw, so that the members see different resamples of the training patches.
    seed
        Seed of the one root key from which initialisation, dropout and bootstrap keys derive.
        ``None`` (default): 0, or :func:`geocryo.fit`'s ``seed``.

    Notes
    -----
    The three fields that :func:`geocryo.fit` also takes as keywords default to ``None``, so
    that a fit can tell a value the caller set from one left alone: a keyword and a config
    field that both set one are an error, never a silent choice. :meth:`settled` fills them.
    """

    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    clip_norm: float = 1.0
    epochs: int | None = None
    patience: int = 3
    ensemble: int | None = None
    bootstrap: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        for name, low, open_ in (
            ("learning_rate", 0.0, True),
            ("weight_decay", 0.0, False),
            ("clip_norm", 0.0, True),
        ):
            value = number(f"TrainConfig.{name}", getattr(self, name), low=low, low_open=open_)
            object.__setattr__(self, name, value)
        for name, low in (
            ("warmup_steps", 0),
            ("epochs", 1),
            ("patience", 1),
            ("ensemble", 1),
            ("seed", 0),
        ):
            value = getattr(self, name)
            if value is not None or name not in DEFAULTS:
                object.__setattr__(self, name, integer(f"TrainConfig.{name}", value, low=low))
        object.__setattr__(self, "bootstrap", flag("TrainConfig.bootstrap", self.bootstrap))

    def settled(self) -> TrainConfig:
        """This configuration with :data:`DEFAULTS` in the fields left at ``None``."""
        unset = {name: value for name, value in DEFAULTS.items() if getattr(self, name) is None}
        return replace(self, **unset) if unset else self

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (stored in checkpoints)."""
        return asdict(self)


def _check_total(total_steps: int) -> int:
    return integer("total_steps (epochs x batches per epoch)", total_steps, low=1)


def make_schedule(config: TrainConfig, total_steps: int) -> optax.Schedule:
    """The learning rate at each step: linear warm-up from 0, then cosine decay to 0.

    The warm-up lasts ``min(config.warmup_steps, total_steps // 2)`` steps, so that a short run
    (fewer steps than the default warm-up) still reaches its peak and decays. The rate is
    ``config.learning_rate`` at the end of the warm-up and 0 at ``total_steps`` and after.
    """
    total = _check_total(total_steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=min(config.warmup_steps, total // 2),
        decay_steps=total,
        end_value=0.0,
    )


def make_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """Clip the global gradient norm, then AdamW on the :func:`make_schedule` learning rate."""
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(make_schedule(config, total_steps), weight_decay=config.weight_decay),
    )
