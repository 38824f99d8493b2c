"""Reading and rewriting .tflite flatbuffers with the generated schema.

All parsing goes through `converters.tflite_io.schema` (the generated
object API: ModelT and friends); this module adds what the converter, the host
runner and the memory report need on top: names of operators, producer and
consumer maps, new constant tensors, pruning, and packing with the 16-byte
buffer alignment the TFLite converter itself guarantees (int32 / float data
read in place by TFLM must stay aligned on a microcontroller).
"""
import contextlib
import threading

import numpy as np
from flatbuffers import encode
from flatbuffers import number_types
from flatbuffers import table

from converters.tflite_io import schema

FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16

TENSOR_TYPES = {  # schema TensorType -> numpy dtype, for the types we write or read
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.INT64: np.int64,
    schema.TensorType.BOOL: np.bool_,
}
_TYPE_OF_DTYPE = {np.dtype(dtype): code for code, dtype in TENSOR_TYPES.items()}
_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                  if not name.startswith("_")}
_TYPE = schema.TensorType
ITEM_BYTES = {  # bytes per element as TfLiteEvalTensorByteLength counts them
    _TYPE.FLOAT32: 4, _TYPE.FLOAT16: 2, _TYPE.BFLOAT16: 2, _TYPE.FLOAT64: 8,
    _TYPE.INT8: 1, _TYPE.UINT8: 1, _TYPE.BOOL: 1, _TYPE.INT16: 2, _TYPE.UINT16: 2,
    _TYPE.INT32: 4, _TYPE.UINT32: 4, _TYPE.INT64: 8, _TYPE.UINT64: 8,
    _TYPE.COMPLEX64: 8, _TYPE.COMPLEX128: 16,
}
TYPE_NAMES = {code: name.lower() for name, code in vars(_TYPE).items()
              if not name.startswith("_")}


def shape_of(tensor):
    """The tensor's shape as a list of ints ([] for a scalar)."""
    return [int(n) for n in (tensor.shape if tensor.shape is not None else [])]


def type_name(tensor):
    """"float32", "int8", ... of a schema tensor."""
    return TYPE_NAMES.get(tensor.type, f"type_{tensor.type}")


def tensor_bytes(tensor):
    """Bytes of a tensor's data (elements x element size, no alignment)."""
    if tensor.type not in ITEM_BYTES:
        raise ValueError(f"tensor {tensor.name!r} has type {type_name(tensor)}, "
                         "whose size this report does not know")
    return int(np.prod(shape_of(tensor), dtype=np.int64)) * ITEM_BYTES[tensor.type]


def is_constant(model, tensor):
    """True when the tensor's data is in the flatbuffer (weights, biases, shapes)."""
    buffer = model.buffers[tensor.buffer]
    # `size` is set instead of `data` for buffers stored after the flatbuffer.
    return (buffer.data is not None and len(buffer.data) > 0) or \
        bool(getattr(buffer, "size", 0))


_STRING_CHECK = threading.Lock()
_UOFFSET = number_types.UOffsetTFlags


@contextlib.contextmanager
def _strings_within_the_buffer():
    """While the object API unpacks: a string (a tensor's name, a signature
    key...) that runs past the end of the bytes raises IndexError.

    Every other read past the end already raises (struct.error, numpy's
    ValueError), but flatbuffers' Table.String slices, so a file truncated in
    its strings would load with shorter names, where TFLM's verifier refuses it
    (a string must end, with its terminating zero, inside the buffer)."""
    original = table.Table.String

    def checked_string(tab, offset):
        start = offset + encode.Get(_UOFFSET.packer_type, tab.Bytes, offset)
        length = encode.Get(_UOFFSET.packer_type, tab.Bytes, start)
        if start + _UOFFSET.bytewidth + length >= len(tab.Bytes):
            raise IndexError(f"a string of {length} bytes at offset {start} runs past "
                             f"the end ({len(tab.Bytes)} bytes)")
        return original(tab, offset)

    with _STRING_CHECK:
        table.Table.String = checked_string
        try:
            yield
        finally:
            table.Table.String = original


def load(model_bytes):
    """ModelT of .tflite bytes; ValueError if they are not a TFLite model."""
    model_bytes = bytes(model_bytes)
    if len(model_bytes) < 8 or model_bytes[4:8] != FILE_IDENTIFIER:
        raise ValueError("model_bytes is not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        with _strings_within_the_buffer():
            return schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    except Exception as error:  # offsets past the end: struct.error, IndexError, ...
        raise ValueError(f"model_bytes is not a valid TFLite flatbuffer (truncated or "
                         f"corrupt: {type(error).__name__})") from None


class _AlignedBufferT(schema.BufferT):
    """BufferT whose data vector starts on a BUFFER_ALIGNMENT boundary."""

    def Pack(self, builder):
        if self.data is not None and len(self.data):
            # Pad so that the data (written next, back to front) ends aligned;
            # the vector's own Prep then adds nothing.
            builder.Prep(BUFFER_ALIGNMENT, len(self.data))
        return super().Pack(builder)


def save(model):
    """Bytes of a ModelT, every buffer 16-byte aligned."""
    import flatbuffers

    for i, buffer in enumerate(model.buffers):
        if type(buffer) is not _AlignedBufferT:
            aligned = _AlignedBufferT()
            aligned.__dict__.update(buffer.__dict__)
            model.buffers[i] = aligned
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def op_name(model, op):
    """"CONV_2D", ... for a builtin, the custom code (e.g. "RNNPool") for a custom op."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return code.customCode.decode(errors="replace") \
            if isinstance(code.customCode, bytes) else code.customCode
    return _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")


def op_names(model_bytes):
    """Operator names of the main subgraph, in execution order."""
    model = load(model_bytes)
    return [op_name(model, op) for op in model.subgraphs[0].operators]


def producers(subgraph):
    """{tensor index: index of the operator that writes it}."""
    return {int(t): i for i, op in enumerate(subgraph.operators) for t in op.outputs}


def consumers(subgraph):
    """{tensor index: [indices of operators that read it]}."""
    readers = {}
    for i, op in enumerate(subgraph.operators):
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(int(t), []).append(i)
    return readers


def tensor_dtype(tensor):
    """NumPy dtype of a tensor; ValueError for a type these tools do not handle."""
    if tensor.type not in TENSOR_TYPES:
        raise ValueError(f"tensor {tensor.name!r} has TensorType {tensor.type}; expected "
                         f"one of {sorted(np.dtype(t).name for t in TENSOR_TYPES.values())}")
    return np.dtype(TENSOR_TYPES[tensor.type])


def constant_value(model, tensor):
    """The data of a constant tensor as an array of its shape, else None."""
    data = model.buffers[tensor.buffer].data
    if data is None or not len(data):
        return None
    values = np.frombuffer(bytes(np.asarray(data, np.uint8)), tensor_dtype(tensor))
    return values.reshape([int(n) for n in tensor.shape])


def quantization_of(tensor):
    """(scale, zero point) of a per-tensor quantised tensor, None if not quantised."""
    q = tensor.quantization
    if q is None or q.scale is None or not len(q.scale):
        return None
    if len(q.scale) != 1:
        raise ValueError(f"tensor {tensor.name!r} is quantised per channel; "
                         "expected per-tensor quantisation")
    return float(q.scale[0]), int(q.zeroPoint[0])


def add_constant(model, subgraph, name, values, scale=None, zero_point=0):
    """Appends a constant tensor (and its buffer); returns its index."""
    values = np.ascontiguousarray(values)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(values.tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.name = name
    tensor.shape = np.array(values.shape, np.int32)
    tensor.type = _TYPE_OF_DTYPE[values.dtype]
    tensor.buffer = len(model.buffers) - 1
    if scale is not None:
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale = np.array([scale], np.float32)
        tensor.quantization.zeroPoint = np.array([zero_point], np.int64)
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def remove_operators(subgraph, indices):
    drop = set(indices)
    subgraph.operators = [op for i, op in enumerate(subgraph.operators) if i not in drop]


def rename_tensor_uses(subgraph, old, new):
    """Every operator input and subgraph output reading `old` reads `new`."""
    for op in subgraph.operators:
        op.inputs = np.array([new if t == old else t for t in op.inputs], np.int32)
    subgraph.outputs = np.array([new if t == old else t for t in subgraph.outputs],
                                np.int32)


def prune(model):
    """Drops tensors no operator or subgraph I/O uses, unused buffers (buffer
    0, the empty sentinel, stays first) and unused operator codes.
    Single-subgraph models."""
    if len(model.subgraphs) != 1:
        raise ValueError(f"expected a model with one subgraph, got {len(model.subgraphs)}")
    subgraph = model.subgraphs[0]
    used = set(int(t) for t in subgraph.inputs) | set(int(t) for t in subgraph.outputs)
    for op in subgraph.operators:
        used.update(int(t) for t in op.inputs if t >= 0)
        used.update(int(t) for t in op.outputs)
        used.update(int(t) for t in (op.intermediates if op.intermediates is not None else []))
    kept = sorted(used)
    new_index = {old: new for new, old in enumerate(kept)}

    def remap(indices):
        return np.array([new_index[int(t)] if t >= 0 else -1 for t in indices], np.int32)

    subgraph.tensors = [subgraph.tensors[t] for t in kept]
    subgraph.inputs, subgraph.outputs = remap(subgraph.inputs), remap(subgraph.outputs)
    for op in subgraph.operators:
        op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
        if op.intermediates is not None:
            op.intermediates = remap(op.intermediates)
    metadata = model.metadata or []
    used_buffers = sorted({0} | {t.buffer for t in subgraph.tensors}
                          | {entry.buffer for entry in metadata})
    new_buffer = {old: new for new, old in enumerate(used_buffers)}
    model.buffers = [model.buffers[b] for b in used_buffers]
    for tensor in subgraph.tensors:
        tensor.buffer = new_buffer[tensor.buffer]
    for entry in metadata:
        entry.buffer = new_buffer[entry.buffer]
    # Operator codes no operator uses (e.g. of removed QUANTIZE ops).
    codes = sorted({op.opcodeIndex for op in subgraph.operators})
    new_code = {old: new for new, old in enumerate(codes)}
    model.operatorCodes = [model.operatorCodes[c] for c in codes]
    for op in subgraph.operators:
        op.opcodeIndex = new_code[op.opcodeIndex]
    # Signature defs name tensors by index too.
    for signature in model.signatureDefs or []:
        for io in (signature.inputs or []) + (signature.outputs or []):
            io.tensorIndex = new_index[io.tensorIndex]
