"""Small Keras models with RNNPool2D that several test files convert and run,
and the two Keras versions tests run on (FRAMEWORKS, load_framework).

TensorFlow is imported inside the functions: test_tflm_kernel.py must be able
to skip before loading it.
"""
import numpy as np


def randomize_rnnpool_weights(model, seed=0, scale=0.5):
    """Random weights for every RNNPool2D of `model`: matrices, biases and zeta /
    nu ~ scale * N(0, 1) (so the defaults hide nothing); the `*_range` weights
    stay 0 (calibration or QAT sets them)."""
    from rnnpool_keras import RNNPool2D

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, RNNPool2D):
            layer.set_weights([np.zeros(w.shape) if "_range" in w.name
                               else rng.normal(0, scale, w.shape) for w in layer.weights])
    return model


# The input size of the two-RNNPool model the converter tests share
# (tests/converters/conftest.py: two_rnnpool_files).
TWO_RNNPOOL_SIZE = 20


def two_rnnpool_model(input_size, data_format="channels_last", seed=3):
    """Conv (stride 2) -> RNNPool ("same", stride 2) -> 1x1 conv -> RNNPool over the
    whole remaining map (the final pooling) -> dense: two RNNPool ops between
    builtins; channels_first adds the layer's transposes."""
    import tf_keras
    from rnnpool_keras import RNNPool2D

    inputs = tf_keras.Input((input_size, input_size, 3))
    x = tf_keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(inputs)
    if data_format == "channels_first":
        x = tf_keras.layers.Permute((3, 1, 2))(x)
    x = RNNPool2D(4, 3, pool_size=3, strides=2, padding="same", data_format=data_format,
                  name="rnnpool_head")(x)
    if data_format == "channels_first":
        x = tf_keras.layers.Permute((2, 3, 1))(x)
    x = tf_keras.layers.Conv2D(8, 1, activation="relu")(x)
    final = -(-(-(-input_size // 2)) // 2)  # the map is ceil(ceil(n / 2) / 2) wide
    x = RNNPool2D(5, 4, pool_size=final, strides=final, name="rnnpool_final")(x)
    x = tf_keras.layers.Flatten()(x)
    outputs = tf_keras.layers.Dense(3)(x)
    return randomize_rnnpool_weights(tf_keras.Model(inputs, outputs), seed)


def calibrated_int8_agreement(model, x_test):
    """(int8 .tflite of `model` calibrated on 64 synthetic quadrant images, its
    op names, the share of `x_test` on which it picks the model's class)."""
    from converters import convert, run_tflite
    from converters.tflite_io import tflite_model
    from rnnpool_keras.app import synthetic

    x_calibration, _ = synthetic.quadrant_images(64, seed=11)
    model_bytes = convert(model, quantize="int8", representative_data=x_calibration)
    int8_logits = run_tflite(model_bytes, x_test)[0]
    agreement = np.mean(int8_logits.argmax(1) == np.asarray(model(x_test)).argmax(1))
    return model_bytes, tflite_model.op_names(model_bytes), agreement


FRAMEWORKS = ("tf_keras", "keras3")


def load_framework(name):
    """(keras module, RNNPool2D class) for "tf_keras" or "keras3"."""
    if name == "tf_keras":
        import tf_keras
        from rnnpool_keras import RNNPool2D
        return tf_keras, RNNPool2D
    if name == "keras3":
        import keras
        from rnnpool_keras.keras3 import RNNPool2D
        return keras, RNNPool2D
    raise ValueError(name)
