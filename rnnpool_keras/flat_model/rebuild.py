"""flat_tf_keras_model: a user's Keras model as one flat tf_keras functional model."""
import tensorflow as tf
import tf_keras

from rnnpool_keras.flat_model import keras_graph
from rnnpool_keras.flat_model import twins


def is_flat_tf_keras_model(model):
    """True if `model` is a tf_keras functional / Sequential model with no
    nested model and nothing to rewrite: it goes to tfmot and the converter as is."""
    if not keras_graph.is_tf_keras(model) or not getattr(model, "_is_graph_network", False):
        return False
    for node in keras_graph.nodes_in_order(model):
        operation = keras_graph.operation_of(node)
        if keras_graph.is_model(operation) or twins.needs_rebuild(
                operation, keras_graph.call_arguments(node)):
            return False
    return True


def flat_tf_keras_model(model, custom_twins=None, caller="flat_tf_keras_model"):
    """The user's model as one flat tf_keras functional model computing the same.

    Nested functional and Sequential models (at any depth) are inlined; every
    layer becomes its tf_keras twin with the user's weights copied (a layer
    called several times becomes one twin called as often, so its weights
    stay shared); Keras 3 layers are rebuilt from their configs, RNNPool2D
    from its own. Inputs and outputs keep the user's order and input names.
    The user's model is not modified. A flat tf_keras model is returned as is.

    Args:
      model: a built tf_keras or Keras 3 functional or Sequential model.
      custom_twins: {Keras 3 layer class: tf_keras layer class} for the user's
        own Keras 3 layers (same config and weights).
      caller: the public function to name in errors.
    Returns:
      A tf_keras functional model (or `model` itself if already flat tf_keras).
    Raises:
      TypeError: `model` is not a Keras model, or is subclassed (no graph).
      ValueError: a layer has no tf_keras twin (the message names it).
    """
    if not hasattr(model, "layers") or not keras_graph.is_model(model):
        raise TypeError(f"{caller} expects a tf_keras or Keras 3 Sequential or "
                        "functional model, got "
                        f"{type(model).__module__}.{type(model).__name__}")
    if not model.built:
        raise ValueError(f"{caller} needs a built model: {model.name!r} has no defined "
                         "inputs: a subclassed model, or a Sequential one without an input "
                         "shape, cannot be traced; build it with the functional API or "
                         "give it an input shape (keras.Input) first")
    if is_flat_tf_keras_model(model):
        return model
    return rebuild_with_sources(model, custom_twins)[0]


def rebuild_with_sources(model, custom_twins=None):
    """(flat tf_keras model, {flat layer name: the user's layer it twins})."""
    graph = keras_graph.graph_of(model)
    rebuild = _Rebuild(custom_twins or {})
    inputs = [tf_keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype,
                             name=rebuild.names.claim(keras_graph.input_name(t)))
              for t in graph.inputs]
    outputs = rebuild.inline(graph, inputs)
    flat = tf_keras.Model(inputs, outputs, name=model.name)
    sources = {step.layer.name: step.operation
               for step in rebuild.steps.values() if step.layer is not None}
    return flat, sources


class _Rebuild:
    """The walk: maps each user tensor to its tf_keras tensor, node by node."""

    def __init__(self, custom_twins):
        self.names = twins.UniqueNames()
        self._custom_twins = custom_twins
        self.steps = {}  # id(user layer) -> TwinStep, so shared layers stay shared

    def inline(self, graph, inputs):
        """The tf_keras tensors of `graph`'s outputs, given tensors for its inputs."""
        if len(inputs) != len(graph.inputs):
            raise ValueError(f"model {graph.name!r} has {len(graph.inputs)} inputs, "
                             f"called on {len(inputs)} tensors")
        tensors = {id(t): new for t, new in zip(graph.inputs, inputs)}

        def mapped(value):
            return tensors[id(value)] if keras_graph.is_symbolic(value) else value

        for node in keras_graph.nodes_in_order(graph):
            if keras_graph.is_input_node(node):
                continue
            operation = keras_graph.operation_of(node)
            node_args = keras_graph.call_arguments(node)
            args, kwargs = tf.nest.map_structure(mapped, node_args)
            if keras_graph.is_model(operation):
                outputs = self._inline_model(operation, args, kwargs)
            else:
                step = self.steps.get(id(operation))
                if step is None:
                    step = twins.TwinStep(operation, self.names, self._custom_twins)
                    self.steps[id(operation)] = step
                outputs = step(node_args, args, kwargs)
            for tensor, new in zip(keras_graph.output_tensors(node),
                                   tf.nest.flatten(outputs)):
                tensors[id(tensor)] = new
        outputs = [tensors[id(t)] for t in graph.outputs]
        return outputs if len(outputs) > 1 else outputs[0]

    def _inline_model(self, model, args, kwargs):
        sub_graph = keras_graph.graph_of(model)
        given = args[0] if args else kwargs.get("inputs")
        outer_prefix = self.names.prefix
        self.names.prefix = f"{outer_prefix}{model.name}/"
        try:
            return self.inline(sub_graph, tf.nest.flatten(given))
        finally:
            self.names.prefix = outer_prefix
