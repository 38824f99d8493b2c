"""Integer gate / update non-linearities (docs/int8_rnnpool.md, section 4).

Input: int16 pre-activations with scale s_pre. Output: int16 in Q15 (scale
2^-15), except relu, whose output keeps the input scale s_pre.
- sigmoid, tanh: a 513-entry int16 table over the whole int16 input range,
  linearly interpolated. The table is made once, in float64, by `make_table`,
  and shipped in the model, so the kernel and this reference read the same
  numbers and Eval needs no float.
- quantSigm, quantTanh: exact, by one requantisation and a clamp.
"""
import numpy as np

from rnnpool_keras.quantization import fixed_point as fp

TABLE_SIZE = 513      # 512 intervals + the right end point
TABLE_STEP_BITS = 7   # each interval spans 2^7 int16 input steps

TABLE_FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}
# Activations that a table implements; the others are exact integer formulas.
TABLE_ACTIVATIONS = tuple(TABLE_FUNCTIONS)
GATE_ACTIVATIONS = ("sigmoid", "tanh", "quantSigm", "quantTanh")
UPDATE_ACTIVATIONS = GATE_ACTIVATIONS + ("relu",)


def make_table(name, input_scale):
    """int16 [513]: round(f(s_pre * (-32768 + 128 i)) * 2^15), clamped to int16."""
    points = input_scale * (fp.INT16_MIN + (np.arange(TABLE_SIZE) << TABLE_STEP_BITS))
    values = fp.round_half_away(TABLE_FUNCTIONS[name](points) * fp.ONE_Q15)
    return fp.saturate(values, fp.INT16_MIN, fp.INT16_MAX).astype(np.int16)


def table_lookup(x, table):
    """Interpolated table value at int16 inputs x (any shape)."""
    offset = np.asarray(x, dtype=np.int64) - fp.INT16_MIN  # 0 .. 65535
    index = offset >> TABLE_STEP_BITS
    fraction = offset & ((1 << TABLE_STEP_BITS) - 1)
    table = np.asarray(table, dtype=np.int64)
    low, high = table[index], table[index + 1]
    return low + fp.rounding_divide_by_pot((high - low) * fraction, TABLE_STEP_BITS)


def activation_multiplier(name, input_scale):
    """The requantisation (q, shift) of quantSigm / quantTanh, else None.

    quantTanh(x) = clip(x, -1, 1) maps s_pre units to Q15 by s_pre * 2^15;
    quantSigm(x) = clip(x/2 + 1/2, 0, 1) by s_pre * 2^14, then + 2^14.
    """
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
        return table_lookup(x, table)
    if name == "quantTanh":
        return fp.saturate(fp.multiply_by_quantized_multiplier(x, multiplier),
                           fp.INT16_MIN, fp.INT16_MAX)
    if name == "quantSigm":
        half = fp.multiply_by_quantized_multiplier(x, multiplier)
        return fp.saturate(half + fp.ONE_Q14, 0, fp.INT16_MAX)
    if name == "relu":
        return np.maximum(np.asarray(x, dtype=np.int64), 0)
    raise ValueError(f"no integer form of activation {name!r}")
