"""Keras -> TFLite conversion with RNNPool as one custom op, and tools around it.

- `convert(model, quantize=None, representative_data=None)`: .tflite bytes.
- `run_tflite(model_bytes, *inputs)`: runs a converted model on the host.
- `tflite_interpreter(model_bytes, num_threads=None)`: a TFLite / LiteRT
  interpreter for it, RNNPool ops delegated to the C++ kernel core.
- `export_c_array(model_bytes, name)`: the .h / .cc pair for a firmware build.
- `memory_report(model_bytes)`: peak RAM (paper convention), TFLM arena, MAdds
  per operator; `format_table(report)`, `plot_memory(reports, path)`.
"""


def __getattr__(name):
    # TensorFlow loads slowly: import the conversion code on first use.
    import importlib
    modules = {"convert": "converters.conversion.keras_to_tflite",
               "run_tflite": "converters.runtime.host_runner",
               "tflite_interpreter": "converters.runtime.tflite_interpreter",
               "export_c_array": "converters.interop.c_array",
               "memory_report": "converters.analysis.memory",
               "format_table": "converters.analysis.memory",
               "plot_memory": "converters.analysis.memory"}
    if name in modules:
        return getattr(importlib.import_module(modules[name]), name)
    raise AttributeError(f"module 'converters' has no attribute {name!r}")
