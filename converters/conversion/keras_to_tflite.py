"""converters.convert: a Keras model with RNNPool2D layers -> .tflite bytes.

Checks the arguments, then hands the model to one of the two lowerings:
`custom_lowering` (one RNNPool custom op per layer, the default) or
`builtin_lowering` (builtin TFLite ops only).
"""
import tf_keras

from converters.conversion import builtin_lowering
from converters.conversion import custom_lowering
from converters.conversion.stock_converter import is_qat_model

QUANTIZE_CHOICES = (None, "int8")
LOWERINGS = ("custom", "builtin")


def _check_arguments(model, quantize, representative_data, lowering):
    if lowering not in LOWERINGS:
        raise ValueError(f"lowering must be 'custom' (one RNNPool custom op per layer) or "
                         f"'builtin' (builtin TFLite ops only), got {lowering!r}")
    if not isinstance(model, tf_keras.Model):
        raise TypeError("convert expects a tf_keras (Keras 2) model, got "
                        f"{type(model).__module__}.{type(model).__name__}; build it with "
                        "tf_keras and rnnpool_keras.RNNPool2D")
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be None (float) or 'int8', got {quantize!r}")
    if quantize is None and is_qat_model(model):
        raise ValueError("model is a QAT model (from quantize_model): convert it with "
                         "quantize='int8', or convert the float model it came from")
    if quantize is None and representative_data is not None:
        raise ValueError("representative_data is only used with quantize='int8'")


def convert(model, quantize=None, representative_data=None, lowering="custom"):
    """Converts a tf_keras model with RNNPool2D layers to TFLite flatbuffer bytes.

    Every RNNPool2D becomes one CUSTOM op "RNNPool" (docs/rnnpool_custom_op.md);
    everything else converts as the stock TFLite converter converts it, with no
    Flex ops. Run the result on the host with `converters.run_tflite`, on a
    device with TFLM and `tflite::Register_RNNPOOL()`.

    Args:
      model: a built tf_keras model (float, or QAT from rnnpool_keras.quantize_model).
      quantize: None for a float32 model; "int8" for a full-integer model (int8
        input and output, int8 RNNPool ops with int8 weights and int32 biases).
      representative_data: for quantize="int8" of a float model, an array
        [N, ...] (or iterable of batches) of typical inputs to calibrate on;
        with lowering="builtin" needed for a QAT model too (the lowered RNNPool
        graph's tensors are calibrated on it).
      lowering: "custom" (default) for the RNNPool custom op; "builtin" to
        express RNNPool in builtin TFLite ops only, for runtimes to which no
        custom kernel can be added (larger and slower: see README).
    Returns:
      The .tflite model as bytes.
    """
    _check_arguments(model, quantize, representative_data, lowering)
    if lowering == "builtin":
        return builtin_lowering.convert_builtin(model, quantize, representative_data)
    return custom_lowering.convert_custom(model, quantize, representative_data)


