"""Moving float_reference params to and from an RNNPool2D layer (test helpers).

Duck-typed (attributes named like the params keys, `.assign`, `.numpy()`), so
this module imports neither Keras nor rnnpool_keras.
"""
import numpy as np

PARAM_NAMES = tuple(
    prefix + name
    for prefix in ("rnn1_", "rnn2_")
    for name in ("kernel", "kernel_left", "kernel_right",
                 "recurrent_kernel", "recurrent_kernel_left", "recurrent_kernel_right",
                 "gate_bias", "update_bias", "zeta", "nu"))


def layer_variables(layer):
    """{params key: variable} for every weight attribute the layer has (not None)."""
    out = {}
    for name in PARAM_NAMES:
        var = getattr(layer, name, None)
        if var is not None:
            out[name] = var
    return out


def to_numpy(var):
    value = var.numpy() if hasattr(var, "numpy") else var
    return np.asarray(value, dtype=np.float64)


def layer_params(layer):
    """The layer's current weights as a float64 ``params`` dict for the reference."""
    return {name: to_numpy(var) for name, var in layer_variables(layer).items()}


def randomize_layer_weights(layer, rng, scale=0.5, scalar_range=2.0):
    """Assigns random values: matrices/biases ~ scale * N(0, 1), zeta/nu ~ U(-r, r)."""
    for name, var in layer_variables(layer).items():
        shape = tuple(var.shape)
        if shape == ():
            value = rng.uniform(-scalar_range, scalar_range)
        else:
            value = rng.normal(size=shape) * scale
        dtype = getattr(var.dtype, "name", var.dtype)  # tf.DType or a string
        var.assign(np.asarray(value, dtype=np.dtype(dtype)))
    return layer_params(layer)
