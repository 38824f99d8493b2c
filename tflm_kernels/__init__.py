"""RNNPool kernels for TensorFlow Lite Micro.

`rnnpool_core.{h,cc}` is the framework-free C++ numeric core (float and int8,
bit-exact with docs/int8_rnnpool.md); `tflm_kernels.core` is its Python face
through the pybind11 extension `tflm_kernels._rnnpool_core`, e.g.
`tflm_kernels.rnnpool_int8(x, quantized_params)`. Names of `core` are loaded
lazily, so importing this package does not need the extension to be built.
"""

__all__ = [
    "rnnpool_int8", "rnnpool_int8_patch", "rnnpool_float", "rnnpool_float_patch",
    "int8_kernel_params", "float_kernel_params", "scratch_bytes_int8",
    "scratch_bytes_float", "validate_int8", "quantize_multiplier", "output_size",
]


def __getattr__(name):
    if name in __all__:
        from tflm_kernels import core
        return getattr(core, name)
    raise AttributeError(f"module 'tflm_kernels' has no attribute {name!r}")
