"""QuantizeConfigs for standard layers that tfmot's 8-bit registry leaves out.

Keras Applications use them (MobileNetV3's and EfficientNet's squeeze-excite
Multiply, their Rescaling / Normalization preprocessing, the hard-sigmoid's
`x + 3` and `x / 6`, rebuilt as Rescaling by `flat_model`); TFLite and TFLM
run each as an int8 element-wise MUL / ADD / SUB, so QAT quantizes their
output, as tfmot does for Add and Concatenate.
"""
import tf_keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_configs)

OutputQuantizeConfig = default_8bit_quantize_configs.Default8BitOutputQuantizeConfig

OUTPUT_QUANTIZED_LAYERS = (tf_keras.layers.Multiply, tf_keras.layers.Subtract,
                           tf_keras.layers.Rescaling, tf_keras.layers.Normalization)


def quantize_config_for(layer):
    """The QuantizeConfig this package gives `layer`, or None (tfmot decides)."""
    if type(layer) in OUTPUT_QUANTIZED_LAYERS:
        return OutputQuantizeConfig()
    return None
