"""The training configuration and the optimiser it builds: AdamW, warm-up then cosine decay."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optax

__all__ = ["TrainConfig", "make_optimizer", "make_schedule"]


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
        Passes over the training batches at most.
    patience
        Early stopping: training stops after this many epochs without a lower validation loss.
    ensemble
        Members trained together, each from its own initial key (and bootstrap draws).
    bootstrap
        Online bootstrap: at every step each member weights every training sample by its own
        Poisson(1) draw, so that the members see different resamples of the training patches.
    seed
        Seed of the one root key from which initialisation, dropout and bootstrap keys derive.
    """

    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    clip_norm: float = 1.0
    epochs: int = 10
    patience: int = 3
    ensemble: int = 4
    bootstrap: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("learning_rate", "weight_decay", "clip_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise TypeError(f"TrainConfig.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"TrainConfig.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("learning_rate", "clip_norm"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay}")
        for name, low in (
            ("warmup_steps", 0),
            ("epochs", 1),
            ("patience", 1),
            ("ensemble", 1),
            ("seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"TrainConfig.{name} must be an int, got {value!r}")
            if value < low:
                raise ValueError(f"TrainConfig.{name} must be >= {low}, got {value}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.bootstrap, bool | np.bool_):
            raise TypeError(f"TrainConfig.bootstrap must be True or False, got {self.bootstrap!r}")
        object.__setattr__(self, "bootstrap", bool(self.bootstrap))

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (stored in checkpoints)."""
        return asdict(self)


def _check_total(total_steps: int) -> int:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int | np.integer):
        raise TypeError(f"total_steps must be an int, got {total_steps!r}")
    if total_steps < 1:
        raise ValueError(
            f"total_steps must be >= 1, got {total_steps}; pass epochs x batches per epoch"
        )
    return int(total_steps)


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
