"""The geocryo network: one encoder per input group, fused, one head per target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..batching.channels import HISTORY
from .convlstm import ACTIVATIONS, StackedConvLSTM, conv2d

__all__ = [
    "Conv",
    "GeoCryoNet",
    "anchored",
    "bounded",
    "count_parameters",
    "departure_features",
    "departures",
    "latest_inputs",
]

#: Input groups that hold no time variation (repeated over the look-back by the batches).
STATIC_GROUPS = frozenset({"static"})


def latest_inputs(inputs: Mapping[str, jax.Array], groups: Sequence[str]) -> jax.Array:
    """The last look-back month of every group, channels concatenated: ``(B, p, p, C)``.

    What :class:`GeoCryoNet`'s linear skip reads, in its channel order.
    """
    return jnp.concatenate([inputs[g][:, -1] for g in groups], axis=-1)


class Conv(nn.Module):
    """A 'same' 2-D convolution computed as one GEMM (see :func:`~.convlstm.conv2d`)."""

    features: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
        w = self.param("kernel", init, (self.kernel, self.kernel, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        return conv2d(x, w) + b


class GeoCryoNet(nn.Module):
    """Per-group ConvLSTM encoders, fused by concatenation and convolution, one head per target.

    Attributes
    ----------
    groups
        Names of the input groups, in the order of the batches' ``inputs`` (e.g. ``history``,
        ``remote_sensing``, ``process_model``, ``forcing``, ``static``). Each gets its own
        stacked ConvLSTM; a static group gets two convolutions on its last time step instead.
    targets
        Names of the predicted variables; the output's last axis follows this order.
    features, layers, kernel, activation, dropout
        Hidden channels, ConvLSTM layers, kernel size, cell activation and dropout rate of every
        encoder; the fusion has ``features`` channels too.
    skip
        Add a linear map of the last input month's channels (every group's, per cell) to the
        heads, as LSTNet adds a linear autoregressive part to its network: what is linear in
        the latest inputs (a calibrated process-model outlook, say) is then learnt directly,
        and the recurrent encoders learn what it misses. It starts at zero.
    anchors
        Per target, the positions in the ``"history"`` group of its value and of its
        training-period climatology of the forecast month (each with its missing indicator
        next), or ``(-1, -1)``. Where a cell has that climatology, the network predicts the
        departure from it: the output is the climatology, plus a linear map (``departure``,
        starting at zero) of the last input month's channels and of every target's latest
        departure from its own climatology, plus the heads, which start at zero. An untrained
        network so forecasts the climatology baseline there (and the skip's map elsewhere).
        See :func:`departure_features` for what the map reads.
    lead
        Months from the last input month to the forecast month: the climatology of the last
        input month is the one ``lead`` steps back in the look-back.
    lower
        Per target, the lowest value it can take, standardised (``(0 - mean) / std`` for a
        quantity that cannot be negative), or None for an unbounded one. The output is then
        ``lower + softplus(sharpness * (u - lower)) / sharpness`` of the unbounded output ``u``:
        above the bound by construction, and ``u`` itself (to within 0.001 of a standard
        deviation) once ``u`` is half a standard deviation above it. The training loss sees the
        bounded output.
    sharpness
        How sharply a bounded output bends onto its bound, per standard deviation.
    """

    groups: Sequence[str]
    targets: Sequence[str]
    features: int = 16
    layers: int = 2
    kernel: int = 3
    activation: str = "tanh"
    dropout: float = 0.0
    skip: bool = True
    anchors: Sequence[tuple[int, int]] = ()
    lead: int = 1
    lower: Sequence[float | None] = ()
    sharpness: float = 10.0

    @nn.compact
    def __call__(self, inputs: Mapping[str, jax.Array], *, train: bool = False) -> jax.Array:
        """``inputs[group]`` (B, L, p, p, C_group) -> predictions (B, p, p, len(targets))."""
        missing = [g for g in self.groups if g not in inputs]
        if missing:
            raise KeyError(
                f"inputs lack the groups {missing}; the network was built for {list(self.groups)}"
            )
        encoded = []
        for group in self.groups:
            xs = inputs[group]
            if group in STATIC_GROUPS:
                h = Conv(self.features, self.kernel, name=f"{group}_conv_0")(xs[:, -1])
                h = Conv(self.features, self.kernel, name=f"{group}_conv_1")(nn.gelu(h))
                encoded.append(ACTIVATIONS[self.activation](h))
            else:
                encoder = StackedConvLSTM(
                    self.features,
                    self.layers,
                    self.kernel,
                    self.activation,
                    self.dropout,
                    name=f"{group}_encoder",
                )
                encoded.append(encoder(xs, train=train))
        fused = jnp.concatenate(encoded, axis=-1)
        if self.dropout > 0:
            fused = nn.Dropout(self.dropout, deterministic=not train)(fused)
        fused = nn.gelu(Conv(self.features, self.kernel, name="fusion")(fused))
        # With the skip, the heads start at zero: the network starts as the linear map alone.
        head_init = nn.initializers.zeros if self.skip else nn.initializers.lecun_normal()
        heads = [
            nn.Dense(1, kernel_init=head_init, name=f"head_{name}")(fused) for name in self.targets
        ]
        out = jnp.concatenate(heads, axis=-1)
        base = jnp.zeros_like(out)
        if self.skip:
            linear = nn.Dense(len(self.targets), kernel_init=nn.initializers.zeros, name="skip")
            base = linear(latest_inputs(inputs, self.groups))
        if any(clim >= 0 for _, clim in self.anchors):
            history = inputs[HISTORY]
            features = departure_features(inputs, self.groups, self.anchors, self.lead)
            departure = nn.Dense(
                len(self.targets), kernel_init=nn.initializers.zeros, name="departure"
            )(features)
            base = anchored(base, history[:, -1], self.anchors, departure)
        return bounded(out + base, self.lower, self.sharpness)


def departures(history: jax.Array, anchors: Sequence[tuple[int, int]], lead: int) -> jax.Array:
    """Each target's departure from its climatology in the last input month, ``(B, p, p, K)``.

    The value of the last step less the climatology ``lead`` steps earlier (which is the
    climatology of the last step's month); 0 where either is missing, or the target has no
    climatology (``anchors`` as in :class:`GeoCryoNet`).
    """
    xp = jnp if isinstance(history, jax.Array) else np
    latest = history[:, -1]
    shape = latest.shape[:-1]
    if history.shape[1] <= lead:
        return xp.zeros((*shape, len(anchors)), history.dtype)
    earlier = history[:, -1 - lead]
    columns = []
    for value, clim in anchors:
        if clim < 0:
            columns.append(xp.zeros(shape, history.dtype))
            continue
        known = (latest[..., value + 1] < 0.5) & (earlier[..., clim + 1] < 0.5)
        columns.append(xp.where(known, latest[..., value] - earlier[..., clim], 0.0))
    return xp.stack(columns, axis=-1).astype(history.dtype)


def departure_features(
    inputs: Mapping[str, jax.Array],
    groups: Sequence[str],
    anchors: Sequence[tuple[int, int]],
    lead: int,
) -> jax.Array:
    """What the ``departure`` map reads, ``(B, p, p, (C + K) (1 + A))``.

    The last month of every group but the history and every target's latest departure
    (:func:`departures`): ``C + K`` channels; then the same channels times the climatology of
    each of the ``A`` targets that have one, so that a departure can scale with the size of
    the usual value (a flux anomaly of a wetland is larger than that of a dry ridge, for the
    same warm month).
    """
    xp = jnp if any(isinstance(v, jax.Array) for v in inputs.values()) else np
    parts = [inputs[g][:, -1] for g in groups if g != HISTORY]
    parts.append(departures(inputs[HISTORY], anchors, lead))
    base = xp.concatenate(parts, axis=-1)
    latest = inputs[HISTORY][:, -1]
    scaled = [latest[..., clim, None] * base for _, clim in anchors if clim >= 0]
    return xp.concatenate([base, *scaled], axis=-1)


def anchored(
    base: jax.Array,
    latest: jax.Array,
    anchors: Sequence[tuple[int, int]],
    departure: jax.Array,
) -> jax.Array:
    """``base`` (B, p, p, K) replaced by climatology plus ``departure`` where a cell has one.

    ``latest`` is the last month of the ``"history"`` group, (B, p, p, C); ``anchors`` as in
    :class:`GeoCryoNet`.
    """
    columns = []
    for k, (_, clim) in enumerate(anchors):
        column = base[..., k]
        if clim >= 0:
            forecast = latest[..., clim] + departure[..., k]
            column = jnp.where(latest[..., clim + 1] > 0.5, column, forecast)
        columns.append(column)
    return jnp.stack(columns, axis=-1)


def bounded(out: jax.Array, lower: Sequence[float | None], sharpness: float) -> jax.Array:
    """Each target's output ``(..., K)`` held above its lower bound (None: unbounded).

    ``lower + softplus(sharpness * (u - lower)) / sharpness``: smooth, strictly above the bound,
    and within ``log(2) / sharpness`` of ``u`` wherever ``u`` is above it.
    """
    if not any(b is not None for b in lower):
        return out
    columns = []
    for k, bound in enumerate(lower):
        column = out[..., k]
        if bound is not None:
            column = bound + jax.nn.softplus(sharpness * (column - bound)) / sharpness
        columns.append(column)
    return jnp.stack(columns, axis=-1)


def count_parameters(params) -> int:
    """Number of scalar parameters in a parameter pytree."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))
