"""converters.run_tflite: run a converted model on the host, as a device would.

The graph is cut at its RNNPool ops. Runs of builtin ops become small .tflite
models executed by TFLM's own reference kernels (the `tflite-micro` Python
package's MicroInterpreter); each RNNPool op runs on our C++ kernel core (the
`tflm_kernels._rnnpool_core` extension), reading its weights, scales and
options from the flatbuffer alone. So the numbers are those of the model file
a user will flash, not of the Keras model it came from.
"""
import collections
import copy
import hashlib

import numpy as np

from rnnpool_keras.spec import contract
from converters.analysis import op_costs
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import integer_activations
from rnnpool_keras.spec import int8_params
from tensorflow.lite.python import schema_py_generated as schema

# Above the activations a segment holds: TFLM's own bookkeeping per tensor.
_ARENA_MARGIN_BYTES = 64 * 1024
# Plans of the last few model files run (a bench or a test reuses one model).
_PLAN_CACHE_SIZE = 4
_PLANS = collections.OrderedDict()


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
                        and not op_costs.is_constant(model, subgraph.tensors[t])):
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
        activations = sum(op_costs.tensor_bytes(subgraph.tensors[t])
                          for t in set(self.inputs) | produced)
        piece_bytes = tflite_model.save(piece)
        self._interpreter = runtime.Interpreter.from_bytes(
            piece_bytes, arena_size=activations + len(piece_bytes) + _ARENA_MARGIN_BYTES)

    def run(self, values, count):
        """Runs the `count` samples of the [N, ...] arrays in `values` one by one
        (the TFLM interpreter's batch is 1)."""
        outputs = [[] for _ in self.outputs]
        for sample in range(count):
            for index, tensor in enumerate(self.inputs):
                self._interpreter.set_input(values[tensor][sample:sample + 1], index)
            self._interpreter.invoke()
            for index, result in enumerate(outputs):
                result.append(np.array(self._interpreter.get_output(index)))
        for tensor, result in zip(self.outputs, outputs):
            values[tensor] = np.concatenate(result)


def _float_kernel_params(model, subgraph, op, options):
    from tflm_kernels import core

    params = {}
    for position, (_, name) in enumerate(contract.WEIGHT_INPUTS, start=1):
        params[name] = tflite_model.constant_value(model, subgraph.tensors[op.inputs[position]])
    for cell in contract.CELLS:
        params[cell + "_zeta"] = options[cell + "_zeta"]
        params[cell + "_nu"] = options[cell + "_nu"]
    return core.float_kernel_params(
        params, options["pool_size"], options["strides"], options["padding_name"],
        options["gate_activation_name"], options["update_activation_name"])


def int8_params_of_op(model_bytes_or_model, op_index=None):
    """QuantizedRNNPool of an int8 RNNPool op, read from the flatbuffer only.

    `op_index` is the op's position in the main subgraph; None means the only
    (or first) RNNPool op. Tests compare this with what the converter meant.
    """
    model = model_bytes_or_model
    if isinstance(model, (bytes, bytearray)):
        model = tflite_model.load(model)
    subgraph = model.subgraphs[0]
    if op_index is None:
        op_index = next(i for i, op in enumerate(subgraph.operators)
                        if tflite_model.op_name(model, op) == contract.CUSTOM_CODE)
    return _int8_params(model, subgraph, subgraph.operators[op_index],
                        contract.decode(subgraph.operators[op_index].customOptions))


def _int8_params(model, subgraph, op, options):
    tensors = [subgraph.tensors[t] for t in op.inputs]
    gate, update = options["gate_activation_name"], options["update_activation_name"]

    def cell(name, first):
        kernel, recurrent, gate_bias, update_bias = tensors[first:first + 4]
        return int8_params.QuantizedCell(
            kernel=tflite_model.constant_value(model, kernel),
            kernel_scale=tflite_model.quantization_of(kernel)[0],
            recurrent_kernel=tflite_model.constant_value(model, recurrent),
            recurrent_scale=tflite_model.quantization_of(recurrent)[0],
            gate_bias=tflite_model.constant_value(model, gate_bias),
            update_bias=tflite_model.constant_value(model, update_bias),
            preactivation_scale=options[name + "_preactivation_scale"],
            state_scale=options[name + "_state_scale"],
            zeta_q14=options[name + "_zeta_q14"], nu_q14=options[name + "_nu_q14"],
            gate_table=integer_activations.table_for(gate),
            update_table=integer_activations.table_for(update))

    input_scale, input_zero_point = tflite_model.quantization_of(tensors[0])
    output_scale, output_zero_point = tflite_model.quantization_of(
        subgraph.tensors[op.outputs[0]])
    return int8_params.QuantizedRNNPool(
        rnn1=cell("rnn1", 1), rnn2=cell("rnn2", 5),
        input_scale=input_scale, input_zero_point=input_zero_point,
        output_scale=output_scale, output_zero_point=output_zero_point,
        pool_size=options["pool_size"], strides=options["strides"],
        padding=options["padding_name"], gate_activation=gate, update_activation=update)


class _RNNPoolStep:
    """One RNNPool op, run by the C++ kernel core."""

    def __init__(self, model, op):
        from tflm_kernels import core

        subgraph = model.subgraphs[0]
        options = contract.decode(op.customOptions)
        self.input, self.output = int(op.inputs[0]), int(op.outputs[0])
        input_type = subgraph.tensors[self.input].type
        if input_type == schema.TensorType.INT8:
            self._params = core.int8_kernel_params(_int8_params(model, subgraph, op, options))
            self._kernel = core._core.rnnpool_int8
        elif input_type == schema.TensorType.FLOAT32:
            self._params = _float_kernel_params(model, subgraph, op, options)
            self._kernel = core._core.rnnpool_float
        else:
            raise ValueError(f"RNNPool op with input type {input_type}: expected "
                             "float32 or int8")

    def run(self, values, count):
        # One kernel call for the whole batch: the core loops over its images.
        values[self.output] = self._kernel(self._params,
                                           np.ascontiguousarray(values[self.input]))


def _plan_of(model_bytes):
    """(model, steps) of a model file, built once and kept for the next calls
    (the last _PLAN_CACHE_SIZE models, keyed by the bytes' SHA-256)."""
    key = hashlib.sha256(model_bytes).digest()
    if key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key]
    model = tflite_model.load(model_bytes)
    if len(model.subgraphs) != 1:
        raise ValueError(f"run_tflite runs single-subgraph models; this one has "
                         f"{len(model.subgraphs)}")
    _PLANS[key] = model, _plan(model)
    while len(_PLANS) > _PLAN_CACHE_SIZE:
        _PLANS.popitem(last=False)
    return _PLANS[key]


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
        shape (the model's batch dimension is 1: builtin segments run the N
        samples one by one, each RNNPool op all N in one call). The plan (TFLM
        interpreters, kernel parameters) is built once per model file.
    Returns:
      A list with one float32 array [N, ...] per model output.
    """
    model, steps = _plan_of(bytes(model_bytes))
    subgraph = model.subgraphs[0]
    if len(inputs) != len(subgraph.inputs):
        raise ValueError(f"run_tflite got {len(inputs)} input arrays; the model has "
                         f"{len(subgraph.inputs)} inputs")
    arrays = [np.asarray(x, np.float32) for x in inputs]
    counts = {len(x) for x in arrays}
    if len(counts) != 1 or any(x.ndim < 1 for x in arrays):
        raise ValueError("inputs must be arrays [N, ...] with the same N")
    model_inputs = [subgraph.tensors[t] for t in subgraph.inputs]
    quantized = [_to_model_input(x, tensor, i)
                 for i, (x, tensor) in enumerate(zip(arrays, model_inputs))]
    count = counts.pop()
    # Step by step over all samples (same numbers as sample by sample).
    values = {int(t): q for t, q in zip(subgraph.inputs, quantized)}
    for step in steps:
        step.run(values, count)
    return [_from_model_output(values[int(t)], subgraph.tensors[int(t)])
            for t in subgraph.outputs]
