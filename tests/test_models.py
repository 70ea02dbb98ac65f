"""ConvLSTM building blocks: the GEMM convolution and the recurrences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geocryo.models.convlstm import (
    ConvLSTM,
    StackedConvLSTM,
    conv2d,
    gather_neighbourhoods,
    neighbourhoods,
)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_gemm_convolution_equals_xla_convolution(kernel):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 9, 7, 5))
    w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, 5, 6))
    flat = x.reshape(6, 9, 7, 5)
    expected = jax.lax.conv_general_dilated(
        flat, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    ).reshape(2, 3, 9, 7, 6)
    np.testing.assert_allclose(conv2d(x, w), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_gemm_convolution_gradients_equal_xla_convolution_gradients(kernel):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 9, 7, 5))
    w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, 5, 6))

    def xla(x, w):
        flat = jax.lax.conv_general_dilated(
            x.reshape(6, 9, 7, 5), w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jnp.sum(jnp.sin(flat))

    ours = jax.grad(lambda x, w: jnp.sum(jnp.sin(conv2d(x, w))), (0, 1))(x, w)
    for got, expected in zip(ours, jax.grad(xla, (0, 1))(x, w), strict=True):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_gathering_neighbourhoods_is_the_transpose_of_laying_them_out(kernel):
    x = jax.random.normal(jax.random.PRNGKey(4), (2, 6, 5, 3))
    cols, transpose = jax.vjp(lambda v: neighbourhoods(v, kernel), x)
    cotangent = jax.random.normal(jax.random.PRNGKey(5), cols.shape)
    np.testing.assert_allclose(
        gather_neighbourhoods(cotangent, kernel), transpose(cotangent)[0], rtol=1e-5, atol=1e-5
    )


def test_convlstm_matches_a_hand_written_recurrence():
    xs = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 6, 5, 3))
    layer = ConvLSTM(features=4, kernel=3)
    params = layer.init(jax.random.PRNGKey(3), xs)
    hs = jnp.swapaxes(layer.apply(params, jnp.swapaxes(xs, 0, 1)), 0, 1)
    p = params["params"]

    def conv(a, w):
        return jax.lax.conv_general_dilated(
            a, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    h = c = jnp.zeros((2, 6, 5, 4))
    for t in range(4):
        gates = conv(xs[:, t], p["input_kernel"]) + conv(h, p["state_kernel"]) + p["bias"]
        i, f, o, g = np.split(np.asarray(gates), 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-4, atol=1e-5)
    assert np.all(np.asarray(p["bias"][4:8]) == 1.0)  # forget gate starts open


def test_stacked_encoder_shapes_parameters_and_dropout():
    xs = jnp.ones((3, 12, 8, 8, 5))
    model = StackedConvLSTM(features=16, layers=2, kernel=3, dropout=0.5)
    params = model.init(jax.random.PRNGKey(0), xs)
    out = model.apply(params, xs)
    assert out.shape == (3, 8, 8, 16)
    count = sum(p.size for p in jax.tree.leaves(params))
    # Per layer: 3x3 input kernel, 3x3 state kernel, bias, for 4 gates.
    assert count == (9 * 5 * 64 + 9 * 16 * 64 + 64) + (9 * 16 * 64 + 9 * 16 * 64 + 64)
    # Dropout acts only in training, and depends on the key.
    assert np.array_equal(out, model.apply(params, xs))
    a = model.apply(params, xs, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    b = model.apply(params, xs, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    assert not np.allclose(a, b)


def test_network_groups_heads_and_parameter_count():
    from geocryo.models.network import GeoCryoNet, count_parameters

    inputs = {
        "history": jnp.ones((2, 6, 8, 8, 6)),
        "forcing": jnp.ones((2, 6, 8, 8, 4)),
        "static": jnp.ones((2, 6, 8, 8, 3)),
    }
    net = GeoCryoNet(groups=tuple(inputs), targets=("alt", "ch4_flux", "co2_flux"), features=8)
    params = net.init(jax.random.PRNGKey(0), inputs)
    out = net.apply(params, inputs)
    assert out.shape == (2, 8, 8, 3)

    def lstm(c, f=8):
        return 9 * c * 4 * f + 9 * f * 4 * f + 4 * f

    encoders = lstm(6) + lstm(8) + lstm(4) + lstm(8)
    static = (9 * 3 * 8 + 8) + (9 * 8 * 8 + 8)
    fusion = 9 * 24 * 8 + 8
    heads = 3 * (8 + 1)
    skip = (6 + 4 + 3) * 3 + 3  # the last month's 13 channels, linearly to the 3 targets
    assert count_parameters(params) == encoders + static + fusion + heads + skip
    # The skip and the heads start at zero: the network's first prediction is 0.
    assert not np.asarray(out).any()
    plain = GeoCryoNet(groups=tuple(inputs), targets=net.targets, features=8, skip=False)
    plain_params = plain.init(jax.random.PRNGKey(0), inputs)
    assert count_parameters(plain_params) == encoders + static + fusion + heads
    assert np.asarray(plain.apply(plain_params, inputs)).any()
    with pytest.raises(KeyError, match="lack the groups"):
        net.apply(params, {"history": inputs["history"]})


def _reference_layer(xs, w_in, w_state, bias, act):
    """A ConvLSTM layer by ``lax.conv`` in a scan, differentiated by autodiff."""

    def conv(a, w):
        return jax.lax.conv_general_dilated(
            a, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    zero = jnp.zeros((*xs.shape[1:-1], w_state.shape[2]))

    def step(carry, x):
        h, c = carry
        i, f, o, g = jnp.split(conv(x, w_in) + conv(h, w_state) + bias, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * act(g)
        h = jax.nn.sigmoid(o) * act(c)
        return (h, c), h

    return jax.lax.scan(step, (zero, zero), xs)[1]


def _random_layers(key, channels, features, depth):
    layers = []
    for n in range(depth):
        k_in, k_state, k_bias = jax.random.split(jax.random.fold_in(key, n), 3)
        c = channels if n == 0 else features
        layers.append(
            (
                0.3 * jax.random.normal(k_in, (3, 3, c, 4 * features)),
                0.3 * jax.random.normal(k_state, (3, 3, features, 4 * features)),
                0.3 * jax.random.normal(k_bias, (4 * features,)),
            )
        )
    return tuple(layers)


def _assert_gradients_match(ours, reference, xs, layers, weights):
    def loss(fn):
        return lambda xs, layers: jnp.sum(weights * jnp.sin(fn(xs, layers)))

    np.testing.assert_allclose(ours(xs, layers), reference(xs, layers), rtol=1e-5, atol=1e-5)
    expected = jax.grad(loss(reference), argnums=(0, 1))(xs, layers)
    got = jax.grad(loss(ours), argnums=(0, 1))(xs, layers)
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
    # With the inputs held fixed (data), the backward leaves their gradient out.
    kernels_only = jax.grad(loss(ours), argnums=1)(xs, layers)
    for e, g in zip(jax.tree.leaves(expected[1]), jax.tree.leaves(kernels_only), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "softsign"])
@pytest.mark.parametrize("steps", [5, 1])  # one step: the first, from zero state, alone
def test_handwritten_gradient_equals_autodiff_through_the_scan(activation, steps):
    from geocryo.models.convlstm import ACTIVATIONS, convlstm

    act = ACTIVATIONS[activation]
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    xs = jax.random.normal(keys[0], (steps, 2, 6, 5, 2))
    layers = _random_layers(keys[1], 2, 3, 1)
    weights = jax.random.normal(keys[2], (steps, 2, 6, 5, 3))
    _assert_gradients_match(
        lambda xs, layers: convlstm(xs, *layers[0], act),
        lambda xs, layers: _reference_layer(xs, *layers[0], act),
        xs,
        layers,
        weights,
    )


@pytest.mark.parametrize(("depth", "steps"), [(2, 5), (3, 4), (3, 2), (2, 1)])
@pytest.mark.parametrize("dropout", [False, True])
def test_wavefront_equals_the_layers_run_one_after_another(depth, steps, dropout):
    """The layers' wavefront, ramps included, gives what running them in turn gives."""
    from geocryo.models.convlstm import stacked_convlstm

    keys = jax.random.split(jax.random.PRNGKey(5), 4)
    xs = jax.random.normal(keys[0], (steps, 2, 6, 5, 2))
    layers = _random_layers(keys[1], 2, 3, depth)
    weights = jax.random.normal(keys[2], (steps, 2, 6, 5, 3))
    keeps = ()
    if dropout:
        shape = (steps, 2, 6, 5, 3)
        keeps = tuple(
            jax.random.bernoulli(jax.random.fold_in(keys[3], n), 0.7, shape) / 0.7
            for n in range(depth - 1)
        )

    def in_turn(xs, layers):
        for n, layer in enumerate(layers):
            xs = _reference_layer(xs * keeps[n - 1] if n and keeps else xs, *layer, jnp.tanh)
        return xs

    _assert_gradients_match(
        lambda xs, layers: stacked_convlstm(xs, layers, keeps, jnp.tanh),
        in_turn,
        xs,
        layers,
        weights,
    )
