"""`RNNPool2D` for Keras 3 (what `tf.keras` is in TF >= 2.16), TensorFlow backend.

    from rnnpool_keras.keras3 import RNNPool2D
"""
import keras

from rnnpool_keras.layers.rnnpool2d_base import REGISTERED_PACKAGE, RNNPool2DBase

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "rnnpool_keras.keras3 needs the TensorFlow backend of Keras 3 "
        f"(KERAS_BACKEND=tensorflow); the active backend is {keras.backend.backend()!r}")


@keras.saving.register_keras_serializable(package=REGISTERED_PACKAGE)
class RNNPool2D(RNNPool2DBase, keras.layers.Layer):
    __doc__ = RNNPool2DBase.__doc__
    _keras = keras
