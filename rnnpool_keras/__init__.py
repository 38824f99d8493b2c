"""RNNPool for Keras: the RNNPool2D layer, its cost model and its quantisation.

`rnnpool_keras.RNNPool2D` is the tf_keras (Keras 2) layer, the one that
tensorflow-model-optimization and the TFLite converter path work with.
Keras 3 users import `rnnpool_keras.keras3.RNNPool2D`; both share one implementation.

Subpackages, one per stage: `spec` (NumPy only: geometry, cost, the float and
int8 references, the custom-op contract), `layers` (the Keras layer),
`quantization` (tfmot QAT), `app` (CLI, demo, data sets, model zoo).
Every public name here is loaded on first use, so `import rnnpool_keras.spec`
does not load TensorFlow.
"""
import importlib

__all__ = ["RNNPool2D", "madds_per_patch", "quantize_model", "quantize_scope",
           "calibrate", "RNNPoolQuantizeConfig"]
__version__ = "0.1.0"

# Public name -> module defining it. The quantisation API imports
# tensorflow_model_optimization, which switches tf.keras to tf_keras for the
# whole process: another reason to load only what is asked for.
_PUBLIC = {
    "RNNPool2D": "rnnpool_keras.layers.rnnpool2d",
    "madds_per_patch": "rnnpool_keras.spec.cost",
    "quantize_model": "rnnpool_keras.quantization.api",
    "quantize_scope": "rnnpool_keras.quantization.api",
    "calibrate": "rnnpool_keras.quantization.api",
    "RNNPoolQuantizeConfig": "rnnpool_keras.quantization.quantize_config",
}


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rnnpool_keras' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))
