"""The delegate's flexbuffer options reader (tflm_kernels/litert/flexbuffer_map.cc):
reads what the converter writes, and survives damaged blobs under ASan / UBSan.
Skipped when g++ is not installed."""
import shutil
import subprocess
from pathlib import Path

import pytest
from flatbuffers import flexbuffers

KERNELS = Path(__file__).resolve().parents[2] / "tflm_kernels"
GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None, reason="g++ is not installed")

# Keys and value kinds of a real int8 op's options, with widths that force
# every storage form: 1-byte ints, a float64, a uint above int32, a bool.
OPTIONS = {"version": 1, "pool_h": 6, "pool_w": 6, "stride_h": 4, "stride_w": 4,
           "padding": 0, "gate_activation": 0, "update_activation": 1,
           "rnn1_zeta_q14": 16000, "rnn1_nu_q14": 300, "rnn2_zeta_q14": 0,
           "rnn2_nu_q14": 16384, "rnn1_preactivation_scale": 0.0123456789012345,
           "rnn1_state_scale": 2.0 ** -15, "big": 2 ** 40, "flag": True}


@pytest.mark.slow
def test_damaged_options_are_read_within_bounds_under_sanitizers(tmp_path):
    binary = tmp_path / "flexbuffer_map_fuzz"
    build = subprocess.run(
        [GXX, "-std=c++17", "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-I", str(KERNELS / "litert"), "-I", str(KERNELS),
         str(KERNELS / "fuzz" / "flexbuffer_map_fuzz.cc"),
         str(KERNELS / "litert" / "flexbuffer_map.cc"), "-o", str(binary)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    blob = tmp_path / "options.bin"
    blob.write_bytes(bytes(flexbuffers.Dumps(OPTIONS)))
    run = subprocess.run([str(binary), str(blob), "20000", "7"], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"entries {len(OPTIONS)}"
    still, _, total = lines[1].split()[2:]
    assert 0 < int(still) < int(total)  # some damage is harmless, much is caught
