"""RNNPool for Keras: the RNNPool2D layer and its cost model.

`rnnpool_keras.RNNPool2D` is the tf_keras (Keras 2) layer, the one that
tensorflow-model-optimization and the TFLite converter path work with.
Keras 3 users import `rnnpool_keras.keras3.RNNPool2D`; both share one implementation.
"""
from rnnpool_keras.cost import madds_per_patch
from rnnpool_keras.layer import RNNPool2D

__all__ = ["RNNPool2D", "madds_per_patch", "quantize_model", "quantize_scope",
           "calibrate", "RNNPoolQuantizeConfig"]
__version__ = "0.1.0"

# Quantisation imports tensorflow_model_optimization, which switches tf.keras to
# tf_keras for the whole process: load it only when asked for.
_QUANTIZATION_API = {
    "quantize_model": "rnnpool_keras.quantization.api",
    "quantize_scope": "rnnpool_keras.quantization.api",
    "calibrate": "rnnpool_keras.quantization.api",
    "RNNPoolQuantizeConfig": "rnnpool_keras.quantization.quantize_config",
}


def __getattr__(name):
    if name in _QUANTIZATION_API:
        import importlib
        return getattr(importlib.import_module(_QUANTIZATION_API[name]), name)
    raise AttributeError(f"module 'rnnpool_keras' has no attribute {name!r}")
