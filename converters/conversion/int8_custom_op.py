"""Turns the float RNNPool ops of a QAT-converted model into int8 ops.

The TFLite converter quantises every builtin op of a QAT model but leaves a
custom op in float: its input comes from a DEQUANTIZE of an int8 tensor, its
output goes to a QUANTIZE back to int8, possibly through float shape-only ops
(the RESHAPE of a Flatten, the TRANSPOSEs of channels_first). Here each RNNPool
op and those shape ops are made to read and write the int8 tensors directly,
the op's weights become the int8 / int32 tensors of docs/int8_rnnpool.md (from
the layer, with the input and output quantisation the converter chose), its
options the int8 keys; the DEQUANTIZE / QUANTIZE ops and float weights left
unused are removed.
"""
import numpy as np

from rnnpool_keras.spec import contract
from converters.tflite_io import schema
from converters.tflite_io import tflite_model
from rnnpool_keras.quantization import layer_int8_params
from rnnpool_keras.spec import int8_params

# Ops that only move values: the same in int8 with unchanged quantisation.
SHAPE_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE")


def _float_input_chain(model, subgraph, op):
    """(int8 source tensor, [float tensors from the op's input back to the
    DEQUANTIZE output], the op reading the last of them)."""
    producers = tflite_model.producers(subgraph)
    chain, reader = [int(op.inputs[0])], op
    while True:
        feeder_index = producers.get(chain[-1])
        feeder = None if feeder_index is None else subgraph.operators[feeder_index]
        name = None if feeder is None else tflite_model.op_name(model, feeder)
        if name == "DEQUANTIZE" and subgraph.tensors[feeder.inputs[0]].type == \
                schema.TensorType.INT8:
            return int(feeder.inputs[0]), chain, reader
        if name not in SHAPE_OPS:
            raise ValueError("int8 conversion: the input of an RNNPool op does not come "
                             "from an int8 tensor (expected a DEQUANTIZE of int8 before "
                             f"it, found {name or 'a model input'}); is every layer "
                             "before it quantised?")
        chain.append(int(feeder.inputs[0]))
        reader = feeder


def _float_output_chain(model, subgraph, op):
    """([float tensors from the op's output to the QUANTIZE input], [indices of
    the QUANTIZE ops reading the last one])."""
    readers = tflite_model.consumers(subgraph)
    model_outputs = set(int(t) for t in subgraph.outputs)
    chain = [int(op.outputs[0])]
    while True:
        if chain[-1] in model_outputs:
            raise ValueError("int8 conversion: an RNNPool op's float output is a model "
                             "output (expected a QUANTIZE after it)")
        found = [subgraph.operators[i] for i in readers.get(chain[-1], [])]
        names = [tflite_model.op_name(model, reader) for reader in found]
        if names and all(name == "QUANTIZE" for name in names) and all(
                subgraph.tensors[q.outputs[0]].type == schema.TensorType.INT8
                for q in found):
            return chain, readers[chain[-1]]
        if len(found) != 1 or names[0] not in SHAPE_OPS:
            raise ValueError("int8 conversion: an RNNPool op's output feeds "
                             f"{names or 'nothing'} instead of a QUANTIZE to int8")
        chain.append(int(found[0].outputs[0]))


def _make_int8(subgraph, tensors, like):
    """Retypes activation tensors to int8 with the quantisation of tensor `like`."""
    for index in tensors:
        tensor = subgraph.tensors[index]
        tensor.type = schema.TensorType.INT8
        tensor.quantization = subgraph.tensors[like].quantization


def _remove_dead_operators(subgraph):
    """Removes operators none of whose outputs is read or a model output."""
    while True:
        readers = tflite_model.consumers(subgraph)
        outputs = set(int(t) for t in subgraph.outputs)
        dead = [i for i, op in enumerate(subgraph.operators)
                if not any(int(t) in readers or int(t) in outputs for t in op.outputs)]
        if not dead:
            return
        tflite_model.remove_operators(subgraph, dead)


def _int8_weights(model, subgraph, params, layer_name):
    """Adds the op's inputs 1..8 as int8 / int32 constants; returns their indices."""
    indices = []
    for cell_name, name in contract.WEIGHT_INPUTS:
        cell = getattr(params, cell_name)
        attribute = name[len(cell_name) + 1:]
        if attribute == "kernel":
            values, scale = np.asarray(cell.kernel, np.int8), cell.kernel_scale
        elif attribute == "recurrent_kernel":
            values, scale = np.asarray(cell.recurrent_kernel, np.int8), cell.recurrent_scale
        else:
            values = np.asarray(getattr(cell, attribute), np.int32).reshape(-1)
            scale = cell.preactivation_scale
        indices.append(tflite_model.add_constant(
            model, subgraph, f"{layer_name}/{name}", values, scale=scale))
    return indices


def quantize_rnnpool_op(model, subgraph, op, layer):
    """Rewrites one float RNNPool op (of RNNPool2D `layer`) in place as int8;
    returns its QuantizedRNNPool, with the scales exactly as the file holds them."""
    x_q, input_chain, first_reader = _float_input_chain(model, subgraph, op)
    output_chain, quantize_ops = _float_output_chain(model, subgraph, op)
    y_q = int(subgraph.operators[quantize_ops[0]].outputs[0])
    for other in quantize_ops[1:]:  # several QUANTIZEs of one output: keep one tensor
        tflite_model.rename_tensor_uses(subgraph, int(subgraph.operators[other].outputs[0]),
                                        y_q)

    # Rewire: the first reader takes the int8 source, the last writer the int8 result.
    first_reader.inputs = np.array(
        [x_q if t == input_chain[-1] else t for t in first_reader.inputs], np.int32)
    last_writer = op if len(output_chain) == 1 else next(
        o for o in subgraph.operators if output_chain[-1] in o.outputs)
    last_writer.outputs = np.array([y_q], np.int32)
    _make_int8(subgraph, input_chain[:-1], like=x_q)
    _make_int8(subgraph, output_chain[:-1], like=y_q)

    input_scale, input_zero_point = tflite_model.quantization_of(subgraph.tensors[x_q])
    output_scale, output_zero_point = tflite_model.quantization_of(subgraph.tensors[y_q])
    params = layer_int8_params.int8_params_of_layer(layer, input_scale, input_zero_point,
                                             output_scale, output_zero_point)
    int8_params.validate(params)
    for cell in (params.rnn1, params.rnn2):
        # The file stores weight scales as float32, and kernels derive their
        # multipliers from those: make the returned params say the same.
        cell.kernel_scale = float(np.float32(cell.kernel_scale))
        cell.recurrent_scale = float(np.float32(cell.recurrent_scale))
    op.inputs = np.array([op.inputs[0]] + _int8_weights(model, subgraph, params, layer.name),
                         np.int32)
    op.customOptions = np.frombuffer(
        contract.encode(contract.int8_options(params)), np.uint8)
    # The QUANTIZEs are replaced; the DEQUANTIZE is dead unless another op
    # reads its output, and so is any DEQUANTIZE of a float weight.
    tflite_model.remove_operators(subgraph, quantize_ops)
    _remove_dead_operators(subgraph)
    return params
