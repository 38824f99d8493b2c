"""Whether tf_keras is calling a layer only to learn its output's shape.

tf_keras builds a functional model (`Model(inputs, outputs)`, `clone_model`,
and so tfmot's `quantize_model`, which clones the model four times) by calling
each layer's `call` on placeholders in a throw-away FuncGraph named
"<layer name>_scratch_graph", of which it keeps only the outputs' shapes and
dtypes. tfmot's wrappers call the wrapped layer's `call` inside their own
scratch graph. (Keras 3 asks `compute_output_shape` instead.)

RNNPool2D's graph is large (every patch's recurrences), so the layer answers
such calls with a tensor of its output's shape and dtype. Under any other graph
the layer computes; were tf_keras to rename its scratch graph, models would
only build slower (tests/layers/test_shape_inference.py would say so).
"""
import tensorflow as tf

_SCRATCH_GRAPH_SUFFIX = "_scratch_graph"


def inferring_output_shape():
    """True inside a tf_keras functional-construction scratch graph."""
    graph = tf.compat.v1.get_default_graph()
    return (isinstance(graph, tf.__internal__.FuncGraph)
            and graph.name.endswith(_SCRATCH_GRAPH_SUFFIX))


def tensor_of_shape(inputs, shape):
    """A tensor of `shape` (its batch size that of `inputs`, unknown allowed)
    and `inputs`' dtype, to stand for a layer's output in a scratch graph."""
    dynamic = tf.concat([tf.shape(inputs)[:1], tf.constant(shape[1:], tf.int32)], axis=0)
    output = tf.zeros(dynamic, inputs.dtype)
    output.set_shape(shape)
    return output
