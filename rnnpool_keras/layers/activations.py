"""The gate / update non-linearities RNNPool accepts, by the names the authors use.

`quantSigm` and `quantTanh` are the authors' integer-friendly piecewise-linear
forms (EdgeML `edgeml_pytorch.graph.rnn`): they are what an int8 kernel computes exactly.
"""
import tensorflow as tf


def quant_sigm(x):
    """clip((x + 1) / 2, 0, 1): a hard sigmoid with slope 1/2."""
    return tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)


def quant_tanh(x):
    """clip(x, -1, 1): a hard tanh."""
    return tf.clip_by_value(x, -1.0, 1.0)


NONLINEARITIES = {
    "sigmoid": tf.math.sigmoid,
    "tanh": tf.math.tanh,
    "relu": tf.nn.relu,
    "quantSigm": quant_sigm,
    "quantTanh": quant_tanh,
}


def get(name):
    """The TF function for a non-linearity name (one of `NONLINEARITIES`)."""
    return NONLINEARITIES[name]
