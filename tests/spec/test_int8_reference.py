"""The NumPy integer reference follows docs/int8_rnnpool.md.

Primitives against hand-derived values; the whole operator against the float64
reference run on the same (int8-grid) weights and input, where the only
differences left are the int16 roundings the spec adds (spec section 6).
"""
import zlib

import numpy as np
import pytest

from rnnpool_keras.spec.random_params import quantize, random_float_params
from rnnpool_keras.spec.float_reference import rnnpool_reference
from rnnpool_keras.spec import fixed_point as fp
from rnnpool_keras.spec import int8_reference
from rnnpool_keras.spec import integer_activations as ia


# -- section 2: fixed-point primitives ----------------------------------------

@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.75, (3 << 29, 0)),
    (2.0 ** -20, (1 << 30, -19)), (3.0, (3 << 29, 2)),
    (2.0 ** -40, (0, 0)),                      # flushes to zero like TFLite
    (1 - 2.0 ** -40, (1 << 30, 1)),            # rounds up to 2^31: renormalised
])
def test_quantize_multiplier_hand_values(real, expected):
    assert fp.quantize_multiplier(real) == expected


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 2.0 ** 31])
def test_quantize_multiplier_rejects_unusable_values(bad):
    with pytest.raises(ValueError, match="multiplier"):
        fp.quantize_multiplier(bad)


@pytest.mark.parametrize("x, n, expected", [
    (5, 1, 3), (-5, 1, -3), (4, 1, 2), (-4, 1, -2), (6, 2, 2), (-6, 2, -2),
    (7, 2, 2), (-7, 2, -2), (123, 0, 123)])
def test_rounding_divide_by_pot_rounds_halves_away_from_zero(x, n, expected):
    assert fp.rounding_divide_by_pot(x, n) == expected


def test_saturating_rounding_doubling_high_mul_hand_values():
    assert fp.saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == 1 << 29
    assert fp.saturating_rounding_doubling_high_mul(fp.INT32_MIN, fp.INT32_MIN) == fp.INT32_MAX
    assert fp.saturating_rounding_doubling_high_mul(3, 1 << 30) == 2     # 1.5 -> 2
    assert fp.saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1   # -1.5 -> -1 (TFLite)


def test_multiply_by_quantized_multiplier_is_a_rounded_product():
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 24), 1 << 24, 2000)
    for real in [0.3, 1e-3, 0.9999, 1.7, 37.5]:
        got = fp.multiply_by_quantized_multiplier(x, fp.quantize_multiplier(real))
        # Double rounding is within one unit of the exact product.
        assert np.max(np.abs(got - x * real)) <= 1.0


def test_multiply_by_quantized_multiplier_saturates_its_left_shift():
    # x * 2^3 overflows int32: saturates to INT32_MAX, then * 0.5 -> 2^30.
    assert fp.multiply_by_quantized_multiplier(1 << 30, (1 << 30, 3)) == 1 << 30
    assert fp.multiply_by_quantized_multiplier(-(1 << 30), (1 << 30, 3)) == -(1 << 30)


# -- section 4.4: activations -------------------------------------------------

@pytest.mark.parametrize("name, function", [
    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("tanh", np.tanh)])
@pytest.mark.parametrize("pre_max", [1.0, 8.0, 40.0])
def test_table_activations_follow_the_function_for_any_input_scale(name, function, pre_max):
    scale = pre_max / fp.INT16_MAX
    table = ia.make_table(name)
    assert table.shape == (513,) and table.dtype == np.int16
    x = np.arange(fp.INT16_MIN, fp.INT16_MAX + 1, 7)
    got = ia.apply(name, x, table, ia.activation_multiplier(name, scale)) / fp.ONE_Q15
    # Interpolation over 1/32-wide intervals (|f''| <= 0.77), the Q3.12 input
    # rounding (slope <= 1), saturation beyond |x| = 8 (sigmoid(8) = 1 - 3.4e-4)
    # and the output rounding.
    bound = 0.77 / 32 ** 2 / 8 + 2.0 ** -13 + 3.4e-4 + 2.0 / fp.ONE_Q15
    assert np.max(np.abs(got - function(x * scale))) <= bound


def test_table_lookup_hits_table_points_exactly():
    table = ia.make_table("sigmoid")
    assert ia.table_lookup(0, table) == 16384                  # sigmoid(0) = 1/2
    assert ia.table_lookup(fp.INT16_MIN, table) == table[0]
    assert ia.table_lookup(fp.INT16_MIN + 128 * 100, table) == table[100]
    # T[i] = sigmoid((-32768 + 128 i) / 4096): T[288] is sigmoid(1).
    assert table[288] == round(32768 / (1 + np.exp(-1.0)))


def test_quant_activations_are_exact_on_a_power_of_two_scale():
    scale = 2.0 ** -12  # Q3.12 pre-activations
    x = np.array([-8192, -4096, -2048, 0, 2048, 4096, 8192])  # -2 -1 -0.5 0 0.5 1 2
    sigm = ia.apply("quantSigm", x, multiplier=ia.activation_multiplier("quantSigm", scale))
    tanh = ia.apply("quantTanh", x, multiplier=ia.activation_multiplier("quantTanh", scale))
    np.testing.assert_array_equal(sigm, [0, 0, 8192, 16384, 24576, 32767, 32767])
    np.testing.assert_array_equal(tanh, [-32768, -32768, -16384, 0, 16384, 32767, 32767])
    np.testing.assert_array_equal(ia.apply("relu", x), [0, 0, 0, 0, 2048, 4096, 8192])


# -- sections 3-4: the operator against the float64 reference ------------------

ACTIVATIONS = [("sigmoid", "tanh"), ("quantSigm", "quantTanh"), ("sigmoid", "relu"),
               ("tanh", "sigmoid"), ("quantSigm", "tanh"), ("sigmoid", "quantSigm")]
GEOMETRIES = [((3, 4), (2, 3), "same", (2, 9, 10)), ((6, 6), (4, 4), "valid", (1, 14, 14)),
              ((2, 3), (1, 1), "valid", (1, 5, 6)), ((1, 1), (2, 2), "same", (1, 5, 5))]


@pytest.mark.slow
@pytest.mark.parametrize("gate, update", ACTIVATIONS)
@pytest.mark.parametrize("pool, strides, padding, shape", GEOMETRIES)
def test_integer_operator_is_within_half_an_lsb_of_float_on_grid_values(
        gate, update, pool, strides, padding, shape):
    rng = np.random.default_rng(zlib.crc32(repr((gate, update, pool, padding)).encode()))
    k, h1, h2 = 5, 6, 4
    params = random_float_params(rng, k, h1, h2)
    x = rng.normal(size=shape + (k,))
    input_scale, input_zero_point = float(np.ptp(x)) / 255, int(rng.integers(-20, 20))
    x_q = np.clip(np.round(x / input_scale) + input_zero_point, -128, 127).astype(np.int8)
    # Ranges fitted to the float run (as a calibration would), with headroom:
    # nothing saturates, so the only errors left are the int16 roundings.
    def run(ranges, output_scale):
        pre = 1.25 * max(ranges["rnn1_pre"], ranges["rnn2_pre"])
        state = 1.25 * max(ranges["rnn1_state"], ranges["rnn2_state"])
        quantized, on_grid = quantize(
            params, gate, update, pre_max=pre, state_max=state, input_scale=input_scale,
            input_zero_point=input_zero_point, output_scale=output_scale,
            output_zero_point=3, pool_size=pool, strides=strides, padding=padding)
        x_on_grid = (x_q.astype(np.float64) - input_zero_point) * input_scale
        observed = {}
        expected = rnnpool_reference(x_on_grid, on_grid, pool, strides, padding,
                                     "channels_last", gate, update, ranges=observed)
        return quantized, expected, observed
    _, expected, observed = run({key: 1.0 for key in
                                 ("rnn1_pre", "rnn2_pre", "rnn1_state", "rnn2_state")}, 1.0)
    quantized, expected, _ = run(observed, np.max(np.abs(expected)) / 120)
    y_q = int8_reference.rnnpool_int8(x_q, quantized)
    error_lsb = np.abs((y_q.astype(np.float64) - 3) * quantized.output_scale - expected) \
        / quantized.output_scale
    assert y_q.shape == expected.shape
    assert error_lsb.max() <= 0.6, error_lsb.max()  # 0.5 output rounding + int16 roundings
    # Guards the case itself against a dead (mostly zero) output; relu updates
    # legitimately zero many values, so the bar is a fifth.
    assert np.mean(np.abs(expected) > quantized.output_scale) > 0.2


def _vww_case(rng, x_q, state_max=8.0):
    params = random_float_params(rng, 8, 8, 8)
    return quantize(params, "sigmoid", "tanh", pre_max=24.0, state_max=state_max,
                    input_scale=0.05, input_zero_point=-4, output_scale=8.0 / 127,
                    output_zero_point=0, pool_size=(6, 6), strides=(4, 4), padding="valid")


@pytest.mark.parametrize("fill", [0, 127, -128])
def test_constant_and_saturating_inputs_follow_the_float_operator(fill):
    rng = np.random.default_rng(7)
    x_q = np.full((1, 10, 10, 8), fill, np.int8)
    quantized, on_grid = _vww_case(rng, x_q)
    y_q = int8_reference.rnnpool_int8(x_q, quantized)
    x = (x_q.astype(np.float64) + 4) * 0.05
    expected = rnnpool_reference(x, on_grid, 6, 4, "valid", "channels_last", "sigmoid", "tanh")
    assert np.max(np.abs(y_q * quantized.output_scale - expected)) <= 0.6 * quantized.output_scale


def test_tight_state_range_saturates_instead_of_wrapping():
    rng = np.random.default_rng(8)
    x_q = rng.integers(-128, 128, (1, 6, 6, 8)).astype(np.int8)
    quantized, on_grid = _vww_case(rng, x_q, state_max=0.05)
    y_q = int8_reference.rnnpool_int8(x_q, quantized)
    # The state saturates at +-0.05 (the state range): outputs stay inside it.
    assert np.max(np.abs(y_q * quantized.output_scale)) <= 0.05 + quantized.output_scale


def test_extreme_weights_at_plus_minus_127():
    rng = np.random.default_rng(9)
    params = random_float_params(rng, 4, 3, 2)
    for key in ("rnn1_kernel", "rnn1_recurrent_kernel", "rnn2_kernel", "rnn2_recurrent_kernel"):
        params[key] = np.sign(rng.normal(size=params[key].shape)) * 3.0
    x_q = rng.integers(-128, 128, (1, 4, 4, 4)).astype(np.int8)
    quantized, on_grid = quantize(params, "sigmoid", "tanh", 64.0, 8.0, 0.1, 0, 8.0 / 127, 0,
                                  (4, 4), (4, 4), "valid")
    assert set(np.unique(quantized.rnn1.kernel)) <= {-127, 127}
    y_q = int8_reference.rnnpool_int8(x_q, quantized)
    expected = rnnpool_reference(x_q * 0.1, on_grid, 4, 4, "valid", "channels_last",
                                 "sigmoid", "tanh")
    assert np.max(np.abs(y_q * quantized.output_scale - expected)) <= 0.6 * quantized.output_scale


@pytest.mark.parametrize("k, h1, h2, pool", [(1024, 2, 2, (2, 2)), (3, 256, 256, (2, 2)),
                                             (2, 2, 2, (64, 64))])
def test_largest_supported_sizes_run_without_accumulator_overflow(k, h1, h2, pool):
    # Worst-case magnitudes: int8 extremes everywhere, weights all at +-127.
    rng = np.random.default_rng(10)
    params = random_float_params(rng, k, h1, h2)
    for key in ("rnn1_kernel", "rnn1_recurrent_kernel", "rnn2_kernel", "rnn2_recurrent_kernel"):
        params[key] = np.ones_like(params[key])
    x_q = np.full((1,) + pool + (k,), 127, np.int8)
    quantized, _ = quantize(params, "sigmoid", "tanh", 1.0, 1.0, 0.01, -128, 1.0 / 127, 0,
                            pool, pool, "valid")
    y_q = int8_reference.rnnpool_int8(x_q, quantized)  # asserts |acc| <= INT32_MAX inside
    assert y_q.shape == (1, 1, 1, 4 * h2)


@pytest.mark.parametrize("change, message", [
    (dict(gate_activation="relu"), "gate_activation 'relu' has no int8 form"),
    (dict(update_activation="gelu"), "update_activation 'gelu' has no int8"),
    (dict(pool_size=(65, 2)), r"pool_size \(65, 2\) not in \[1, 64\]"),
])
def test_out_of_spec_parameters_are_rejected(change, message):
    rng = np.random.default_rng(11)
    quantized, _ = quantize(random_float_params(rng, 2, 2, 2), "sigmoid", "tanh", 8.0, 1.0,
                            0.1, 0, 0.1, 0, (2, 2), (2, 2), "valid")
    for key, value in change.items():
        setattr(quantized, key, value)
    with pytest.raises(ValueError, match=message):
        int8_reference.rnnpool_int8(np.zeros((1, 2, 2, 2), np.int8), quantized)


def test_too_many_channels_is_rejected():
    rng = np.random.default_rng(12)
    quantized, _ = quantize(random_float_params(rng, 1025, 2, 2), "sigmoid", "tanh", 8.0,
                            1.0, 0.1, 0, 0.1, 0, (1, 1), (1, 1), "valid")
    with pytest.raises(ValueError, match=r"input channels 1025 not in \[1, 1024\]"):
        int8_reference.rnnpool_int8(np.zeros((1, 1, 1, 1025), np.int8), quantized)
