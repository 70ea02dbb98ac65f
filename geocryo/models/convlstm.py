"""Convolutional LSTMs in Flax, with the 3 x 3 convolutions done as matrix products.

XLA's CPU convolutions are slow at ConvLSTM sizes (a few to tens of channels on small patches), so
every convolution here is an "im2col" product: the k x k neighbourhood of each cell is laid out
along the channel axis and multiplied by a (k k C_in, C_out) matrix, which XLA runs as one large
GEMM on any backend. A layer's step convolves its input and its previous hidden state together,
as one product over the neighbourhoods of both. Stacked layers run as a wavefront in one loop,
and their gradient is written out, one reverse loop that keeps every array a step touches small
(see :func:`stacked_convlstm`).
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
    "stacked_convlstm",
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


def _derivative(act, x):
    """Elementwise derivative of ``act`` at ``x``."""
    return jax.jvp(act, (x,), (jnp.ones_like(x),))[1]


def _put(buffer: jax.Array, value: jax.Array, t) -> jax.Array:
    """``buffer`` with ``value`` written at step ``t`` (in place inside a loop)."""
    return jax.lax.dynamic_update_index_in_dim(buffer, value, t, 0)


def _sweep(wave, carry, passes: int, loop: tuple[int, int]):
    """``carry`` after ``wave(s, carry, ramp)`` for ``s`` in ``range(passes)``, in order.

    The passes in ``range(*loop)`` run in a ``fori_loop`` with ``ramp`` False: there every layer
    has a step to do, and none is at its first. The ramps on either side, where some layers have
    none, are unrolled, with ``s`` a Python int and ``ramp`` True.
    """
    start, stop = loop
    for s in range(min(start, passes)):
        carry = wave(s, carry, True)
    if stop > start:
        carry = jax.lax.fori_loop(start, stop, lambda s, c: wave(s, c, False), carry)
    for s in range(max(stop, start), passes):
        carry = wave(s, carry, True)
    return carry


Layer = tuple[jax.Array, jax.Array, jax.Array]


def convlstm(
    xs: jax.Array, input_kernel: jax.Array, state_kernel: jax.Array, bias: jax.Array, act
) -> jax.Array:
    """One convolutional LSTM layer over time, from zero state: :func:`stacked_convlstm` of one.

    ``xs`` (T, B, H, W, C) is time-major; ``input_kernel`` (k, k, C, 4F) and ``state_kernel``
    (k, k, F, 4F) are the gate convolutions, ``bias`` (4F,) their bias, gates ordered (input,
    forget, output, candidate); ``act`` the cell activation. Returns the hidden states
    (T, B, H, W, F).
    """
    return stacked_convlstm(xs, ((input_kernel, state_kernel, bias),), (), act)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def stacked_convlstm(
    xs: jax.Array, layers: tuple[Layer, ...], keeps: tuple[jax.Array, ...], act
) -> jax.Array:
    """Stacked convolutional LSTM layers over time, each from zero state.

    ``xs`` (T, B, H, W, C) is time-major. ``layers`` holds each layer's ``(input_kernel,
    state_kernel, bias)``: kernels (k, k, C_in, 4F) and (k, k, F, 4F), bias (4F,), gates ordered
    (input, forget, output, candidate). ``keeps`` holds, for each pair of adjacent layers, the
    factors (T, B, H, W, F) the lower layer's hidden states are multiplied by on their way up
    (dropout: 0 or 1 / keep probability), or is empty for none. ``act`` is the cell activation.
    Returns the top layer's hidden states (T, B, H, W, F).

    Each step of a layer convolves ``[x_t, h_{t-1}]`` with both its kernels at once, as one GEMM
    over the neighbourhoods of the ``C + F`` channels. The layers run as a wavefront, in one
    loop: while layer l computes step t, layer l + 1 computes step t - 1 from the state layer l
    had before. Their work in one pass of the loop is independent, and the loop runs T + L - 1
    times rather than L T, which on XLA's CPU backend saves about a tenth of a two-layer
    training step (``benchmarks/bench_train.py``).

    The gradient is written out (backpropagation through time by hand), in one reverse
    wavefront. Per layer and step it computes the gates' gradient, the gradient of
    ``[x_t, h_{t-1}]`` (one GEMM and :func:`gather_neighbourhoods`) and adds the step's share of
    the kernel gradient (one GEMM), so that no array of size T x B x H x W x 4F is built but the
    gates' pre-activations the forward pass keeps. A layer's first step, from zero state, leaves
    out the state's part: the state kernel's gradient and the state's gradient there are zero.
    Where ``xs`` is not differentiated (data, as a network's first layer reads), its gradient is
    not computed.
    """
    return _forward(xs, layers, keeps, act)[-1][0]


def _forward(xs, layers, keeps, act):
    """The forward wavefront: each layer's hidden states, gates' pre-activations and cell states."""
    steps, depth, k = xs.shape[0], len(layers), layers[0][0].shape[0]
    matrices = [_stacked_kernel(w_in, w_state) for w_in, w_state, _ in layers]
    cells = xs.shape[1:-1]
    state = [(jnp.zeros((*cells, w.shape[2]), xs.dtype),) * 2 for _, w, _ in layers]
    saved = [
        tuple(jnp.zeros((steps, *cells, n * w.shape[2]), xs.dtype) for n in (1, 4, 1))
        for _, w, _ in layers
    ]

    def wave(s, carry, ramp):
        """Layer n's step s - n, for each layer that has one, from the state before ``s``."""
        before, saved = carry
        state, saved = list(before), list(saved)
        for n in range(depth):
            if ramp and not 0 <= s - n < steps:
                continue
            t = s - n
            x_t = xs[t] if n == 0 else before[n - 1][0]
            if n > 0 and keeps:
                x_t = x_t * keeps[n - 1][t]
            h, c = before[n]
            gates = _columns(x_t, h, k) @ matrices[n] + layers[n][2]
            i, f, o, g = _activations(gates, act)
            c = f * c + i * g
            h = o * act(c)
            state[n] = (h, c)
            saved[n] = tuple(_put(a, v, t) for a, v in zip(saved[n], (h, gates, c), strict=True))
        return state, saved

    return _sweep(wave, (state, saved), steps + depth - 1, (depth - 1, steps))[1]


def _stacked_fwd(xs, layers, keeps, act):
    # With symbolic zeros, each argument comes with whether it is differentiated. The inputs of
    # a network's first layer are data, and their gradient (a GEMM and a gather per step) is
    # left out; whether it is wanted travels in the residuals' structure: () or None.
    wanted = () if xs.perturbed else None
    xs, layers, keeps = jax.tree.map(lambda a: a.value, (xs, layers, keeps))
    saved = _forward(xs, layers, keeps, act)
    return saved[-1][0], (xs, layers, keeps, saved, wanted)


def _stacked_bwd(act, residuals, d_top):
    xs, layers, keeps, saved, wanted = residuals
    steps, depth, k = xs.shape[0], len(layers), layers[0][0].shape[0]
    widths = [w.shape[-1] for w, _, _ in layers]
    channels = [w.shape[2] for w, _, _ in layers]
    matrices = [_stacked_kernel(w_in, w_state) for w_in, w_state, _ in layers]
    # Layer n > 0 passes its input's gradient down; the first layer only if xs is differentiated.
    passes = [n > 0 or wanted is not None for n in range(depth)]
    transposed = [
        matrices[n].T if passes[n] else layers[n][1].reshape(-1, widths[n]).T for n in range(depth)
    ]

    def inputs(n, t):
        if n == 0:
            return xs[t]
        return saved[n - 1][0][t] * keeps[n - 1][t] if keeps else saved[n - 1][0][t]

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

    def wave(r, carry, ramp):
        """Layer n's step T - 1 - r + (L - 1 - n), for each layer that has one."""
        dh_next, dc_next, passed_down = carry[0], carry[1], carry[5]
        dh, dc, d_matrix, d_first, d_bias, down, d_xs = (list(part) for part in carry)
        for n in range(depth):
            t = steps - 1 - r + depth - 1 - n
            if ramp and not 0 <= t < steps:
                continue
            hs, gates, cs = saved[n]
            if n == depth - 1:
                dh_out = d_top[t]
            else:  # what layer n + 1 passed down in the pass before, at the same step
                dh_out = passed_down[n + 1] * keeps[n][t] if keeps else passed_down[n + 1]
            first = ramp and t == 0  # from zero state: no state part
            cp = jnp.zeros_like(cs[0]) if first else cs[t - 1]
            d_gates, dc[n] = gates_gradient(dh_out, dh_next[n], dc_next[n], gates[t], cs[t], cp)
            rows = d_gates.reshape(-1, widths[n])
            d_bias[n] = d_bias[n] + rows.sum(0)
            if first:
                columns = neighbourhoods(inputs(n, t), k).reshape(rows.shape[0], -1)
                d_first[n] = d_first[n] + columns.T @ rows
                d_x = None
                if passes[n]:
                    back = layers[n][0].reshape(-1, widths[n]).T
                    d_x = gather_neighbourhoods(d_gates @ back, k)
                dh[n] = jnp.zeros_like(dh_next[n])
            else:
                columns = _columns(inputs(n, t), hs[t - 1], k).reshape(rows.shape[0], -1)
                d_matrix[n] = d_matrix[n] + columns.T @ rows
                d_xh = gather_neighbourhoods(d_gates @ transposed[n], k)
                split = channels[n] if passes[n] else 0
                d_x = d_xh[..., :split] if passes[n] else None
                dh[n] = d_xh[..., split:]
            if n > 0:
                down[n] = d_x
            elif d_x is not None:
                d_xs[0] = _put(d_xs[0], d_x, t)
        return tuple(tuple(part) for part in (dh, dc, d_matrix, d_first, d_bias, down, d_xs))

    zeros = tuple(jnp.zeros_like(saved[n][0][0]) for n in range(depth))
    carry = (
        zeros,
        zeros,
        tuple(jnp.zeros_like(m) for m in matrices),
        tuple(jnp.zeros((k * k * channels[n], widths[n]), xs.dtype) for n in range(depth)),
        tuple(jnp.zeros(w, xs.dtype) for w in widths),
        (None, *(jnp.zeros_like(saved[n - 1][0][0]) for n in range(1, depth))),
        (jnp.zeros_like(xs),) if wanted is not None else (),
    )
    # The top layer's first step (pass T - 1) is a ramp pass: the loop stops before it.
    carry = _sweep(wave, carry, steps + depth - 1, (depth - 1, steps - 1))
    _, _, d_matrix, d_first, d_bias, _, d_xs = carry
    grads = []
    for n, (input_kernel, _, _) in enumerate(layers):
        d_kernels = d_matrix[n].reshape(k, k, -1, widths[n])
        d_input = d_kernels[:, :, : channels[n]] + d_first[n].reshape(input_kernel.shape)
        grads.append((d_input, d_kernels[:, :, channels[n] :], d_bias[n]))
    return (d_xs[0] if d_xs else None), tuple(grads), tuple(None for _ in keeps)


stacked_convlstm.defvjp(_stacked_fwd, _stacked_bwd, symbolic_zeros=True)


def _parameters(module: nn.Module, channels: int, features: int, kernel: int) -> Layer:
    """A layer's ``(input_kernel, state_kernel, bias)``, made in ``module``'s scope."""
    k, f = kernel, features
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
    w_in = module.param("input_kernel", init, (k, k, channels, 4 * f))
    w_state = module.param("state_kernel", init, (k, k, f, 4 * f))
    # The forget gate starts open (bias 1), so that memory flows from the first update.
    bias = module.param("bias", lambda _, shape: jnp.zeros(shape).at[f : 2 * f].set(1.0), (4 * f,))
    return w_in, w_state, bias


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
        layer = _parameters(self, xs.shape[-1], self.features, self.kernel)
        return convlstm(xs, *layer, ACTIVATIONS[self.activation])


class _LayerParameters(nn.Module):
    """The parameters of one layer of :class:`StackedConvLSTM`, named as :class:`ConvLSTM`'s."""

    features: int
    kernel: int

    @nn.compact
    def __call__(self, channels: int) -> Layer:
        return _parameters(self, channels, self.features, self.kernel)


class StackedConvLSTM(nn.Module):
    """Layers of :class:`ConvLSTM`, with dropout between them; returns the last hidden state.

    The layers run together, as :func:`stacked_convlstm`'s wavefront; their parameters are
    named as :class:`ConvLSTM` layers ``layer_0``, ``layer_1``, ... would be.

    Attributes
    ----------
    features, layers, kernel, activation
        Hidden channels per layer, number of layers, kernel size, cell activation.
    dropout
        Dropout rate on the hidden sequence between layers (training only; its random numbers
        come from the ``"dropout"`` stream).
    """

    features: int = 16
    layers: int = 2
    kernel: int = 3
    activation: str = "tanh"
    dropout: float = 0.0

    @nn.compact
    def __call__(self, xs: jax.Array, *, train: bool = False) -> jax.Array:
        """``xs`` (B, T, H, W, C) -> the last layer's final state (B, H, W, features)."""
        # Time-major inside: the loop runs over the leading axis, and transposing the narrow
        # inputs once is cheaper than transposing every layer's gates and states.
        xs = jnp.swapaxes(xs, 0, 1)
        layers = tuple(
            _LayerParameters(self.features, self.kernel, name=f"layer_{i}")(
                xs.shape[-1] if i == 0 else self.features
            )
            for i in range(self.layers)
        )
        keeps = ()
        if train and self.dropout > 0:
            keep = 1.0 - self.dropout
            shape = (*xs.shape[:-1], self.features)
            keeps = tuple(
                jax.random.bernoulli(self.make_rng("dropout"), keep, shape).astype(xs.dtype) / keep
                for _ in range(self.layers - 1)
            )
        return stacked_convlstm(xs, layers, keeps, ACTIVATIONS[self.activation])[-1]
