"""converters.convert: a Keras model with RNNPool2D layers -> .tflite bytes.

Checks the arguments, then hands the model to one of the two lowerings:
`custom_lowering` (one RNNPool custom op per layer, the default; then
expansions split into channel groups, `channel_groups`) or
`builtin_lowering` (builtin TFLite ops only).
"""
import numpy as np
import tensorflow as tf

from converters.conversion import builtin_lowering
from converters.conversion import custom_lowering
from converters.conversion.stock_converter import is_qat_model
from rnnpool_keras.flat_model import flat_tf_keras_model

QUANTIZE_CHOICES = (None, "int8")
LOWERINGS = ("custom", "builtin")


def _check_arguments(model, quantize, representative_data, lowering, fuse_stem,
                     split_expansions):
    if not isinstance(fuse_stem, (bool, np.bool_)):
        raise TypeError(f"fuse_stem must be True or False, got {type(fuse_stem).__name__}")
    if fuse_stem and lowering == "builtin":
        raise ValueError("fuse_stem=True needs lowering='custom' (the fused convolution is "
                         "part of the RNNPool custom op); pass fuse_stem=False with "
                         "lowering='builtin'")
    if not isinstance(split_expansions, (bool, np.bool_)):
        raise TypeError(f"split_expansions must be True (split expansion convolutions "
                        f"into channel groups where that shrinks the TFLM arena) or "
                        f"False, got {split_expansions!r} "
                        f"({type(split_expansions).__name__})")
    if lowering not in LOWERINGS:
        raise ValueError(f"lowering must be 'custom' (one RNNPool custom op per layer) or "
                         f"'builtin' (builtin TFLite ops only), got {lowering!r}")
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be None (float) or 'int8', got {quantize!r}")
    if quantize is None and is_qat_model(model):
        raise ValueError("model is a QAT model (from quantize_model): convert it with "
                         "quantize='int8', or convert the float model it came from")
    if quantize is None and representative_data is not None:
        raise ValueError("representative_data is only used with quantize='int8'")
    try:
        defined_inputs = model.inputs
    except AttributeError:
        defined_inputs = None
    if not defined_inputs:
        raise ValueError(f"model ({type(model).__name__}) has no defined inputs: a "
                         "subclassed model, or a Sequential one without an input shape, "
                         "cannot be traced; build it with the functional API or "
                         "tf_keras.Input")
    if isinstance(representative_data, (np.ndarray, list, tuple, tf.Tensor)):
        _check_finite(representative_data, "representative_data")  # iterables: as they come


def _check_finite(data, name):
    """ValueError unless `data` (an array, or a list / tuple of arrays) is
    numeric, non-empty and finite: the converter's calibration cannot use NaN
    or infinity (one +inf crashes the stock converter)."""
    if isinstance(data, (list, tuple)) and data and not np.isscalar(data[0]):
        for i, part in enumerate(data):
            _check_finite(part, f"{name}[{i}]")
        return
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array [N, ...], got "
                        f"{type(data).__name__}") from None
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass an array [N, ...] with N >= 1")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} holds {bad} NaN or infinite values; calibration needs "
                         "finite inputs")


def convert(model, quantize=None, representative_data=None, lowering="custom",
            fuse_stem=None, split_expansions=True):
    """Converts a Keras model with RNNPool2D layers to TFLite flatbuffer bytes.

    Every RNNPool2D becomes one CUSTOM op "RNNPool" (docs/rnnpool_custom_op.md);
    everything else converts as the stock TFLite converter converts it, with no
    Flex ops. Run the result on the host with `converters.run_tflite`, on a
    device with TFLM and `tflite::Register_RNNPOOL()`.

    Args:
      model: a built tf_keras or Keras 3 functional / Sequential model (float,
        nested models allowed: see rnnpool_keras.flat_model), or a QAT model
        from rnnpool_keras.quantize_model.
      quantize: None for a float32 model; "int8" for a full-integer model (int8
        input and output, int8 RNNPool ops with int8 weights and int32 biases).
      representative_data: for quantize="int8" of a float model, an array
        [N, ...] (or iterable of batches) of typical inputs to calibrate on;
        with lowering="builtin" needed for a QAT model too (the lowered RNNPool
        graph's tensors are calibrated on it).
      lowering: "custom" (default) for the RNNPool custom op; "builtin" to
        express RNNPool in builtin TFLite ops only, for runtimes to which no
        custom kernel can be added (larger and slower: see README).
      fuse_stem: fold a Conv2D (its BatchNorm and ReLU / ReLU6 included) whose
        output only an RNNPool2D reads into that RNNPool op, which then computes
        the convolution a band of rows at a time: the same outputs (bit for bit
        in int8) without ever holding the convolution's output map
        (docs/rnnpool_custom_op.md, version 2). None (default): True for
        lowering="custom", False for "builtin"; False keeps the two ops.
      split_expansions: with lowering="custom", True (default) runs each
        expansion CONV_2D whose output only a DEPTHWISE_CONV_2D reads as G
        conv / depthwise pairs on channel slices and a CONCATENATION, where
        that shrinks TFLM's planned arena (converters.conversion.channel_groups;
        the outputs are bit-exact, float and int8); False keeps every op whole.
        The builtin lowering keeps the stock converter's ops either way.
    Returns:
      The .tflite model as bytes.
    """
    if fuse_stem is None:
        fuse_stem = lowering == "custom"
    model = flat_tf_keras_model(model, caller="convert")
    _check_arguments(model, quantize, representative_data, lowering, fuse_stem,
                     split_expansions)
    if lowering == "builtin":
        return builtin_lowering.convert_builtin(model, quantize, representative_data)
    return custom_lowering.convert_custom(model, quantize, representative_data,
                                          bool(fuse_stem), bool(split_expansions))


