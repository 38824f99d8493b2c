"""The tf_keras twin of each layer of a user's model, weights copied.

A twin is what one node of the user's graph becomes in the flat tf_keras
model: usually one tf_keras layer (a tf_keras layer rebuilt from its config,
a Keras 3 layer from its config translated, RNNPool2D from its own config);
for a few Keras 3 activations whose tf_keras namesake computes something
else, and for arithmetic with a constant (`x + 3.0`, which tfmot cannot
quantize as an op), a short chain of standard layers computing the same.
"""
import numpy as np
import tf_keras

from rnnpool_keras.flat_model import keras3_config
from rnnpool_keras.flat_model import keras_graph
from rnnpool_keras.layers.rnnpool2d import RNNPool2D

# Keras 3 activations that tf_keras lacks or defines otherwise (tf_keras'
# "hard_sigmoid" is clip(0.2 x + 0.5), Keras 3's relu6(x + 3) / 6): built from layers.
_REBUILT_ACTIVATIONS = ("hard_sigmoid", "hard_silu", "hard_swish")
_KERAS3_ACTIVATION_NAMES = {"silu": "swish"}
# Arithmetic with a constant, as (Keras 3 op class, tf_keras TFOpLambda function).
_ADD = ("Add", "__operators__.add", "math.add")
_SUBTRACT = ("Subtract", "math.subtract")
_MULTIPLY = ("Multiply", "math.multiply")
_DIVIDE = ("Divide", "TrueDivide", "math.truediv", "math.divide")


def describe(operation):
    return f"layer {operation.name!r} ({type(operation).__name__})"


def _affine_layer_constants(operation):
    """(scale, offset) of a Rescaling or channels-last Normalization layer of
    either Keras (y = x * scale + offset, per channel or scalar), else None."""
    kind = type(operation).__name__
    if kind == "Rescaling":
        config = operation.get_config()
        return (np.asarray(config["scale"], np.float64),
                np.asarray(config["offset"], np.float64))
    if kind != "Normalization" or tuple(np.atleast_1d(operation.axis)) != (-1,):
        return None
    mean = np.asarray(operation.mean, np.float64)
    std = np.maximum(np.sqrt(np.asarray(operation.variance, np.float64)), 1e-7)
    if operation.invert:
        return std, mean
    return 1.0 / std, -mean / std


def _constant_arithmetic(operation, args, kwargs):
    """(scale, offset) if the node computes x * scale + offset for one tensor x
    and a scalar constant, else None."""
    if keras_graph.is_tf_keras(operation):
        if type(operation).__name__ != "TFOpLambda":
            return None
        kind = operation.get_config()["function"]
        kwargs = {k: v for k, v in kwargs.items() if k != "name"}
    elif keras_graph.is_keras3_layer(operation):
        return None
    else:
        kind = type(operation).__name__
    values = list(args) + list(kwargs.values())
    if len(values) != 2:
        return None
    tensor_first = keras_graph.is_symbolic(values[0])
    constant = values[1] if tensor_first else values[0]
    if keras_graph.is_symbolic(constant) or np.ndim(constant) != 0 or not any(
            keras_graph.is_symbolic(v) for v in values):
        return None
    constant = float(constant)
    if kind in _ADD:
        return 1.0, constant
    if kind in _MULTIPLY:
        return constant, 0.0
    if kind in _SUBTRACT:
        return (1.0, -constant) if tensor_first else (-1.0, constant)
    if kind in _DIVIDE and tensor_first:
        return 1.0 / constant, 0.0
    return None


class TwinStep:
    """Calls the twin of one user layer on tf_keras tensors. The layer's
    twin is made and given the user's weights at its first call; later calls
    (a shared layer) reuse it, so weights stay shared."""

    def __init__(self, operation, names, custom_twins):
        self.operation = operation
        self._names = names
        self._custom_twins = custom_twins
        self.layer = None
        self._activation = None

    def __call__(self, node_args, args, kwargs):
        """Outputs of the twin on `args` / `kwargs` (tf_keras tensors); `node_args`
        are the user's (args, kwargs) of this node, for constants."""
        affine = (_constant_arithmetic(self.operation, *node_args)
                  or _affine_layer_constants(self.operation))
        if affine is not None:
            tensor = next(v for v in list(args) + list(kwargs.values())
                          if keras_graph.is_symbolic(v))
            return self._affine(tensor, self.operation.name, *affine)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if self.layer is None:
            self.layer = self._make_layer()
            outputs = self.layer(*args, **kwargs)
            self._copy_weights()
        else:
            outputs = self.layer(*args, **kwargs)
        if self._activation is not None:
            outputs = self._activation_layers(outputs)
        return outputs

    # -- making the twin -----------------------------------------------------------

    def _make_layer(self):
        operation = self.operation
        if keras_graph.is_tf_keras(operation):
            config = operation.get_config()
            config["name"] = self._names.claim(operation.name)
            return type(operation).from_config(config)
        if not keras_graph.is_keras3_layer(operation):
            raise ValueError(
                f"operation {operation.name!r} (keras.ops {type(operation).__name__}) "
                "has no tf_keras twin: write it as a Keras layer (e.g. "
                "keras.layers.Add, Multiply, Rescaling) to quantize and convert the model")
        target = self._twin_class(operation)
        config = keras3_config.tf_keras_config(
            operation.get_config(), target, type(operation), describe(operation))
        config["name"] = self._names.claim(operation.name)
        activation = config.get("activation")
        if isinstance(activation, str):
            activation = _KERAS3_ACTIVATION_NAMES.get(activation, activation)
            config["activation"] = activation
            if activation in _REBUILT_ACTIVATIONS:
                self._activation = activation
                config["activation"] = "linear"
            elif not hasattr(tf_keras.activations, activation):
                raise ValueError(f"{describe(operation)}: activation {activation!r} "
                                 "has no tf_keras counterpart")
        return target.from_config(config)

    def _twin_class(self, operation):
        cls = type(operation)
        if cls in self._custom_twins:
            return self._custom_twins[cls]
        if cls.__name__ == "RNNPool2D" and cls.__module__.startswith("rnnpool_keras"):
            return RNNPool2D
        builtin = cls.__module__.startswith("keras.src.layers")
        target = getattr(tf_keras.layers, cls.__name__, None) if builtin else None
        if target is None:
            raise ValueError(
                f"{describe(operation)} has no tf_keras twin: use standard Keras layers, "
                "or pass custom_twins={YourKeras3Layer: YourTfKerasLayer} (a tf_keras "
                "layer with the same config and weights)")
        return target

    def _copy_weights(self):
        source = self.operation.get_weights()
        shapes = [tuple(w.shape) for w in self.layer.weights]
        if [tuple(np.shape(w)) for w in source] != shapes:
            raise ValueError(
                f"{describe(self.operation)}: its weights "
                f"{[tuple(np.shape(w)) for w in source]} do not match those of its "
                f"tf_keras twin {shapes}")
        self.layer.set_weights(source)

    # -- activations and arithmetic as standard layers -------------------------------

    def _affine(self, x, name, scale, offset):
        """x * scale + offset (scalars or per channel). On an image-like map, a 1x1
        DepthwiseConv2D holding them: QAT quantizes its weights and TFLite runs it in
        int8, where a MUL / ADD by a float constant would stay float. Elsewhere Rescaling."""
        name = self._names.claim(name)
        channels = x.shape[-1]
        if len(x.shape) != 4 or channels is None:
            return tf_keras.layers.Rescaling(scale, offset, name=name)(x)
        layer = tf_keras.layers.DepthwiseConv2D(1, use_bias=True, name=name)
        y = layer(x)
        kernel = np.broadcast_to(np.reshape(scale, -1), (channels,)).reshape(1, 1, channels, 1)
        layer.set_weights([kernel, np.broadcast_to(np.reshape(offset, -1), (channels,))])
        return y

    def _hard_sigmoid(self, x, name):
        """relu6(x + 3) / 6, as Keras' MobileNetV3 writes it."""
        x = self._affine(x, name + "_add3", 1.0, 3.0)
        x = tf_keras.layers.ReLU(6.0, name=self._names.claim(name + "_relu6"))(x)
        return self._affine(x, name + "_div6", 1.0 / 6.0, 0.0)

    def _activation_layers(self, x):
        name = self.operation.name + "_" + self._activation
        if self._activation == "hard_sigmoid":
            return self._hard_sigmoid(x, name)
        gate = self._hard_sigmoid(x, name)  # hard_silu = hard_swish = x * hard_sigmoid(x)
        return tf_keras.layers.Multiply(name=self._names.claim(name + "_mul"))([x, gate])


def needs_rebuild(layer, node_args):
    """True if a tf_keras layer of a flat model still needs rewriting."""
    return (_constant_arithmetic(layer, *node_args) is not None
            or _affine_layer_constants(layer) is not None)


class UniqueNames:
    """Layer names for the flat model: the user's where unique, else prefixed
    with the enclosing model's name (two sub-models may both have a "conv")."""

    def __init__(self):
        self._taken = set()
        self.prefix = ""

    def claim(self, name):
        candidates = [name, f"{self.prefix}{name}"]
        for candidate in candidates:
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate
        index = 1
        while f"{candidates[-1]}_{index}" in self._taken:
            index += 1
        self._taken.add(f"{candidates[-1]}_{index}")
        return f"{candidates[-1]}_{index}"
