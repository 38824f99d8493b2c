"""Tape gradients of RNNPool2D equal central finite differences (float64).

For every entry of every weight (including zeta and nu, and low-rank factors)
and of the input: loss = sum(layer(x) * R) for a fixed random R, weights drawn
at random (matrices / biases ~ 0.5 * N(0, 1), zeta / nu ~ U(-2, 2)).
"""

import numpy as np
import pytest
import tensorflow as tf

from layer_weights import layer_variables, randomize_layer_weights
from rnnpool_keras.spec.float_reference import rnnpool_reference

EPS = 1e-6
RTOL = ATOL = 1e-6

CASES = [
    ("full_rank_sigmoid_gate_tanh_update_nonsquare_overlapping_valid",
     dict(x_shape=(2, 4, 5, 2), rnn1_units=3, rnn2_units=2, pool_size=(2, 3),
          strides=(1, 2), padding="valid")),
    ("low_rank_all_four_matrices_same_padding_channels_first",
     dict(x_shape=(2, 2, 5, 4), rnn1_units=3, rnn2_units=2, pool_size=(3, 2),
          strides=(2, 1), padding="same", data_format="channels_first",
          rnn1_kernel_rank=1, rnn1_recurrent_rank=2, rnn2_kernel_rank=2,
          rnn2_recurrent_rank=1)),
    ("full_rank_tanh_gate_sigmoid_update_same_padding_stride_gt_pool",
     dict(x_shape=(1, 5, 5, 2), rnn1_units=2, rnn2_units=3, pool_size=2, strides=3,
          padding="same", gate_activation="tanh", update_activation="sigmoid")),
]


def _build(RNNPool2D, seed, x_shape, **kwargs):
    layer = RNNPool2D(dtype="float64", **kwargs)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=x_shape)
    out = layer(tf.constant(x))
    assert out.dtype == tf.float64
    for var in layer.weights:
        assert var.dtype == tf.float64 or getattr(var.dtype, "name", var.dtype) == "float64"
    randomize_layer_weights(layer, rng)
    weight = rng.normal(size=tuple(out.shape))  # the fixed random tensor R
    return layer, x, tf.constant(weight)


def _numeric_grad(loss, value, set_value):
    """Central differences of loss() w.r.t. every entry of `value` (restored after)."""
    value = np.array(value, dtype=np.float64)
    grad = np.zeros_like(value)
    for idx in np.ndindex(*value.shape):
        orig = value[idx]
        value[idx] = orig + EPS
        set_value(value)
        plus = loss()
        value[idx] = orig - EPS
        set_value(value)
        minus = loss()
        value[idx] = orig
        grad[idx] = (plus - minus) / (2 * EPS)
    set_value(value)
    return grad


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_tape_gradients_of_every_weight_and_input_match_central_differences(framework, case):
    _, RNNPool2D = framework
    case = dict(case)
    layer, x, weight = _build(RNNPool2D, 1234, case.pop("x_shape"), **case)
    variables = layer_variables(layer)
    # zeta / nu are trainable by default, and every weight is a named attribute.
    assert {id(v) for v in layer.trainable_weights} == {id(v) for v in variables.values()}
    # Only the int8 range trackers (not part of the float function) are frozen.
    assert {id(v) for v in layer.non_trainable_weights} == {
        id(getattr(layer, name + "_range")) for name in
        ("rnn1_preactivation", "rnn1_state", "rnn2_preactivation", "rnn2_state")}

    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        loss = tf.reduce_sum(layer(x_t) * weight)
    names = sorted(variables)
    grads = tape.gradient(loss, [x_t] + [variables[n] for n in names])
    assert all(g is not None for g in grads)
    tape_grads = {"input": np.asarray(grads[0])}
    tape_grads.update({n: np.asarray(g) for n, g in zip(names, grads[1:])})

    graph_loss = tf.function(lambda t: tf.reduce_sum(layer(t) * weight))
    x_current = [x]

    def loss_value():
        return float(graph_loss(tf.constant(x_current[0])))

    # The loss the gradient is taken of is the reference's loss (sanity).
    fmt = case.get("data_format", "channels_last")
    ref = rnnpool_reference(x, {n: np.asarray(v) for n, v in variables.items()},
                            case["pool_size"], case.get("strides"), case["padding"], fmt,
                            case.get("gate_activation", "sigmoid"),
                            case.get("update_activation", "tanh"))
    np.testing.assert_allclose(loss_value(), np.sum(ref * np.asarray(weight)), rtol=1e-12,
                               atol=1e-10)

    def set_x(v):
        x_current[0] = v.copy()

    numeric = {"input": _numeric_grad(loss_value, x, set_x)}
    for name in names:
        var = variables[name]
        numeric[name] = _numeric_grad(loss_value, np.asarray(var), var.assign)

    for name, num in numeric.items():
        assert tape_grads[name].shape == num.shape, name
        np.testing.assert_allclose(tape_grads[name], num, rtol=RTOL, atol=ATOL,
                                   err_msg="gradient of " + name)
    for name in ("rnn1_zeta", "rnn1_nu", "rnn2_zeta", "rnn2_nu"):
        assert abs(tape_grads[name]) > 1e-3, name + " gradient unexpectedly ~0"


def test_freeze_zeta_nu_removes_zeta_and_nu_from_trainable_weights(framework):
    _, RNNPool2D = framework
    layer = RNNPool2D(rnn1_units=3, rnn2_units=2, pool_size=2, freeze_zeta_nu=True,
                      rnn1_kernel_rank=2)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 4, 4, 2)), tf.float32)
    layer(x)
    scalars = [getattr(layer, p + s) for p in ("rnn1_", "rnn2_") for s in ("zeta", "nu")]
    trainable = {id(v) for v in layer.trainable_weights}
    assert not trainable & {id(v) for v in scalars}
    ranges = [w for w in layer.non_trainable_weights if "_range" in w.name]
    assert len(ranges) == 4
    assert {id(v) for v in layer.non_trainable_weights} == {id(v) for v in scalars + ranges}
    others = {id(v) for n, v in layer_variables(layer).items() if not n.endswith(("zeta", "nu"))}
    assert trainable == others and len(trainable) == 9
    # Gradients w.r.t. all trainable weights exist; frozen values still used as given.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads)


def test_zeta_nu_are_trainable_by_default(framework):
    _, RNNPool2D = framework
    layer = RNNPool2D(rnn1_units=2, rnn2_units=2, pool_size=2)
    layer(tf.zeros((1, 2, 2, 1)))
    trainable = {id(v) for v in layer.trainable_weights}
    for p in ("rnn1_", "rnn2_"):
        for s in ("zeta", "nu"):
            assert id(getattr(layer, p + s)) in trainable
