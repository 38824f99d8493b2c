"""rnnpool_run_model on the emulated Cortex-M4F (QEMU mps2-an386), built
against TFLM's cortex_m_generic Cortex-M4F library with CMSIS-NN: converted
int8 models give run_tflite's output bit for bit on the board, as on the host.

Needs TFLM_ROOT, the library (TFLM_M4_LIB, default under TFLM_ROOT's gen/;
bench/bench_model_m4.py says how to build it), arm-none-eabi-g++ and
qemu-system-arm (tests/tflm_build.py builds the program):

    TFLM_ROOT=/path/to/tflite-micro python -m pytest -q -m tflm tests/kernels/test_tflm_cortex_m.py

Skipped, with the reason, where any of them is missing.
"""
import re

import pytest

import tflm_build
from test_tflm_kernel import _tiny_demo_cnn, _two_rnnpool_channels_first_cnn
from tflm_kernels.cortex_m import emulator

pytestmark = [pytest.mark.tflm, pytest.mark.slow]


@pytest.fixture(scope="module")
def board_program(tmp_path_factory):
    missing = tflm_build.m4_missing()
    if missing:
        pytest.skip(missing)
    workdir = tmp_path_factory.mktemp("run_model_m4")
    return tflm_build.build_run_model_m4(workdir), emulator.build_plugin(workdir)


def test_converted_int8_models_are_bit_exact_with_run_tflite_on_the_emulated_m4(
        board_program, tmp_path):
    """The demo CNN (fused stem) and a model with two RNNPool ops, TRANSPOSE and
    PAD, int8, through MicroInterpreter on the M4 (CMSIS-NN builtins, our DSP
    int8 path); the instruction markers enclose one Invoke and its RNNPool ops."""
    import numpy as np
    from converters import convert

    elf, plugin = board_program
    rng = np.random.default_rng(0)
    demo_x = rng.normal(size=(8, 8, 8, 2)).astype(np.float32)
    two_x = rng.normal(size=(8, 2, 10, 10)).astype(np.float32)
    cases = {
        "demo_int8": (convert(_tiny_demo_cnn(), quantize="int8", representative_data=demo_x),
                      demo_x),
        "two_rnnpool_int8": (convert(_two_rnnpool_channels_first_cnn(), quantize="int8",
                                     representative_data=two_x), two_x),
    }
    args = ["model.tflite", "input.bin", "expected.bin"]
    for name, (model_bytes, x) in cases.items():
        folder = tmp_path / name
        tflm_build.write_model_case(folder, model_bytes, x[:1])
        status, output, invoke = emulator.run("cortex-m4", elf, args, cwd=folder,
                                              plugin=plugin, timeout=120)
        print(f"[{name}] Invoke: {invoke} instructions\n{output[-1500:]}")
        assert status == 0, output
        assert "~~~MODEL PASSED~~~" in output
        assert re.search(r"output 0: .* 0 mismatches \(bit-exact\)", output), output
        assert re.search(r"MicroInterpreter arena_used_bytes: \d+", output), output
        _, _, rnnpool = emulator.run("cortex-m4", elf, args, cwd=folder, plugin=plugin,
                                     timeout=120, markers=("RnnPoolOpBegin", "RnnPoolOpEnd"))
        assert invoke and rnnpool and 0 < rnnpool < invoke, (invoke, rnnpool)
