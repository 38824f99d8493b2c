"""Compiles the fused FastGRNN sweep op for the installed TensorFlow.

A TensorFlow op library is tied to the exact TensorFlow it was built against,
and pip's isolated build environment cannot see the user's TensorFlow, so the
library is built on the user's machine, on first use (or ahead of time with
`python -m rnnpool_keras.layers.fused_sweep.build`), into a cache directory keyed by
the TensorFlow version, the source and the CPU (it uses AVX2 / FMA when this
CPU has them; not `-march=native`, whose AVX512-FP16 breaks TF's Eigen on gcc 12).

    RNNPOOL_KERAS_CACHE   cache root (default ~/.cache/rnnpool_keras)
    CXX                   compiler (default g++)
"""
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastgrnn_sweep.cc")
LIBRARY_NAME = "_fastgrnn_sweep.so"
OPTIMIZE_FLAGS = ["-O3", "-fPIC", "-shared", "-Wno-deprecated-declarations"]
# One block of 8 float sequences is one AVX register (fastgrnn_sweep.cc, kLanes).
VECTOR_FLAGS = {"avx2": "-mavx2", "fma": "-mfma"}


class BuildError(RuntimeError):
    """The op library could not be compiled; the message says why."""


def _cpu_signature():
    """The CPU's feature flags line (the library uses the vector instructions it lists)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def _compiler():
    return os.environ.get("CXX", "g++")


def _vector_flags():
    features = set(_cpu_signature().split())
    if not set(VECTOR_FLAGS) <= features:
        return []
    return list(VECTOR_FLAGS.values())


def command(output_path):
    """The compiler command line that builds the library at `output_path`."""
    return ([_compiler(), SOURCE, "-o", output_path] + OPTIMIZE_FLAGS + _vector_flags()
            + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags())


def library_path():
    """Where the library for this TensorFlow, source and CPU lives in the cache."""
    with open(SOURCE, "rb") as source:
        key = hashlib.sha256(source.read())
    key.update(" ".join(command("")).encode())
    key.update(_cpu_signature().encode())
    root = os.environ.get("RNNPOOL_KERAS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "rnnpool_keras")
    return os.path.join(root, f"tf-{tf.__version__}", key.hexdigest()[:16], LIBRARY_NAME)


def build(force=False):
    """Returns the path of the compiled library, compiling it if not cached.

    Raises BuildError (with the compiler's message) when compilation fails.
    """
    path = library_path()
    if os.path.isfile(path) and not force:
        return path
    if shutil.which(_compiler()) is None:
        raise BuildError(f"no C++ compiler {_compiler()!r} on PATH (set CXX)")
    logging.getLogger("rnnpool_keras").warning(
        "RNNPool2D: compiling the fused FastGRNN op for TensorFlow %s into %s "
        "(once; about a minute)", tf.__version__, os.path.dirname(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Built beside the target then renamed: concurrent first uses never see a
    # half-written library.
    handle, partial = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(handle)
    try:
        result = subprocess.run(command(partial), capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError("compiling the fused FastGRNN sweep op failed:\n"
                             + result.stderr[-4000:])
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


def main():
    path = build(force="--force" in sys.argv[1:])
    print(path)


if __name__ == "__main__":
    main()
