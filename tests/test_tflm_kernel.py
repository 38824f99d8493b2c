"""Builds and runs the TFLM RNNPool kernel tests (tflm_kernels/tflm/) with g++.

Needs a tflite-micro checkout whose host library was built
(`make -f tensorflow/lite/micro/tools/make/Makefile microlite`, see
tflm_kernels/tflm/README.md):

    TFLM_ROOT=/path/to/tflite-micro python -m pytest -q -m tflm tests/test_tflm_kernel.py

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

pytestmark = pytest.mark.tflm

REPO = Path(__file__).resolve().parents[1]
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


KERNEL_SOURCES = [KERNELS / "tflm" / "rnnpool.cc", KERNELS / "rnnpool_core.cc"]


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
