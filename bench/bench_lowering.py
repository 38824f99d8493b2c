"""The RNNPool custom op against its builtin-op lowering, on the paper's VWW layer.

A model holding just the VWW RNNPool layer (input 112x112x8, 6x6 patches,
stride 4, h1 = h2 = 8, valid padding -> 27x27x32) with the authors' trained
VWW weights (tests/data/edgeml_vww_patch.npz), converted four ways:
`convert(model)` and `convert(model, lowering="builtin")`, float and int8
(int8 calibrated on synthetic post-ReLU maps). For each: operator count,
.tflite size, TFLM tensor-arena bytes, host time per inference, and the
largest error against the float Keras layer.

Arena: "planned" is the part of TFLM's tensor arena its greedy planner lays
out (activations and kernel scratch), reconstructed from the file by
`converters.analysis.memory`, for both kinds. The stock tflite-micro Python interpreter
has no RNNPool kernel, so only the builtin models can be allocated for real:
for them the "measured" column is what its RecordingMicroAllocator reports
in total (planned part in brackets; the rest is TFLM's persistent structs).

Time: `run_tflite` (TFLM reference kernels; our C++ kernel core for the
custom op) per sample, as the difference between N + 1 and 1 samples so that
building the runner is not counted; for the lowering also `tf.lite.Interpreter`
(TensorFlow's optimised kernels) and the TFLM interpreter's own `invoke`.

    python bench/bench_lowering.py [--repeats 10]
"""
import argparse
import contextlib
import ctypes
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from converters import convert, run_tflite  # noqa: E402
from converters.interop import edgeml
from converters.analysis import memory
from converters.tflite_io import tflite_model
from rnnpool_keras import RNNPool2D  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)

INPUT_SHAPE = (112, 112, 8)
LAYER_ARGS = dict(rnn1_units=8, rnn2_units=8, pool_size=6, strides=4, padding="valid")
GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "edgeml_vww_patch.npz"
# Large enough for every model here; the allocator reports what is used.
ARENA_BYTES = 16 * 1024 * 1024


def vww_model():
    inputs = tf_keras.Input(INPUT_SHAPE)
    layer = RNNPool2D(name="rnnpool", **LAYER_ARGS)
    model = tf_keras.Model(inputs, layer(inputs))
    golden = dict(np.load(GOLDEN))
    edgeml.load_state_dict(layer, {k: v for k, v in golden.items() if k.startswith("cell_")})
    return model


def feature_maps(count, seed):
    """Post-ReLU-like maps with the golden patch's statistics (mean 0.7, std 0.6)."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(0.6, 0.7, (count,) + INPUT_SHAPE), 0).astype(np.float32)


@contextlib.contextmanager
def _captured_c_stderr():
    """Collects what C code prints to file descriptor 2 (TFLM's MicroPrintf on a host)."""
    libc = ctypes.CDLL(None)
    captured = {}
    with tempfile.TemporaryFile(mode="w+") as sink:
        libc.fflush(None)
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            libc.fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured["text"] = sink.read()


def tflm_interpreter(model_bytes):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model_bytes, arena_size=ARENA_BYTES)


def tflm_arena_bytes(model_bytes):
    """(total, planned tensor buffers) bytes TFLM's recording allocator reports."""
    interpreter = tflm_interpreter(model_bytes)
    with _captured_c_stderr() as out:
        interpreter.print_allocations()
    total = int(re.search(r"Arena allocation total (\d+) bytes", out["text"]).group(1))
    head = int(re.search(r"Arena allocation head (\d+) bytes", out["text"]).group(1))
    return total, head


def planned_arena_bytes(model_bytes):
    """The arena TFLM's greedy planner lays out (activations and kernel scratch),
    as converters.analysis.memory reconstructs it from the file."""
    return memory.memory_report(model_bytes)["tflm_arena_bytes"]


def run_tflite_seconds(model_bytes, x, repeats):
    """Per-sample time of run_tflite, runner construction excluded."""
    run_tflite(model_bytes, x[:1])  # warm-up
    start = time.perf_counter()
    run_tflite(model_bytes, x[:1])
    one = time.perf_counter() - start
    batch = np.repeat(x[:1], repeats + 1, axis=0)
    start = time.perf_counter()
    run_tflite(model_bytes, batch)
    return max(time.perf_counter() - start - one, 0.0) / repeats


def _model_input(model_bytes, sample):
    """The sample as the model's input tensor takes it (quantised if int8)."""
    model = tflite_model.load(model_bytes)
    tensor = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]]
    if tflite_model.tensor_dtype(tensor) != np.int8:
        return sample
    scale, zero_point = tflite_model.quantization_of(tensor)
    return np.clip(np.round(sample / scale) + zero_point, -128, 127).astype(np.int8)


def tf_lite_seconds(model_bytes, x, repeats):
    interpreter = tf.lite.Interpreter(model_content=model_bytes, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           _model_input(model_bytes, x[:1]))
    interpreter.invoke()
    start = time.perf_counter()
    for _ in range(repeats):
        interpreter.invoke()
    return (time.perf_counter() - start) / repeats


def tflm_invoke_seconds(model_bytes, x, repeats):
    interpreter = tflm_interpreter(model_bytes)
    interpreter.set_input(_model_input(model_bytes, x[:1]), 0)
    interpreter.invoke()
    start = time.perf_counter()
    for _ in range(repeats):
        interpreter.invoke()
    return (time.perf_counter() - start) / repeats


def measure(model, kind, quantize, calibration, x, repeats):
    lowering = "builtin" if kind == "builtin" else "custom"
    start = time.perf_counter()
    model_bytes = convert(model, quantize=quantize,
                          representative_data=calibration if quantize else None,
                          lowering=lowering)
    convert_seconds = time.perf_counter() - start
    names = tflite_model.op_names(model_bytes)
    row = {"ops": len(names), "op_kinds": {n: names.count(n) for n in sorted(set(names))},
           "size": len(model_bytes), "convert_s": convert_seconds,
           "run_tflite_ms": 1e3 * run_tflite_seconds(model_bytes, x, repeats)}
    row["planned"] = planned_arena_bytes(model_bytes)
    if kind == "builtin":
        row["arena"], row["tensors"] = tflm_arena_bytes(model_bytes)
        row["tf_lite_ms"] = 1e3 * tf_lite_seconds(model_bytes, x, repeats)
        row["tflm_invoke_ms"] = 1e3 * tflm_invoke_seconds(model_bytes, x, repeats)
    row["max_error"] = float(np.max(np.abs(run_tflite(model_bytes, x)[0] - model(x))))
    if quantize == "int8":
        output = model_bytes_output(model_bytes)
        row["error_lsb"] = row["max_error"] / tflite_model.quantization_of(output)[0]
    return row


def model_bytes_output(model_bytes):
    model = tflite_model.load(model_bytes)
    return model.subgraphs[0].tensors[model.subgraphs[0].outputs[0]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    model = vww_model()
    calibration = feature_maps(32, seed=0)
    x = feature_maps(4, seed=1)
    rows = []
    for quantize in (None, "int8"):
        for kind in ("custom", "builtin"):
            row = measure(model, kind, quantize, calibration, x, args.repeats)
            rows.append((kind, quantize or "float", row))

    print("RNNPool VWW layer (input 112x112x8, pool 6, stride 4, h1 = h2 = 8, valid "
          "-> 27x27x32), authors' VWW weights, batch 1")
    print(f"{machine.describe()}, TensorFlow {tf.__version__}; "
          f"times are means of {args.repeats} inferences "
          "after warm-up, 1 thread")
    print()
    print("| lowering | type | ops | .tflite bytes | planned arena bytes | "
          "TFLM arena bytes, measured | run_tflite ms | TFLM invoke ms | tf.lite ms | "
          "max abs error |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def ms(row, key):
        return f"{row[key]:.1f}" if key in row else "n/a"

    for kind, kind_of_numbers, row in rows:
        measured = (f"{row['arena']:,} ({row['tensors']:,} planned)" if "arena" in row
                    else "n/a")
        lsb = f" ({row['error_lsb']:.1f} LSB)" if "error_lsb" in row else ""
        print(f"| {kind} | {kind_of_numbers} | {row['ops']} | {row['size']:,} | "
              f"{row['planned']:,} | {measured} | "
              f"{row['run_tflite_ms']:.1f} | {ms(row, 'tflm_invoke_ms')} | "
              f"{ms(row, 'tf_lite_ms')} | {row['max_error']:.2g}{lsb} |")
    print()
    for kind, kind_of_numbers, row in rows:
        kinds = ", ".join(f"{name} {count}" for name, count in row["op_kinds"].items())
        print(f"- {kind} {kind_of_numbers}: {kinds} (converted in {row['convert_s']:.1f} s)")


if __name__ == "__main__":
    main()
