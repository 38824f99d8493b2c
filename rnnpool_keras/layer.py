"""`RNNPool2D` for tf_keras (Keras 2): the flavour tfmot and the converter use."""
import tf_keras

from rnnpool_keras import layer_core

RNNPool2D = layer_core.define_rnnpool2d(tf_keras)
