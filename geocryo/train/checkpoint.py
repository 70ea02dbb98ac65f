"""Atomic checkpoints of a training run: one msgpack file, replaced whole or not at all.

A checkpoint is written through :mod:`geocryo.io.atomic`: to a staging file beside its
destination, flushed to disk, then renamed over the old one. A writer interrupted at any point
(an exception, a kill, a full disk) leaves the previous checkpoint (or, past the last rename,
the new one) complete and loadable; what a killed writer left beside it, the next write finishes
or removes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from .steps import TrainState

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "save_checkpoint"]

#: File name of the checkpoint inside a run's checkpoint directory.
CHECKPOINT_NAME = "checkpoint.msgpack"

_FORMAT = "geocryo-checkpoint"
_VERSION = 1
_BLOCK = 1 << 20  # bytes written per call, so that a large checkpoint streams out


def _plain(obj: Any) -> Any:
    """Host copies of ``obj``: train states as nested dicts, arrays as numpy, dicts recursed."""
    if isinstance(obj, TrainState):
        return serialization.to_state_dict(jax.device_get(obj))
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"checkpoint meta keys must be strings, got {bad!r}")
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, jax.Array):
        return np.asarray(jax.device_get(obj))
    return obj


def _write_blocks(f, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _BLOCK):
        f.write(view[start : start + _BLOCK])


def save_checkpoint(path: str | os.PathLike, state: TrainState, meta: dict[str, Any]) -> None:
    """Write ``state`` and ``meta`` to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file; its directory is created if needed. An existing checkpoint there
        stays intact and loadable until the new one is complete on disk.
    state
        The train state (device arrays are copied to the host).
    meta
        Plain values: str keys; numbers, strings, bools, None, lists, numpy or JAX arrays,
        nested dicts, and train states (stored as nested dicts: restore them with
        ``flax.serialization.from_state_dict(like, meta[...])``).
    """
    from ..io.atomic import atomic_write  # here: geocryo.io imports the catalogs' stack

    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "state": _plain(state),
        "meta": _plain(dict(meta)),
    }
    data = serialization.msgpack_serialize(payload)
    with atomic_write(
        path, overwrite=True, replaceable=Path.is_file, what="a checkpoint file", directory=False
    ) as staging:
        with open(staging, "wb") as f:
            _write_blocks(f, data)


def _check_like(like: TrainState, state: TrainState, path: Path) -> None:
    want = jax.tree_util.tree_flatten_with_path(like)[0]
    got = jax.tree.leaves(state)
    for (where, a), b in zip(want, got, strict=True):
        shape_a, shape_b = np.shape(a), np.shape(b)
        if shape_a != shape_b:
            name = jax.tree_util.keystr(where)
            raise ValueError(
                f"checkpoint {path}: {name} has shape {shape_b}, the run expects {shape_a}; "
                "was it written with another model or ensemble size?"
            )


def load_checkpoint(path: str | os.PathLike, like: TrainState) -> tuple[TrainState, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path
        The checkpoint file.
    like
        A train state of the same structure and shapes (e.g. a fresh ``Trainer.init``).

    Returns
    -------
    state, meta
        The state as numpy arrays in ``like``'s structure, and the meta dict (train states in
        it as nested dicts).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as err:
        raise ValueError(
            f"checkpoint {path} is unreadable (truncated or not msgpack): {err}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a geocryo checkpoint")
    if payload.get("version") != _VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {payload.get('version')}, this geocryo "
            f"reads version {_VERSION}"
        )
    try:
        state = serialization.from_state_dict(like, payload["state"])
    except (ValueError, KeyError) as err:
        raise ValueError(
            f"checkpoint {path} does not match the run's train state (another model?): {err}"
        ) from err
    _check_like(like, state, path)
    return state, payload["meta"]
