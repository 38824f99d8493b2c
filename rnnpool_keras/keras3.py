"""`RNNPool2D` for Keras 3 (what `tf.keras` is in TF >= 2.16), TensorFlow backend.

    from rnnpool_keras.keras3 import RNNPool2D
"""
import keras

from rnnpool_keras.layers import rnnpool2d_base

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "rnnpool_keras.keras3 needs the TensorFlow backend of Keras 3 "
        f"(KERAS_BACKEND=tensorflow); the active backend is {keras.backend.backend()!r}")

RNNPool2D = rnnpool2d_base.define_rnnpool2d(keras)
