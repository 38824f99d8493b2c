"""`RNNPool2D` for tf_keras (Keras 2): the flavour tfmot and the converter use."""
import tf_keras

from rnnpool_keras.layers.rnnpool2d_base import REGISTERED_PACKAGE, RNNPool2DBase


@tf_keras.saving.register_keras_serializable(package=REGISTERED_PACKAGE)
class RNNPool2D(RNNPool2DBase, tf_keras.layers.Layer):
    __doc__ = RNNPool2DBase.__doc__
    _keras = tf_keras
