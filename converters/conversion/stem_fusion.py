"""Folds the convolution that feeds an RNNPool op into the op (contract version 2).

A CONV_2D whose output only an RNNPool op reads (as its input 0) is removed and
the RNNPool op computes it itself, a band of rows at a time
(tflm_kernels/rnnpool_stem.h), so the convolution's output map is never held
whole: on the paper's VWW model that map (112x112x8, 100,352 B int8) sits
beside the image at TFLM's peak. The op's input becomes the convolution's
input; its filter and bias become inputs 9 and 10; its stride, padding and
fused activation, and (int8) the removed map's scale and zero point, become
options (docs/rnnpool_custom_op.md, "Fused stem convolution"). The kernels
compute the convolution as TFLM's reference CONV_2D does, so the fused model
gives the same outputs as the unfused one (bit for bit in int8).

Fused where the pattern is exact: dilation 1, fused activation NONE / RELU /
RELU_N1_TO_1 / RELU6, a constant filter and bias, float32 or int8 (int8
filter per tensor or per output channel, zero points 0); anything else is
left as it is.
"""
import numpy as np
from flatbuffers import flexbuffers

from converters.tflite_io import schema
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract

_PADDING_CODES = {schema.Padding.SAME: contract.PADDING_CODES["same"],
                  schema.Padding.VALID: contract.PADDING_CODES["valid"]}
# TFLite ActivationFunctionType codes the kernels implement (the contract uses them).
_ACTIVATIONS = (schema.ActivationFunctionType.NONE, schema.ActivationFunctionType.RELU,
                schema.ActivationFunctionType.RELU_N1_TO_1,
                schema.ActivationFunctionType.RELU6)


def _fusable_conv(model, subgraph, conv_index, readers, graph_outputs):
    """True if operator conv_index is a CONV_2D the contract can take in."""
    conv = subgraph.operators[conv_index]
    if tflite_model.op_name(model, conv) != "CONV_2D" or len(conv.outputs) != 1:
        return False
    options = conv.builtinOptions
    if (options is None or options.dilationHFactor not in (0, 1)
            or options.dilationWFactor not in (0, 1)
            or options.fusedActivationFunction not in _ACTIVATIONS
            or options.padding not in _PADDING_CODES):
        return False
    if len(conv.inputs) < 3 or conv.inputs[2] < 0:
        return False  # no bias: the contract's input 10 is required
    output = int(conv.outputs[0])
    if output in graph_outputs or len(readers.get(output, [])) != 1:
        return False
    tensors = subgraph.tensors
    filter_tensor, bias = tensors[conv.inputs[1]], tensors[conv.inputs[2]]
    if not (tflite_model.is_constant(model, filter_tensor)
            and tflite_model.is_constant(model, bias)):
        return False
    types = (tensors[conv.inputs[0]].type, filter_tensor.type, bias.type, tensors[output].type)
    t = schema.TensorType
    return types in ((t.FLOAT32,) * 4, (t.INT8, t.INT8, t.INT32, t.INT8))


def _stem_options(model, subgraph, conv, rnnpool):
    options = flexbuffers.Loads(bytes(np.asarray(rnnpool.customOptions, np.uint8)))
    conv_options = conv.builtinOptions
    options.update({
        "version": contract.FUSED_STEM_VERSION,
        "stem_stride_h": int(conv_options.strideH),
        "stem_stride_w": int(conv_options.strideW),
        "stem_padding": _PADDING_CODES[conv_options.padding],
        "stem_activation": int(conv_options.fusedActivationFunction),
    })
    stem_map = subgraph.tensors[conv.outputs[0]]
    if stem_map.type == schema.TensorType.INT8:
        scale, zero_point = tflite_model.quantization_of(stem_map)
        # The float32 scale exactly: the kernel derives multipliers from it.
        options["stem_output_scale"] = float(np.float32(scale))
        options["stem_output_zero_point"] = int(zero_point)
    return options


def fuse_stem_convolutions(model_bytes):
    """The model with every fusable CONV_2D -> RNNPool pair as one fused
    RNNPool op (bytes in, bytes out; unchanged bytes if there is none)."""
    model = tflite_model.load(model_bytes)
    subgraph = model.subgraphs[0]
    readers = tflite_model.consumers(subgraph)
    producers = tflite_model.producers(subgraph)
    graph_outputs = {int(t) for t in subgraph.outputs}
    fused = []
    for rnnpool in subgraph.operators:
        if tflite_model.op_name(model, rnnpool) != contract.CUSTOM_CODE:
            continue
        if len(rnnpool.inputs) != contract.NUM_INPUTS:
            continue  # already fused
        conv_index = producers.get(int(rnnpool.inputs[0]))
        if conv_index is None or readers[int(rnnpool.inputs[0])] != [
                subgraph.operators.index(rnnpool)]:
            continue
        if not _fusable_conv(model, subgraph, conv_index, readers, graph_outputs):
            continue
        conv = subgraph.operators[conv_index]
        rnnpool.customOptions = np.frombuffer(
            contract.encode(_stem_options(model, subgraph, conv, rnnpool)), np.uint8)
        rnnpool.inputs = np.array([conv.inputs[0], *rnnpool.inputs[1:], conv.inputs[1],
                                   conv.inputs[2]], np.int32)
        fused.append(conv_index)
    if not fused:
        return bytes(model_bytes)
    tflite_model.remove_operators(subgraph, fused)
    tflite_model.prune(model)
    return tflite_model.save(model)
