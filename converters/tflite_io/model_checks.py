"""Structural checks of a .tflite before anything reads its tensors.

TFLM trusts the flatbuffer: an operator input index past the tensor list, a
weight buffer shorter than its shape or a negative dimension make it read
out of bounds (garbage numbers or a segfault). `check_model` finds these in
Python first and names the operator and tensor; the RNNPool op's own
contract is checked by converters.tflite_io.rnnpool_validation (the kernel's code).
"""
import numpy as np

from converters.tflite_io import schema
from converters.tflite_io import tflite_model


# The smallest activation scale with which 6.0 (ReLU6's limit) still quantises
# into int32, as TFLM's Prepare requires of fused activations.
_MIN_ACTIVATION_SCALE = 6.0 / 2 ** 31
# Zero points TFLM can hold (int32) and that lie in the tensor type's range.
_ZERO_POINT_RANGE = {
    schema.TensorType.INT8: (-128, 127), schema.TensorType.UINT8: (0, 255),
    schema.TensorType.INT16: (-32768, 32767), None: (-2 ** 31, 2 ** 31 - 1)}

def _tensor_label(subgraph, index):
    name = subgraph.tensors[index].name
    name = name.decode(errors="replace") if isinstance(name, bytes) else name
    return f"tensor {index} ({name!r})" if name else f"tensor {index}"


def _check_indices(where, indices, count, allow_absent):
    for position, index in enumerate(indices if indices is not None else []):
        index = int(index)
        if (index == -1 and allow_absent) or 0 <= index < count:
            continue
        raise ValueError(f"{where} index {position} is {index}; the subgraph has {count} "
                         "tensors" + (" (-1: absent optional input)" if allow_absent else ""))


def _check_tensor(model, subgraph, index, file_bytes):
    tensor = subgraph.tensors[index]
    label = _tensor_label(subgraph, index)
    shape = tflite_model.shape_of(tensor)
    if any(n < 0 for n in shape):
        raise ValueError(f"{label} has shape {shape}: dimensions must be >= 0")
    if tensor.type not in tflite_model.ITEM_BYTES:
        raise ValueError(f"{label} has type {tflite_model.type_name(tensor)}, which this tool "
                         "does not support")
    if not 0 <= tensor.buffer < len(model.buffers):
        raise ValueError(f"{label} refers to buffer {tensor.buffer}; the model has "
                         f"{len(model.buffers)}")
    buffer = model.buffers[tensor.buffer]
    held = len(buffer.data) if buffer.data is not None else int(getattr(buffer, "size", 0))
    if buffer.data is None and held:  # stored after the flatbuffer: offset + size
        end = int(getattr(buffer, "offset", 0)) + held
        if file_bytes is not None and end > len(file_bytes):
            raise ValueError(f"{label}: its buffer ends at byte {end}, past the end of the "
                             f"{len(file_bytes)}-byte file")
    needed = tflite_model.tensor_bytes(tensor)
    if held and held < needed:
        raise ValueError(f"{label} has shape {shape} ({tflite_model.type_name(tensor)}, "
                         f"{needed} bytes) but its buffer holds {held} bytes")
    q = tensor.quantization
    if q is not None and q.scale is not None and len(q.scale):
        scales = np.asarray(q.scale, np.float64)
        zero_points = q.zeroPoint if q.zeroPoint is not None else []
        if len(zero_points) != len(scales):
            raise ValueError(f"{label} has {len(scales)} quantization scales and "
                             f"{len(zero_points)} zero points; expected as many of each")
        if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise ValueError(f"{label} has a quantization scale that is not positive "
                             "and finite")
        low, high = _ZERO_POINT_RANGE.get(tensor.type, _ZERO_POINT_RANGE[None])
        if len(zero_points) and (np.min(zero_points) < low or np.max(zero_points) > high):
            raise ValueError(f"{label} has a zero point outside [{low}, {high}], the range "
                             f"of its type {tflite_model.type_name(tensor)}")
        if not tflite_model.is_constant(model, tensor) and \
                np.min(scales) < _MIN_ACTIVATION_SCALE:
            # TFLM's Prepare quantises fused-activation limits (up to 6) with an
            # activation's scale; past int32 it fails, and the tflite-micro Python
            # interpreter then crashes instead of reporting it.
            raise ValueError(f"{label} has quantization scale {np.min(scales):.3g}; an "
                             f"activation's scale must be >= {_MIN_ACTIVATION_SCALE:.3g} "
                             "(6 / 2^31) for TFLM to quantise activation limits")
        if len(scales) > 1 and not 0 <= q.quantizedDimension < max(len(shape), 1):
            raise ValueError(f"{label} is quantized along dimension "
                             f"{q.quantizedDimension}; it has rank {len(shape)}")


def load_checked(model_bytes, tool):
    """ModelT of a single-subgraph .tflite whose structure check_model accepts.

    `tool` names the caller in messages ("run_tflite", "the memory report").
    TypeError if model_bytes is not bytes-like; ValueError otherwise."""
    if not isinstance(model_bytes, (bytes, bytearray, memoryview)):
        raise TypeError("model_bytes must be the bytes of a .tflite model, got "
                        f"{type(model_bytes).__name__}")
    model_bytes = bytes(model_bytes)
    model = tflite_model.load(model_bytes)
    if len(model.subgraphs) != 1:
        raise ValueError(f"model_bytes has {len(model.subgraphs)} subgraphs; {tool} "
                         "handles single-subgraph models (no control flow)")
    check_model(model, model_bytes)
    return model


def check_model(model, file_bytes=None):
    """Raises ValueError, naming the operator and tensor, unless every index,
    shape and buffer of the main subgraph is in range.

    Args:
      model: a schema ModelT (tflite_model.load).
      file_bytes: the .tflite bytes, to check buffers stored after the flatbuffer.
    """
    if not model.subgraphs:
        raise ValueError("the model has no subgraph")
    subgraph = model.subgraphs[0]
    tensors = subgraph.tensors or []
    count = len(tensors)
    _check_indices("subgraph input", subgraph.inputs, count, allow_absent=False)
    _check_indices("subgraph output", subgraph.outputs, count, allow_absent=False)
    codes = model.operatorCodes or []
    for index in range(count):
        _check_tensor(model, subgraph, index, file_bytes)
    for index, op in enumerate(subgraph.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            raise ValueError(f"operator {index} has operator code {op.opcodeIndex}; the "
                             f"model has {len(codes)}")
        where = f"operator {index} ({tflite_model.op_name(model, op)})"
        _check_indices(f"{where} input", op.inputs, count, allow_absent=True)
        _check_indices(f"{where} output", op.outputs, count, allow_absent=False)
        _check_indices(f"{where} intermediate", op.intermediates, count, allow_absent=False)
