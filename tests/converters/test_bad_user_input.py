"""Public entry points and the CLI answer bad input with a clear ValueError /
TypeError (CLI: one line, exit 1) and never lose data.

Model files here are small and made without the converter where possible
(a broken file needs no valid model behind it)."""
import os
import subprocess
import shutil

import numpy as np
import pytest
import tf_keras

from converters import edgeml, export_c_array
from converters import memory_report, run_tflite
from converters.interop import atomic_write
from rnnpool_keras import RNNPool2D
from rnnpool_keras.app import cli


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def _random_tflite(seed, length=600):
    data = bytearray(np.random.default_rng(seed).integers(0, 256, length, np.uint8).tobytes())
    data[4:8] = b"TFL3"
    return bytes(data)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_with_the_tfl3_identifier_are_a_value_error(seed):
    data = _random_tflite(seed)
    for run in (lambda: run_tflite(data, np.zeros((1, 4), np.float32)),
                lambda: memory_report(data)):
        with pytest.raises(ValueError, match="model_bytes|tensor|operator|subgraph|RNNPool"):
            run()


@pytest.mark.parametrize("command", ["report", "export-c"])
@pytest.mark.parametrize("seed", range(3))
def test_cli_answers_a_corrupt_file_with_one_line(command, seed, tmp_path, capsys):
    path = tmp_path / "broken.tflite"
    path.write_bytes(_random_tflite(seed))
    args = [command, str(path)] + (["-o", str(tmp_path / "c")] if command == "export-c" else [])
    assert cli.main(args) == 1
    line = _one_line_error(capsys)
    assert line.startswith(f"rnnpool {command}: error:") and "broken.tflite" in line


def test_cli_refuses_to_write_the_output_over_its_input(tmp_path, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes(b"keep me")
    assert cli.main(["convert", str(model), "-o", str(model)]) == 1
    assert "is the input" in _one_line_error(capsys)
    assert model.read_bytes() == b"keep me"


def test_export_c_refuses_to_overwrite_its_input(tmp_path, capsys):
    # The input is named like the header export-c would write.
    model = tmp_path / "net.h"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
    assert cli.main(["export-c", str(model), "--name", "net", "-o", str(tmp_path)]) == 1
    assert "is the input" in _one_line_error(capsys)
    assert model.read_bytes().startswith(b"\x1c\x00\x00\x00TFL3")


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"previous good model")

    def broken_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write.write_atomically(str(target), b"new model")
    assert target.read_bytes() == b"previous good model"
    assert os.listdir(tmp_path) == ["model.tflite"]


@pytest.mark.parametrize("name", ["decltype", "static_cast", "main", "co_await", "NULL",
                                  "char8_t", "and_eq", "_Bool", "_Model", "a__b",
                                  "requires", "consteval", "thread_local", "xor"])
def test_export_c_array_refuses_names_that_do_not_compile_or_are_reserved(name):
    with pytest.raises(ValueError, match="name must be a C identifier"):
        export_c_array(b"\x00" * 8, name)


def test_export_c_array_refuses_a_name_that_is_not_a_string():
    with pytest.raises(TypeError, match="name must be a str"):
        export_c_array(b"\x00" * 8, 7)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_include_guards_of_names_differing_in_case_do_not_collide(tmp_path):
    names = ["model", "MODEL", "Model", "m_odel", "mODEL"]
    guards = set()
    for name in names:
        files = export_c_array(b"\x01\x02\x03", name)
        guards.add(files.header.splitlines()[2])
        files.write(str(tmp_path / name))  # separate dirs: model.h vs MODEL.h
    assert len(guards) == len(names)
    # Every header in one translation unit: each declares its own array.
    main = tmp_path / "all.cc"
    main.write_text("".join(f'#include "{n}/{n}.h"\n' for n in names) +
                    "int main() { return " + " + ".join(f"(int){n}_len" for n in names)
                    + " == 15 ? 0 : 1; }\n")
    sources = [str(tmp_path / n / f"{n}.cc") for n in names]
    build = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-I", str(tmp_path),
                            *[f"-I{tmp_path / n}" for n in names], str(main), *sources,
                            "-o", str(tmp_path / "all")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert subprocess.run([str(tmp_path / "all")]).returncode == 0


def test_cli_default_array_names_avoid_reserved_forms():
    assert cli._c_name("main.tflite") == "model_main"
    assert cli._c_name("my--net.tflite") == "my_net"
    assert cli._c_name("_Net.tflite") == "Net"
    assert cli._c_name("2net.tflite") == "model_2net"


@pytest.fixture
def built_layer():
    layer = RNNPool2D(3, 2, pool_size=2)
    layer.build((None, 4, 4, 2))
    return layer


def _state(layer, rng):
    return {key: rng.normal(0, 0.5, shape).astype(np.float32)
            for key, (shape, _) in edgeml.expected_keys(layer).items()}


@pytest.mark.parametrize("bad, expected", [
    (lambda v: v.astype(str), "expected real numbers"),
    (lambda v: np.full(v.shape, None), "expected real numbers"),
    (lambda v: np.where(np.ones(v.shape, bool), np.nan, v), "NaN or infinite"),
    (lambda v: v > 0, "expected real numbers"),
])
def test_load_state_dict_checks_dtypes_and_assigns_nothing_on_error(built_layer, bad,
                                                                    expected):
    rng = np.random.default_rng(0)
    before = [w.numpy().copy() for w in built_layer.weights]
    state = _state(built_layer, rng)
    state["cell_bidirrnn.cell.U"] = bad(state["cell_bidirrnn.cell.U"])
    with pytest.raises(ValueError, match=expected):
        edgeml.load_state_dict(built_layer, state)
    for old, weight in zip(before, built_layer.weights):
        np.testing.assert_array_equal(old, weight.numpy())


def test_load_state_dict_needs_a_mapping(built_layer):
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        edgeml.load_state_dict(built_layer, [("cell_rnn.cell.W", np.zeros((2, 3)))])


class _Subclassed(tf_keras.Model):
    def __init__(self):
        super().__init__()
        self.pool = RNNPool2D(2, 2, pool_size=2)

    def call(self, x):
        return self.pool(x)


def test_convert_names_a_subclassed_model_as_the_problem():
    from converters import convert

    with pytest.raises(ValueError, match="no defined inputs: a subclassed model"):
        convert(_Subclassed())


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_convert_rejects_non_finite_representative_data(bad):
    from converters import convert

    inputs = tf_keras.Input((4, 4, 2))
    model = tf_keras.Model(inputs, RNNPool2D(2, 2, pool_size=2)(inputs))
    data = np.zeros((4, 4, 4, 2), np.float32)
    data[1, 2, 3, 0] = bad
    with pytest.raises(ValueError, match="representative_data holds 1 NaN or infinite"):
        convert(model, quantize="int8", representative_data=data)
