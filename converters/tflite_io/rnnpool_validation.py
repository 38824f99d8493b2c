"""The RNNPool op of a .tflite, validated by the code TFLM's Prepare runs.

`validated_rnnpool_op(model, subgraph, op)` describes the op to the C++
validator of `tflm_kernels/rnnpool_validate.h` (bound as
`tflm_kernels._rnnpool_core.validate_op`): the custom options decoded with
their flexbuffer types kept (an int stays an int, a bool a bool; nothing is
converted), and the tensors' types, shapes, constness and quantization. So
run_tflite, memory_report and `rnnpool report` accept exactly the files the
kernel accepts, and run with exactly the parameters its Prepare computes.
"""
import numpy as np
from flatbuffers import flexbuffers

from converters.tflite_io import schema
from converters.tflite_io import tflite_model

# rnnpool_validate.h OptionType / TensorType / Quantization codes.
_INT, _UINT, _FLOAT, _BOOL, _STRING, _OTHER = range(6)
_FLOAT32, _INT8, _INT32, _OTHER_TYPE = range(4)
_NOT_QUANTIZED, _PER_TENSOR, _PER_CHANNEL = range(3)
_CONTRACT_TYPES = {schema.TensorType.FLOAT32: _FLOAT32, schema.TensorType.INT8: _INT8,
                   schema.TensorType.INT32: _INT32}
_FLEX = flexbuffers.Type


def _option_entry(key, value):
    """(key, type code, value) of one map entry, the value as stored."""
    kind = value._type  # the flexbuffer type: Ref has no public accessor for it
    if kind is _FLEX.BOOL:
        return key, _BOOL, None
    if kind in (_FLEX.INT, _FLEX.INDIRECT_INT):
        return key, _INT, int(value.AsInt)
    if kind in (_FLEX.UINT, _FLEX.INDIRECT_UINT):
        return key, _UINT, int(value.AsInt)
    if kind in (_FLEX.FLOAT, _FLEX.INDIRECT_FLOAT):
        return key, _FLOAT, float(value.AsFloat)
    if kind in (_FLEX.STRING, _FLEX.KEY):
        return key, _STRING, None
    return key, _OTHER, None


def option_entries(custom_options):
    """(status, [(key, type code, value)]) of an op's flexbuffer options.

    status is _rnnpool_core.OPTIONS_OK, OPTIONS_MISSING (none) or
    OPTIONS_MALFORMED (not a flexbuffer map)."""
    from tflm_kernels import _rnnpool_core as core

    if custom_options is None or not len(custom_options):
        return core.OPTIONS_MISSING, []
    data = bytes(np.asarray(custom_options, np.uint8))
    try:
        root = flexbuffers.GetRoot(data)
        if not root.IsMap:
            return core.OPTIONS_MALFORMED, []
        options = root.AsMap
        keys = options.Keys
        if len(keys) > core.MAX_OPTION_KEYS:  # rejected before any key is read
            return core.OPTIONS_OK, [("", _OTHER, None)] * len(keys)
        values = options.Values
        if len(values) != len(keys):
            return core.OPTIONS_MALFORMED, []
        return core.OPTIONS_OK, [_option_entry(keys[i].AsKey, values[i])
                                 for i in range(len(keys))]
    except Exception:  # garbage bytes raise struct.error, IndexError, ...: not a map
        return core.OPTIONS_MALFORMED, []


def _describe(model, subgraph, index):
    """The validator's tuple for tensor `index` (None: -1, an absent optional input)."""
    if index < 0:
        return None
    tensor = subgraph.tensors[index]
    dims = tflite_model.shape_of(tensor)
    q = tensor.quantization
    scales = [] if q is None or q.scale is None else list(q.scale)
    zero_points = [] if q is None or q.zeroPoint is None else list(q.zeroPoint)
    channel_scales, dimension, zero_points_zero = [], 0, True
    if not scales:
        quantization, scale, zero_point = _NOT_QUANTIZED, 0.0, 0
    elif len(scales) != 1 or len(zero_points) > 1:
        quantization, scale, zero_point = _PER_CHANNEL, 0.0, 0
        channel_scales = [float(np.float32(s)) for s in scales]
        dimension = int(q.quantizedDimension)
        zero_points_zero = all(int(z) == 0 for z in zero_points)
    else:
        quantization, scale = _PER_TENSOR, float(np.float32(scales[0]))
        zero_point = int(zero_points[0]) if zero_points else 0
        if not -2**31 <= zero_point < 2**31:
            zero_point = 2**31 - 1  # out of int8 range: rejected by the validator
    return (_CONTRACT_TYPES.get(tensor.type, _OTHER_TYPE), tflite_model.type_name(tensor),
            dims, tflite_model.is_constant(model, tensor), quantization, scale, zero_point,
            channel_scales, dimension, zero_points_zero)


def validated_rnnpool_op(model, subgraph, op, op_index=None):
    """The op's validated parameters: the kernel-params dict of
    tflm_kernels._rnnpool_core without the weight arrays (shape, pool_size,
    strides, codes, input_shape / output_shape, scratch_bytes, per cell
    sigmoid(zeta) / sigmoid(nu) or zeta_q14 / nu_q14, tables and multipliers,
    zero points), as TFLM's Prepare computes them.

    Tensor indices must be in range (converters.tflite_io.model_checks checks them).
    Raises ValueError naming the op, and the key or tensor at fault."""
    from tflm_kernels import _rnnpool_core as core

    status, entries = option_entries(op.customOptions)
    inputs = [_describe(model, subgraph, int(t)) for t in op.inputs]
    outputs = [_describe(model, subgraph, int(t)) for t in op.outputs]
    try:
        return core.validate_op(status, entries, inputs, outputs)
    except ValueError as error:
        where = "RNNPool op" if op_index is None else f"RNNPool op {op_index}"
        raise ValueError(f"{where}: {error}") from None
