"""Malformed .tflite files made from the project's own converted models.

`cases(model_bytes)` yields (name, bytes, valid) for one converted model (the
plain op, version 1, or the fused form of version 2 with its stem keys and
tensors):
the model itself and a re-encoding of its options (valid: they must run
bit-exact with the original), and mutations that must be rejected:
- every RNNPool option key missing, of every wrong flexbuffer type, out of
  range; unknown keys, keys of the other dtype, options that are no map;
- every RNNPool input / output index absent (-1), out of range, swapped; a
  10th input; a missing one;
- wrong dtypes and shapes of the op's tensors, negative dimensions anywhere;
- constant buffers shorter than their shape (every constant tensor);
- int8 quantization the contract forbids (weight zero point, bias scale,
  per-channel, zero scale, none);
- builtin operators with input / opcode indices out of range;
- truncations of the file and random bytes after a TFL3 identifier.

`run_case(model_bytes, x)` runs one file as a user would: run_tflite and
memory_report, which must agree. tests/converters/test_malformed_models.py drives it.
"""
import numpy as np
from flatbuffers import flexbuffers

from converters.tflite_io import schema
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract

_INT_KEYS = ("version", "pool_h", "pool_w", "stride_h", "stride_w", "padding",
             "gate_activation", "update_activation", "rnn1_zeta_q14", "rnn1_nu_q14",
             "rnn2_zeta_q14", "rnn2_nu_q14", "stem_stride_h", "stem_stride_w",
             "stem_padding", "stem_activation", "stem_output_zero_point")
# Values of the wrong flexbuffer type: nothing may be coerced.
_NOT_INT = {"float 0.5": 0.5, "float 1.0": 1.0, "bool true": True, "bool false": False,
            "string": "1", "vector": [1, 2], "map": {"a": 1}, "null": None}
_NOT_FLOAT = {"int 1": 1, "bool true": True, "string": "0.5", "vector": [0.5],
              "null": None}
_OUT_OF_RANGE = {
    # "version" depends on the form: _version_cases.
    "pool_h": [0, -1, 65, 2**31, 2**40], "pool_w": [0, -3, 65, 2**33],
    "stride_h": [0, -1, 2**31], "stride_w": [0, -2, 2**35],
    "padding": [2, -1, 2**32], "gate_activation": [5, -1, 2**31],
    "update_activation": [5, -1, 99],
    "rnn1_zeta_q14": [-1, 16385, 2**31], "rnn1_nu_q14": [-1, 16385],
    "rnn2_zeta_q14": [-1, 16385], "rnn2_nu_q14": [-1, 2**40],
    "rnn1_zeta": [float("nan"), float("inf")], "rnn1_nu": [float("-inf")],
    "rnn2_zeta": [float("nan")], "rnn2_nu": [float("inf")],
    "rnn1_preactivation_scale": [0.0, -1.0, float("nan"), float("inf"), 1e-300],
    "rnn1_state_scale": [0.0, -0.5, float("inf")],
    "rnn2_preactivation_scale": [0.0, float("nan")],
    "rnn2_state_scale": [0.0, -1.0, 1e30],
    "stem_stride_h": [0, -1, 2**31], "stem_stride_w": [0, -2],
    "stem_padding": [2, -1], "stem_activation": [4, -1, 6],
    "stem_output_zero_point": [-129, 128, 2**31],
    # 1e-300 is 0 as a float32: the scale the kernel reads.
    "stem_output_scale": [0.0, -1.0, float("nan"), float("inf"), 1e-300],
}
_TYPE = schema.TensorType


def _rnnpool_ops(model):
    graph = model.subgraphs[0]
    return [i for i, op in enumerate(graph.operators)
            if tflite_model.op_name(model, op) == contract.CUSTOM_CODE]


def _options(model, op_index):
    op = model.subgraphs[0].operators[op_index]
    return flexbuffers.Loads(bytes(np.asarray(op.customOptions, np.uint8)))


def _mutate(model_bytes, change):
    """Bytes of the model after change(model) edits its ModelT in place."""
    model = tflite_model.load(model_bytes)
    change(model)
    return tflite_model.save(model)


def _set_options(op_index, options_bytes):
    def change(model):
        model.subgraphs[0].operators[op_index].customOptions = \
            np.frombuffer(options_bytes, np.uint8)
    return change


def _option_cases(model, model_bytes, op_index):
    options = _options(model, op_index)
    tag = f"op{op_index}"

    def with_options(new):
        return _mutate(model_bytes, _set_options(op_index, bytes(flexbuffers.Dumps(new))))

    yield f"{tag} options re-encoded", with_options(dict(options)), True
    fused = "stem_stride_h" in options
    # A version other than the form's: 2 asks a plain op for 11 inputs, 1 a fused one for 9.
    for version in ([0, 1, 3, -1] if fused else [0, 2, -1]):
        yield f"{tag} option version = {version}", with_options({**options, "version": version}), \
            False
    for key in sorted(options):
        yield (f"{tag} option {key} missing",
               with_options({k: v for k, v in options.items() if k != key}), False)
        wrong = _NOT_INT if key in _INT_KEYS else _NOT_FLOAT
        for label, value in wrong.items():
            yield f"{tag} option {key} = {label}", with_options({**options, key: value}), False
        for value in _OUT_OF_RANGE.get(key, []):
            yield f"{tag} option {key} = {value!r}", with_options({**options, key: value}), False
    is_int8 = "rnn1_zeta_q14" in options
    other = {"rnn1_zeta_q14": 8192} if not is_int8 else {"rnn1_zeta": 0.5}
    yield f"{tag} option of the other dtype", with_options({**options, **other}), False
    if fused and not is_int8:
        yield f"{tag} int8 stem option in a float op", \
            with_options({**options, "stem_output_scale": 0.5}), False
    if not fused:
        yield f"{tag} stem option in a version-1 op", \
            with_options({**options, "stem_stride_h": 1}), False
    yield f"{tag} unknown option key", with_options({**options, "pool_size": 2}), False
    yield (f"{tag} 21 option keys",
           with_options({**options, **{f"extra{i}": 1 for i in range(21)}}), False)
    for label, raw in (("a vector", flexbuffers.Dumps([1, 2, 3])),
                       ("an int", flexbuffers.Dumps(7)),
                       ("a string", flexbuffers.Dumps("RNNPool")),
                       ("empty", b""), ("3 garbage bytes", b"\x01\x02\x03"),
                       ("cut in half", bytes(flexbuffers.Dumps(options))[
                           :len(flexbuffers.Dumps(options)) // 2])):
        yield (f"{tag} options {label}",
               _mutate(model_bytes, _set_options(op_index, bytes(raw))), False)


def _index_cases(model, model_bytes, op_index):
    graph = model.subgraphs[0]
    op = graph.operators[op_index]
    count = len(graph.tensors)
    tag = f"op{op_index}"

    def set_inputs(new):
        def change(m):
            m.subgraphs[0].operators[op_index].inputs = np.array(new, np.int32)
        return change

    inputs = [int(t) for t in op.inputs]
    for position in range(len(inputs)):
        for label, value in (("-1", -1), ("past the end", count), ("huge", 2**31 - 1),
                             ("-2", -2)):
            new = list(inputs)
            new[position] = value
            yield (f"{tag} input {position} index {label}",
                   _mutate(model_bytes, set_inputs(new)), False)
        if position < len(inputs) - 1:
            new = list(inputs)
            new[position], new[position + 1] = new[position + 1], new[position]
            a, b = graph.tensors[inputs[position]], graph.tensors[inputs[position + 1]]
            # Same type and shape: a valid file that computes something else.
            alike = a.type == b.type and tflite_model.shape_of(a) == tflite_model.shape_of(b)
            yield f"{tag} inputs {position}, {position + 1} swapped", \
                _mutate(model_bytes, set_inputs(new)), None if alike else False
    yield f"{tag} one input more", _mutate(model_bytes, set_inputs(inputs + [inputs[1]])), False
    yield f"{tag} one input fewer", _mutate(model_bytes, set_inputs(inputs[:-1])), False

    def set_outputs(new):
        def change(m):
            m.subgraphs[0].operators[op_index].outputs = np.array(new, np.int32)
        return change

    yield f"{tag} output index past the end", _mutate(model_bytes, set_outputs([count])), False
    yield f"{tag} two outputs", _mutate(
        model_bytes, set_outputs([int(op.outputs[0]), int(op.outputs[0])])), False


def _tensor_cases(model, model_bytes, op_index):
    """Dtypes, shapes and quantization of the op's own tensors."""
    graph = model.subgraphs[0]
    op = graph.operators[op_index]
    tag = f"op{op_index}"
    tensors = [int(t) for t in op.inputs] + [int(op.outputs[0])]
    names = ["input"] + [name for _, name in contract.WEIGHT_INPUTS]
    names += ["stem_filter", "stem_bias"][:len(tensors) - 1 - len(names)] + ["output"]
    is_int8 = graph.tensors[tensors[0]].type == _TYPE.INT8

    def edit(index, fn):
        def change(m):
            fn(m.subgraphs[0].tensors[index])
        return change

    for index, name in zip(tensors, names):
        tensor = graph.tensors[index]
        for new_type in (_TYPE.UINT8, _TYPE.INT32, _TYPE.INT16, _TYPE.FLOAT32, _TYPE.INT8):
            if new_type == tensor.type:
                continue
            if tflite_model.is_constant(model, tensor) and \
                    tflite_model.ITEM_BYTES[new_type] > tflite_model.ITEM_BYTES[tensor.type]:
                continue  # a short buffer, covered below; keep the dtype family pure
            yield (f"{tag} {name} dtype {tflite_model.TYPE_NAMES[new_type]}",
                   _mutate(model_bytes, edit(index, lambda t, n=new_type: setattr(t, "type", n))),
                   False)
        shape = tflite_model.shape_of(tensor)
        for axis in range(len(shape)):
            if tflite_model.is_constant(model, tensor):
                continue  # a constant's shape must match its buffer: short-buffer family
            for delta in (1, -1):
                new = list(shape)
                new[axis] += delta
                if name == "input" and axis in (1, 2) and delta == 1:
                    continue  # a larger map can still give the same output size
                yield (f"{tag} {name} dim {axis} {delta:+d}",
                       _mutate(model_bytes, edit(index, lambda t, s=new: setattr(
                           t, "shape", np.array(s, np.int32)))), False)
        yield (f"{tag} {name} rank + 1",
               _mutate(model_bytes, edit(index, lambda t: setattr(
                   t, "shape", np.array(list(tflite_model.shape_of(t)) + [1], np.int32)))), False)
        # The stem bias's quantization is not read (TFLM's CONV_2D ignores it too).
        if not is_int8 or name == "stem_bias":
            continue

        def quantization(scale, zero_point):
            def fn(t):
                t.quantization = schema.QuantizationParametersT()
                t.quantization.scale = np.array(scale, np.float32)
                t.quantization.zeroPoint = np.array(zero_point, np.int64)
            return fn

        q = tensor.quantization
        scale, zero_point = float(q.scale[0]), int(q.zeroPoint[0])
        yield (f"{tag} {name} not quantized",
               _mutate(model_bytes, edit(index, lambda t: setattr(t, "quantization", None))),
               False)
        yield (f"{tag} {name} per-channel",
               _mutate(model_bytes, edit(index, quantization([scale, scale], [zero_point] * 2))),
               False)
        yield (f"{tag} {name} scale 0",
               _mutate(model_bytes, edit(index, quantization([0.0], [zero_point]))), False)
        if name not in ("input", "output"):
            yield (f"{tag} {name} zero point 5",
                   _mutate(model_bytes, edit(index, quantization([scale], [5]))), False)
        if "bias" in name:
            yield (f"{tag} {name} scale 2x the preactivation scale",
                   _mutate(model_bytes, edit(index, quantization([2 * scale], [0]))), False)


def _graph_cases(model, model_bytes):
    """Every tensor of the graph: negative dims and short buffers; builtin indices."""
    graph = model.subgraphs[0]
    for index, tensor in enumerate(graph.tensors):
        shape = tflite_model.shape_of(tensor)
        if shape:
            def negative(m, i=index):
                t = m.subgraphs[0].tensors[i]
                s = tflite_model.shape_of(t)
                s[0] = -s[0] if s[0] else -1
                t.shape = np.array(s, np.int32)
            yield f"tensor {index} negative dim", _mutate(model_bytes, negative), False
        if tflite_model.is_constant(model, tensor) and tflite_model.tensor_bytes(tensor) > 0:
            for label, keep in (("1 byte short", lambda n: n - 1), ("half", lambda n: n // 2)):
                def short(m, i=index, keep=keep):
                    buffer = m.buffers[m.subgraphs[0].tensors[i].buffer]
                    buffer.data = np.asarray(buffer.data)[:keep(len(buffer.data))]
                yield f"tensor {index} buffer {label}", _mutate(model_bytes, short), False
    rnnpool = set(_rnnpool_ops(model))
    for op_index, op in enumerate(graph.operators):
        if op_index in rnnpool:
            continue
        name = tflite_model.op_name(model, op)

        def bad_input(m, i=op_index):
            target = m.subgraphs[0].operators[i]
            target.inputs = np.array([len(m.subgraphs[0].tensors) + 3]
                                     + [int(t) for t in target.inputs[1:]], np.int32)
        yield (f"op{op_index} {name} input index past the end",
               _mutate(model_bytes, bad_input), False)

        def bad_code(m, i=op_index):
            m.subgraphs[0].operators[i].opcodeIndex = len(m.operatorCodes) + 1
        yield (f"op{op_index} {name} opcode index past the end",
               _mutate(model_bytes, bad_code), False)


def _byte_cases(model_bytes, seed=0):
    size = len(model_bytes)
    for cut in sorted({8, 16, 24, 32, 64, 100, size // 8, size // 4, size // 2,
                       3 * size // 4, size - 64, size - 16, size - 4, size - 1}):
        if 0 < cut < size:
            # Cutting only trailing zeros (the alignment padding a re-saved file,
            # e.g. one with a fused stem, may end with) can leave the model whole.
            padding_only = not any(model_bytes[cut:])
            yield f"truncated to {cut} bytes", model_bytes[:cut], None if padding_only else False
    rng = np.random.default_rng(seed)
    for i in range(12):
        length = int(rng.integers(8, 4096))
        noise = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
        noise[4:8] = tflite_model.FILE_IDENTIFIER
        yield f"random bytes {i} ({length}) with TFL3", bytes(noise), False
    for i in range(12):  # a valid header, then flipped bytes
        corrupt = bytearray(model_bytes)
        for position in rng.integers(8, size, 4):
            corrupt[position] ^= 0xFF
        yield f"4 bytes flipped {i}", bytes(corrupt), None  # either outcome is fine


def cases(model_bytes):
    """(name, bytes, valid) for one converted model: valid True must run
    bit-exact with the model, False must be rejected, None either (flipped
    bytes may land in weights)."""
    model = tflite_model.load(model_bytes)
    yield "unchanged", model_bytes, True
    for op_index in _rnnpool_ops(model):
        yield from _option_cases(model, model_bytes, op_index)
        yield from _index_cases(model, model_bytes, op_index)
        yield from _tensor_cases(model, model_bytes, op_index)
    yield from _graph_cases(model, model_bytes)
    yield from _byte_cases(model_bytes)


def run_case(model_bytes, x):
    """("ok", outputs) or ("error", "TypeName: message") from run_tflite and
    memory_report on one file; ("disagree", ...) if only one accepts it."""
    from converters import memory_report, run_tflite

    results = []
    for run in (lambda: run_tflite(model_bytes, x), lambda: memory_report(model_bytes)):
        try:
            results.append(("ok", run()))
        except (ValueError, TypeError) as error:
            results.append(("error", f"{type(error).__name__}: {error}"))
    (run_status, run_value), (report_status, report_value) = results
    if run_status != report_status:
        return "disagree", f"run_tflite {run_status}, memory_report {report_status}: " \
            f"{run_value if run_status == 'error' else report_value}"
    return run_status, run_value


def run_delegate_case(model_bytes, x):
    """("ok", "accepted") or ("error", "TypeName: message") from the RNNPool delegate
    in LiteRT (converters.tflite_interpreter): build, allocate (Prepare) and
    invoke once on zeros. LiteRT, the default runtime, loads in a fraction of
    a second; tf.lite would import TensorFlow in every child (seconds)."""
    from converters import tflite_interpreter

    try:
        interpreter = tflite_interpreter(model_bytes, runtime="litert")
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"],
                                   np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
    except (RuntimeError, ValueError) as error:
        return "error", f"{type(error).__name__}: {error}"
    return "ok", "accepted"


def _worker(directory, start, run=run_case, log="results.jsonl"):
    """Runs cases start.. of `directory` (manifest.json, x.npy, NNN.tflite),
    appending one JSON line per case to `log` as it finishes, so a crash loses
    only the case that was running. run_case's accepted outputs are compared
    with case 0's."""
    import json
    import os

    directory = os.path.abspath(directory)
    with open(os.path.join(directory, "manifest.json")) as file:
        manifest = json.load(file)
    x = np.load(os.path.join(directory, "x.npy"))
    reference = None
    with open(os.path.join(directory, log), "a") as out:
        for entry in manifest[start:]:
            with open(os.path.join(directory, entry["file"]), "rb") as file:
                data = file.read()
            out.write(json.dumps({"index": entry["index"], "status": "started"}) + "\n")
            out.flush()
            try:
                status, value = run(data, x)
            except BaseException as error:  # a traceback: recorded, counted as a failure
                status, value = "traceback", f"{type(error).__name__}: {error}"
            if status == "ok" and run is run_case:
                if entry["index"] == 0:
                    reference = value
                bit_exact = reference is not None and all(
                    np.array_equal(a, b) for a, b in zip(reference, value))
                status, value = ("ok", "bit-exact") if bit_exact else ("ok", "differs")
            out.write(json.dumps({"index": entry["index"], "status": status,
                                  "detail": str(value)[:300]}) + "\n")
            out.flush()


if __name__ == "__main__":
    import sys

    if sys.argv[3:] == ["delegate"]:
        _worker(sys.argv[1], int(sys.argv[2]), run_delegate_case, "delegate.jsonl")
    else:
        _worker(sys.argv[1], int(sys.argv[2]))
