"""RNNPool as one CUSTOM op per layer: `convert(..., lowering="custom")`, the default.

Float: the stock TFLite converter traces the model with each RNNPool2D built
as a fusable composite (converters.conversion.composite), so each becomes one
CUSTOM "RNNPool" op; its options are then written per docs/rnnpool_custom_op.md.
int8: the same on a QAT model (trained with rnnpool_keras.quantize_model, or
calibrated from representative data), with full-integer quantisation of the
builtins; then each RNNPool op is made int8 (converters.conversion.int8_custom_op).
Both: a convolution feeding only an RNNPool op is then folded into it
(converters.conversion.stem_fusion), and expansion convolutions that set the
TFLM arena are split into channel groups (converters.conversion.channel_groups),
in that order (the split looks at the arena the fusion leaves); both bit-exact.
"""
import numpy as np

from converters.conversion import channel_groups
from converters.conversion import composite
from converters.conversion import int8_custom_op
from converters.conversion import stem_fusion
from converters.conversion import stock_converter
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract


def _int8_ready_model(model, representative_data):
    """The QAT model whose ranges the int8 model uses."""
    if stock_converter.is_qat_model(model):
        if representative_data is not None:
            raise ValueError("representative_data is for a float model; this is a QAT "
                             "model (from quantize_model) and carries its own ranges: "
                             "pass representative_data=None")
        return model
    if representative_data is None:
        raise ValueError("quantize='int8' of a float model needs representative_data "
                         "(an array [N, ...] of typical inputs) for post-training "
                         "calibration, or a QAT model from rnnpool_keras.quantize_model")
    from rnnpool_keras.quantization import api  # loads tfmot: only for int8

    return api.calibrate(api.quantize_model(model), representative_data)


def _rnnpool_layer(layer):
    """The RNNPool2D inside a tfmot wrapper, or the layer itself."""
    return getattr(layer, "layer", layer)


def convert_custom(model, quantize, representative_data, fuse_stem=True,
                   split_expansions=True):
    """A tf_keras model -> .tflite bytes with one RNNPool custom op per RNNPool2D.

    Called by `converters.convert`, which has checked the arguments; they mean
    what they mean there.
    """
    source = model if quantize is None else _int8_ready_model(model, representative_data)
    builder = composite.CompositeBuilder()
    model_bytes = stock_converter.run_stock_converter(source, builder, quantize,
                                                      allow_custom_ops=True)
    model_bytes = stock_converter.finish(
        model_bytes, source, lambda tflite: _finish_custom_ops(tflite, builder.layers, quantize))
    if fuse_stem:
        model_bytes = stem_fusion.fuse_stem_convolutions(model_bytes)
    return channel_groups.split_expansions(model_bytes) if split_expansions else model_bytes


def _finish_custom_ops(tflite, layers, quantize):
    """Writes each RNNPool op's contract options, and its int8 form."""
    subgraph = tflite.subgraphs[0]
    rnnpool_ops = [op for op in subgraph.operators
                   if tflite_model.op_name(tflite, op) == contract.CUSTOM_CODE]
    # A layer called twice (shared) has two ops of one index.
    indices = sorted({contract.decode_layer_index(op.customOptions) for op in rnnpool_ops})
    if indices != list(range(len(layers))):
        # The composite's body is a stand-in (composite.py): an unfused
        # composite would compute zeros.
        raise RuntimeError(
            f"the TFLite converter made {len(rnnpool_ops)} RNNPool ops of "
            f"{len(layers)} RNNPool2D layers (layer indices {indices}); this "
            "TensorFlow does not fuse the composite functions convert relies on")
    for op in rnnpool_ops:
        layer = _rnnpool_layer(layers[contract.decode_layer_index(op.customOptions)])
        if quantize == "int8":
            int8_custom_op.quantize_rnnpool_op(tflite, subgraph, op, layer)
        else:
            op.customOptions = np.frombuffer(
                contract.encode(contract.float_options(layer)), np.uint8)
