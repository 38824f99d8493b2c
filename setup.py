"""Installs rnnpool_keras (Keras layer, QAT), converters and the TFLM kernels."""
from pybind11.setup_helpers import Pybind11Extension, build_ext
import runpy

from setuptools import Extension, find_packages, setup

# The core's sources by role: one list, tflm_kernels/core_sources.py (read
# without importing the package).
CORE_SOURCES = ["tflm_kernels/" + name for name in runpy.run_path(
    "tflm_kernels/core_sources.py")["CORE_SOURCE_NAMES"]]

# The C++ kernel core is compiled as its own static library so it gets the
# flags of a microcontroller build (no exceptions, no RTTI); only the pybind11
# binding, which needs both, is compiled with the defaults.
CORE_FLAGS = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti", "-fPIC"]

setup(
    name="rnnpool-keras",
    version="0.1.0",
    description="RNNPool (NeurIPS 2020) for Keras, TFLite and TensorFlow Lite Micro",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["rnnpool_keras*", "converters*", "tflm_kernels*"]),
    # The C++ core ships with the package, for TFLM builds and the fuzz harness.
    # The fused FastGRNN training op is compiled from its source on first use,
    # against the user's TensorFlow (rnnpool_keras/layers/fused_sweep/build.py).
    package_data={"rnnpool_keras.layers.fused_sweep": ["*.cc"],
                  "tflm_kernels": ["*.h", "*.cc", "*.inc", "fuzz/*.cc", "fuzz/*.md",
                                   "tflm/*.h", "tflm/*.cc", "tflm/*.inc", "tflm/*.md",
                                   "tflm/*.py", "cortex_m/*.cc", "cortex_m/*.h",
                                   "cortex_m/*.c", "cortex_m/*.ld", "cortex_m/*.md",
                                   "litert/*.h", "litert/*.cc", "litert/*.md"]},
    install_requires=[
        "tensorflow>=2.16",
        "tf-keras",
        "tensorflow-model-optimization",
        "numpy",
        "flatbuffers",    # reading / rewriting .tflite files (custom op options)
        "tflite-micro",   # converters.run_tflite runs builtins on TFLM's kernels
    ],
    extras_require={
        "plot": ["matplotlib"],  # the memory plot of `rnnpool report` / the demo
        # `rnnpool train`'s TensorBoard logs: tf.summary needs it, TF >= 2.21 no
        # longer installs it.
        "train": ["tensorboard"],
        # LiteRT (TFLite's successor): converters.tflite_interpreter prefers it.
        "litert": ["ai-edge-litert"],
        # The tests run the delegate in both tf.lite and LiteRT, train with logs,
        # and run on every CPU (pytest-xdist, pyproject.toml).
        "test": ["pytest", "pytest-xdist", "matplotlib", "tensorboard", "ai-edge-litert"],
    },
    libraries=[("rnnpool_core", {
        "sources": [*CORE_SOURCES, "tflm_kernels/rnnpool_validate.cc"],
        "cflags": CORE_FLAGS,
        "obj_deps": {"": ["tflm_kernels/rnnpool_core.h", "tflm_kernels/rnnpool_core_internal.h",
                          "tflm_kernels/rnnpool_validate.h",
                          "tflm_kernels/rnnpool_tables.inc"]},
    })],
    ext_modules=[Pybind11Extension(
        "tflm_kernels._rnnpool_core",
        ["tflm_kernels/python_bindings.cc", "tflm_kernels/validate_bindings.cc"],
        include_dirs=["tflm_kernels"],
        # The core's sources too: build_ext relinks the module (with the
        # rebuilt rnnpool_core library) when any of them changes.
        depends=["tflm_kernels/rnnpool_core.h", "tflm_kernels/rnnpool_validate.h",
                 "tflm_kernels/validate_bindings.h", "tflm_kernels/rnnpool_tables.inc",
                 "tflm_kernels/rnnpool_core_internal.h", "tflm_kernels/rnnpool_validate.cc",
                 *CORE_SOURCES],
        cxx_std=17,
        extra_compile_args=["-O2"],
    ), Extension(
        # Not a Python module: a plain shared library with the TFLite external
        # delegate entry points (tflm_kernels/litert/README.md), built here so
        # `pip install` needs no TFLite headers and no network. Linked with the
        # rnnpool_core library above.
        "tflm_kernels._rnnpool_delegate",
        ["tflm_kernels/litert/rnnpool_delegate.cc", "tflm_kernels/litert/rnnpool_op.cc",
         "tflm_kernels/litert/flexbuffer_map.cc"],
        include_dirs=["tflm_kernels", "tflm_kernels/litert"],
        depends=["tflm_kernels/rnnpool_core.h", "tflm_kernels/rnnpool_validate.h",
                 "tflm_kernels/litert/tflite_abi.h",
                 "tflm_kernels/litert/rnnpool_op.h", "tflm_kernels/litert/flexbuffer_map.h",
                 "tflm_kernels/rnnpool_core_internal.h", "tflm_kernels/rnnpool_validate.cc",
                 *CORE_SOURCES],
        language="c++",
        extra_compile_args=["-std=c++17", "-O2", "-pthread", "-fvisibility=hidden"],
        extra_link_args=["-pthread"],
    )],
    cmdclass={"build_ext": build_ext},
    entry_points={"console_scripts": ["rnnpool=rnnpool_keras.app.cli:main"]},
)
