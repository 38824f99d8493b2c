"""From a trained (QAT or calibrated) RNNPool2D to its int8 parameters.

The converter and the tests use these, so the integers in a .tflite model and
those the NumPy reference runs on come from one place.
"""
import numpy as np

from rnnpool_keras.layers.rnnpool2d_base import RANGE_NAMES
from rnnpool_keras.spec import int8_params


def asymmetric_int8(minimum, maximum):
    """(scale, zero point) of int8 for a [min, max] range, nudged as TF's
    FakeQuant (and so tfmot QAT) does: 0 is exact, zero point in [-128, 127]."""
    minimum, maximum = min(float(minimum), 0.0), max(float(maximum), 0.0)
    if maximum == minimum:
        return 1.0, 0
    scale = (maximum - minimum) / 255.0
    zero_point_from_min = -minimum / scale  # in the unsigned [0, 255] grid
    zero_point = int(np.clip(np.floor(zero_point_from_min + 0.5), 0, 255))
    return scale, zero_point - 128


def _full_matrix(layer, name):
    full = layer.matrix_variable(name)
    if full is not None:
        return np.asarray(full, np.float64)
    return (np.asarray(layer.matrix_variable(name + "_left"), np.float64)
            @ np.asarray(layer.matrix_variable(name + "_right"), np.float64))


def layer_ranges(layer):
    """{"rnn1_preactivation": max, ...} of a calibrated / QAT-trained RNNPool2D."""
    ranges = {name: float(np.asarray(getattr(layer, name + "_range"))) for name in RANGE_NAMES}
    missing = [name for name, value in ranges.items() if not value > 0]
    if missing:
        raise ValueError(f"RNNPool2D layer {layer.name!r} has no calibrated range for "
                         f"{missing}: train it with quantize_model() or run calibrate()")
    return ranges


def int8_params_of_layer(layer, input_scale, input_zero_point, output_scale,
                         output_zero_point):
    """QuantizedRNNPool of a built RNNPool2D whose ranges are set.

    Reads the float variables (not QAT's fake-quantised copies: quantising them
    again per spec section 1 gives the same grid), folds low-rank factors, and
    takes the input / output quantisation from the surrounding graph.
    """
    ranges = layer_ranges(layer)
    cells = {}
    for cell in ("rnn1", "rnn2"):
        cells[cell] = int8_params.quantize_cell(
            kernel=_full_matrix(layer, cell + "_kernel"),
            recurrent_kernel=_full_matrix(layer, cell + "_recurrent_kernel"),
            gate_bias=np.asarray(getattr(layer, cell + "_gate_bias")),
            update_bias=np.asarray(getattr(layer, cell + "_update_bias")),
            zeta=float(np.asarray(getattr(layer, cell + "_zeta"))),
            nu=float(np.asarray(getattr(layer, cell + "_nu"))),
            preactivation_max=ranges[cell + "_preactivation"],
            state_max=ranges[cell + "_state"],
            gate_activation=layer.gate_activation,
            update_activation=layer.update_activation)
    return int8_params.QuantizedRNNPool(
        rnn1=cells["rnn1"], rnn2=cells["rnn2"],
        input_scale=float(input_scale), input_zero_point=int(input_zero_point),
        output_scale=float(output_scale), output_zero_point=int(output_zero_point),
        pool_size=tuple(layer.pool_size), strides=tuple(layer.strides),
        padding=layer.padding, gate_activation=layer.gate_activation,
        update_activation=layer.update_activation)


def output_range(qat_layer):
    """(min, max) of the int8 tensor that a layer of a QAT model outputs.

    That is the range of the quantizer tfmot put last in the layer: a
    QuantizeLayer's own, a wrapper's output quantizer, or the one after its
    activation (e.g. Conv2D + ReLU).
    """
    variables = getattr(qat_layer, "quantizer_vars", None)  # QuantizeLayer
    if variables is None and getattr(qat_layer, "_output_quantizers", None):
        variables = qat_layer._output_quantizer_vars
    if variables is None:
        for activation in getattr(qat_layer, "_quantize_activations", []):
            variables = getattr(activation, "_post_activation_vars", None) or variables
    if variables is None:
        raise ValueError(f"layer {qat_layer.name!r} has no output quantizer: is it "
                         "part of a model returned by quantize_model?")
    return float(np.asarray(variables["min_var"])), float(np.asarray(variables["max_var"]))
