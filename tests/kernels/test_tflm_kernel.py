"""Builds and runs the TFLM RNNPool kernel tests (tflm_kernels/tflm/) with g++.

Also runs models made by `converters.convert` through rnnpool_run_model
(MicroInterpreter) and checks them against `converters.run_tflite`.

Needs a tflite-micro checkout whose host library was built (tests/tflm_build.py):

    TFLM_ROOT=/path/to/tflite-micro python -m pytest -q -m tflm tests/kernels/test_tflm_kernel.py

Skipped when TFLM_ROOT is unset or the library is missing.
"""
import re

import pytest

from tflm_build import KERNEL_SOURCES, KERNELS, build, build_run_model, run, write_model_case

pytestmark = pytest.mark.tflm


def test_tflm_kernel_runner_tests(tmp_path):
    binary = build(tmp_path, "rnnpool_test",
                   [KERNELS / "tflm" / "rnnpool_test.cc", *KERNEL_SOURCES])
    result = run([binary], timeout=120)
    output = result.stdout + result.stderr  # MicroPrintf writes to stderr on the host
    print(output[-3000:])
    assert result.returncode == 0, output
    assert "~~~ALL TESTS PASSED~~~" in output
    ran = re.search(r"(\d+) tests ran", output)
    assert ran and int(ran.group(1)) >= 30, "fewer KernelRunner tests than expected"


def test_tflm_interpreter_demo(tmp_path):
    """A .tflite with one CUSTOM RNNPool op through MicroInterpreter."""
    binary = build(tmp_path, "rnnpool_interp_demo",
                   [KERNELS / "tflm" / "rnnpool_interp_demo.cc",
                    KERNELS / "tflm" / "example_resolver.cc", *KERNEL_SOURCES])
    result = run([binary], timeout=120)
    print(result.stdout[-3000:], result.stderr[-3000:])
    output = result.stdout + result.stderr  # MicroPrintf writes to stderr on the host
    assert result.returncode == 0, output
    assert "~~~DEMO PASSED~~~" in output


# -- a converted .tflite through MicroInterpreter ---------------------------------

def _random_rnnpool_weights(model, seed):
    from model_cases import randomize_rnnpool_weights

    return randomize_rnnpool_weights(model, seed)


def _tiny_demo_cnn():
    """rnnpool_keras.app.demo's CNN on 8x8x2 images: CONV_2D, RNNPool, RESHAPE,
    FULLY_CONNECTED (the first two one fused RNNPool op unless fuse_stem=False)."""
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


@pytest.fixture(scope="module")
def run_model_binary(tmp_path_factory):
    """tflm_kernels/tflm/rnnpool_run_model, built once for this module."""
    return build_run_model(tmp_path_factory.mktemp("run_model"))


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
        "demo_int8_unfused": (convert(demo_cnn, quantize="int8", representative_data=demo_x,
                                      fuse_stem=False), demo_x),
        "two_rnnpool_int8": (convert(two_rnnpool, quantize="int8",
                                     representative_data=two_x), two_x),
    }
    assert tflite_model.op_names(cases["two_rnnpool_int8"][0]).count("RNNPool") == 2
    for name in ("demo_float", "demo_int8"):  # the fused form (contract version 2)
        assert tflite_model.op_names(cases[name][0])[0] == "RNNPool", name
    assert tflite_model.op_names(cases["demo_int8_unfused"][0])[:2] == ["CONV_2D", "RNNPool"]
    assert "TRANSPOSE" in tflite_model.op_names(cases["two_rnnpool_int8"][0])
    for name, (model_bytes, x) in cases.items():
        paths = write_model_case(tmp_path / name, model_bytes, x[:1])
        result = run([run_model_binary, *paths], timeout=120)
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
        result = run([run_model_binary, *args], timeout=30)
        assert result.returncode == 2, result.stderr
        assert message in result.stdout + result.stderr
