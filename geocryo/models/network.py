"""The geocryo network: one encoder per input group, fused, one head per target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from .convlstm import ACTIVATIONS, StackedConvLSTM, conv2d

__all__ = ["Conv", "GeoCryoNet", "count_parameters", "latest_inputs"]

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
    """

    groups: Sequence[str]
    targets: Sequence[str]
    features: int = 16
    layers: int = 2
    kernel: int = 3
    activation: str = "tanh"
    dropout: float = 0.0
    skip: bool = True

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
        if self.skip:
            linear = nn.Dense(len(self.targets), kernel_init=nn.initializers.zeros, name="skip")
            out = out + linear(latest_inputs(inputs, self.groups))
        return out


def count_parameters(params) -> int:
    """Number of scalar parameters in a parameter pytree."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))
