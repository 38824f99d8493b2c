"""converters.convert: a Keras model with RNNPool2D layers -> .tflite bytes.

Float: the stock TFLite converter traces the model with each RNNPool2D built
as a fusable composite (converters.conversion.composite), so each becomes one CUSTOM
"RNNPool" op; its options are then written per docs/rnnpool_custom_op.md.
int8: the same on a QAT model (trained with rnnpool_keras.quantize_model, or
calibrated from representative data), with full-integer quantisation of the
builtins; then each RNNPool op is made int8 (converters.conversion.int8_custom_op).
"""
import warnings

import numpy as np
import tensorflow as tf

from converters.conversion import composite
from rnnpool_keras.spec import contract
from converters.conversion import int8_custom_op
from converters.tflite_io import tflite_model
from rnnpool_keras.layers import graph_override
from rnnpool_keras.flat_model import flat_tf_keras_model

QUANTIZE_CHOICES = (None, "int8")
LOWERINGS = ("custom", "builtin")


def is_qat_model(model):
    return any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.submodules)


def _int8_ready_model(model, representative_data):
    """The QAT model whose ranges the int8 model uses."""
    if is_qat_model(model):
        if representative_data is not None:
            raise ValueError("representative_data is for a float model; this is a QAT "
                             "model (from quantize_model) and carries its own ranges: "
                             "pass representative_data=None")
        return model
    if representative_data is None:
        raise ValueError("quantize='int8' of a float model needs representative_data "
                         "(an array [N, ...] of typical inputs) for post-training "
                         "calibration, or a QAT model from rnnpool_keras.quantize_model")
    import rnnpool_keras  # loads tfmot: only for int8

    qat = rnnpool_keras.quantize_model(model)
    return rnnpool_keras.calibrate(qat, representative_data)


def _check_arguments(model, quantize, representative_data, lowering):
    if lowering not in LOWERINGS:
        raise ValueError(f"lowering must be 'custom' (one RNNPool custom op per layer) or "
                         f"'builtin' (builtin TFLite ops only), got {lowering!r}")
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be None (float) or 'int8', got {quantize!r}")
    if quantize is None and is_qat_model(model):
        raise ValueError("model is a QAT model (from quantize_model): convert it with "
                         "quantize='int8', or convert the float model it came from")
    if quantize is None and representative_data is not None:
        raise ValueError("representative_data is only used with quantize='int8'")


def input_names(model):
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


def _rnnpool_layer(layer):
    """The RNNPool2D inside a tfmot wrapper, or the layer itself."""
    return getattr(layer, "layer", layer)


def convert(model, quantize=None, representative_data=None, lowering="custom"):
    """Converts a Keras model with RNNPool2D layers to TFLite flatbuffer bytes.

    Every RNNPool2D becomes one CUSTOM op "RNNPool" (docs/rnnpool_custom_op.md);
    everything else converts as the stock TFLite converter converts it, with no
    Flex ops. Run the result on the host with `converters.run_tflite`, on a
    device with TFLM and `tflite::Register_RNNPOOL()`.

    Args:
      model: a built tf_keras or Keras 3 functional / Sequential model (float,
        nested models allowed: see rnnpool_keras.flat_model), or a QAT model
        from rnnpool_keras.quantize_model.
      quantize: None for a float32 model; "int8" for a full-integer model (int8
        input and output, int8 RNNPool ops with int8 weights and int32 biases).
      representative_data: for quantize="int8" of a float model, an array
        [N, ...] (or iterable of batches) of typical inputs to calibrate on;
        with lowering="builtin" needed for a QAT model too (the lowered RNNPool
        graph's tensors are calibrated on it).
      lowering: "custom" (default) for the RNNPool custom op; "builtin" to
        express RNNPool in builtin TFLite ops only, for runtimes to which no
        custom kernel can be added (larger and slower: see README).
    Returns:
      The .tflite model as bytes.
    """
    model = flat_tf_keras_model(model, caller="convert")
    _check_arguments(model, quantize, representative_data, lowering)
    if lowering == "builtin":
        from converters.conversion import builtin_lowering

        return builtin_lowering.convert_builtin(model, quantize, representative_data)
    source = model if quantize is None else _int8_ready_model(model, representative_data)
    builder = composite.CompositeBuilder()
    model_bytes = run_stock_converter(source, builder, quantize, allow_custom_ops=True)
    return finish(model_bytes, source,
                  lambda tflite: _finish_custom_ops(tflite, builder.layers, quantize))


def run_stock_converter(model, build, quantize, allow_custom_ops=False,
                        representative_dataset=None):
    """The stock TFLite converter on `model` traced at batch 1, every RNNPool2D
    built by `build` (a graph_override function). int8: full-integer with int8
    input and output; from the model's QAT ranges, or calibrated on
    `representative_dataset` (a converter representative dataset) if given."""
    with graph_override.override(build):
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [batch_one_function(model)], model)
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


def _finish_custom_ops(tflite, layers, quantize):
    """Writes each RNNPool op's contract options, and its int8 form."""
    subgraph = tflite.subgraphs[0]
    rnnpool_ops = [op for op in subgraph.operators
                   if tflite_model.op_name(tflite, op) == contract.CUSTOM_CODE]
    for op in rnnpool_ops:
        layer = _rnnpool_layer(layers[contract.decode_layer_index(op.customOptions)])
        if quantize == "int8":
            int8_custom_op.quantize_rnnpool_op(tflite, subgraph, op, layer)
        else:
            op.customOptions = np.frombuffer(
                contract.encode(contract.float_options(layer)), np.uint8)


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
