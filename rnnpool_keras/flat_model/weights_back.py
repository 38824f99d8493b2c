"""copy_weights_back: trained weights of a flat (or QAT) model into the user's model.

QAT of a Keras 3 model trains a tf_keras copy; this puts what it learnt (the
float weights, BatchNorm statistics and RNNPool2D's int8 ranges) back into
the user's Keras 3 model, layer by layer, matched through the rebuild's names.
"""
import numpy as np

from rnnpool_keras.flat_model import keras_graph
from rnnpool_keras.flat_model.rebuild import rebuild_with_sources


# Keras 3 names a DepthwiseConv2D's kernel "kernel"; tf_keras "depthwise_kernel".
_TF_KERAS_NAMES = {"kernel": "depthwise_kernel"}


def _short_name(variable):
    """A weight's name within its layer: "kernel" for "quant_conv/conv/kernel:0"."""
    return variable.name.split("/")[-1].split(":")[0]


def _weights_of(trained, name):
    """{weight name: value} of the layer called `name` in `trained`, or of its
    QAT wrapper (which holds the float kernel, taken out of the inner layer)."""
    for layer in trained.layers:
        if layer.name in (name, "quant_" + name):
            return {_short_name(v): v.numpy() for v in layer.weights}
    return None


def copy_weights_back(trained, user_model, custom_twins=None):
    """Copies every layer's weights from `trained` into `user_model`.

    Args:
      trained: `flat_tf_keras_model(user_model)`, or the QAT model made from
        `user_model` by `rnnpool_keras.quantize_model` (its float weights).
      user_model: the tf_keras or Keras 3 model they were made from.
      custom_twins: as given to `flat_tf_keras_model`.
    Returns:
      The names of the user's layers that received weights.
    Raises:
      ValueError: a user layer with weights has no counterpart in `trained`,
        or the weights' shapes differ.
    """
    _, sources = rebuild_with_sources(keras_graph.graph_of(user_model), custom_twins)
    copied = []
    for name, user_layer in sources.items():
        if not user_layer.weights:
            continue
        source = _weights_of(trained, name)
        if source is None:
            raise ValueError(f"layer {name!r} of the user's model has no counterpart "
                             f"in {trained.name!r}: was it made from this model?")
        for variable in user_layer.weights:
            short = _short_name(variable)
            value = source.get(short, source.get(_TF_KERAS_NAMES.get(short)))
            if value is None or tuple(np.shape(value)) != tuple(variable.shape):
                raise ValueError(
                    f"layer {name!r}: weight {_short_name(variable)!r} "
                    f"{tuple(variable.shape)} has no counterpart of that shape in "
                    f"{trained.name!r}")
            variable.assign(value)
        copied.append(user_layer.name)
    return copied
