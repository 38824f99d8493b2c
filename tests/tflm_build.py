"""Builds TFLM programs of this repository against a tflite-micro checkout
(TFLM_ROOT) for the tests: the KernelRunner tests, the interpreter demo and
rnnpool_run_model (a converted .tflite through MicroInterpreter).

The checkout's host library must be built
(`make -f tensorflow/lite/micro/tools/make/Makefile microlite`, see
tflm_kernels/tflm/README.md); TFLM_LIB overrides the library (default
$TFLM_ROOT/gen/linux_x86_64_default_gcc/lib/libtensorflow-microlite.a), CXX
the compiler (default g++). The defines must be those the library was built
with (TF_LITE_STATIC_MEMORY changes struct layouts); these are the
Makefile's host defaults. `tflm()` skips the calling test when TFLM_ROOT is
unset or the library is missing.

`build_run_model_m4` builds rnnpool_run_model for the emulated Cortex-M4
(tflm_kernels/cortex_m) against TFLM_M4_LIB, a library built for
cortex_m_generic Cortex-M4F with CMSIS-NN (default
$TFLM_ROOT/M4_DEFAULT_LIB; bench/bench_model_m4.py says how to build it);
`m4_missing()` says why that cannot run here.
"""
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tflm_kernels.core_sources import CORE_SOURCES

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "tflm_kernels"
DEFAULT_LIB = "gen/linux_x86_64_default_gcc/lib/libtensorflow-microlite.a"
DEFINES = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON",
           "-DTF_LITE_USE_CTIME", "-DKERNELS_OPTIMIZED_FOR_SPEED"]
CXXFLAGS = ["-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
            "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra",
            "-Wno-unused-parameter", "-Werror"]
LDFLAGS = ["-Wl,--fatal-warnings", "-Wl,--gc-sections", "-lm"]


def tflm():
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


def run(cmd, **kwargs):
    print("$", " ".join(shlex.quote(str(c)) for c in cmd))
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def build(tmp_path, name, sources):
    cxx, includes, lib = tflm()
    objects = []
    for source in sources:
        obj = tmp_path / (source.stem + ".o")
        result = run([cxx, *CXXFLAGS, *DEFINES, *includes, "-c", source, "-o", obj])
        assert result.returncode == 0, f"compiling {source} failed:\n{result.stderr}"
        objects.append(obj)
    binary = tmp_path / name
    result = run([cxx, *CXXFLAGS, "-o", binary, *objects, lib, *LDFLAGS])
    assert result.returncode == 0, f"linking {name} failed:\n{result.stderr}"
    return binary


KERNEL_SOURCES = [KERNELS / "tflm" / "rnnpool.cc", *CORE_SOURCES,
                  KERNELS / "rnnpool_validate.cc"]


def write_model_case(directory, model_bytes, x):
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


def build_run_model(directory):
    """tflm_kernels/tflm/rnnpool_run_model built in `directory` (its path)."""
    return build(directory, "rnnpool_run_model",
                 [KERNELS / "tflm" / "rnnpool_run_model.cc",
                  KERNELS / "tflm" / "example_resolver.cc", *KERNEL_SOURCES])


M4_DEFAULT_LIB = "gen/cortex_m_generic_cortex-m4+fp_default_cmsis_nn_gcc/lib/libtensorflow-microlite.a"
# The defines TFLM's Makefile passes for TARGET=cortex_m_generic
# TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn, and the board switch
# of rnnpool_run_model.cc.
M4_DEFINES = ("TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON", "CMSIS_NN",
              "KERNELS_OPTIMIZED_FOR_SPEED", "TF_LITE_MCU_DEBUG_LOG", "CPU_M4=1", "ARMCM4",
              "ARM_NN_ENABLE_F16=0", "ARM_NN_ENABLE_F32=0", "RNNPOOL_RUN_MODEL_ON_BOARD")


def m4_library():
    """(TFLM_ROOT, the Cortex-M4 library) as Paths; the library may not exist."""
    root = Path(os.environ.get("TFLM_ROOT", ""))
    return root, Path(os.environ.get("TFLM_M4_LIB") or root / M4_DEFAULT_LIB)


def m4_missing():
    """Why the Cortex-M4 build cannot run here (a sentence), or None."""
    from tflm_kernels.cortex_m import emulator

    if not os.environ.get("TFLM_ROOT"):
        return ("TFLM_ROOT is not set (a tflite-micro checkout with a cortex_m_generic "
                "Cortex-M4F library: see bench/bench_model_m4.py)")
    _, lib = m4_library()
    if not lib.is_file():
        return (f"TFLM library {lib} not found: build it as bench/bench_model_m4.py says, "
                "or point TFLM_M4_LIB at it")
    missing = emulator.missing_tools()
    if missing:
        return (f"{', '.join(missing)} not found (apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm)")
    return None


def build_run_model_m4(directory):
    """rnnpool_run_model.cc for QEMU's mps2-an386 (Cortex-M4F) linked with
    TFLM_M4_LIB and the board start-up (mps2_4m.ld: 4 MB code, 4 MB data);
    returns the ELF. Run it with tflm_kernels.cortex_m.emulator.run."""
    from tflm_kernels.cortex_m import emulator

    root, lib = m4_library()
    downloads = root / "tensorflow/lite/micro/tools/make/downloads"
    includes = [REPO, root, downloads, downloads / "flatbuffers/include",
                downloads / "gemmlowp", downloads / "ruy", downloads / "cmsis",
                downloads / "cmsis/CMSIS/Core/Include", downloads / "cmsis_nn",
                downloads / "cmsis_nn/Include"]
    sources = [KERNELS / "tflm" / "rnnpool_run_model.cc",
               KERNELS / "tflm" / "example_resolver.cc", *KERNEL_SOURCES]
    # -u _printf_float: newlib-nano's vsnprintf (TFLM's log) prints floats only with it.
    return emulator.build("cortex-m4", sources, Path(directory) / "rnnpool_run_model_m4.elf",
                          include_dirs=includes, defines=M4_DEFINES, libraries=[lib],
                          memory_map="mps2_4m.ld", link_flags=["-u", "_printf_float", "-lm"])
