"""The graph an RNNPool2D layer builds while the converter traces it.

A `tf.function` with `experimental_implements` and `tfl_fusable_op: true`
becomes one TFLite CUSTOM op named after the implements name; its arguments
(input, then the 8 weights of docs/rnnpool_custom_op.md) become the op's
inputs. The function body is the float maths, used only for shape inference.
The op's options are written after conversion (`contract.float_options` /
`int8_options`); the only attribute passed through the converter is the
layer's index, so each op can be matched to its layer.
"""
import tensorflow as tf

from rnnpool_keras.spec import contract
from rnnpool_keras.layers import fastgrnn
from rnnpool_keras.layers import rnnpool_math


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
        index = self.index_of(layer)
        implements = (f'name: "{contract.CUSTOM_CODE}" '
                      'attr { key: "tfl_fusable_op" value { b: true } } '
                      f'attr {{ key: "layer_index" value {{ i: {index} }} }}')
        # The composite may capture no variable: take zeta / nu as values,
        # read eagerly (init_scope leaves the converter's trace).
        with tf.init_scope():
            zeta_nu = {cell: (float(getattr(layer, cell + "_zeta").numpy()),
                              float(getattr(layer, cell + "_nu").numpy()))
                       for cell in contract.CELLS}

        # autograph=False: the maths has no tensor-dependent control flow (as
        # in the layer's own call); converting it would only re-parse it.
        @tf.function(experimental_implements=implements, autograph=False)
        def rnnpool_custom_op(x, w1, u1, bg1, bu1, w2, u2, bg2, bu2):
            def cell(kernel, recurrent, gate_bias, update_bias, name):
                zeta, nu = zeta_nu[name]
                return fastgrnn.CellWeights(kernel, recurrent, gate_bias, update_bias,
                                            tf.constant(zeta), tf.constant(nu))
            return rnnpool_math.rnnpool(
                x, cell(w1, u1, bg1, bu1, "rnn1"), cell(w2, u2, bg2, bu2, "rnn2"),
                layer.pool_size, layer.strides, layer.padding,
                layer.gate_activation, layer.update_activation)

        return rnnpool_custom_op(x, *weight_tensors(layer))
