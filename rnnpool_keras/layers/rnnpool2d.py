"""`RNNPool2D` for tf_keras (Keras 2): the flavour tfmot and the converter use."""
import tf_keras

from rnnpool_keras.layers import rnnpool2d_base

RNNPool2D = rnnpool2d_base.define_rnnpool2d(tf_keras)
