"""Training: pure jitted steps, an ensemble trained with ``jax.vmap``, data-parallel on a mesh.

:class:`TrainConfig` says how to train, :class:`Trainer` compiles the steps for a model and a
device mesh and runs :meth:`Trainer.fit` (validation, early stopping, history, atomic
checkpoints, resume); :func:`save_checkpoint` / :func:`load_checkpoint` are the checkpoint files.
"""

from .checkpoint import load_checkpoint as load_checkpoint
from .checkpoint import save_checkpoint as save_checkpoint
from .config import TrainConfig as TrainConfig
from .config import make_optimizer as make_optimizer
from .config import make_schedule as make_schedule
from .steps import DeviceBatch as DeviceBatch
from .steps import TrainState as TrainState
from .steps import loss_from_sums as loss_from_sums
from .steps import masked_sums as masked_sums
from .steps import member_step as member_step
from .trainer import Trainer as Trainer
from .trainer import default_mesh as default_mesh
from .trainer import epoch_metrics as epoch_metrics

__all__ = [
    "DeviceBatch",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "default_mesh",
    "epoch_metrics",
    "load_checkpoint",
    "loss_from_sums",
    "make_optimizer",
    "make_schedule",
    "masked_sums",
    "member_step",
    "save_checkpoint",
]
