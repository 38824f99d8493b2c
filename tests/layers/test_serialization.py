"""Models holding RNNPool2D round-trip through every Keras save format."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
import keras

import rnnpool_keras
from rnnpool_keras import keras3


def _model(keras_module, layer_class):
    keras_module.utils.set_random_seed(0)  # the same weights in every run
    inputs = keras_module.Input((9, 9, 3))
    x = keras_module.layers.Conv2D(4, 3, padding="same")(inputs)
    x = layer_class(5, 3, (3, 2), strides=2, padding="same", rnn1_kernel_rank=2,
                    gate_activation="quantSigm", zeta_init=0.7, nu_init=-0.3,
                    name="rnnpool")(x)
    outputs = keras_module.layers.Dense(2)(keras_module.layers.Flatten()(x))
    return keras_module.Model(inputs, outputs)


@pytest.fixture
def images():
    return np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype(np.float32)


def _assert_equal_to_float32_rounding(served, eager):
    # A bare SavedModel runs its graph optimised by grappler, which need not round
    # as Keras' eager call does: outputs of size ~3 once differed by 5 float32
    # ulps (1.2e-6), so the bound is relative.
    np.testing.assert_allclose(np.asarray(served), np.asarray(eager), rtol=1e-6, atol=1e-6)


def _assert_same_layer(restored, original, layer_class):
    layer = restored.get_layer("rnnpool")
    assert type(layer) is layer_class
    assert layer.get_config() == original.get_layer("rnnpool").get_config()


def test_keras_format_round_trip_gives_identical_outputs(tmp_path, images, framework):
    keras_module, layer_class = framework
    model = _model(keras_module, layer_class)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras_module.models.load_model(path)
    _assert_same_layer(restored, model, layer_class)
    np.testing.assert_array_equal(np.asarray(restored(images)), np.asarray(model(images)))


def test_tf_keras_h5_round_trip_gives_identical_outputs(tmp_path, images):
    model = _model(tf_keras, rnnpool_keras.RNNPool2D)
    path = str(tmp_path / "model.h5")
    model.save(path)
    restored = tf_keras.models.load_model(path)
    _assert_same_layer(restored, model, rnnpool_keras.RNNPool2D)
    np.testing.assert_array_equal(np.asarray(restored(images)), np.asarray(model(images)))


@pytest.mark.slow
def test_tf_keras_savedmodel_round_trip_gives_identical_outputs(tmp_path, images):
    model = _model(tf_keras, rnnpool_keras.RNNPool2D)
    path = str(tmp_path / "saved_model")
    model.save(path, save_format="tf")
    restored = tf_keras.models.load_model(path)
    _assert_same_layer(restored, model, rnnpool_keras.RNNPool2D)
    np.testing.assert_array_equal(np.asarray(restored(images)), np.asarray(model(images)))
    # The bare SavedModel (no Keras) serves the same function.
    served = tf.saved_model.load(path).signatures["serving_default"]
    out = list(served(tf.constant(images)).values())[0]
    _assert_equal_to_float32_rounding(out, model(images))


@pytest.mark.slow
def test_keras3_export_savedmodel_serves_identical_outputs(tmp_path, images):
    model = _model(keras, keras3.RNNPool2D)
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    restored = tf.saved_model.load(path)
    out = restored.serve(tf.constant(images))
    _assert_equal_to_float32_rounding(out, model(images))
    # With a batch size other than the one traced.
    out = restored.serve(tf.constant(images[:1]))
    _assert_equal_to_float32_rounding(out, model(images[:1]))
