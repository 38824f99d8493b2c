"""The Keras layer contract of RNNPool2D, in both flavours.

What Keras' own layer tests check of a layer: weights created in build with the
right shapes and trainability, output shape equal to compute_output_shape,
config round trip, use inside tf.function and with an unknown batch size.
"""
import numpy as np
import pytest
import tensorflow as tf



def _expected_weight_shapes(k, h1, h2, ranks):
    """{weight name: shape} derived from docs/rnnpool_float.md, section 5."""
    shapes = {}
    for prefix, inputs, units in (("rnn1", k, h1), ("rnn2", h1, h2)):
        for matrix, rows, rank in (("kernel", inputs, ranks.get(prefix + "_kernel_rank")),
                                   ("recurrent_kernel", units,
                                    ranks.get(prefix + "_recurrent_rank"))):
            if rank is None:
                shapes[f"{prefix}_{matrix}"] = (rows, units)
            else:
                shapes[f"{prefix}_{matrix}_left"] = (rows, rank)
                shapes[f"{prefix}_{matrix}_right"] = (rank, units)
        shapes.update({f"{prefix}_gate_bias": (units,), f"{prefix}_update_bias": (units,),
                       f"{prefix}_zeta": (), f"{prefix}_nu": ()})
    return shapes


def _short_name(variable):
    return variable.name.split("/")[-1].split(":")[0]


@pytest.mark.parametrize("ranks", [{}, {"rnn1_kernel_rank": 2, "rnn2_recurrent_rank": 3},
                                   {"rnn1_kernel_rank": 1, "rnn1_recurrent_rank": 2,
                                    "rnn2_kernel_rank": 2, "rnn2_recurrent_rank": 1}])
def test_build_creates_the_documented_weights(framework, ranks):
    _, RNNPool2D = framework
    layer = RNNPool2D(5, 4, 3, **ranks)
    layer.build((None, 9, 9, 3))
    trainable = {_short_name(w): tuple(w.shape) for w in layer.trainable_weights}
    assert trainable == _expected_weight_shapes(3, 5, 4, ranks)
    # The int8 ranges (docs/int8_rnnpool.md, section 7): scalars, 0 until calibrated.
    ranges = {_short_name(w): float(np.asarray(w)) for w in layer.non_trainable_weights}
    assert ranges == {"rnn1_preactivation_range": 0.0, "rnn1_state_range": 0.0,
                      "rnn2_preactivation_range": 0.0, "rnn2_state_range": 0.0}


def test_default_initialisation_is_the_authors(framework):
    _, RNNPool2D = framework
    layer = RNNPool2D(16, 16, 4)
    layer.build((None, 8, 8, 16))
    for prefix in ("rnn1", "rnn2"):
        for bias in ("gate_bias", "update_bias"):
            np.testing.assert_array_equal(np.asarray(getattr(layer, f"{prefix}_{bias}")), 1.0)
        assert float(np.asarray(getattr(layer, prefix + "_zeta"))) == 100.0
        assert float(np.asarray(getattr(layer, prefix + "_nu"))) == -100.0
        for matrix in ("kernel", "recurrent_kernel"):
            values = np.asarray(getattr(layer, f"{prefix}_{matrix}"))
            assert 0.07 < values.std() < 0.13  # 0.1 * N(0, 1), 256 samples
    # Each matrix draws its own values: no initializer instance is reused.
    assert not np.allclose(np.asarray(layer.rnn1_kernel), np.asarray(layer.rnn2_kernel))
    assert not np.allclose(np.asarray(layer.rnn1_recurrent_kernel),
                           np.asarray(layer.rnn2_recurrent_kernel))


def test_freeze_zeta_nu_makes_them_non_trainable(framework):
    _, RNNPool2D = framework
    layer = RNNPool2D(3, 2, 2, freeze_zeta_nu=True, zeta_init=1.5, nu_init=-0.5)
    layer.build((None, 4, 4, 2))
    names = {_short_name(w) for w in layer.non_trainable_weights}
    assert names - {"rnn1_zeta", "rnn1_nu", "rnn2_zeta", "rnn2_nu"} == {
        "rnn1_preactivation_range", "rnn1_state_range", "rnn2_preactivation_range",
        "rnn2_state_range"}
    assert {"rnn1_zeta", "rnn1_nu", "rnn2_zeta", "rnn2_nu"} <= names
    assert float(np.asarray(layer.rnn2_zeta)) == 1.5
    assert float(np.asarray(layer.rnn2_nu)) == -0.5


@pytest.mark.parametrize("kwargs, input_shape, expected", [
    (dict(pool_size=6, strides=4), (2, 112, 112, 8), (2, 27, 27, 32)),  # paper's VWW
    (dict(pool_size=(2, 3), strides=(1, 2)), (1, 7, 9, 8), (1, 6, 4, 32)),
    (dict(pool_size=3, strides=2, padding="same"), (1, 7, 8, 8), (1, 4, 4, 32)),
    (dict(pool_size=(4, 2), strides=5, padding="same"), (1, 11, 3, 8), (1, 3, 1, 32)),
    (dict(pool_size=2, data_format="channels_first"), (2, 8, 5, 7), (2, 32, 2, 3)),
])
def test_output_shape_matches_compute_output_shape_and_pooling_rule(
        framework, kwargs, input_shape, expected):
    _, RNNPool2D = framework
    layer = RNNPool2D(4, 8, **kwargs)
    assert tuple(layer.compute_output_shape(input_shape)) == expected
    output = layer(np.zeros(input_shape, np.float32))
    assert tuple(output.shape) == expected


def test_same_padding_gives_the_size_of_keras_max_pooling(framework):
    keras_module, RNNPool2D = framework
    for size, pool, stride in [(7, 3, 2), (8, 4, 3), (5, 5, 1), (6, 2, 4)]:
        x = np.zeros((1, size, size + 1, 2), np.float32)
        pooled = keras_module.layers.MaxPooling2D(pool, stride, padding="same")(x)
        ours = RNNPool2D(2, 2, pool, stride, padding="same")(x)
        assert tuple(ours.shape[:3]) == tuple(pooled.shape[:3])


def test_unknown_batch_and_spatial_sizes_in_a_functional_model(framework):
    keras_module, RNNPool2D = framework
    inputs = keras_module.Input((None, None, 3))
    outputs = RNNPool2D(4, 2, 3, strides=2)(inputs)
    model = keras_module.Model(inputs, outputs)
    assert tuple(model.output_shape) == (None, None, None, 8)
    for shape in [(1, 5, 5, 3), (4, 9, 7, 3)]:
        out = model(np.random.rand(*shape).astype(np.float32))
        assert tuple(out.shape) == (shape[0], (shape[1] - 3) // 2 + 1,
                                    (shape[2] - 3) // 2 + 1, 8)



def test_get_config_returns_constructor_arguments_and_round_trips(framework):
    keras_module, RNNPool2D = framework
    layer = RNNPool2D(
        rnn1_units=5, rnn2_units=3, pool_size=(2, 3), strides=(1, 2), padding="same",
        data_format="channels_first", gate_activation="quantSigm",
        update_activation="quantTanh", rnn1_kernel_rank=2, rnn2_recurrent_rank=1,
        zeta_init=3.0, nu_init=-4.0, freeze_zeta_nu=True,
        kernel_initializer=keras_module.initializers.GlorotUniform(seed=1),
        bias_regularizer=keras_module.regularizers.L2(0.01),
        recurrent_constraint=keras_module.constraints.MaxNorm(2.0), name="pool")
    config = layer.get_config()
    for key, value in dict(rnn1_units=5, rnn2_units=3, pool_size=(2, 3), strides=(1, 2),
                           padding="same", data_format="channels_first",
                           gate_activation="quantSigm", update_activation="quantTanh",
                           rnn1_kernel_rank=2, rnn1_recurrent_rank=None,
                           rnn2_kernel_rank=None, rnn2_recurrent_rank=1, zeta_init=3.0,
                           nu_init=-4.0, freeze_zeta_nu=True, name="pool").items():
        assert config[key] == value, key
    clone = RNNPool2D.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.kernel_initializer, keras_module.initializers.GlorotUniform)
    assert isinstance(clone.recurrent_constraint, keras_module.constraints.MaxNorm)
    # The deserialised layer builds the same weights and computes the same function.
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 7)).astype(np.float32)
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))


def test_registered_for_deserialisation_by_name(framework):
    keras_module, RNNPool2D = framework
    layer = RNNPool2D(2, 2, 2)
    restored = keras_module.layers.deserialize(keras_module.layers.serialize(layer))
    assert type(restored) is RNNPool2D
    assert restored.get_config() == layer.get_config()


def test_regularizers_add_losses(framework):
    keras_module, RNNPool2D = framework
    layer = RNNPool2D(2, 2, 2, kernel_regularizer=keras_module.regularizers.L2(1.0),
                      bias_initializer="zeros")
    layer(np.zeros((1, 4, 4, 2), np.float32))
    expected = sum(float(np.sum(np.square(np.asarray(w))))
                   for w in (layer.rnn1_kernel, layer.rnn2_kernel))
    assert float(sum(layer.losses)) == pytest.approx(expected, rel=1e-5)


def test_one_training_step_updates_every_trainable_weight(framework):
    keras_module, RNNPool2D = framework
    layer = RNNPool2D(3, 2, 2, zeta_init=0.5, nu_init=-0.5)
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 2)).astype(np.float32)
    layer(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x)))
    grads = tape.gradient(loss, layer.trainable_weights)
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0, weight.name
