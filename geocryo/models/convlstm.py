"""Convolutional LSTMs in Flax, with the 3 x 3 convolutions done as matrix products.

XLA's CPU convolutions are slow at ConvLSTM sizes (a few to tens of channels on small patches), so
every convolution here is an "im2col" product: the k x k neighbourhood of each cell is laid out
along the channel axis and multiplied by a (k k C_in, C_out) matrix, which XLA runs as one large
GEMM on any backend. The input-to-gates convolution does not depend on the recurrent state, so it
is computed for all time steps at once, outside the scan; only the state-to-gates product runs
step by step.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["ACTIVATIONS", "ConvLSTM", "StackedConvLSTM", "conv2d", "neighbourhoods"]

#: Cell activations to choose from (the candidate and output nonlinearity of the LSTM).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "softsign": jax.nn.soft_sign,
    "hard_tanh": jax.nn.hard_tanh,
}


def neighbourhoods(x: jax.Array, kernel: int) -> jax.Array:
    """The ``kernel`` x ``kernel`` neighbourhood of every cell, along the channel axis.

    ``x`` has shape ``(..., H, W, C)``; the result ``(..., H, W, kernel * kernel * C)``, zero
    padded at the edges ('same' convolution), ordered (row offset, column offset, channel).
    """
    if kernel == 1:
        return x
    half = kernel // 2
    pad = [(0, 0)] * (x.ndim - 3) + [(half, half), (half, half), (0, 0)]
    padded = jnp.pad(x, pad)
    height, width = x.shape[-3], x.shape[-2]
    return jnp.concatenate(
        [
            padded[..., i : i + height, j : j + width, :]
            for i in range(kernel)
            for j in range(kernel)
        ],
        axis=-1,
    )


def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'Same' 2-D convolution of ``x`` (..., H, W, C) with ``kernel`` (k, k, C, F) as one GEMM."""
    k, _, c, f = kernel.shape
    return neighbourhoods(x, k) @ kernel.reshape(k * k * c, f)


class ConvLSTM(nn.Module):
    """One convolutional LSTM layer over a sequence.

    Attributes
    ----------
    features
        Hidden channels.
    kernel
        Odd spatial kernel size.
    activation
        Name in :data:`ACTIVATIONS`.
    """

    features: int
    kernel: int = 3
    activation: str = "tanh"

    @nn.compact
    def __call__(self, xs: jax.Array) -> jax.Array:
        """``xs`` (B, T, H, W, C) -> hidden states (B, T, H, W, features)."""
        k, f = self.kernel, self.features
        c = xs.shape[-1]
        init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
        w_in = self.param("input_kernel", init, (k, k, c, 4 * f))
        w_state = self.param("state_kernel", init, (k, k, f, 4 * f))
        # The forget gate starts open (bias 1), so that memory flows from the first update.
        bias = self.param(
            "bias", lambda _, shape: jnp.zeros(shape).at[f : 2 * f].set(1.0), (4 * f,)
        )
        act = ACTIVATIONS[self.activation]
        from_inputs = conv2d(xs, w_in) + bias  # all time steps in one product
        state_matrix = w_state.reshape(k * k * f, 4 * f)

        def step(carry, gates_in):
            h, cell = carry
            gates = gates_in + neighbourhoods(h, k) @ state_matrix
            i, forget, o, g = jnp.split(gates, 4, axis=-1)
            cell = jax.nn.sigmoid(forget) * cell + jax.nn.sigmoid(i) * act(g)
            h = jax.nn.sigmoid(o) * act(cell)
            return (h, cell), h

        b, _, height, width, _ = xs.shape
        zeros = jnp.zeros((b, height, width, f), from_inputs.dtype)
        _, hs = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(from_inputs, 0, 1))
        return jnp.swapaxes(hs, 0, 1)


class StackedConvLSTM(nn.Module):
    """Layers of :class:`ConvLSTM`, with dropout between them; returns the last hidden state.

    Attributes
    ----------
    features, layers, kernel, activation
        Hidden channels per layer, number of layers, kernel size, cell activation.
    dropout
        Dropout rate on the hidden sequence between layers (training only).
    """

    features: int = 16
    layers: int = 2
    kernel: int = 3
    activation: str = "tanh"
    dropout: float = 0.0

    @nn.compact
    def __call__(self, xs: jax.Array, *, train: bool = False) -> jax.Array:
        """``xs`` (B, T, H, W, C) -> the last layer's final state (B, H, W, features)."""
        for i in range(self.layers):
            if i > 0 and self.dropout > 0:
                xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
            xs = ConvLSTM(self.features, self.kernel, self.activation, name=f"layer_{i}")(xs)
        return xs[:, -1]
