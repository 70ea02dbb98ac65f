r"""Convolutional LSTMs in Flax, with the 3 x 3 convolutions done as matrix products.

XLA's CPU convolutions are slow at ConvLSTM sizes (a few to tens of channels on small patches), so
every convolution here is an "im2col" product: the k x k neighbourhood of each cell is laid out
along the channel axis (:func:`neighbourhoods`, written :math:`N` below) and multiplied by a
(k k C_in, C_out) matrix, which XLA runs as one large GEMM on any backend. The transpose of
:math:`N`, which sums each cell's share of its neighbours' columns back onto it, is
:func:`gather_neighbourhoods`, written :math:`N^T`.

Forward recurrence
------------------
A layer with input channels C and F hidden channels has input kernel :math:`W_x` (k, k, C, 4F),
state kernel :math:`W_h` (k, k, F, 4F) and bias :math:`b` (4F,), stacked into one matrix
:math:`W = [W_x; W_h]` of shape (k k (C + F), 4F) whose rows follow the neighbourhood columns of
:math:`[x, h]`. From zero state, :math:`h_{-1} = c_{-1} = 0`, each step :math:`t = 0 .. T-1` is

.. math::

    z_t &= [x_t, h_{t-1}], \qquad a_t = N(z_t)\, W + b
      \quad \text{(one GEMM; } a_t = [a^i_t, a^f_t, a^o_t, a^g_t]\text{)},\\
    i_t, f_t, o_t &= \sigma(a^i_t), \sigma(a^f_t), \sigma(a^o_t), \qquad g_t = \phi(a^g_t),\\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \phi(c_t),

with :math:`\phi` the cell activation (:data:`ACTIVATIONS`). Layer :math:`l > 0` reads
:math:`x^l_t = m^{l-1}_t \odot h^{l-1}_t`, with :math:`m` the dropout factors (0 or 1 / keep
probability; 1 without dropout). The loop carries each layer's :class:`_State`
:math:`(h_{t-1}, c_{t-1})` and fills its :class:`_Saved` buffers :math:`h_t, a_t, c_t` for all t
(the gates are recomputed from :math:`a_t`; the columns :math:`N(z_t)` are not kept).

Wavefront
---------
The L layers run in one loop of T + L - 1 passes: pass s does layer n's step t = s - n, reading
layer n - 1's :math:`h_t` from the state before the pass (computed in pass s - 1). The work of
one pass is independent across layers. The first and last L - 1 passes, where some layers have
no step, are unrolled; the others run in a ``fori_loop`` (:func:`_sweep`).

Adjoint
-------
Given the top layer's output gradient :math:`\bar h^{out}_t = \partial \ell / \partial h^L_t`
(and, below it, :math:`\bar h^{out, l}_t = m^l_t \odot \bar x^{l+1}_t`), backpropagation
through time runs for :math:`t = T-1 .. 0` with :math:`\rho h_{T-1} = \rho c_{T-1} = 0`:

.. math::

    \delta h_t &= \bar h^{out}_t + \rho h_t, \qquad
    \delta c_t = \rho c_t + \delta h_t \odot o_t \odot \phi'(c_t),\\
    \bar a_t &= [\delta c_t \odot g_t \odot i_t (1 - i_t),\;
                 \delta c_t \odot c_{t-1} \odot f_t (1 - f_t),\;
                 \delta h_t \odot \phi(c_t) \odot o_t (1 - o_t),\;
                 \delta c_t \odot i_t \odot \phi'(a^g_t)],\\
    [\bar x_t, \rho h_{t-1}] &= N^T(\bar a_t W^T), \qquad \rho c_{t-1} = \delta c_t \odot f_t,\\
    \bar W &\mathrel{+}= N(z_t)^T \bar a_t, \qquad \bar b \mathrel{+}= \textstyle\sum \bar a_t,

sums over batch and cells. The reverse loop carries, per layer, the :class:`_BackwardCarry`:
:math:`\rho h` (``dh``), :math:`\rho c` (``dc``), the accumulated :math:`\bar W` (``dkernel``),
:math:`\bar W_x` from step 0 (``dfirst``) and :math:`\bar b` (``dbias``); also each layer's last
:math:`\bar x_t` (``down``, for the layer below) and the buffer of :math:`\bar x^0` (``dxs``). It
reads from the saved forward :math:`a_t, c_t, c_{t-1}` and, to rebuild :math:`N(z_t)`,
:math:`h_{t-1}` and the layer's input (the layer below's :math:`h_t` times :math:`m_t`). Per
step no array of size T x B x H x W x 4F is built, only the step's own.

The first step is special: with :math:`h_{-1} = c_{-1} = 0` the state rows of :math:`N(z_0)`
are zero, so :math:`\bar W_h` gets nothing from it, :math:`\bar a^f_0 = 0`, and
:math:`\rho h_{-1}, \rho c_{-1}` (the gradient of the constant initial state) are not wanted.
Step 0 is therefore done with :math:`W_x` alone: :math:`\bar W_x \mathrel{+}= N(x_0)^T \bar a_0`
(``dfirst``, added to the input rows of :math:`\bar W` after the loop) and
:math:`\bar x_0 = N^T(\bar a_0 W_x^T)`. Each layer's step 0 falls in the trailing, unrolled
passes, so this is a static branch.

The reverse wavefront mirrors the forward one: pass r does layer n's step
t = T - 1 - r + (L - 1 - n), so the layer below works one step behind, on the :math:`\bar x_t`
that the layer above passed down in the pass before. With symbolic zeros, where ``xs`` is not
differentiated (data, as a network's first layer reads) :math:`\bar x^0` is not computed: that
layer multiplies by :math:`W_h^T` alone and ``dxs`` is None. The dropout factors get no gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

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


Layer = tuple[jax.Array, jax.Array, jax.Array]  # (input_kernel, state_kernel, bias)


class _State(NamedTuple):
    """A layer's state between steps: hidden :math:`h_{t-1}` and cell :math:`c_{t-1}`."""

    h: jax.Array
    c: jax.Array


class _Saved(NamedTuple):
    """A layer's saved forward pass: (T, ...) buffers of :math:`h_t`, :math:`a_t`, :math:`c_t`."""

    h: jax.Array
    gates: jax.Array
    c: jax.Array


class _ForwardCarry(NamedTuple):
    """The forward wavefront's loop carry: per layer, its state and its saved buffers."""

    state: tuple[_State, ...]
    saved: tuple[_Saved, ...]


class _BackwardCarry(NamedTuple):
    r"""The reverse wavefront's loop carry, fields but ``dxs`` tuples over layers (module doc).

    ``dh``, ``dc`` are :math:`\rho h_{t-1}, \rho c_{t-1}`, the gradients of the state the
    layer's last step started from; ``dkernel`` the accumulated gradient of the stacked ``[x, h]``
    kernel matrix, ``dfirst`` the input kernel's from step 0, ``dbias`` the bias's. ``down`` holds
    the gradient of each layer's input at the step it did last, for the layer below (None for the
    first layer). ``dxs``, not per layer, is the (T, ...) gradient of ``xs``, or None where ``xs``
    is not differentiated.
    """

    dh: tuple[jax.Array, ...]
    dc: tuple[jax.Array, ...]
    dkernel: tuple[jax.Array, ...]
    dfirst: tuple[jax.Array, ...]
    dbias: tuple[jax.Array, ...]
    down: tuple[jax.Array | None, ...]
    dxs: jax.Array | None


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

    The gradient is written out (backpropagation through time by hand, as the module docstring
    states it), in one reverse wavefront. Per layer and step it computes the gates' gradient,
    the gradient of ``[x_t, h_{t-1}]`` (one GEMM and :func:`gather_neighbourhoods`) and adds the
    step's share of the kernel gradient (one GEMM), so that no array of size T x B x H x W x 4F
    is built but the gates' pre-activations the forward pass keeps. A layer's first step, from
    zero state, leaves out the state's part: the state kernel's gradient and the state's gradient
    there are zero. Where ``xs`` is not differentiated (data, as a network's first layer reads),
    its gradient is not computed.
    """
    return _forward(xs, layers, keeps, act)[-1].h


def _forward(xs, layers, keeps, act) -> tuple[_Saved, ...]:
    """The forward wavefront: each layer's hidden states, gates' pre-activations and cell states."""
    steps, depth, k = xs.shape[0], len(layers), layers[0][0].shape[0]
    matrices = [_stacked_kernel(w_in, w_state) for w_in, w_state, _ in layers]
    biases = [bias for _, _, bias in layers]
    cells = xs.shape[1:-1]

    def zeros(*shape):
        return jnp.zeros(shape, xs.dtype)

    features = [w_state.shape[2] for _, w_state, _ in layers]  # F per layer
    carry = _ForwardCarry(
        state=tuple(_State(h=zero, c=zero) for zero in (zeros(*cells, f) for f in features)),
        saved=tuple(
            _Saved(
                h=zeros(steps, *cells, f),
                gates=zeros(steps, *cells, 4 * f),
                c=zeros(steps, *cells, f),
            )
            for f in features
        ),
    )

    def wave(s, carry: _ForwardCarry, ramp) -> _ForwardCarry:
        """Layer n's step s - n, for each layer that has one, from the state before ``s``."""
        before = carry.state
        state, saved = list(before), list(carry.saved)
        for n in range(depth):
            if ramp and not 0 <= s - n < steps:
                continue
            t = s - n
            x_t = xs[t] if n == 0 else before[n - 1].h
            if n > 0 and keeps:
                x_t = x_t * keeps[n - 1][t]
            gates = _columns(x_t, before[n].h, k) @ matrices[n] + biases[n]
            i, f, o, g = _activations(gates, act)
            c = f * before[n].c + i * g
            h = o * act(c)
            state[n] = _State(h=h, c=c)
            buffers = saved[n]
            saved[n] = _Saved(
                h=_put(buffers.h, h, t),
                gates=_put(buffers.gates, gates, t),
                c=_put(buffers.c, c, t),
            )
        return _ForwardCarry(state=tuple(state), saved=tuple(saved))

    return _sweep(wave, carry, steps + depth - 1, (depth - 1, steps)).saved


def _stacked_fwd(xs, layers, keeps, act):
    # With symbolic zeros, each argument comes with whether it is differentiated. The inputs of
    # a network's first layer are data, and their gradient (a GEMM and a gather per step) is
    # left out; whether it is wanted travels in the residuals' structure: () or None.
    wanted = () if xs.perturbed else None
    xs, layers, keeps = jax.tree.map(lambda a: a.value, (xs, layers, keeps))
    saved = _forward(xs, layers, keeps, act)
    return saved[-1].h, (xs, layers, keeps, saved, wanted)


def _stacked_bwd(act, residuals, d_top):
    xs, layers, keeps, saved, wanted = residuals
    input_kernels = [w_in for w_in, _, _ in layers]
    state_kernels = [w_state for _, w_state, _ in layers]
    steps, depth, k = xs.shape[0], len(layers), input_kernels[0].shape[0]
    widths = [w.shape[-1] for w in input_kernels]  # 4F
    channels = [w.shape[2] for w in input_kernels]  # C_in
    matrices = [_stacked_kernel(w_in, w_state) for w_in, w_state, _ in layers]
    # Layer n > 0 passes its input's gradient down; the first layer only if xs is differentiated.
    passes = [n > 0 or wanted is not None for n in range(depth)]
    # W^T, or W_h^T alone where the input's gradient is not wanted.
    transposed = [
        matrices[n].T if passes[n] else state_kernels[n].reshape(-1, widths[n]).T
        for n in range(depth)
    ]

    def inputs(n, t):
        """Layer n's input at step t, as the forward pass read it."""
        if n == 0:
            return xs[t]
        return saved[n - 1].h[t] * keeps[n - 1][t] if keeps else saved[n - 1].h[t]

    def gates_gradient(dh_out, dh_next, dc_next, gates, c, c_before):
        r"""A step's :math:`\bar a_t` and :math:`\rho c_{t-1}`; ``dh_next``, ``dc_next`` are
        :math:`\rho h_t, \rho c_t`, ``c_before`` is :math:`c_{t-1}`."""
        i, f, o, g = _activations(gates, act)
        raw_g = jnp.split(gates, 4, axis=-1)[3]
        dh = dh_out + dh_next
        dc = dc_next + dh * o * _derivative(act, c)
        d_gates = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_before * f * (1 - f),
                dh * act(c) * o * (1 - o),
                dc * i * _derivative(act, raw_g),
            ],
            axis=-1,
        )
        return d_gates, dc * f

    def wave(r, carry: _BackwardCarry, ramp) -> _BackwardCarry:
        """Layer n's step T - 1 - r + (L - 1 - n), for each layer that has one."""
        dh, dc = list(carry.dh), list(carry.dc)
        dkernel, dfirst, dbias = list(carry.dkernel), list(carry.dfirst), list(carry.dbias)
        down, dxs = list(carry.down), carry.dxs
        for n in range(depth):
            t = steps - 1 - r + depth - 1 - n
            if ramp and not 0 <= t < steps:
                continue
            forward = saved[n]
            if n == depth - 1:
                dh_out = d_top[t]
            else:  # what layer n + 1 passed down in the pass before, at the same step
                passed = carry.down[n + 1]
                dh_out = passed * keeps[n][t] if keeps else passed
            first = ramp and t == 0  # from zero state: no state part
            c_before = jnp.zeros_like(forward.c[0]) if first else forward.c[t - 1]
            d_gates, dc[n] = gates_gradient(
                dh_out, carry.dh[n], carry.dc[n], forward.gates[t], forward.c[t], c_before
            )
            rows = d_gates.reshape(-1, widths[n])
            dbias[n] = dbias[n] + rows.sum(0)
            if first:
                columns = neighbourhoods(inputs(n, t), k).reshape(rows.shape[0], -1)
                dfirst[n] = dfirst[n] + columns.T @ rows
                d_x = None
                if passes[n]:
                    back = input_kernels[n].reshape(-1, widths[n]).T  # W_x^T
                    d_x = gather_neighbourhoods(d_gates @ back, k)
                dh[n] = jnp.zeros_like(carry.dh[n])
            else:
                columns = _columns(inputs(n, t), forward.h[t - 1], k).reshape(rows.shape[0], -1)
                dkernel[n] = dkernel[n] + columns.T @ rows
                d_xh = gather_neighbourhoods(d_gates @ transposed[n], k)
                split = channels[n] if passes[n] else 0
                d_x = d_xh[..., :split] if passes[n] else None
                dh[n] = d_xh[..., split:]
            if n > 0:
                down[n] = d_x
            elif d_x is not None:
                dxs = _put(dxs, d_x, t)
        return _BackwardCarry(
            dh=tuple(dh),
            dc=tuple(dc),
            dkernel=tuple(dkernel),
            dfirst=tuple(dfirst),
            dbias=tuple(dbias),
            down=tuple(down),
            dxs=dxs,
        )

    zeros = tuple(jnp.zeros_like(saved[n].h[0]) for n in range(depth))
    carry = _BackwardCarry(
        dh=zeros,
        dc=zeros,
        dkernel=tuple(jnp.zeros_like(m) for m in matrices),
        dfirst=tuple(jnp.zeros((k * k * channels[n], widths[n]), xs.dtype) for n in range(depth)),
        dbias=tuple(jnp.zeros(w, xs.dtype) for w in widths),
        down=(None, *(jnp.zeros_like(saved[n - 1].h[0]) for n in range(1, depth))),
        dxs=jnp.zeros_like(xs) if wanted is not None else None,
    )
    # Every layer's first step falls in the trailing ramp: the loop stops before pass T - 1,
    # the top layer's.
    carry = _sweep(wave, carry, steps + depth - 1, (depth - 1, steps - 1))
    grads = []
    for n, input_kernel in enumerate(input_kernels):
        d_kernels = carry.dkernel[n].reshape(k, k, -1, widths[n])
        d_input = d_kernels[:, :, : channels[n]] + carry.dfirst[n].reshape(input_kernel.shape)
        grads.append((d_input, d_kernels[:, :, channels[n] :], carry.dbias[n]))
    return carry.dxs, tuple(grads), tuple(None for _ in keeps)


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
