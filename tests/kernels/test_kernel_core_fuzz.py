"""Builds the C++ kernel core standalone: sanitizer fuzz run and microcontroller flags.

- tflm_kernels/fuzz/rnnpool_fuzz.cc under -fsanitize=address,undefined with
  -fno-sanitize-recover=all (any report aborts), a short run;
- each core source (tflm_kernels/core_sources.py) alone with -fno-exceptions
  -fno-rtti -Werror and every warning on, and its object file must not reference the heap,
  exceptions or RTTI;
- on x86-64, the int8 path's machine code has no floating-point arithmetic.
Skipped when g++ is not installed.
"""
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tflm_kernels.core_sources import CORE_SOURCE_NAMES, CORE_SOURCES

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "tflm_kernels"
GXX = shutil.which("g++")

# Compiles the harness: deselected by -m "not slow".
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(GXX is None, reason="g++ is not installed")]


def test_fuzz_harness_under_address_and_undefined_sanitizers(tmp_path):
    binary = tmp_path / "rnnpool_fuzz"
    # -O0: the sanitizers check every access as written, and the AVX2 file
    # compiles in a third of -O1's time (~15 s vs ~45 s); the run is ~2 s.
    build = subprocess.run(
        [GXX, "-std=c++17", "-O0", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
         str(KERNELS / "fuzz" / "rnnpool_fuzz.cc"), *map(str, CORE_SOURCES),
         "-o", str(binary)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary), "300", "7"], capture_output=True, text=True,
                         timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "runtime error" not in report and "Sanitizer" not in report, report
    assert run.stdout.strip().splitlines()[-1].startswith("OK 300 cases"), report


MICROCONTROLLER_FLAGS = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra",
                         "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror"]


@pytest.fixture(scope="module")
def microcontroller_builds(tmp_path_factory):
    """Each core source and the validator compiled once with the microcontroller
    flags: {source name: (compiler result, object path)}. The no-heap and the
    no-float checks read the same objects."""
    out = tmp_path_factory.mktemp("microcontroller")
    builds = {}
    for source in [*CORE_SOURCE_NAMES, "rnnpool_validate.cc"]:
        obj = out / (Path(source).stem + ".o")
        result = subprocess.run([GXX, *MICROCONTROLLER_FLAGS, "-c", str(KERNELS / source),
                                 "-o", str(obj)], capture_output=True, text=True)
        builds[source] = (result, obj)
    return builds


@pytest.mark.parametrize("source", [*CORE_SOURCE_NAMES, "rnnpool_validate.cc"])
def test_core_builds_with_microcontroller_flags_and_no_heap(microcontroller_builds, source):
    build, obj = microcontroller_builds[source]
    assert build.returncode == 0, build.stderr
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm is not installed")
    undefined = subprocess.run([nm, "-u", "-C", str(obj)], capture_output=True,
                               text=True).stdout
    for forbidden in ("malloc", "calloc", "realloc", "free", "operator new",
                      "operator delete", "__cxa_", "typeinfo", "_Unwind"):
        assert forbidden not in undefined, f"{forbidden} referenced:\n{undefined}"


INT8_PATH = ("RnnPoolInt8(", "RnnPoolPatchInt8(", "SweepInt8<", "SweepInt8Spec(", "MatVec<int", "ActivationInt16(",
             "WriteOutputInt8(", "Avx2",  # Avx2: rnnpool_int8_x86.cc's sweeps, projections, stem rows
             "StemRowInt8(", "StemRnnPoolInt8(")  # the fused stem convolution (rnnpool_stem.cc)
# Scalar and vector floating-point arithmetic (SSE / AVX: ...ss, sd, ps, pd),
# conversions, x87. Integer SIMD on xmm / ymm registers (vpaddd, vpmulld,
# vpmaddwd, vpgatherdd, ...) is not floating point and does not match.
FLOAT_ARITHMETIC = re.compile(
    r"^(v?(add|sub|mul|div|sqrt|min|max|cmp|round|fmadd\w*)(ss|sd|ps|pd)|v?u?comis[sd]|"
    r"v?cvt\w+|f(ld|st|add|sub|mul|div)\w*)$")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64")
                    or shutil.which("objdump") is None, reason="needs x86-64 and objdump")
def test_int8_path_has_no_floating_point_arithmetic(microcontroller_builds):
    objects = []
    for source in CORE_SOURCE_NAMES:
        build, obj = microcontroller_builds[source]
        assert build.returncode == 0, build.stderr
        objects.append(str(obj))
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", *objects],
                             capture_output=True, text=True, check=True).stdout
    checked = avx2_checked = 0
    for function in re.split(r"\n(?=[0-9a-f]+ <)", listing):
        name = function.split("\n", 1)[0]
        if not any(part in name for part in INT8_PATH):
            continue
        checked += 1
        for line in function.split("\n")[1:]:
            fields = line.split("\t")
            mnemonic = fields[1].split()[0] if len(fields) > 1 and fields[1].split() else ""
            assert not FLOAT_ARITHMETIC.match(mnemonic), f"{name}: {line}"
        # The AVX2 sweeps and projections were checked as vector code.
        avx2_checked += (any(part in name for part in ("SweepInt8Avx2<", "SweepSequencesAvx2<",
                                                       "ProjectPixelsAvx2(",
                                                       "ProjectStatesAvx2(", "StemRowInt8Avx2("))
                         and "%ymm" in function)
    assert checked >= 4
    # The 12 sweep instantiations, the 12 of the grouped sweep, the 2
    # projections, the stem convolution's row.
    assert avx2_checked >= 12 + 12 + 2 + 1
