"""The graph an RNNPool2D layer builds while the converter traces it.

A `tf.function` with `experimental_implements` and `tfl_fusable_op: true`
becomes one TFLite CUSTOM op named after the implements name; its arguments
(input, then the 8 weights of docs/rnnpool_custom_op.md) become the op's
inputs, its result's shape the op's output shape. The converter drops the
function's body, so the body only gives that shape: no recurrence is traced,
saved and imported for nothing (custom_lowering checks that every layer did
become one op). The op's options are written after conversion
(`contract.float_options` / `int8_options`); the only attribute passed through
the converter is the layer's index, so each op can be matched to its layer.
"""
import tensorflow as tf

from rnnpool_keras.spec import contract
from rnnpool_keras.spec import geometry


def full_matrix(layer, name):
    """A layer's float matrix, low-rank factors folded (the op takes full ones)."""
    full = layer.matrix_variable(name)
    if full is not None:
        return tf.convert_to_tensor(full)
    return tf.matmul(layer.matrix_variable(name + "_left"),
                     layer.matrix_variable(name + "_right"))


def weight_tensors(layer):
    """The op's inputs 1..8 as float tensors, contract order."""
    weights = []
    for _, name in contract.WEIGHT_INPUTS:
        if name.endswith("kernel"):
            weights.append(full_matrix(layer, name))
        else:
            weights.append(tf.convert_to_tensor(getattr(layer, name)))
    return weights


def fusable_op_attributes(index):
    """The `experimental_implements` of layer `index`'s composite: the custom
    op's name, the converter's fusion flag, the layer index."""
    return (f'name: "{contract.CUSTOM_CODE}" '
            'attr { key: "tfl_fusable_op" value { b: true } } '
            f'attr {{ key: "layer_index" value {{ i: {index} }} }}')


class CompositeBuilder:
    """A `graph_override` build function; remembers the layers it saw, in order."""

    def __init__(self):
        self.layers = []

    def index_of(self, layer):
        for i, seen in enumerate(self.layers):
            if seen is layer:
                return i
        self.layers.append(layer)
        return len(self.layers) - 1

    def __call__(self, layer, x):
        implements = fusable_op_attributes(self.index_of(layer))
        # x is NHWC at a known size (the converter traces at batch 1).
        output_shape = [x.shape[0], *geometry.output_size(
            x.shape[1:3], layer.pool_size, layer.strides, layer.padding), 4 * layer.rnn2_units]

        @tf.function(experimental_implements=implements, autograph=False)
        def rnnpool_custom_op(x, w1, u1, bg1, bu1, w2, u2, bg2, bu2):
            return tf.zeros(output_shape, x.dtype)

        return rnnpool_custom_op(x, *weight_tensors(layer))
