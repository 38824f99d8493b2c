"""A framework-neutral view of a tf_keras or Keras 3 functional graph.

tf_keras and Keras 3 keep the same information under different names (a
node's `layer` vs `operation`, `call_args` vs `arguments.args`); these
functions read either, so the rebuild walks one kind of graph.
"""
import tf_keras


def is_tf_keras(obj):
    """True for a tf_keras layer or model, False for a Keras 3 one."""
    return isinstance(obj, tf_keras.layers.Layer)


def is_keras3_layer(obj):
    """True for a Keras 3 layer (a Keras 3 op that is not a layer gives False)."""
    import keras  # Keras 3 ships with TensorFlow >= 2.16

    return isinstance(obj, keras.layers.Layer)


def graph_of(model):
    """The functional graph (a model with `_nodes_by_depth`) that computes `model`.

    Raises:
      TypeError: `model` is subclassed, or a Sequential model never built on
        an input shape, so it has no graph to read.
    """
    if is_tf_keras(model):
        import tf_keras as framework
        graph = model if getattr(model, "_is_graph_network", False) else None
    else:
        import keras as framework
        graph = model
        if isinstance(model, framework.Sequential):
            graph = getattr(model, "_functional", None)
        elif not hasattr(model, "_nodes_by_depth"):
            graph = None
    if graph is None:
        kind = ("an unbuilt Sequential model"
                if isinstance(model, framework.Sequential) else "a subclassed model")
        raise TypeError(
            f"model {model.name!r} ({type(model).__name__}) is {kind}: only functional "
            "and Sequential models have a graph to quantize and convert. Build it "
            "with keras.Input(...) (functional API), or give the Sequential model an "
            "Input first; for a subclassed model, write its call() as a functional "
            "model of the same layers")
    return graph


def is_model(operation):
    """True for a (tf_keras or Keras 3) model used as a layer."""
    if is_tf_keras(operation):
        return isinstance(operation, tf_keras.Model)
    import keras

    return isinstance(operation, keras.Model)


def nodes_in_order(graph):
    """The graph's nodes, every node after the nodes that feed it."""
    return [node for depth in sorted(graph._nodes_by_depth, reverse=True)
            for node in graph._nodes_by_depth[depth]]


def operation_of(node):
    """The layer (or Keras 3 operation) a node calls."""
    return node.layer if hasattr(node, "layer") else node.operation


def is_input_node(node):
    return node.is_input


def call_arguments(node):
    """(args, kwargs) the node's layer was called with (tensors as placed)."""
    if hasattr(node, "call_args"):
        return tuple(node.call_args), dict(node.call_kwargs)
    return tuple(node.arguments.args), dict(node.arguments.kwargs)


def output_tensors(node):
    """The node's outputs, flat."""
    import tensorflow as tf

    return tf.nest.flatten(node.outputs)


def is_symbolic(value):
    """True for a symbolic tensor of either framework (a KerasTensor)."""
    return hasattr(value, "_keras_history")


def input_name(tensor):
    """The name of the Input layer that made a model input tensor."""
    history = tensor._keras_history
    owner = history.layer if hasattr(history, "layer") else history.operation
    return owner.name
