"""Per-operator costs of a .tflite graph: bytes of tensors, MAdds, scratch.

MAdds are counted as the paper counts them ("MAdds as in MobileNetV2", and
`rnnpool_keras.app.zoo.count_madds` for Keras models): CONV_2D
H'W' kh kw (k_in / groups) k_out, DEPTHWISE_CONV_2D H'W' kh kw k_out,
FULLY_CONNECTED rows x k_in x k_out, RNNPool patches x the per-patch count of
`rnnpool_keras.spec.cost` (plus, in the fused form, its convolution counted as
the CONV_2D it replaces: every output pixel once, none recomputed). Every other operator counts 0: biases, fused
activations, ADD / MUL and other element-wise work, pooling, padding,
reshapes and slicing, like the paper.

Scratch is what the kernel's Prepare requests with RequestScratchBufferInArena
in TFLM's reference kernels: RNNPool its workspace (tflm_kernels' own figure);
MEAN and SUM an int32 accumulator per output element (int8 / int16 input)
plus one int per input dimension and one per reduced axis. Reference CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED request none for int8 or float weights
(only int4 weights get an unpacking buffer). Other requesting kernels
(MIRROR_PAD, ADD_N, TRANSPOSE_CONV, SVDF, LSTM, DETECTION_POSTPROCESS) and
optimised kernels such as CMSIS-NN's are not modelled: they count 0.
"""
import numpy as np

from converters.tflite_io import rnnpool_validation
from converters.tflite_io import schema
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract
from rnnpool_keras.spec import cost

_TYPE = schema.TensorType
_REDUCE_WITH_ACCUMULATOR = ("MEAN", "SUM")


def _filter_shape(subgraph, op):
    return tflite_model.shape_of(subgraph.tensors[op.inputs[1]])


def _output_shape(subgraph, op):
    return tflite_model.shape_of(subgraph.tensors[op.outputs[0]])


def rnnpool_geometry(model, subgraph, op):
    """Sizes of an RNNPool op, from the kernel's own validation of its tensors
    and options (converters.tflite_io.rnnpool_validation; ValueError if it rejects them).

    Returns a dict: input / output shapes, pool_size, strides, padding,
    in_channels k, rnn1_units h1, rnn2_units h2, patches (N H' W'), the
    kernel's scratch_bytes, and for the fused form (version 2) "stem": its
    convolution's kernel_size, strides and output_shape (RNNPool's input).
    """
    index = next((i for i, o in enumerate(subgraph.operators) if o is op), None)
    v = rnnpool_validation.validated_rnnpool_op(model, subgraph, op, index)
    output_shape = list(v["output_shape"])
    geometry = {
        "input_shape": list(v["input_shape"]), "output_shape": output_shape,
        "pool_size": list(v["pool_size"]), "strides": list(v["strides"]),
        "padding": contract.padding_name(v["padding"]), "in_channels": v["in_channels"],
        "rnn1_units": v["rnn1_units"], "rnn2_units": v["rnn2_units"],
        "patches": int(np.prod(output_shape[:-1])), "scratch_bytes": int(v["scratch_bytes"]),
    }
    if v["has_stem"]:  # the fused convolution's output map, never held whole
        _, kh, kw, _ = tflite_model.shape_of(subgraph.tensors[op.inputs[9]])
        geometry["stem"] = {"kernel_size": [kh, kw], "strides": list(v["stem"]["strides"]),
                            "output_shape": list(v["stem"]["output_shape"])}
    return geometry


def madds(model, subgraph, op):
    """Multiply-adds of one operator, counted as the module docstring says."""
    name = tflite_model.op_name(model, op)
    if name == "CONV_2D":
        k_out, kh, kw, k_in_per_group = _filter_shape(subgraph, op)
        return int(np.prod(_output_shape(subgraph, op))) * kh * kw * k_in_per_group
    if name == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = _filter_shape(subgraph, op)
        return int(np.prod(_output_shape(subgraph, op))) * kh * kw
    if name == "FULLY_CONNECTED":
        k_out, k_in = _filter_shape(subgraph, op)
        return int(np.prod(_output_shape(subgraph, op))) * k_in
    if name == contract.CUSTOM_CODE:
        g = rnnpool_geometry(model, subgraph, op)
        total = g["patches"] * cost.madds_per_patch(g["pool_size"], g["in_channels"],
                                                    g["rnn1_units"], g["rnn2_units"])
        if "stem" in g:  # the fused convolution
            _, kh, kw, k_in = tflite_model.shape_of(subgraph.tensors[op.inputs[9]])
            total += int(np.prod(g["stem"]["output_shape"])) * kh * kw * k_in
        return total
    return 0


def scratch_requests(model, subgraph, op_index):
    """Scratch sizes (bytes) the op's Prepare requests, in request order."""
    op = subgraph.operators[op_index]
    name = tflite_model.op_name(model, op)
    if name == contract.CUSTOM_CODE:
        return [_rnnpool_scratch(model, subgraph, op_index)]
    if name in _REDUCE_WITH_ACCUMULATOR:
        input_tensor = subgraph.tensors[op.inputs[0]]
        requests = []
        if input_tensor.type in (_TYPE.INT8, _TYPE.INT16):
            outputs = int(np.prod(_output_shape(subgraph, op)))
            requests.append(4 * outputs)  # int32 accumulators
        axes = int(np.prod(tflite_model.shape_of(subgraph.tensors[op.inputs[1]])))
        return requests + [4 * len(tflite_model.shape_of(input_tensor)), 4 * axes]
    return []


def _rnnpool_scratch(model, subgraph, op_index):
    return rnnpool_geometry(model, subgraph, subgraph.operators[op_index])["scratch_bytes"]
