"""converters.run_tflite: run a converted model on the host, as a device would.

The graph is cut at its RNNPool ops. Runs of builtin ops become small .tflite
models executed by TFLM's own reference kernels (the `tflite-micro` Python
package's MicroInterpreter); each RNNPool op runs on our C++ kernel core (the
`tflm_kernels._rnnpool_core` extension), reading its weights, scales and
options from the flatbuffer alone. So the numbers are those of the model file
a user will flash, not of the Keras model it came from.
"""
import copy

import numpy as np

from converters.tflite_io import rnnpool_params
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract
from tensorflow.lite.python import schema_py_generated as schema

# Above the activations a segment holds: TFLM's own bookkeeping per tensor.
_ARENA_MARGIN_BYTES = 64 * 1024


class _BuiltinSegment:
    """Consecutive builtin ops, run as one sub-model by TFLM's interpreter."""

    def __init__(self, model, op_indices, needed_later):
        from tflite_micro.python.tflite_micro import runtime

        subgraph = model.subgraphs[0]
        produced = {int(t) for i in op_indices for t in subgraph.operators[i].outputs}
        read = []
        for i in op_indices:
            for t in subgraph.operators[i].inputs:
                t = int(t)
                if (t >= 0 and t not in produced and t not in read
                        and not tflite_model.is_constant(model, subgraph.tensors[t])):
                    read.append(t)
        self.inputs = read
        self.outputs = [t for t in sorted(produced) if t in needed_later]
        piece = copy.deepcopy(model)
        piece_graph = piece.subgraphs[0]
        piece_graph.operators = [piece_graph.operators[i] for i in op_indices]
        piece_graph.inputs = np.array(self.inputs, np.int32)
        piece_graph.outputs = np.array(self.outputs, np.int32)
        piece.signatureDefs = None  # named tensors of the whole model only
        tflite_model.prune(piece)
        activations = sum(tflite_model.tensor_bytes(subgraph.tensors[t])
                          for t in set(self.inputs) | produced)
        piece_bytes = tflite_model.save(piece)
        self._interpreter = runtime.Interpreter.from_bytes(
            piece_bytes, arena_size=activations + len(piece_bytes) + _ARENA_MARGIN_BYTES)

    def run(self, values):
        for index, tensor in enumerate(self.inputs):
            self._interpreter.set_input(values[tensor], index)
        self._interpreter.invoke()
        for index, tensor in enumerate(self.outputs):
            values[tensor] = np.array(self._interpreter.get_output(index))


class _RNNPoolStep:
    """One RNNPool op, run by the C++ kernel core."""

    def __init__(self, model, op):
        from tflm_kernels import core

        subgraph = model.subgraphs[0]
        options = contract.decode(op.customOptions)
        self.input, self.output = int(op.inputs[0]), int(op.outputs[0])
        input_type = subgraph.tensors[self.input].type
        if input_type == schema.TensorType.INT8:
            self._params = core.int8_kernel_params(
                rnnpool_params.int8_params(model, subgraph, op, options))
            self._kernel = core._core.rnnpool_int8
        elif input_type == schema.TensorType.FLOAT32:
            self._params = core.float_kernel_params(
                rnnpool_params.float_params(model, subgraph, op, options),
                options["pool_size"], options["strides"], options["padding_name"],
                options["gate_activation_name"], options["update_activation_name"])
            self._kernel = core._core.rnnpool_float
        else:
            raise ValueError(f"RNNPool op with input type {input_type}: expected "
                             "float32 or int8")

    def run(self, values):
        values[self.output] = self._kernel(self._params,
                                           np.ascontiguousarray(values[self.input]))


def _plan(model):
    """The model as a list of steps: builtin segments and RNNPool ops, in order."""
    subgraph = model.subgraphs[0]
    is_rnnpool = [tflite_model.op_name(model, op) == contract.CUSTOM_CODE
                  for op in subgraph.operators]
    groups, current = [], []
    for i, rnnpool in enumerate(is_rnnpool):
        if rnnpool:
            if current:
                groups.append(current)
            groups.append(i)
            current = []
        else:
            current.append(i)
    if current:
        groups.append(current)
    steps = []
    for position, group in enumerate(groups):
        if isinstance(group, int):
            steps.append(_RNNPoolStep(model, subgraph.operators[group]))
            continue
        later = set(int(t) for t in subgraph.outputs)
        for following in groups[position + 1:]:
            for i in [following] if isinstance(following, int) else following:
                later.update(int(t) for t in subgraph.operators[i].inputs)
        steps.append(_BuiltinSegment(model, group, later))
    return steps


def _to_model_input(array, tensor, position):
    """A float sample, quantised if the model input is int8."""
    expected = tuple(int(n) for n in tensor.shape[1:])
    if tuple(array.shape[1:]) != expected:
        raise ValueError(f"inputs[{position}] has sample shape {tuple(array.shape[1:])}; "
                         f"the model expects {expected}")
    dtype = tflite_model.tensor_dtype(tensor)
    if dtype == np.int8:
        scale, zero_point = tflite_model.quantization_of(tensor)
        return np.clip(np.round(array / scale) + zero_point, -128, 127).astype(np.int8)
    return array.astype(dtype)


def _from_model_output(array, tensor):
    if tflite_model.tensor_dtype(tensor) == np.int8:
        scale, zero_point = tflite_model.quantization_of(tensor)
        return (array.astype(np.float32) - zero_point) * np.float32(scale)
    return array


def run_tflite(model_bytes, *inputs):
    """Runs a .tflite model (from `converters.convert`) on the host.

    Builtin ops run on TFLM's reference kernels, RNNPool ops on our C++ kernel
    core: the arithmetic of the device. Inputs and outputs are float: at an
    int8 model input the values are quantised with the input tensor's scale and
    zero point, and int8 outputs are dequantised.

    Args:
      model_bytes: the .tflite flatbuffer.
      *inputs: one array per model input, [N, ...] with the model's sample
        shape (the model's batch dimension is 1; the N samples run one by one).
    Returns:
      A list with one float32 array [N, ...] per model output.
    """
    model = tflite_model.load(model_bytes)
    if len(model.subgraphs) != 1:
        raise ValueError(f"run_tflite runs single-subgraph models; this one has "
                         f"{len(model.subgraphs)}")
    subgraph = model.subgraphs[0]
    if len(inputs) != len(subgraph.inputs):
        raise ValueError(f"run_tflite got {len(inputs)} input arrays; the model has "
                         f"{len(subgraph.inputs)} inputs")
    arrays = [np.asarray(x, np.float32) for x in inputs]
    counts = {len(x) for x in arrays}
    if len(counts) != 1 or any(x.ndim < 1 for x in arrays):
        raise ValueError("inputs must be arrays [N, ...] with the same N")
    steps = _plan(model)
    model_inputs = [subgraph.tensors[t] for t in subgraph.inputs]
    quantized = [_to_model_input(x, tensor, i)
                 for i, (x, tensor) in enumerate(zip(arrays, model_inputs))]
    results = [[] for _ in subgraph.outputs]
    for sample in range(counts.pop()):
        values = {int(t): q[sample:sample + 1] for t, q in zip(subgraph.inputs, quantized)}
        for step in steps:
            step.run(values)
        for result, t in zip(results, subgraph.outputs):
            result.append(values[int(t)])
    return [_from_model_output(np.concatenate(result), subgraph.tensors[t])
            for result, t in zip(results, subgraph.outputs)]
