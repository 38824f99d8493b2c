"""Expansion convolutions run in channel groups, so that TFLM never holds a
whole expanded map: `split_expansions(model_bytes)`.

An inverted-residual block expands its input with a CONV_2D (28x28x32 ->
28x28x192 in the VWW model) that only a DEPTHWISE_CONV_2D reads; run layer by
layer, TFLM holds the whole expanded map next to the depthwise output. Both
ops compute each output channel from one channel of the expanded map (the
depthwise, with depth multiplier 1) or from all input channels (the conv), so
the pair can run as G pairs on contiguous channel slices:

    conv_1, depthwise_1, conv_2, depthwise_2, ..., CONCATENATION (axis 3)

Each conv_g keeps the conv's options and input and takes rows lo:hi of its
filter, bias and per-channel scales / zero points; each depthwise_g takes
channels lo:hi of the depthwise filter, bias and quantisation; the
CONCATENATION writes the original depthwise output tensor. Every value is
computed by the same arithmetic (per-channel sums and requantisation), and
int8 concatenation with the input and output quantisation equal is a copy,
so the result is bit-exact, float and int8. TFLM's planner frees expanded
slice g before slice g + 1 is written: the block holds 1/G of the expanded
map, plus the block input until the last conv_g and the depthwise output.
"""
import copy

import numpy as np

from converters.analysis import memory_plan
from converters.analysis import op_costs
from converters.tflite_io import model_checks
from converters.tflite_io import schema
from converters.tflite_io import tflite_model

DEFAULT_MAX_GROUPS = 8
_TYPE = schema.TensorType
_ACTIVATION_TYPES = (_TYPE.FLOAT32, _TYPE.INT8)
_CHANNEL_AXIS = 3  # NHWC
# TFLite's version of CONCATENATION by input type (tools/versioning/op_version.cc).
_CONCATENATION_VERSION = {_TYPE.FLOAT32: 1, _TYPE.INT8: 2}


def split_expansions(model_bytes, max_groups=DEFAULT_MAX_GROUPS):
    """Splits each expansion CONV_2D -> DEPTHWISE_CONV_2D pair that sets the
    TFLM arena into channel groups (see the module docstring); bit-exact.

    A pair qualifies when the conv (constant filter [C, kh, kw, C_in], no
    grouping) writes a float32 or int8 tensor [1, H, W, C] that only the
    depthwise (constant filter [1, kh, kw, C], depth multiplier 1) reads. For
    each pair whose live set (bytes TFLM holds while its ops run) exceeds the
    largest live set of the ops outside every such pair, the smallest number
    of groups G <= max_groups that brings it down to that level is taken (the
    G with the smallest live set if none does). The split model is kept only
    if TFLM's planned arena (converters.analysis.memory_plan) shrinks, and
    each split only if the arena needs it; otherwise the pair stays whole.

    Args:
      model_bytes: a .tflite flatbuffer (bytes-like); models with several
        subgraphs are returned unchanged.
      max_groups: the most groups a pair is split into, an int >= 1 (1: none).

    Returns:
      The .tflite bytes: `model_bytes` unchanged if no split shrinks the arena.

    Raises:
      TypeError: if model_bytes is not bytes-like or max_groups not an int.
      ValueError: if model_bytes is not a valid TFLite model or max_groups < 1.
    """
    if not isinstance(model_bytes, (bytes, bytearray, memoryview)):
        raise TypeError(f"model_bytes must be bytes-like (a .tflite flatbuffer), got "
                        f"{type(model_bytes).__name__}")
    if isinstance(max_groups, (bool, np.bool_)) or \
            not isinstance(max_groups, (int, np.integer)):
        raise TypeError(f"max_groups must be an int, got {type(max_groups).__name__}")
    if max_groups < 1:
        raise ValueError(f"max_groups must be >= 1, got {max_groups}")
    model_bytes = bytes(model_bytes)
    model = tflite_model.load(model_bytes)
    if len(model.subgraphs) != 1:  # control flow: left as the converter wrote it
        return model_bytes
    model_checks.check_model(model, model_bytes)
    pairs = _expansion_pairs(model)
    if not pairs:
        return model_bytes
    live, arena = _live_bytes_and_arena(model)
    groups = _groups_per_pair(model, pairs, live, max_groups)
    if not groups:
        return model_bytes
    best_arena = _arena_with(model, groups)
    if best_arena >= arena:
        return model_bytes
    for pair in sorted(groups):  # drop the splits the arena does not need
        without = {p: g for p, g in groups.items() if p != pair}
        smaller = _arena_with(model, without) if without else arena
        if smaller <= best_arena:
            groups, best_arena = without, smaller
    _apply(model, groups)
    tflite_model.prune(model)
    return tflite_model.save(model)


# -- finding the pairs -----------------------------------------------------------

def _is_constant(model, subgraph, index):
    return index >= 0 and tflite_model.is_constant(model, subgraph.tensors[index])


def _expansion_pairs(model):
    """[(conv index, depthwise index)] of the pairs that can be split."""
    subgraph = model.subgraphs[0]
    readers = tflite_model.consumers(subgraph)
    outputs = {int(t) for t in subgraph.outputs}
    pairs = []
    for c, conv in enumerate(subgraph.operators):
        if tflite_model.op_name(model, conv) != "CONV_2D" or len(conv.outputs) != 1:
            continue
        expanded = int(conv.outputs[0])
        found = readers.get(expanded, [])
        if len(found) != 1 or expanded in outputs:
            continue
        d = found[0]
        depthwise = subgraph.operators[d]
        if d > c and tflite_model.op_name(model, depthwise) == "DEPTHWISE_CONV_2D" and \
                _splittable(model, subgraph, conv, depthwise):
            pairs.append((c, d))
    return pairs


def _splittable(model, subgraph, conv, depthwise):
    """True when the pair's tensors are those the split is exact for."""
    tensors = subgraph.tensors
    if len(conv.inputs) < 2 or len(depthwise.inputs) < 2 or len(depthwise.outputs) != 1:
        return False
    x, conv_filter = int(conv.inputs[0]), int(conv.inputs[1])
    expanded, dw_filter = int(conv.outputs[0]), int(depthwise.inputs[1])
    if int(depthwise.inputs[0]) != expanded or expanded in depthwise.inputs[1:]:
        return False
    if not (_is_constant(model, subgraph, conv_filter) and
            _is_constant(model, subgraph, dw_filter)):
        return False
    if any(not _is_constant(model, subgraph, int(t))
           for op in (conv, depthwise) for t in op.inputs[2:] if t >= 0):
        return False
    activation_type = tensors[expanded].type
    if activation_type not in _ACTIVATION_TYPES or any(
            tensors[t].type != activation_type or tensors[t].isVariable
            for t in (x, expanded, int(depthwise.outputs[0]))):
        return False
    # Weights of the activations' own type: no hybrid, int4 or sparse filters.
    if any(tensors[t].type != activation_type or tensors[t].sparsity is not None
           for t in (conv_filter, dw_filter)):
        return False
    x_shape, expanded_shape = (tflite_model.shape_of(tensors[t]) for t in (x, expanded))
    conv_shape = tflite_model.shape_of(tensors[conv_filter])
    dw_shape = tflite_model.shape_of(tensors[dw_filter])
    output_shape = tflite_model.shape_of(tensors[int(depthwise.outputs[0])])
    if len(x_shape) != 4 or len(expanded_shape) != 4 or len(output_shape) != 4:
        return False
    channels = expanded_shape[_CHANNEL_AXIS]
    return (len(conv_shape) == 4 and conv_shape[0] == channels
            and conv_shape[3] == x_shape[_CHANNEL_AXIS]  # not a grouped conv
            and len(dw_shape) == 4 and dw_shape[0] == 1 and dw_shape[3] == channels
            and output_shape[_CHANNEL_AXIS] == channels  # depth multiplier 1
            and channels >= 2
            and all(_sliceable(model, tensors[int(t)], axis, channels)
                    for t, axis in _sliced_inputs(conv, depthwise)))


def _sliced_inputs(conv, depthwise):
    """(tensor index, channel axis) of the constants sliced per group."""
    sliced = [(conv.inputs[1], 0), (depthwise.inputs[1], 3)]
    sliced += [(op.inputs[2], 0) for op in (conv, depthwise)
               if len(op.inputs) > 2 and op.inputs[2] >= 0]
    return sliced


def _sliceable(model, tensor, axis, channels):
    data = model.buffers[tensor.buffer].data
    if data is None or not len(data):  # stored after the flatbuffer: not read here
        return False
    shape = tflite_model.shape_of(tensor)
    if axis >= len(shape) or shape[axis] != channels or tensor.type not in \
            tflite_model.TENSOR_TYPES:
        return False
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) <= 1:
        return True
    return len(q.scale) == channels and q.quantizedDimension == axis and \
        q.zeroPoint is not None and len(q.zeroPoint) == channels


# -- choosing the groups -----------------------------------------------------------

def _live_bytes_and_arena(model):
    """(bytes live per operator, scratch included; TFLM's planned arena)."""
    subgraph = model.subgraphs[0]
    sizes = memory_plan.planned_tensor_bytes(model, subgraph)
    requests = [op_costs.scratch_requests(model, subgraph, i)
                for i in range(len(subgraph.operators))]
    lifetimes = memory_plan.tensor_lifetimes(subgraph, set(sizes))
    live = []
    for index, sizes_requested in enumerate(requests):
        scope = index + 1  # TFLM's allocation scope of operator `index`
        live.append(sum(size for t, size in sizes.items()
                        if lifetimes[t][0] <= scope <= lifetimes[t][1])
                    + sum(sizes_requested))
    buffers = memory_plan.plan_buffers(subgraph, sizes, set(sizes), requests)
    return live, memory_plan.arena_bytes(buffers)


def _groups_per_pair(model, pairs, live, max_groups):
    """{pair: G} for the pairs whose live set is above the rest of the model's."""
    inside = {i for c, d in pairs for i in range(c, d + 1)}
    outside = max((b for i, b in enumerate(live) if i not in inside), default=0)
    chosen = {}
    for c, d in pairs:
        if max(live[c:d + 1]) <= outside:
            continue
        channels = tflite_model.shape_of(
            model.subgraphs[0].tensors[model.subgraphs[0].operators[c].outputs[0]])[-1]
        best = None
        for groups in range(2, min(max_groups, channels) + 1):
            trial = copy.deepcopy(model)
            _apply(trial, {(c, d): groups})
            # The pair's 2G + 1 ops and those between conv and depthwise.
            pair_live = max(_live_bytes_and_arena(trial)[0][c:d + 2 * groups])
            if best is None or pair_live < best[0]:
                best = (pair_live, groups)
            if pair_live <= outside:
                break
        if best is not None and best[0] < max(live[c:d + 1]):
            chosen[(c, d)] = best[1]
    return chosen


def _arena_with(model, groups):
    trial = copy.deepcopy(model)
    _apply(trial, groups)
    return _live_bytes_and_arena(trial)[1]


# -- the rewrite ---------------------------------------------------------------------

def _apply(model, groups):
    """Splits the pairs {(conv index, depthwise index): G} of `model` in place."""
    subgraph = model.subgraphs[0]
    operators = list(subgraph.operators)
    replaced = {}
    for (c, d), count in groups.items():
        replaced[c] = _split_pair(model, subgraph, operators[c], operators[d], count)
        replaced[d] = []
    subgraph.operators = [new for i, op in enumerate(operators)
                          for new in replaced.get(i, [op])]


def _channel_bounds(channels, groups):
    """Group g is channels bounds[g]:bounds[g + 1], sizes differing by at most 1."""
    return [channels * g // groups for g in range(groups + 1)]


def _split_pair(model, subgraph, conv, depthwise, groups):
    """The ops replacing conv and depthwise: conv_g, depthwise_g ..., CONCATENATION."""
    expanded, output = int(conv.outputs[0]), int(depthwise.outputs[0])
    channels = tflite_model.shape_of(subgraph.tensors[expanded])[_CHANNEL_AXIS]
    bounds = _channel_bounds(channels, groups)
    slices = list(zip(bounds[:-1], bounds[1:]))
    # Tensors added last group first: TFLM places equal sizes last added first,
    # so group 1's slices take the lowest offsets and the later ones stack above.
    made = {(lo, hi): (_activation_slice(subgraph, expanded, lo, hi),
                       _activation_slice(subgraph, output, lo, hi))
            for lo, hi in reversed(slices)}
    new_ops, pieces = [], []
    for lo, hi in slices:
        conv_g = _op_like(conv)
        conv_g.inputs = np.array(
            [conv.inputs[0], _sliced_constant(model, subgraph, conv.inputs[1], 0, lo, hi)]
            + [_sliced_constant(model, subgraph, t, 0, lo, hi) if t >= 0 else -1
               for t in conv.inputs[2:]], np.int32)
        conv_g.outputs = np.array([made[(lo, hi)][0]], np.int32)
        depthwise_g = _op_like(depthwise)
        depthwise_g.inputs = np.array(
            [conv_g.outputs[0], _sliced_constant(model, subgraph, depthwise.inputs[1], 3,
                                                 lo, hi)]
            + [_sliced_constant(model, subgraph, t, 0, lo, hi) if t >= 0 else -1
               for t in depthwise.inputs[2:]], np.int32)
        piece = made[(lo, hi)][1]
        depthwise_g.outputs = np.array([piece], np.int32)
        new_ops += [conv_g, depthwise_g]
        pieces.append(piece)
    concatenation = schema.OperatorT()
    concatenation.opcodeIndex = _concatenation_code(model, subgraph.tensors[output].type)
    concatenation.builtinOptionsType = schema.BuiltinOptions.ConcatenationOptions
    concatenation.builtinOptions = schema.ConcatenationOptionsT()
    concatenation.builtinOptions.axis = _CHANNEL_AXIS
    concatenation.builtinOptions.fusedActivationFunction = \
        schema.ActivationFunctionType.NONE
    concatenation.inputs = np.array(pieces, np.int32)
    concatenation.outputs = np.array([output], np.int32)
    return new_ops + [concatenation]


def _op_like(op):
    """A new operator with `op`'s code and options (copied), inputs and outputs unset."""
    new = copy.copy(op)
    new.builtinOptions = copy.deepcopy(op.builtinOptions)
    new.inputs = new.outputs = None
    return new


def _named_slice(tensor, lo, hi):
    new = copy.deepcopy(tensor)
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else (tensor.name or "")
    new.name = f"{name}/channels_{lo}_{hi}"
    return new


def _activation_slice(subgraph, index, lo, hi):
    """A new activation tensor: tensor `index` with channels lo:hi only."""
    tensor = _named_slice(subgraph.tensors[index], lo, hi)
    tensor.shape = np.array(tensor.shape, np.int32)
    tensor.shape[_CHANNEL_AXIS] = hi - lo
    if tensor.shapeSignature is not None and len(tensor.shapeSignature) == 4:
        tensor.shapeSignature = np.array(tensor.shapeSignature, np.int32)
        tensor.shapeSignature[_CHANNEL_AXIS] = hi - lo
    tensor.buffer = 0  # no data: planned in the arena
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _sliced_constant(model, subgraph, index, axis, lo, hi):
    """A new constant tensor: entries lo:hi of tensor `index` along `axis`, with
    its per-channel quantisation sliced alike."""
    source = subgraph.tensors[index]
    values = np.take(tflite_model.constant_value(model, source), np.arange(lo, hi),
                     axis=axis)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = _named_slice(source, lo, hi)
    tensor.shape = np.array(values.shape, np.int32)
    tensor.shapeSignature = None
    tensor.buffer = len(model.buffers) - 1
    q = tensor.quantization
    if q is not None and q.scale is not None and len(q.scale) > 1:
        q.scale = np.asarray(q.scale)[lo:hi]
        q.zeroPoint = np.asarray(q.zeroPoint)[lo:hi]
        for bound in ("min", "max"):
            if getattr(q, bound) is not None and len(getattr(q, bound)) > 1:
                setattr(q, bound, np.asarray(getattr(q, bound))[lo:hi])
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _concatenation_code(model, tensor_type):
    """Index of the CONCATENATION operator code, added if the model has none."""
    builtin = schema.BuiltinOperator.CONCATENATION
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            code.version = max(code.version, _CONCATENATION_VERSION[tensor_type])
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = _CONCATENATION_VERSION[tensor_type]
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1
