"""Pure training and evaluation steps: the masked loss, the online bootstrap, one member's update.

Everything here is a pure function of arrays, traced under ``jax.jit`` by the
:class:`~geocryo.train.Trainer`; the ensemble is ``jax.vmap`` of the one-member functions over
parameters stacked along a leading member axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

__all__ = [
    "DeviceBatch",
    "TrainState",
    "bootstrap_weights",
    "ensemble_eval",
    "ensemble_predict",
    "ensemble_step",
    "loss_from_sums",
    "masked_sums",
    "member_step",
]


@flax.struct.dataclass
class TrainState:
    """Parameters, optimiser state and step count of every member.

    Every leaf has a leading ensemble axis of length ``E``: member ``i`` is
    ``jax.tree.map(lambda x: x[i], state)`` (see :meth:`member`).
    """

    params: Any
    opt_state: Any
    step: jax.Array

    @property
    def members(self) -> int:
        """Number of ensemble members ``E``."""
        return int(self.step.shape[0])

    def member(self, i: int) -> TrainState:
        """Member ``i`` alone (leaves without the ensemble axis)."""
        return jax.tree.map(lambda x: x[i], self)


class DeviceBatch(NamedTuple):
    """A batch as the jitted steps see it; every array has the batch axis first.

    ``weight`` is 1.0 for real samples and 0.0 for the padding that makes the batch divisible
    by the number of devices; padded samples contribute nothing to losses or sums.
    """

    inputs: dict[str, jax.Array]
    targets: jax.Array
    mask: jax.Array
    weight: jax.Array


def masked_sums(
    pred: jax.Array, targets: jax.Array, mask: jax.Array, weight: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Weighted sums of squared errors and of weights over the observed cells, per target.

    Parameters
    ----------
    pred, targets, mask
        ``(B, p, p, K)``; ``mask`` is 1.0 where a target was observed. Unobserved targets may
        hold anything (NaN included): they never reach the sums or their gradients.
    weight
        ``(B,)`` per-sample weights (bootstrap draws times the padding indicator).

    Returns
    -------
    sse, count
        ``(K,)``: ``sum(mask * w * (pred - target)^2)`` and ``sum(mask * w)``.
    """
    w = mask * weight[:, None, None, None]
    err = jnp.where(mask > 0, pred - jnp.where(mask > 0, targets, 0.0), 0.0)
    axes = (0, 1, 2)
    return jnp.sum(w * err**2, axis=axes), jnp.sum(w, axis=axes)


def loss_from_sums(sse: jax.Array, count: jax.Array) -> jax.Array:
    """The loss: mean over the targets with any (weighted) observation of their MSE.

    Target ``k``'s MSE is ``sse_k / max(count_k, 1)``; a target with ``count_k == 0`` neither
    adds to the mean nor dilutes it, so every target weighs the same whatever its number of
    observations. With no observation at all the loss is 0.
    """
    present = count > 0
    mse = sse / jnp.maximum(count, 1.0)
    return jnp.sum(jnp.where(present, mse, 0.0), axis=-1) / jnp.maximum(
        jnp.sum(present, axis=-1), 1
    )


def bootstrap_weights(key: jax.Array, n: int) -> jax.Array:
    """Poisson(1) draws, one per sample: the online bootstrap's resampling weights, ``(n,)``.

    Sample ``i``'s draw comes from ``fold_in(key, i)``, so it does not depend on ``n``: padding
    a batch (for the devices) leaves the weights of its real samples unchanged.
    """
    draw = jax.vmap(lambda i: jax.random.poisson(jax.random.fold_in(key, i), 1.0))
    return draw(jnp.arange(n)).astype(jnp.float32)


def member_step(
    params: Any,
    opt_state: Any,
    batch: DeviceBatch,
    key: jax.Array,
    *,
    apply_fn: Callable[..., jax.Array],
    optimizer: optax.GradientTransformation,
    bootstrap: bool,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """One optimiser step of one member.

    ``key`` is the member's key for this step: split into a dropout key and a bootstrap key.
    Returns the new parameters and optimiser state, and the metrics of the step (before the
    update): ``loss`` (scalar), ``mse``, ``sse``, ``count`` (``(K,)``, bootstrap-weighted) and
    ``grad_norm`` (before clipping).
    """
    dropout_key, bootstrap_key = jax.random.split(key)
    weight = batch.weight
    if bootstrap:
        weight = weight * bootstrap_weights(bootstrap_key, weight.shape[0])

    def loss_fn(p):
        pred = apply_fn({"params": p}, batch.inputs, train=True, rngs={"dropout": dropout_key})
        sse, count = masked_sums(pred, batch.targets, batch.mask, weight)
        return loss_from_sums(sse, count), (sse, count)

    (loss, (sse, count)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = {
        "loss": loss,
        "mse": sse / jnp.maximum(count, 1.0),
        "sse": sse,
        "count": count,
        "grad_norm": optax.tree.norm(grads),
    }
    return params, opt_state, metrics


def ensemble_step(
    state: TrainState,
    batch: DeviceBatch,
    key: jax.Array,
    *,
    apply_fn: Callable[..., jax.Array],
    optimizer: optax.GradientTransformation,
    bootstrap: bool,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One step of every member on the same batch: member ``i`` uses ``split(key, E)[i]``."""
    keys = jax.random.split(key, state.members)

    def one(params, opt_state, member_key):
        return member_step(
            params,
            opt_state,
            batch,
            member_key,
            apply_fn=apply_fn,
            optimizer=optimizer,
            bootstrap=bootstrap,
        )

    params, opt_state, metrics = jax.vmap(one)(state.params, state.opt_state, keys)
    return TrainState(params=params, opt_state=opt_state, step=state.step + 1), metrics


def ensemble_eval(
    params: Any, batch: DeviceBatch, *, apply_fn: Callable[..., jax.Array]
) -> dict[str, jax.Array]:
    """Sums of squared errors and observation counts, ``(E, K)``, of every member (no dropout).

    Sums, not means, so that an epoch's metrics aggregate exactly over batches of any size.
    """

    def one(p):
        pred = apply_fn({"params": p}, batch.inputs, train=False)
        sse, count = masked_sums(pred, batch.targets, batch.mask, batch.weight)
        return {"sse": sse, "count": count}

    return jax.vmap(one)(params)


def ensemble_predict(
    params: Any, inputs: dict[str, jax.Array], *, apply_fn: Callable[..., jax.Array]
) -> jax.Array:
    """Predictions of every member, ``(E, B, p, p, K)``."""
    return jax.vmap(lambda p: apply_fn({"params": p}, inputs, train=False))(params)
