"""QuantizeConfigs for standard layers that tfmot's 8-bit registry leaves out
or gets wrong.

Keras Applications use them (MobileNetV3's and EfficientNet's squeeze-excite
Multiply, their Rescaling / Normalization preprocessing, the hard-sigmoid's
`x + 3` and `x / 6`, rebuilt as Rescaling by `flat_model`); TFLite and TFLM
run each as an int8 element-wise MUL / ADD / SUB, so QAT quantizes their
output, as tfmot does for Add and Concatenate.

Conv2D / DepthwiseConv2D / Dense with `activation="swish"` (EfficientNet's
squeeze-excite `se_reduce`; Keras 3's "silu" becomes tf_keras' "swish"):
tfmot treats swish like relu, as if TFLite fused it into the layer, and only
quantizes after it. TFLite has no fused swish: the converter writes the layer,
then LOGISTIC and MUL, and with no range on the layer's own output (the
pre-activation) it keeps all three float, between DEQUANTIZE and QUANTIZE
(issue 18). `SwishQuantizeConfig` quantizes the pre-activation too, as tfmot
does for a separate Activation("swish") layer after BatchNormalization.
"""
import tf_keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_configs, default_8bit_quantize_registry, default_8bit_quantizers)

OutputQuantizeConfig = default_8bit_quantize_configs.Default8BitOutputQuantizeConfig

OUTPUT_QUANTIZED_LAYERS = (tf_keras.layers.Multiply, tf_keras.layers.Subtract,
                           tf_keras.layers.Rescaling, tf_keras.layers.Normalization)

# Layers with a swish activation attribute: {type: (weights, per-channel)}, as
# tfmot's registry quantizes their weights.
_SWISH_LAYERS = {tf_keras.layers.Conv2D: (["kernel"], True),
                 tf_keras.layers.DepthwiseConv2D: (["depthwise_kernel"], True),
                 tf_keras.layers.Dense: (["kernel"], False)}


class SwishOfQuantizedInput:
    """The activation of a layer under SwishQuantizeConfig: swish of the
    fake-quantized pre-activation. Serialized as plain swish (like tfmot's
    QuantizeAwareActivation, it is set again on every call of the wrapper)."""

    def __init__(self, quantize_input):
        self.quantize_input = quantize_input  # a tfmot QuantizeAwareActivation("linear")

    def __call__(self, x):
        return tf_keras.activations.swish(self.quantize_input(x))

    def get_config(self):
        return {"activation": "swish"}

    @classmethod
    def from_config(cls, config):
        return tf_keras.activations.get(config["activation"])


class SwishQuantizeConfig(default_8bit_quantize_registry.Default8BitQuantizeConfig):
    """tfmot's 8-bit scheme for a Conv2D / DepthwiseConv2D / Dense with a swish
    activation, whose TFLite form is the layer, LOGISTIC and MUL, unfused:
    weights as tfmot's registry (per channel for convolutions), the
    pre-activation quantized (the int8 output of the CONV_2D / ... op, input of
    LOGISTIC and MUL) and the output after swish (the MUL's)."""

    def __init__(self, weight_attrs, per_axis=False):
        super().__init__(weight_attrs, ["activation"], quantize_output=True)
        self.per_axis = per_axis
        if per_axis:
            self.weight_quantizer = default_8bit_quantizers.Default8BitConvWeightsQuantizer()

    def get_activations_and_quantizers(self, layer):
        # "linear": tfmot's QuantizeAwareActivation quantizes after it, i.e.
        # the pre-activation; swish itself is applied in set_quantize_activations.
        return [(tf_keras.activations.linear, self.activation_quantizer)]

    def set_quantize_activations(self, layer, quantize_activations):
        if len(quantize_activations) != 1:
            raise ValueError(f"SwishQuantizeConfig.set_quantize_activations expects one "
                             f"activation, got {len(quantize_activations)}")
        layer.activation = SwishOfQuantizedInput(quantize_activations[0])

    def get_config(self):
        return {"weight_attrs": self.weight_attrs, "per_axis": self.per_axis}


CUSTOM_OBJECTS = {"Default8BitOutputQuantizeConfig": OutputQuantizeConfig,
                  "SwishQuantizeConfig": SwishQuantizeConfig,
                  "SwishOfQuantizedInput": SwishOfQuantizedInput}


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def quantize_config_for(layer):
    """The QuantizeConfig this package gives `layer`, or None (tfmot decides)."""
    if type(layer) in OUTPUT_QUANTIZED_LAYERS:
        return OutputQuantizeConfig()
    if type(layer) in _SWISH_LAYERS and _activation_name(layer) == "swish":
        weight_attrs, per_axis = _SWISH_LAYERS[type(layer)]
        return SwishQuantizeConfig(weight_attrs, per_axis)
    return None
