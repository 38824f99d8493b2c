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

from converters.tflite_io import model_checks
from converters.tflite_io import rnnpool_validation
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract

# Above the activations a segment holds: TFLM's own bookkeeping per tensor.
_ARENA_MARGIN_BYTES = 64 * 1024
_MAX_ARENA_BYTES = 2 ** 31 - 1
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
        arena_bytes = activations + len(piece_bytes) + _ARENA_MARGIN_BYTES
        if arena_bytes > _MAX_ARENA_BYTES:  # the interpreter's arena size is an int
            raise ValueError(
                f"operators {', '.join(str(i) for i in op_indices)} need {arena_bytes} bytes "
                f"of TFLM arena (their tensors' shapes); at most {_MAX_ARENA_BYTES} can run")
        self._names = ", ".join(f"{i} {tflite_model.op_name(model, subgraph.operators[i])}"
                                for i in op_indices)
        try:
            self._interpreter = runtime.Interpreter.from_bytes(
                piece_bytes, arena_size=arena_bytes)
        except RuntimeError as error:  # a builtin's Prepare said no
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else "no reason"
            raise ValueError(f"TFLM rejected operators {self._names}: {reason} (TFLM "
                             "printed the failing check above)") from None

    def run(self, values, count):
        """Runs the `count` samples of the [N, ...] arrays in `values` one by one
        (the TFLM interpreter's batch is 1)."""
        outputs = [[] for _ in self.outputs]
        for sample in range(count):
            for index, tensor in enumerate(self.inputs):
                self._interpreter.set_input(values[tensor][sample:sample + 1], index)
            try:
                self._interpreter.invoke()
            except RuntimeError as error:
                raise ValueError(f"TFLM failed running operators {self._names}: "
                                 f"{error}") from None
            for index, result in enumerate(outputs):
                result.append(np.array(self._interpreter.get_output(index)))
        for tensor, result in zip(self.outputs, outputs):
            values[tensor] = np.concatenate(result)


class _RNNPoolStep:
    """One RNNPool op, run by the C++ kernel core with the parameters the
    kernel's Prepare computes (converters.tflite_io.rnnpool_validation)."""

    def __init__(self, model, op, op_index):
        from tflm_kernels import core

        subgraph = model.subgraphs[0]
        self._params = rnnpool_validation.validated_rnnpool_op(model, subgraph, op, op_index)
        for position, (cell, name) in enumerate(contract.WEIGHT_INPUTS, start=1):
            weight = name[len(cell) + 1:]  # rnn1_kernel -> kernel
            value = tflite_model.constant_value(model, subgraph.tensors[op.inputs[position]])
            self._params[cell][weight] = value.reshape(-1) if "bias" in weight else value
        if self._params["has_stem"]:  # version 2: the op's own convolution
            for position, name in ((9, "filter"), (10, "bias")):
                value = tflite_model.constant_value(model, subgraph.tensors[op.inputs[position]])
                self._params["stem"][name] = value
            kernels = (core._core.stem_rnnpool_int8, core._core.stem_rnnpool_float)
        else:
            kernels = (core._core.rnnpool_int8, core._core.rnnpool_float)
        self.input, self.output = int(op.inputs[0]), int(op.outputs[0])
        self._kernel = kernels[0] if self._params["is_int8"] else kernels[1]

    def run(self, values, count):
        # One kernel call for the whole batch: the core loops over its images.
        values[self.output] = self._kernel(self._params,
                                           np.ascontiguousarray(values[self.input]))


def _plan_of(model_bytes):
    """(model, steps) of a model file, checked and planned once and kept for the
    next calls (the last _PLAN_CACHE_SIZE models, keyed by the bytes' SHA-256)."""
    bytes_like = isinstance(model_bytes, (bytes, bytearray, memoryview))
    key = hashlib.sha256(model_bytes).digest() if bytes_like else None
    if key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key]
    model = model_checks.load_checked(model_bytes, "run_tflite")  # TypeError if not bytes
    _PLANS[key] = model, plan(model)
    while len(_PLANS) > _PLAN_CACHE_SIZE:
        _PLANS.popitem(last=False)
    return _PLANS[key]


def plan(model):
    """The model (a checked ModelT) as a list of steps: builtin segments on TFLM
    and RNNPool ops, in order; ValueError if TFLM's Prepare or the RNNPool
    validator rejects an operator."""
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
            steps.append(_RNNPoolStep(model, subgraph.operators[group], group))
            continue
        later = set(int(t) for t in subgraph.outputs)
        for following in groups[position + 1:]:
            for i in [following] if isinstance(following, int) else following:
                later.update(int(t) for t in subgraph.operators[i].inputs)
        steps.append(_BuiltinSegment(model, group, later))
    return steps


def _input_array(value, position):
    """inputs[position] as a float32 array [N, ...]; TypeError / ValueError if it is not one."""
    try:
        array = np.asarray(value, np.float32)
    except (TypeError, ValueError) as error:
        raise TypeError(f"inputs[{position}] must be a numeric array [N, ...]: "
                        f"{error}") from None
    if array.ndim < 1:
        raise ValueError(f"inputs[{position}] must be an array [N, ...], got a scalar")
    return array


def _to_model_input(array, tensor, position):
    """A float sample, quantised if the model input is int8."""
    expected = tuple(int(n) for n in tensor.shape[1:])
    if tuple(array.shape[1:]) != expected:
        raise ValueError(f"inputs[{position}] has sample shape {tuple(array.shape[1:])}; "
                         f"the model expects {expected}")
    dtype = tflite_model.tensor_dtype(tensor)
    if dtype == np.int8:
        if not np.all(np.isfinite(array)):
            raise ValueError(f"inputs[{position}] holds NaN or infinite values; an int8 "
                             "model input cannot represent them")
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
    Raises:
      TypeError: model_bytes is not bytes-like, or an input is not numeric.
      ValueError: naming the operator / tensor / option, for a file TFLM's
        Prepare (builtins, and the RNNPool validator of
        tflm_kernels/rnnpool_validate.h) or the structure checks of
        converters.tflite_io.model_checks reject; for inputs of the wrong count
        or shape, N = 0, or NaN / infinity into an int8 model.
    """
    model, steps = _plan_of(model_bytes)
    subgraph = model.subgraphs[0]
    if len(inputs) != len(subgraph.inputs):
        raise ValueError(f"run_tflite got {len(inputs)} input arrays; the model has "
                         f"{len(subgraph.inputs)} inputs")
    arrays = [_input_array(x, i) for i, x in enumerate(inputs)]
    counts = {len(x) for x in arrays}
    if len(counts) != 1:
        raise ValueError("inputs must be arrays [N, ...] with the same N, got N = "
                         f"{sorted(len(x) for x in arrays)}")
    if counts == {0}:
        raise ValueError("inputs hold no sample (N = 0); pass arrays [N, ...] with N >= 1")
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
