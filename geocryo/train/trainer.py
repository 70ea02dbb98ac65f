"""The trainer: an ensemble trained together, data-parallel over a device mesh, with checkpoints.

:class:`Trainer` compiles the pure steps of :mod:`geocryo.train.steps` once for a model, a
configuration and a :class:`jax.sharding.Mesh`: batches are split over the mesh's ``"data"``
axis, parameters are replicated (or split member-wise over an optional ``"ensemble"`` axis), and
XLA inserts the gradient reductions. :meth:`Trainer.fit` runs the epochs with validation, early
stopping, a progress bar, an ``xr.Dataset`` history and atomic checkpoints that a killed run
resumes from.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import serialization
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .config import TrainConfig, make_optimizer, make_schedule
from .steps import (
    DeviceBatch,
    TrainState,
    ensemble_eval,
    ensemble_predict,
    ensemble_step,
)

__all__ = ["SPLITS", "Trainer", "default_mesh", "epoch_metrics"]

#: The splits of the history.
SPLITS: tuple[str, ...] = ("train", "val")

#: Mesh axis names the trainer knows: batches split over "data", members over "ensemble".
AXES: tuple[str, ...] = ("data", "ensemble")


def default_mesh() -> Mesh:
    """A one-axis mesh named ``"data"`` over every JAX device."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def epoch_metrics(sse: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``(..., K)`` sums -> ``(..., 1 + K)``: the loss, then each target's MSE.

    A target with no observation has MSE NaN and is left out of the loss (the mean of the
    others); the loss is NaN when no target was observed.
    """
    sse, count = np.asarray(sse, np.float64), np.asarray(count, np.float64)
    present = count > 0
    mse = np.where(present, sse / np.maximum(count, 1.0), np.nan)
    n = present.sum(axis=-1)
    total = np.where(present, mse, 0.0).sum(axis=-1)
    loss = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return np.concatenate([loss[..., None], mse], axis=-1)


def _batches(source: Iterable, epoch: int | None) -> Iterator:
    """The batches of one epoch: ``source.epoch(i)``, ``source(i)`` or ``iter(source)``."""
    if epoch is not None:
        if callable(getattr(source, "epoch", None)):
            return iter(source.epoch(epoch))
        if callable(source) and not hasattr(source, "__iter__"):
            return iter(source(epoch))
    return iter(source)


def _close(iterator: Iterator) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()  # stops a stream's reading thread when a loop ends early


class Trainer:
    """Train an ensemble of :class:`~geocryo.models.network.GeoCryoNet` members together.

    Parameters
    ----------
    model
        The network (any Flax module with ``groups``, ``targets`` and
        ``__call__(inputs, *, train)``).
    config
        Optimiser, epochs, early stopping, ensemble size, bootstrap and seed.
    total_steps
        Steps of the whole run (epochs x batches per epoch), for the learning-rate schedule.
    mesh
        Devices to run on; default :func:`default_mesh`. It must have a ``"data"`` axis (the
        batch axis is split over it) and may have an ``"ensemble"`` axis (members split over
        it; ``config.ensemble`` must be divisible by its size). A batch whose size is not
        divisible by the ``"data"`` axis is padded with samples of weight 0, so results do not
        depend on the number of devices (up to float rounding of the sums).
    initial
        Parameter values every member starts from instead of its initializer's: a nested dict
        that mirrors part of the parameters, e.g. ``{"skip": {"kernel": k, "bias": b}}`` (see
        :func:`geocryo.train.linear.fit_skip`); each array has the shape of one member's.

    Notes
    -----
    Keys: ``root = jax.random.key(config.seed)`` splits into an initialisation key (split
    again over members) and the fit key; step ``n`` of a fit (counted from 0 across epochs)
    uses ``fold_in(fit_key, n)``, split over members, each member's split into a dropout key and
    a bootstrap key. So a resumed run draws exactly what an uninterrupted one would. Dropout
    masks of the real samples do not change when a batch is padded for the devices as long as
    ``jax_threefry_partitionable`` is on (the default).
    """

    def __init__(
        self,
        model: Any,
        config: TrainConfig,
        total_steps: int,
        mesh: Mesh | None = None,
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        config = config.settled()
        for name in ("groups", "targets"):
            if not hasattr(model, name):
                raise TypeError(f"model must have {name!r} (a GeoCryoNet), got {model!r}")
        mesh = default_mesh() if mesh is None else mesh
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
        if "data" not in mesh.axis_names or set(mesh.axis_names) - set(AXES):
            raise ValueError(
                f"mesh axes must be 'data' and optionally 'ensemble', got {mesh.axis_names}"
            )
        ensemble_axis = "ensemble" in mesh.axis_names
        if ensemble_axis and config.ensemble % mesh.shape["ensemble"]:
            raise ValueError(
                f"TrainConfig.ensemble={config.ensemble} is not divisible by the mesh's "
                f"'ensemble' axis of size {mesh.shape['ensemble']}; change one of them"
            )
        self.model = model
        self.config = config
        self.mesh = mesh
        self.initial = initial
        self.targets: list[str] = list(model.targets)
        self.groups: list[str] = list(model.groups)
        self.schedule = make_schedule(config, total_steps)
        self.total_steps = int(total_steps)
        self.optimizer = make_optimizer(config, total_steps)
        self._data_size = int(mesh.shape["data"])
        self._batch_sharding = NamedSharding(mesh, P("data"))
        self._replicated = NamedSharding(mesh, P())
        self._state_sharding = (
            NamedSharding(mesh, P("ensemble")) if ensemble_axis else self._replicated
        )
        try:
            hash(model)
        except TypeError:  # a model with list attributes: compile for this trainer alone
            self._hashable = False
            self._train, self._eval, self._predict = _compiled_steps.__wrapped__(
                model, config, self.total_steps, mesh
            )
        else:
            self._hashable = True
            self._train, self._eval, self._predict = _compiled_steps(
                model, config, self.total_steps, mesh
            )

    def __repr__(self) -> str:
        return (
            f"Trainer({type(self.model).__name__}, ensemble={self.config.ensemble}, "
            f"mesh={dict(self.mesh.shape)}, total_steps={self.total_steps})"
        )

    # -- keys, state and batches ----------------------------------------------------------------

    def keys(self) -> tuple[jax.Array, jax.Array]:
        """``(init_key, fit_key)``, both from ``config.seed``."""
        init_key, fit_key = jax.random.split(jax.random.key(self.config.seed))
        return init_key, fit_key

    def init(self, example: Any) -> TrainState:
        """Fresh parameters and optimiser state of the ``config.ensemble`` members.

        ``example`` is a batch (or anything with ``inputs``) giving the input shapes; member
        ``i`` is initialised from ``split(init_key, E)[i]``.
        """
        inputs = self._inputs(getattr(example, "inputs", example))
        first = {g: x[:1] for g, x in inputs.items()}
        init_key, _ = self.keys()
        keys = jax.random.split(init_key, self.config.ensemble)
        if self._hashable:
            params = _init_params(self.model, keys, first)
        else:
            init = functools.partial(_init_params.__wrapped__, self.model)
            params = jax.jit(init)(keys, first)
        if self.initial is not None:
            params = _with_initial(params, self.initial)
        state = TrainState(
            params=params,
            opt_state=jax.vmap(self.optimizer.init)(params),
            step=jnp.zeros(self.config.ensemble, jnp.int32),
        )
        return jax.device_put(state, self._state_sharding)

    def _inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if not isinstance(inputs, Mapping):
            raise TypeError(f"inputs must be a dict of group -> array, got {type(inputs)}")
        missing = [g for g in self.groups if g not in inputs]
        if missing:
            raise ValueError(
                f"the batch lacks the input groups {missing}; the model was built for "
                f"{self.groups} (build the model from the stream's channels)"
            )
        out = {g: np.asarray(inputs[g], dtype=np.float32) for g in self.groups}
        sizes = {g: x.shape[0] for g, x in out.items()}
        bad = {g: x.shape for g, x in out.items() if x.ndim != 5}
        if bad:
            raise ValueError(f"inputs must be (B, L, p, p, C) arrays; got shapes {bad}")
        if len(set(sizes.values())) != 1:
            raise ValueError(f"input groups disagree on the batch size: {sizes}")
        return out

    def _pad(self, arrays: Any, n: int) -> tuple[Any, int]:
        """Pad the leading axis of every array to a multiple of the data axis; zeros."""
        padded = math.ceil(n / self._data_size) * self._data_size
        if padded == n:
            return arrays, n
        extra = padded - n
        return jax.tree.map(
            lambda x: np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)]), arrays
        ), padded

    def shard(self, batch: Any) -> DeviceBatch:
        """A numpy :class:`~geocryo.batching.Batch` on the mesh, batch axis split over devices.

        The batch is padded to a multiple of the ``"data"`` axis with samples of weight 0.
        """
        if isinstance(batch, DeviceBatch):
            return batch
        inputs = self._inputs(batch.inputs)
        targets = np.asarray(batch.targets, dtype=np.float32)
        mask = np.asarray(batch.mask, dtype=np.float32)
        n = next(iter(inputs.values())).shape[0]
        k = len(self.targets)
        if targets.shape != mask.shape or targets.ndim != 4 or targets.shape[-1] != k:
            raise ValueError(
                f"targets {targets.shape} and mask {mask.shape} must both be (B, p, p, {k}) "
                f"for the model's targets {self.targets}"
            )
        if targets.shape[0] != n:
            raise ValueError(f"targets hold {targets.shape[0]} samples but the inputs hold {n}")
        host = DeviceBatch(inputs, targets, mask, np.ones(n, np.float32))
        host, _ = self._pad(host, n)
        return jax.device_put(host, self._batch_sharding)

    # -- the compiled steps ---------------------------------------------------------------------

    def train_step(
        self, state: TrainState, batch: Any, key: jax.Array
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimiser step of every member (jitted, pure).

        Returns the new state and the step's metrics (before the update, bootstrap-weighted):
        ``loss`` ``(E,)``, ``mse``, ``sse``, ``count`` ``(E, K)`` and ``grad_norm`` ``(E,)``.
        """
        return self._train(state, self.shard(batch), key)

    def eval_step(self, state: TrainState, batch: Any) -> dict[str, jax.Array]:
        """Sums of squared errors ``sse`` and observation counts ``count``, ``(E, K)``."""
        return self._eval(state.params, self.shard(batch))

    def predict(self, state_or_params: TrainState | Any, inputs: Mapping[str, Any]) -> jax.Array:
        """Predictions of every member for a batch of inputs: ``(E, B, p, p, K)`` (jitted).

        :func:`geocryo.forecast.summarize` reduces members to their mean and spread.
        """
        params = getattr(state_or_params, "params", state_or_params)
        host = self._inputs(inputs)
        n = next(iter(host.values())).shape[0]
        host, _ = self._pad(host, n)
        out = self._predict(params, jax.device_put(host, self._batch_sharding))
        return out[:, :n]

    # -- the loop -------------------------------------------------------------------------------

    def fit(
        self,
        train: Iterable,
        val: Iterable | None = None,
        *,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> tuple[TrainState, xr.Dataset]:
        """Train for ``config.epochs`` epochs at most; return the best state and the history.

        Parameters
        ----------
        train
            Batches, re-iterable: epoch ``i`` iterates ``train.epoch(i)`` where there is such a
            method (a :class:`~geocryo.batching.PatchStream`), else ``iter(train)``.
        val
            Validation batches, scored after every epoch; early stopping watches their loss
            (the mean over members). Without them every epoch runs and the last state is
            returned.
        checkpoint_dir
            Where to write ``checkpoint.msgpack`` (atomically) after every epoch.
        resume
            Continue from the checkpoint in ``checkpoint_dir`` if there is one (a fresh run
            otherwise). The run must have the same configuration and ``total_steps``; it
            resumes after the last complete epoch and ends with the same parameters as an
            uninterrupted run.
        progress
            Show a tqdm bar with the epoch and the loss.

        Returns
        -------
        state, history
            The state of the epoch with the lowest validation loss, and the history: variables
            ``value`` (epoch, metric, split: the mean over members), ``member_value`` (epoch,
            member, metric, split), ``learning_rate`` (epoch: the rate of the epoch's last
            step) and ``steps`` (epoch: steps done by its end). Metrics are ``loss`` and
            ``mse_<target>`` on standardised targets; the train split is weighted by the
            bootstrap draws and scored before each step's update.
        """
        cfg = self.config
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
        if resume and path is None:
            raise ValueError("resume=True needs the checkpoint_dir of the run to resume")
        _, fit_key = self.keys()
        state: TrainState | None = None
        best_state: TrainState | None = None
        records: list[dict[str, np.ndarray]] = []
        start, global_step, best_epoch, best_loss, stopped = 0, 0, -1, math.inf, False
        if resume and path.is_file():
            like = self.init(self._example(train))
            state, meta = load_checkpoint(path, like)
            self._check_resumable(meta, path)
            if not np.array_equal(meta["root_key"], jax.random.key_data(fit_key)):
                raise ValueError(f"checkpoint {path} was written with another root key")
            state = jax.device_put(state, self._state_sharding)
            best = serialization.from_state_dict(like, meta["best"])
            best_state = jax.device_put(best, self._state_sharding)
            start, global_step = int(meta["epoch"]) + 1, int(meta["global_step"])
            best_epoch, best_loss = int(meta["best_epoch"]), float(meta["best_loss"])
            stopped = bool(meta["stopped"])
            records = _unstack(meta["history"])
        bar = tqdm(
            total=self.total_steps,
            initial=min(global_step, self.total_steps),
            unit="step",
            disable=not progress,
            dynamic_ncols=True,
        )
        try:
            for epoch in range(start, cfg.epochs):
                if stopped:
                    break
                bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
                state, train_sums, global_step = self._train_epoch(
                    state, train, epoch, fit_key, global_step, bar
                )
                val_sums = self._evaluate(state, val)
                record = {
                    "train_sse": train_sums[0],
                    "train_count": train_sums[1],
                    "val_sse": val_sums[0],
                    "val_count": val_sums[1],
                    "learning_rate": np.float64(self.schedule(max(global_step - 1, 0))),
                    "steps": np.int64(global_step),
                }
                records.append(record)
                val_loss = float(np.mean(epoch_metrics(val_sums[0], val_sums[1])[:, 0]))
                if val is None or val_loss < best_loss:
                    best_state, best_epoch = state, epoch
                    best_loss = val_loss if val is not None else math.nan
                stopped = val is not None and epoch - best_epoch >= cfg.patience
                if progress:
                    train_loss = float(np.mean(epoch_metrics(*train_sums)[:, 0]))
                    bar.set_postfix_str(f"loss {train_loss:.4f} val {val_loss:.4f}")
                if path is not None:
                    meta = {
                        "epoch": epoch,
                        "global_step": global_step,
                        "best_epoch": best_epoch,
                        "best_loss": best_loss,
                        "stopped": stopped,
                        "root_key": np.asarray(jax.random.key_data(fit_key)),
                        "config": cfg.to_dict(),
                        "total_steps": self.total_steps,
                        "targets": self.targets,
                        "history": _stack(records),
                        "best": best_state if best_state is not None else state,
                    }
                    save_checkpoint(path, state, meta)
        finally:
            bar.close()
        if state is None:
            raise RuntimeError("fit ended without a train state")  # epochs >= 1 always runs one
        history = self._history(records, best_epoch, best_loss, stopped, val is not None)
        return (best_state if best_state is not None else state), history

    def _train_epoch(
        self,
        state: TrainState | None,
        train: Iterable,
        epoch: int,
        fit_key: jax.Array,
        global_step: int,
        bar: tqdm,
    ) -> tuple[TrainState, tuple[np.ndarray, np.ndarray], int]:
        sse = count = shown = None
        batches = _batches(train, epoch)
        try:
            for batch in batches:
                if state is None:
                    state = self.init(batch)
                key = jax.random.fold_in(fit_key, global_step)
                state, metrics = self.train_step(state, batch, key)
                sse = metrics["sse"] if sse is None else sse + metrics["sse"]
                count = metrics["count"] if count is None else count + metrics["count"]
                global_step += 1
                if not bar.disable:
                    # Show the previous step's loss: it is ready, so the bar never waits.
                    if shown is not None:
                        bar.set_postfix_str(f"loss {float(shown):.4f}", refresh=False)
                    shown = jnp.mean(metrics["loss"])
                bar.update()
        finally:
            _close(batches)
        if sse is None:
            raise ValueError(f"the training batches of epoch {epoch} are empty")
        return state, (np.asarray(sse), np.asarray(count)), global_step

    def _evaluate(self, state: TrainState, val: Iterable | None) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.config.ensemble, len(self.targets))
        if val is None:
            return np.full(shape, np.nan), np.full(shape, np.nan)
        sse = count = None
        batches = _batches(val, None)
        try:
            for batch in batches:
                metrics = self.eval_step(state, batch)
                sse = metrics["sse"] if sse is None else sse + metrics["sse"]
                count = metrics["count"] if count is None else count + metrics["count"]
        finally:
            _close(batches)
        if sse is None:
            raise ValueError("the validation batches are empty; pass val=None to train without")
        return np.asarray(sse), np.asarray(count)

    def _example(self, train: Iterable) -> Any:
        batches = _batches(train, 0)
        try:
            return next(batches)
        except StopIteration:
            raise ValueError("the training batches are empty") from None
        finally:
            _close(batches)

    def _check_resumable(self, meta: dict, path: Path) -> None:
        stored = meta.get("config", {})
        ours = self.config.to_dict()
        differ = sorted(k for k in set(stored) | set(ours) if stored.get(k) != ours.get(k))
        if differ:
            raise ValueError(
                f"checkpoint {path} was written with another TrainConfig (fields {differ} "
                f"differ: {[stored.get(k) for k in differ]} there, "
                f"{[ours.get(k) for k in differ]} here); resume with the same config or "
                "start a fresh run in another checkpoint_dir"
            )
        if int(meta["total_steps"]) != self.total_steps:
            raise ValueError(
                f"checkpoint {path} was written for total_steps={meta['total_steps']}, this "
                f"trainer has {self.total_steps}; resume with the same total_steps"
            )
        if list(meta["targets"]) != self.targets:
            raise ValueError(
                f"checkpoint {path} has targets {list(meta['targets'])}, the model {self.targets}"
            )

    def _history(
        self,
        records: list[dict[str, np.ndarray]],
        best_epoch: int,
        best_loss: float,
        stopped: bool,
        validated: bool,
    ) -> xr.Dataset:
        metrics = ["loss", *(f"mse_{name}" for name in self.targets)]
        per_member = np.stack(
            [
                np.stack(
                    [
                        epoch_metrics(r["train_sse"], r["train_count"]),
                        epoch_metrics(r["val_sse"], r["val_count"]),
                    ],
                    axis=-1,
                )
                for r in records
            ]
        )  # (epoch, member, metric, split)
        return xr.Dataset(
            {
                "value": (("epoch", "metric", "split"), per_member.mean(axis=1)),
                "member_value": (("epoch", "member", "metric", "split"), per_member),
                "learning_rate": ("epoch", np.array([r["learning_rate"] for r in records])),
                "steps": ("epoch", np.array([r["steps"] for r in records], dtype=np.int64)),
            },
            coords={
                "epoch": np.arange(len(records)),
                "member": np.arange(per_member.shape[1]),
                "metric": metrics,
                "split": list(SPLITS),
            },
            attrs={
                "description": "training history: masked MSE on standardised targets",
                "best_epoch": int(best_epoch),
                "best_val_loss": float(best_loss) if validated else math.nan,
                "stopped_early": int(stopped),
                "ensemble": self.config.ensemble,
                "devices": int(self.mesh.size),
            },
        )


@functools.partial(jax.jit, static_argnums=0)
def _init_params(model: Any, keys: jax.Array, inputs: dict[str, jax.Array]) -> Any:
    """Parameters of one member per key; compiled once per model and input shapes."""
    return jax.vmap(lambda k: model.init(k, inputs)["params"])(keys)


@functools.lru_cache(maxsize=8)
def _compiled_steps(model: Any, config: TrainConfig, total_steps: int, mesh: Mesh) -> tuple:
    """The jitted train, eval and predict steps; shared by trainers with equal arguments."""
    ensemble_axis = "ensemble" in mesh.axis_names
    batch = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())
    state = NamedSharding(mesh, P("ensemble")) if ensemble_axis else replicated
    apply_fn = model.apply
    step = functools.partial(
        ensemble_step,
        apply_fn=apply_fn,
        optimizer=make_optimizer(config, total_steps),
        bootstrap=config.bootstrap,
    )
    train = jax.jit(
        step,
        in_shardings=(state, batch, replicated),
        out_shardings=(state, replicated),
    )
    evaluate = jax.jit(
        functools.partial(ensemble_eval, apply_fn=apply_fn),
        in_shardings=(state, batch),
        out_shardings=replicated,
    )
    predict = jax.jit(
        functools.partial(ensemble_predict, apply_fn=apply_fn),
        in_shardings=(state, batch),
        out_shardings=replicated,
    )
    return train, evaluate, predict


def _with_initial(params: Any, initial: Mapping[str, Any], path: str = "") -> Any:
    """``params`` (leaves with a member axis) with the leaves of ``initial`` (one member's)."""
    if not isinstance(params, Mapping):
        raise ValueError(f"initial: {path or 'the parameters'} is a leaf, not a dict of parameters")
    out = dict(params)
    for name, value in initial.items():
        where = f"{path}/{name}" if path else name
        if name not in params:
            raise ValueError(
                f"initial: the model has no parameter {where!r}; it has {list(params)}"
            )
        if isinstance(value, Mapping):
            out[name] = _with_initial(params[name], value, where)
            continue
        current = params[name]
        value = jnp.asarray(value, current.dtype)
        if value.shape != current.shape[1:]:
            raise ValueError(
                f"initial: {where!r} has shape {value.shape}, the model's {current.shape[1:]}"
            )
        out[name] = jnp.broadcast_to(value, current.shape)
    return out


def _stack(records: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.stack([np.asarray(r[name]) for r in records]) for name in records[0]}


def _unstack(stacked: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(stacked.values())))
    return [{name: np.asarray(values[i]) for name, values in stacked.items()} for i in range(n)]
