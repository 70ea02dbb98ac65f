"""Convolutional LSTMs in Flax, with the 3 x 3 convolutions done as matrix products.

XLA's CPU convolutions are slow at ConvLSTM sizes (a few to tens of channels on small patches), so
every convolution here is an "im2col" product: the k x k neighbourhood of each cell is laid out
along the channel axis and multiplied by a (k k C_in, C_out) matrix, which XLA runs as one large
GEMM on any backend. A layer's step convolves its input and its previous hidden state together,
as one product over the neighbourhoods of both; its gradient is written out, one loop that keeps
every array a step touches small (see :func:`convlstm`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "ACTIVATIONS",
    "ConvLSTM",
    "StackedConvLSTM",
    "conv2d",
    "convlstm",
    "gather_neighbourhoods",
    "neighbourhoods",
]

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

    The shifted views are stacked on two new axes, one per offset, and the result reshaped:
    XLA's CPU backend writes that in one pass over the output. Concatenated along the channel
    axis instead, each view is copied out on its own and then copied again into the result.
    """
    if kernel == 1:
        return x
    half = kernel // 2
    pad = [(0, 0)] * (x.ndim - 3) + [(half, half), (half, half), (0, 0)]
    padded = jnp.pad(x, pad)
    height, width = x.shape[-3], x.shape[-2]
    rows = [
        jnp.stack([padded[..., i : i + height, j : j + width, :] for j in range(kernel)], axis=-2)
        for i in range(kernel)
    ]
    return jnp.stack(rows, axis=-3).reshape(*x.shape[:-1], kernel * kernel * x.shape[-1])


def gather_neighbourhoods(cols: jax.Array, kernel: int) -> jax.Array:
    """The transpose of :func:`neighbourhoods`: ``cols`` (..., H, W, k k C) -> (..., H, W, C).

    Each cell collects what its neighbours' columns hold about it. The columns are padded once
    and the k x k shifted views summed in one pass; differentiating :func:`neighbourhoods`
    instead pads every view separately, at k x k times the memory traffic.
    """
    if kernel == 1:
        return cols
    half = kernel // 2
    *lead, height, width, columns = cols.shape
    cols = cols.reshape(*lead, height, width, kernel * kernel, columns // kernel**2)
    pad = [(0, 0)] * len(lead) + [(half, half), (half, half), (0, 0), (0, 0)]
    padded = jnp.pad(cols, pad)
    total = None
    for n in range(kernel * kernel):
        i, j = divmod(n, kernel)
        view = padded[
            ..., 2 * half - i : 2 * half - i + height, 2 * half - j : 2 * half - j + width, n, :
        ]
        total = view if total is None else total + view
    return total


@jax.custom_vjp
def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """'Same' 2-D convolution of ``x`` (..., H, W, C) with ``kernel`` (k, k, C, F) as one GEMM.

    Its gradient is written out: the kernel's is one GEMM with the saved columns, the input's
    a GEMM then :func:`gather_neighbourhoods`.
    """
    return _conv2d_fwd(x, kernel)[0]


def _conv2d_fwd(x, kernel):
    k, _, c, f = kernel.shape
    cols = neighbourhoods(x, k)
    return cols @ kernel.reshape(k * k * c, f), (cols, kernel)


def _conv2d_bwd(residuals, d_out):
    cols, kernel = residuals
    k, _, c, f = kernel.shape
    matrix = kernel.reshape(k * k * c, f)
    d_x = gather_neighbourhoods(d_out @ matrix.T, k)
    d_matrix = cols.reshape(-1, k * k * c).T @ d_out.reshape(-1, f)
    return d_x, d_matrix.reshape(kernel.shape)


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def _activations(gates: jax.Array, act) -> tuple[jax.Array, ...]:
    """Input, forget and output gates and the candidate, from the gates' pre-activations."""
    i, f, o, g = jnp.split(gates, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), act(g)


def _stacked_kernel(input_kernel: jax.Array, state_kernel: jax.Array) -> jax.Array:
    """The input and state kernels as one ``(k k (C + F), 4F)`` matrix over ``[x, h]`` columns."""
    k = input_kernel.shape[0]
    both = jnp.concatenate([input_kernel, state_kernel], axis=2)
    return both.reshape(k * k * both.shape[2], both.shape[3])


def _columns(x_t: jax.Array, h: jax.Array, kernel: int) -> jax.Array:
    """A step's GEMM rows: the neighbourhoods of ``[x_t, h]``, ``(B, H, W, k k (C + F))``.

    The forward pass multiplies them by the stacked kernel; the backward builds them again for
    the kernel's gradient rather than keeping T of them.
    """
    return neighbourhoods(jnp.concatenate([x_t, h], axis=-1), kernel)


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def convlstm(
    xs: jax.Array, input_kernel: jax.Array, state_kernel: jax.Array, bias: jax.Array, act
) -> jax.Array:
    """One convolutional LSTM layer over time, from zero state.

    ``xs`` (T, B, H, W, C) is time-major; ``input_kernel`` (k, k, C, 4F) and ``state_kernel``
    (k, k, F, 4F) are the gate convolutions, ``bias`` (4F,) their bias, gates ordered (input,
    forget, output, candidate); ``act`` the cell activation. Returns the hidden states
    (T, B, H, W, F).

    Each step convolves ``[x_t, h_{t-1}]`` with both kernels at once, as one GEMM over the
    neighbourhoods of the ``C + F`` channels. The gradient is written out (backpropagation
    through time by hand): one reverse loop computes, per step, the gates' gradient, the
    gradient of ``[x_t, h_{t-1}]`` (one GEMM and :func:`gather_neighbourhoods`) and adds the
    step's share of the kernel gradient (one GEMM), so that no array of size T x B x H x W x 4F
    is built but the gates' pre-activations the forward pass keeps. The first step, from zero
    state, is done after the loop, without the state's part: the state kernel's gradient and the
    state's gradient there are zero. Where ``xs`` is not differentiated (data, as a network's
    first layer reads), its gradient is not computed.
    """
    return _run(xs, input_kernel, state_kernel, bias, act)[0]


def _run(xs, input_kernel, state_kernel, bias, act):
    """The forward loop: hidden states, gates' pre-activations and cell states, each (T, ...)."""
    k, features = input_kernel.shape[0], state_kernel.shape[2]
    matrix = _stacked_kernel(input_kernel, state_kernel)
    zero = jnp.zeros((*xs.shape[1:-1], features), xs.dtype)

    def step(carry, x_t):
        h, c = carry
        gates = _columns(x_t, h, k) @ matrix + bias
        i, f, o, g = _activations(gates, act)
        c_new = f * c + i * g
        h_new = o * act(c_new)
        return (h_new, c_new), (h_new, gates, c_new)

    return jax.lax.scan(step, (zero, zero), xs)[1]


def _convlstm_fwd(xs, input_kernel, state_kernel, bias, act):
    # With symbolic zeros, each argument comes with whether it is differentiated. The inputs of
    # a network's first layer are data, and their gradient (a GEMM and a gather per step) is
    # left out; whether it is wanted travels in the residuals' structure: () or None.
    wanted = () if xs.perturbed else None
    xs, input_kernel, state_kernel, bias = (a.value for a in (xs, input_kernel, state_kernel, bias))
    hs, gates, cs = _run(xs, input_kernel, state_kernel, bias, act)
    return hs, (xs, hs, gates, cs, input_kernel, state_kernel, wanted)


def _derivative(act, x):
    """Elementwise derivative of ``act`` at ``x``."""
    return jax.jvp(act, (x,), (jnp.ones_like(x),))[1]


def _convlstm_bwd(act, residuals, d_hs):
    xs, hs, gates, cs, input_kernel, state_kernel, wanted = residuals
    k, channels, width = input_kernel.shape[0], xs.shape[-1], input_kernel.shape[-1]
    matrix = _stacked_kernel(input_kernel, state_kernel)
    if wanted is None:  # the hidden state's gradient alone: through the state kernel
        transposed, first = state_kernel.reshape(-1, width).T, 0
    else:
        transposed, first = matrix.T, channels

    def gates_gradient(dh_out, dh_next, dc_next, gates, c, cp):
        """The gradient of a step's gates' pre-activations, and of the cell state before it."""
        i, f, o, g = _activations(gates, act)
        raw_g = jnp.split(gates, 4, axis=-1)[3]
        dh = dh_out + dh_next
        dc = dc_next + dh * o * _derivative(act, c)
        d_gates = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * cp * f * (1 - f),
                dh * act(c) * o * (1 - o),
                dc * i * _derivative(act, raw_g),
            ],
            axis=-1,
        )
        return d_gates, dc * f

    def step(carry, inputs):
        dh_next, dc_next, d_matrix, d_bias = carry
        dh_out, gates, c, cp, x_t, hp = inputs
        d_gates, dc_prev = gates_gradient(dh_out, dh_next, dc_next, gates, c, cp)
        columns = _columns(x_t, hp, k)
        rows = d_gates.reshape(-1, width)
        d_matrix = d_matrix + columns.reshape(-1, columns.shape[-1]).T @ rows
        d_xh = gather_neighbourhoods(d_gates @ transposed, k)
        d_x = None if wanted is None else d_xh[..., :first]
        return (d_xh[..., first:], dc_prev, d_matrix, d_bias + rows.sum(0)), d_x

    # The loop runs back from the last step to the second. The first step started from zero
    # state: the state kernel saw zeros there and the zero state needs no gradient, so its
    # share is the input kernel's, the bias's and the input's alone.
    zero = jnp.zeros_like(hs[0])
    init = (zero, zero, jnp.zeros_like(matrix), jnp.zeros(width, matrix.dtype))
    later = (d_hs[1:], gates[1:], cs[1:], cs[:-1], xs[1:], hs[:-1])
    (dh, dc, d_matrix, d_bias), d_xs = jax.lax.scan(step, init, later, reverse=True)
    d_gates, _ = gates_gradient(d_hs[0], dh, dc, gates[0], cs[0], zero)
    rows = d_gates.reshape(-1, width)
    columns = neighbourhoods(xs[0], k).reshape(-1, k * k * channels)
    d_kernels = d_matrix.reshape(k, k, -1, width)
    d_input_kernel = d_kernels[:, :, :channels] + (columns.T @ rows).reshape(input_kernel.shape)
    if wanted is not None:
        input_matrix = input_kernel.reshape(-1, width)
        d_first = gather_neighbourhoods(d_gates @ input_matrix.T, k)
        d_xs = jnp.concatenate([d_first[None], d_xs])
    return d_xs, d_input_kernel, d_kernels[:, :, channels:], d_bias + rows.sum(0)


convlstm.defvjp(_convlstm_fwd, _convlstm_bwd, symbolic_zeros=True)


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
        """``xs`` (T, B, H, W, C), time-major -> hidden states (T, B, H, W, features)."""
        k, f = self.kernel, self.features
        c = xs.shape[-1]
        init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
        w_in = self.param("input_kernel", init, (k, k, c, 4 * f))
        w_state = self.param("state_kernel", init, (k, k, f, 4 * f))
        # The forget gate starts open (bias 1), so that memory flows from the first update.
        bias = self.param(
            "bias", lambda _, shape: jnp.zeros(shape).at[f : 2 * f].set(1.0), (4 * f,)
        )
        return convlstm(xs, w_in, w_state, bias, ACTIVATIONS[self.activation])


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
        # Time-major inside: the scan runs over the leading axis, and transposing the narrow
        # inputs once is cheaper than transposing every layer's gates and states.
        xs = jnp.swapaxes(xs, 0, 1)
        for i in range(self.layers):
            if i > 0 and self.dropout > 0:
                xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
            xs = ConvLSTM(self.features, self.kernel, self.activation, name=f"layer_{i}")(xs)
        return xs[-1]
