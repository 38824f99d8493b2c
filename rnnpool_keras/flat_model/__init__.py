"""One flat tf_keras functional model from a user's Keras model.

`flat_tf_keras_model(model)` is the first step of `quantize_model`,
`calibrate` and `converters.convert`: it accepts tf_keras and Keras 3
functional or Sequential models, inlines nested functional / Sequential
sub-models at any depth, and rebuilds every layer as its tf_keras twin with
the weights copied, so that tfmot and the TFLite converter see one graph.
`copy_weights_back(trained, model)` returns trained weights to the user's model.
"""
from rnnpool_keras.flat_model.rebuild import flat_tf_keras_model, is_flat_tf_keras_model
from rnnpool_keras.flat_model.weights_back import copy_weights_back

__all__ = ["flat_tf_keras_model", "is_flat_tf_keras_model", "copy_weights_back"]
