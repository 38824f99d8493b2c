"""Integer gate / update non-linearities (docs/int8_rnnpool.md, section 4.4).

Input: int16 pre-activations with scale s_pre. Output: int16 in Q15 (scale
2^-15), except relu, whose output keeps the input scale s_pre.
- sigmoid, tanh: the input is requantised to Q3.12 (range +-8, where both
  functions have saturated to within 3.4e-4), then read from a 513-entry
  int16 table over that range, linearly interpolated. The table does not
  depend on the model; `make_table` computes it once in float64 and every
  implementation uses those exact numbers, so Eval needs no float.
- quantSigm, quantTanh: exact, by one requantisation and a clamp.
"""
import numpy as np

from rnnpool_keras.spec import fixed_point as fp

TABLE_SIZE = 513      # 512 intervals + the right end point
TABLE_STEP_BITS = 7   # each interval spans 2^7 int16 input steps
TABLE_INPUT_FRACTION_BITS = 12  # table inputs are Q3.12: [-8, 8)

TABLE_FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}
# Activations that a table implements; the others are exact integer formulas.
TABLE_ACTIVATIONS = tuple(TABLE_FUNCTIONS)
GATE_ACTIVATIONS = ("sigmoid", "tanh", "quantSigm", "quantTanh")
UPDATE_ACTIVATIONS = GATE_ACTIVATIONS + ("relu",)


def make_table(name):
    """int16 [513]: round(f((-32768 + 128 i) / 2^12) * 2^15), clamped to int16."""
    points = (fp.INT16_MIN + (np.arange(TABLE_SIZE) << TABLE_STEP_BITS)) \
        / float(1 << TABLE_INPUT_FRACTION_BITS)
    values = fp.round_half_away(TABLE_FUNCTIONS[name](points) * fp.ONE_Q15)
    return fp.saturate(values, fp.INT16_MIN, fp.INT16_MAX).astype(np.int16)


def table_for(name):
    """The table of activation `name`, None for one computed exactly (quantSigm,
    quantTanh, relu): what a QuantizedCell carries."""
    return make_table(name) if name in TABLE_ACTIVATIONS else None


def table_lookup(x, table):
    """Interpolated table value at int16 inputs x (any shape)."""
    offset = np.asarray(x, dtype=np.int64) - fp.INT16_MIN  # 0 .. 65535
    index = offset >> TABLE_STEP_BITS
    fraction = offset & ((1 << TABLE_STEP_BITS) - 1)
    table = np.asarray(table, dtype=np.int64)
    low, high = table[index], table[index + 1]
    return low + fp.rounding_divide_by_pot((high - low) * fraction, TABLE_STEP_BITS)


def activation_multiplier(name, input_scale):
    """The requantisation (q, shift) each activation applies to its input.

    sigmoid, tanh: s_pre units to the table's Q3.12, s_pre * 2^12.
    quantTanh(x) = clip(x, -1, 1): s_pre units to Q15, s_pre * 2^15.
    quantSigm(x) = clip(x/2 + 1/2, 0, 1): s_pre * 2^14, then + 2^14.
    relu: none.
    """
    if name in TABLE_ACTIVATIONS:
        return fp.quantize_multiplier(input_scale * (1 << TABLE_INPUT_FRACTION_BITS))
    if name == "quantTanh":
        return fp.quantize_multiplier(input_scale * fp.ONE_Q15)
    if name == "quantSigm":
        return fp.quantize_multiplier(input_scale * fp.ONE_Q14)
    return None


def output_scale(name, input_scale):
    """Scale of the activation's int16 output: 2^-15, or s_pre for relu."""
    return input_scale if name == "relu" else 1.0 / fp.ONE_Q15


def apply(name, x, table=None, multiplier=None):
    """The integer activation `name` of int16 values x, as int64 in int16 range."""
    if name in TABLE_ACTIVATIONS:
        q3_12 = fp.saturate(fp.multiply_by_quantized_multiplier(x, multiplier),
                            fp.INT16_MIN, fp.INT16_MAX)
        return table_lookup(q3_12, table)
    if name == "quantTanh":
        return fp.saturate(fp.multiply_by_quantized_multiplier(x, multiplier),
                           fp.INT16_MIN, fp.INT16_MAX)
    if name == "quantSigm":
        half = fp.multiply_by_quantized_multiplier(x, multiplier)
        return fp.saturate(half + fp.ONE_Q14, 0, fp.INT16_MAX)
    if name == "relu":
        return np.maximum(np.asarray(x, dtype=np.int64), 0)
    raise ValueError(f"no integer form of activation {name!r}")
