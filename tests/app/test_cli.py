"""The `rnnpool` command line and converters.export_c_array.

Success paths write files a user can use (a .tflite that loads, C++ that
compiles and holds the model); error paths print one line and exit 1.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tf_keras

from converters import export_c_array
from converters.tflite_io import tflite_model
from rnnpool_keras import RNNPool2D
from rnnpool_keras.app import cli


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A small float model with RNNPool saved as .keras, and matching inputs."""
    inputs = tf_keras.Input((8, 8, 2))
    x = RNNPool2D(3, 2, pool_size=4, strides=4)(inputs)
    outputs = tf_keras.layers.Dense(2)(tf_keras.layers.Flatten()(x))
    model = tf_keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("cli") / "small.keras"
    model.save(path)
    data = np.random.default_rng(0).normal(size=(8, 8, 8, 2)).astype(np.float32)
    return path, data


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "expected an error message on stderr"
    return err[-1]


@pytest.mark.slow
def test_convert_writes_a_float_model(saved_model, tmp_path, capsys):
    path, _ = saved_model
    output = tmp_path / "small.tflite"
    assert cli.main(["convert", str(path), "-o", str(output)]) == 0
    assert tflite_model.op_names(output.read_bytes()) == ["RNNPool", "RESHAPE",
                                                          "FULLY_CONNECTED"]
    assert f"Wrote {output}" in capsys.readouterr().out


@pytest.mark.slow
def test_convert_int8_with_representative_data(saved_model, tmp_path):
    path, data = saved_model
    npz = tmp_path / "data.npz"
    np.savez(npz, x=data)
    output = tmp_path / "small_int8.tflite"
    assert cli.main(["convert", str(path), "-o", str(output), "--int8",
                     "--representative", str(npz)]) == 0
    model = tflite_model.load(output.read_bytes())
    subgraph = model.subgraphs[0]
    assert subgraph.tensors[subgraph.inputs[0]].type == 9  # INT8
    assert "RNNPool" in tflite_model.op_names(output.read_bytes())


@pytest.mark.parametrize("arguments, message", [
    (["convert", "missing.keras", "-o", "x.tflite"], "model file not found: missing.keras"),
    (["export-c", "missing.tflite", "-o", "out"], "cannot read missing.tflite"),
])
def test_missing_files_give_one_line_errors(arguments, message, capsys):
    assert cli.main(arguments) == 1
    assert _error_line(capsys).startswith(f"rnnpool {arguments[0]}: error: {message}")


@pytest.mark.slow
def test_unreadable_model_and_bad_options_give_one_line_errors(saved_model, tmp_path,
                                                               capsys):
    path, data = saved_model
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a model")
    assert cli.main(["convert", str(garbage), "-o", str(tmp_path / "g.tflite")]) == 1
    assert _error_line(capsys).startswith(f"rnnpool convert: error: cannot load a Keras "
                                          f"model from {garbage}")
    assert cli.main(["convert", str(path), "-o", str(tmp_path / "a.tflite"), "--int8"]) == 1
    assert "needs representative_data" in _error_line(capsys)
    npz = tmp_path / "two.npz"
    np.savez(npz, a=data, b=data)
    assert cli.main(["convert", str(path), "-o", str(tmp_path / "b.tflite"), "--int8",
                     "--representative", str(npz)]) == 1
    assert "holds arrays ['a', 'b']" in _error_line(capsys)
    assert cli.main(["convert", str(path), "-o", str(tmp_path / "c.tflite"),
                     "--representative", str(npz)]) == 1
    assert "--representative is only used with --int8" in _error_line(capsys)
    not_tflite = tmp_path / "model.tflite"
    not_tflite.write_bytes(b"\x00" * 64)
    assert cli.main(["export-c", str(not_tflite), "-o", str(tmp_path)]) == 1
    assert "not a TFLite flatbuffer" in _error_line(capsys)


@pytest.mark.slow
def test_console_script_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rnnpool_keras.app.cli", "convert", str(tmp_path / "none.keras"),
         "-o", str(tmp_path / "x.tflite")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"rnnpool convert: error: model file not found: {tmp_path / 'none.keras'}")


# TensorFlow's C++ log line format (absl): "I0000 00:00:... file.cc:153] ...".
_NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:|\.cc:\d+\]|absl::InitializeLog")


@pytest.mark.slow
def test_tensorflow_log_lines_only_with_verbose(saved_model, tmp_path):
    def stderr_lines(*flags):
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        result = subprocess.run(
            [sys.executable, "-m", "rnnpool_keras.app.cli", *flags, "convert",
             str(saved_model[0]), "-o", str(tmp_path / "m.tflite")],
            capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        return [line for line in result.stderr.splitlines() if _NATIVE_LOG_LINE.search(line)]

    verbose = stderr_lines("--verbose")
    if not verbose:
        pytest.skip("TensorFlow printed no C++ log lines on this machine")
    assert stderr_lines() == []


# -- C array --------------------------------------------------------------------

_CHECK_PROGRAM = r"""
#include <cstdint>
#include <cstdio>
#include "%(name)s.h"
int main() {
  std::printf("%%u %%u %%c%%c%%c%%c\n", %(name)s_len,
              static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(%(name)s) %% 16),
              %(name)s[4], %(name)s[5], %(name)s[6], %(name)s[7]);
  return 0;
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ on this machine")
def test_exported_c_array_compiles_and_holds_the_model(saved_model, tmp_path):
    path, _ = saved_model
    model_path = tmp_path / "small model.tflite"
    assert cli.main(["convert", str(path), "-o", str(model_path)]) == 0
    assert cli.main(["export-c", str(model_path), "-o", str(tmp_path / "c")]) == 0
    source = (tmp_path / "c" / "small_model.cc").read_text()
    # The array's bytes are the model's bytes.
    hex_bytes = [int(token, 16) for token in
                 source[source.index("{") + 1:source.index("}")].replace(",", " ").split()]
    assert bytes(hex_bytes) == model_path.read_bytes()
    (tmp_path / "c" / "main.cc").write_text(_CHECK_PROGRAM % {"name": "small_model"})
    binary = tmp_path / "check"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-I", str(tmp_path / "c"),
                    str(tmp_path / "c" / "small_model.cc"), str(tmp_path / "c" / "main.cc"),
                    "-o", str(binary)], check=True, capture_output=True, timeout=300)
    output = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    assert output.stdout.split() == [str(len(model_path.read_bytes())), "0", "TFL3"]


@pytest.mark.parametrize("name", ["1model", "model-v2", "", "int", "a b"])
def test_export_c_array_rejects_names_that_are_not_c_identifiers(name):
    with pytest.raises(ValueError, match="name must be a C identifier"):
        export_c_array(b"\x00" * 8 + b"x", name)


def test_export_c_array_rejects_non_bytes():
    with pytest.raises(TypeError, match="model_bytes must be bytes"):
        export_c_array("model.tflite", "model")
