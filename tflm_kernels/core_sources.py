"""The C++ files of the kernel core, split by role as TFLM splits kernels.

The one list every build of the core reads (setup.py, the Cortex-M harness,
the fuzz and build tests, bench/bench_kernel.py); the TFLM Makefile hook
(tflm/Makefile_internal.inc) and the READMEs name the same files.
"""
import subprocess
from pathlib import Path

KERNELS = Path(__file__).resolve().parent
CORE_SOURCE_NAMES = (
    "rnnpool_prepare.cc",    # Prepare time: validation, geometry, multipliers, int8 plan
    "rnnpool_int8_spec.cc",  # the int8 spec transcribed (generic path, ActivationInt16)
    "rnnpool_int8.cc",       # the optimised int8 Eval
    "rnnpool_int8_x86.cc",   # its AVX2 sweeps, projections, stem rows (x86-64 only; empty elsewhere)
    "rnnpool_float.cc",      # the float Eval
    "rnnpool_stem.cc",       # the fused stem convolution (contract version 2)
)
CORE_SOURCES = tuple(KERNELS / name for name in CORE_SOURCE_NAMES)


def compile_core(compiler, flags, output, cwd=None):
    """Compiles every core source with `compiler` and `flags` (a list of str)
    and joins the objects into the one relocatable object `output` (a Path;
    `compiler -r`). Per-source side files (-fstack-usage's .su) land in `cwd`.
    Raises subprocess.CalledProcessError with the compiler's stderr on failure."""
    output = Path(output)
    objects = []
    for source in CORE_SOURCES:
        obj = output.with_name(f"{output.stem}_{source.stem}.o")
        subprocess.run([compiler, *flags, "-c", str(source), "-o", str(obj)], check=True,
                       capture_output=True, text=True, cwd=cwd)
        objects.append(obj)
    subprocess.run([compiler, "-r", "-nostdlib", *map(str, objects), "-o", str(output)],
                   check=True, capture_output=True, text=True, cwd=cwd)
    return output
