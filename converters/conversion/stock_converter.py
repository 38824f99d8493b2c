"""The stock TFLite converter run that both lowerings share, and the finishing step.

`run_stock_converter` traces a tf_keras model at batch 1 with every RNNPool2D
built by a `graph_override` function (the custom op's composite, or the
builtin lowering's graph); `finish` rewrites the result, puts its inputs and
outputs in Keras order and drops what became unused.
"""
import warnings

import numpy as np
import tensorflow as tf

from converters.tflite_io import tflite_model
from rnnpool_keras.layers import graph_override


def is_qat_model(model):
    """True for a model made by rnnpool_keras.quantize_model (tfmot wrappers)."""
    return any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.submodules)


def input_names(model):
    """The Keras model's input names, as the converter's signature uses them."""
    return [t.name.split(":")[0] for t in model.inputs]


def batch_one_function(model):
    """The model's inference as a concrete function of batch-1 inputs.

    TFLM runs one sample at a time; a fixed batch also lets the converter fold
    shape computations (a Reshape((-1, C)) of an unknown batch otherwise
    becomes SHAPE / STRIDED_SLICE / PACK ops sized for batch 1 at one place and
    not at another).
    """
    specs = [tf.TensorSpec((1,) + tuple(t.shape[1:]), t.dtype, name=name)
             for t, name in zip(model.inputs, input_names(model))]
    if any(None in spec.shape.as_list() for spec in specs):
        raise ValueError("convert needs a model whose inputs have known sizes (besides "
                         f"the batch), got {[tuple(t.shape) for t in model.inputs]}")

    @tf.function
    def inference(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    return inference.get_concrete_function(*specs)


class _FunctionVariables(tf.Module):
    """The variables a traced function reads, as the one object the converter
    saves beside it.

    Handed the Keras model instead, TF's SavedModel export traces every layer's
    call functions for Keras' own serialisation: the same .tflite bytes, at
    4-6x the conversion time (a conv, RNNPool, dense model: 6.6 s -> 1.0 s).
    """

    def __init__(self, function):
        super().__init__()
        self.function_variables = list(function.variables)


def run_stock_converter(model, build, quantize, allow_custom_ops=False,
                        representative_dataset=None):
    """The stock TFLite converter on `model` traced at batch 1, every RNNPool2D
    built by `build` (a graph_override function). int8: full-integer with int8
    input and output; from the model's QAT ranges, or calibrated on
    `representative_dataset` (a converter representative dataset) if given."""
    with graph_override.override(build):
        function = batch_one_function(model)
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [function], _FunctionVariables(function))
        converter.allow_custom_ops = allow_custom_ops
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            if representative_dataset is not None:
                converter.representative_dataset = representative_dataset
                converter.target_spec.supported_ops = [
                    tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with warnings.catch_warnings():
            # Asks for quantized_input_stats, which neither calibration nor the
            # QAT ranges at a model's input (its QuantizeLayer) need.
            warnings.filterwarnings("ignore", "Statistics for quantized inputs")
            return converter.convert()


def finish(model_bytes, model, rewrite=None):
    """Applies `rewrite(tflite ModelT)` if given, puts the inputs and outputs
    in `model`'s (Keras) order, drops what became unused, and packs."""
    tflite = tflite_model.load(model_bytes)
    if rewrite is not None:
        rewrite(tflite)
    keras_io_order(tflite, input_names(model))
    tflite_model.prune(tflite)
    return tflite_model.save(tflite)


def keras_io_order(tflite, input_names):
    """Puts the subgraph's inputs and outputs in the Keras model's order.

    The converter may list them in another order; its signature def names
    them (inputs by the names given in `batch_one_function`, outputs
    output_0, output_1, ... in the function's order), and TFLM users index
    the subgraph's lists, so those must follow the model.
    """
    if not tflite.signatureDefs:
        return
    signature = tflite.signatureDefs[0]
    by_name = {io.name.decode() if isinstance(io.name, bytes) else io.name: io.tensorIndex
               for io in (signature.inputs or []) + (signature.outputs or [])}
    subgraph = tflite.subgraphs[0]
    output_names = [f"output_{i}" for i in range(len(subgraph.outputs))]
    for names, attribute in ((input_names, "inputs"), (output_names, "outputs")):
        ordered = [by_name.get(name) for name in names]
        if None not in ordered and sorted(ordered) == sorted(getattr(subgraph, attribute)):
            setattr(subgraph, attribute, np.array(ordered, np.int32))
