"""Builds and runs the TFLM RNNPool kernel tests (tflm_kernels/tflm/) with g++.

Also runs models made by `converters.convert` through rnnpool_run_model
(MicroInterpreter) and checks them against `converters.run_tflite`.

Needs a tflite-micro checkout whose host library was built
(`make -f tensorflow/lite/micro/tools/make/Makefile microlite`, see
tflm_kernels/tflm/README.md):

    TFLM_ROOT=/path/to/tflite-micro python -m pytest -q -m tflm tests/kernels/test_tflm_kernel.py

TFLM_LIB overrides the library (default
$TFLM_ROOT/gen/linux_x86_64_default_gcc/lib/libtensorflow-microlite.a); CXX the
compiler (default g++). The defines must be those the library was built with
(TF_LITE_STATIC_MEMORY changes struct layouts); these are the Makefile's host
defaults. Skipped when TFLM_ROOT is unset or the library is missing.
"""
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tflm_kernels.core_sources import CORE_SOURCES

pytestmark = pytest.mark.tflm

REPO = Path(__file__).resolve().parents[2]
KERNELS = REPO / "tflm_kernels"
DEFAULT_LIB = "gen/linux_x86_64_default_gcc/lib/libtensorflow-microlite.a"
DEFINES = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON",
           "-DTF_LITE_USE_CTIME", "-DKERNELS_OPTIMIZED_FOR_SPEED"]
CXXFLAGS = ["-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
            "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra",
            "-Wno-unused-parameter", "-Werror"]
LDFLAGS = ["-Wl,--fatal-warnings", "-Wl,--gc-sections", "-lm"]


def _tflm():
    root = os.environ.get("TFLM_ROOT")
    if not root:
        pytest.skip("TFLM_ROOT is not set (a tflite-micro checkout with the host "
                    "library built; see tflm_kernels/tflm/README.md)")
    root = Path(root)
    lib = Path(os.environ.get("TFLM_LIB") or root / DEFAULT_LIB)
    if not lib.is_file():
        pytest.skip(f"TFLM library {lib} not found: build it with `make -f "
                    "tensorflow/lite/micro/tools/make/Makefile microlite` in TFLM_ROOT, "
                    "or point TFLM_LIB at it")
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        pytest.skip(f"compiler {cxx!r} not found")
    downloads = root / "tensorflow/lite/micro/tools/make/downloads"
    includes = [f"-I{REPO}", f"-I{root}", f"-I{downloads}",
                f"-I{downloads / 'flatbuffers/include'}", f"-I{downloads / 'gemmlowp'}",
                f"-I{downloads / 'ruy'}"]
    return cxx, includes, lib


def _run(cmd, **kwargs):
    print("$", " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def _build(tmp_path, name, sources):
    cxx, includes, lib = _tflm()
    objects = []
    for source in sources:
        obj = tmp_path / (source.stem + ".o")
        result = _run([cxx, *CXXFLAGS, *DEFINES, *includes, "-c", source, "-o", obj])
        assert result.returncode == 0, f"compiling {source} failed:\n{result.stderr}"
        objects.append(obj)
    binary = tmp_path / name
    result = _run([cxx, *CXXFLAGS, "-o", binary, *objects, lib, *LDFLAGS])
    assert result.returncode == 0, f"linking {name} failed:\n{result.stderr}"
    return binary


KERNEL_SOURCES = [KERNELS / "tflm" / "rnnpool.cc", *CORE_SOURCES,
                  KERNELS / "rnnpool_validate.cc"]


def test_tflm_kernel_runner_tests(tmp_path):
    binary = _build(tmp_path, "rnnpool_test",
                    [KERNELS / "tflm" / "rnnpool_test.cc", *KERNEL_SOURCES])
    result = _run([binary], timeout=120)
    output = result.stdout + result.stderr  # MicroPrintf writes to stderr on the host
    print(output[-3000:])
    assert result.returncode == 0, output
    assert "~~~ALL TESTS PASSED~~~" in output
    ran = re.search(r"(\d+) tests ran", output)
    assert ran and int(ran.group(1)) >= 30, "fewer KernelRunner tests than expected"


def test_tflm_interpreter_demo(tmp_path):
    """A .tflite with one CUSTOM RNNPool op through MicroInterpreter."""
    binary = _build(tmp_path, "rnnpool_interp_demo",
                    [KERNELS / "tflm" / "rnnpool_interp_demo.cc",
                     KERNELS / "tflm" / "example_resolver.cc", *KERNEL_SOURCES])
    result = _run([binary], timeout=120)
    print(result.stdout[-3000:], result.stderr[-3000:])
    output = result.stdout + result.stderr  # MicroPrintf writes to stderr on the host
    assert result.returncode == 0, output
    assert "~~~DEMO PASSED~~~" in output


# -- a converted .tflite through MicroInterpreter ---------------------------------

def _random_rnnpool_weights(model, seed):
    from model_cases import randomize_rnnpool_weights

    return randomize_rnnpool_weights(model, seed)


def _tiny_demo_cnn():
    """rnnpool_keras.app.demo's CNN on 8x8x2 images: CONV_2D, RNNPool, RESHAPE, FULLY_CONNECTED."""
    from rnnpool_keras.app import demo

    return _random_rnnpool_weights(
        demo.tiny_rnnpool_cnn(input_size=8, channels=2, num_classes=3), seed=0)


def _two_rnnpool_channels_first_cnn():
    """NCHW input -> RNNPool2D (channels_first) -> conv -> pad -> RNNPool2D over
    the whole map -> dense: adds TRANSPOSE and PAD to the demo's ops."""
    import tf_keras
    from rnnpool_keras import RNNPool2D

    inputs = tf_keras.Input((2, 10, 10))
    x = RNNPool2D(3, 2, pool_size=3, strides=2, padding="same",
                  data_format="channels_first")(inputs)       # 8 x 5 x 5
    x = tf_keras.layers.Permute((2, 3, 1))(x)                  # 5 x 5 x 8
    x = tf_keras.layers.Conv2D(4, 1, activation="relu")(x)
    x = tf_keras.layers.ZeroPadding2D(1)(x)                    # 7 x 7 x 4
    x = RNNPool2D(3, 3, pool_size=7)(x)                        # 1 x 1 x 12
    outputs = tf_keras.layers.Dense(3)(tf_keras.layers.Flatten()(x))
    return _random_rnnpool_weights(tf_keras.Model(inputs, outputs), seed=3)


def _write_model_case(directory, model_bytes, x):
    """MODEL.tflite, INPUT.bin and EXPECTED.bin for rnnpool_run_model.

    `x` is one float sample [1, ...]. The expected output is `run_tflite`'s
    (TFLM's Python interpreter for builtins, our kernel core for RNNPool), in
    the output tensor's dtype; an int8 input is quantised once here and the
    same int8 values go to both runs.
    """
    import numpy as np
    from converters import run_tflite
    from converters.tflite_io import tflite_model

    subgraph = tflite_model.load(model_bytes).subgraphs[0]
    input_tensor = subgraph.tensors[subgraph.inputs[0]]
    output_tensor = subgraph.tensors[subgraph.outputs[0]]
    if tflite_model.tensor_dtype(input_tensor) == np.int8:
        scale, zero_point = tflite_model.quantization_of(input_tensor)
        raw_input = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
        # run_tflite quantises its float input again; these values map back exactly.
        x = (raw_input.astype(np.float32) - zero_point) * np.float32(scale)
    else:
        raw_input = x.astype(np.float32)
    expected = run_tflite(model_bytes, x)[0]
    if tflite_model.tensor_dtype(output_tensor) == np.int8:
        scale, zero_point = tflite_model.quantization_of(output_tensor)
        expected = (np.round(expected / scale) + zero_point).astype(np.int8)
    directory.mkdir()
    paths = [directory / name for name in ("model.tflite", "input.bin", "expected.bin")]
    for path, data in zip(paths, (model_bytes, raw_input.tobytes(), expected.tobytes())):
        path.write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def run_model_binary(tmp_path_factory):
    """tflm_kernels/tflm/rnnpool_run_model, built once for this module."""
    return _build(tmp_path_factory.mktemp("run_model"), "rnnpool_run_model",
                  [KERNELS / "tflm" / "rnnpool_run_model.cc",
                   KERNELS / "tflm" / "example_resolver.cc", *KERNEL_SOURCES])


def test_tflm_runs_converted_models_like_run_tflite(run_model_binary, tmp_path):
    """converters.convert's .tflite (float, int8, two RNNPool ops + TRANSPOSE)
    through MicroInterpreter with example_resolver.cc equals run_tflite:
    int8 bit-exact, float within 1e-5."""
    import numpy as np
    from converters import convert, memory_report
    from converters.tflite_io import tflite_model

    rng = np.random.default_rng(0)
    demo_cnn = _tiny_demo_cnn()
    demo_x = rng.normal(size=(8, 8, 8, 2)).astype(np.float32)
    two_rnnpool = _two_rnnpool_channels_first_cnn()
    two_x = rng.normal(size=(8, 2, 10, 10)).astype(np.float32)
    cases = {
        "demo_float": (convert(demo_cnn), demo_x),
        "demo_int8": (convert(demo_cnn, quantize="int8", representative_data=demo_x),
                      demo_x),
        "two_rnnpool_int8": (convert(two_rnnpool, quantize="int8",
                                     representative_data=two_x), two_x),
    }
    assert tflite_model.op_names(cases["two_rnnpool_int8"][0]).count("RNNPool") == 2
    assert "TRANSPOSE" in tflite_model.op_names(cases["two_rnnpool_int8"][0])
    for name, (model_bytes, x) in cases.items():
        paths = _write_model_case(tmp_path / name, model_bytes, x[:1])
        result = _run([run_model_binary, *paths], timeout=120)
        output = result.stdout + result.stderr  # MicroPrintf writes to stderr on the host
        summary = [line for line in output.splitlines()
                   if re.match(r"(model|subgraphs|output \d|\w*Interpreter arena)", line)]
        print(f"[{name}] ops {tflite_model.op_names(model_bytes)}\n  " + "\n  ".join(summary))
        assert result.returncode == 0, output
        assert "~~~MODEL PASSED~~~" in output
        assert re.search(r"^MicroInterpreter arena_used_bytes: \d+", output, re.M)
        assert re.search(r"^RecordingMicroInterpreter arena_used_bytes: \d+", output, re.M)
        # The planned (non-persistent) part of TFLM's arena is what
        # converters.memory_report computes with TFLM's planning rules,
        # RNNPool's scratch included.
        head = re.search(r"Arena allocation head (\d+) bytes", output)
        assert head, output
        assert int(head.group(1)) == memory_report(model_bytes)["tflm_arena_bytes"], name


def test_tflm_run_model_rejects_bad_arguments(run_model_binary, tmp_path):
    """Missing arguments, unreadable files and a non-model file: exit code 2."""
    not_a_model = tmp_path / "not_a_model.tflite"
    not_a_model.write_bytes(b"\0" * 64)
    for args, message in [([], "usage:"),
                          ([tmp_path / "missing.tflite", not_a_model, not_a_model],
                           "cannot read"),
                          ([not_a_model, not_a_model, not_a_model],
                           "is not a valid .tflite flatbuffer"),
                          ([not_a_model, not_a_model, not_a_model, "-1"], "TOLERANCE")]:
        result = _run([run_model_binary, *args], timeout=30)
        assert result.returncode == 2, result.stderr
        assert message in result.stdout + result.stderr
