"""The C++ int8 kernel core (tflm_kernels) against the NumPy oracle, bit for bit.

docs/int8_rnnpool.md is the spec; rnnpool_keras.spec.int8_reference is
the oracle; the kernel must agree with it exactly (assert_array_equal) on every
shape, activation, scale and input tried here, and its fixed-point primitives
must agree with fixed_point.py on every value tried.
"""
import math
import platform

import numpy as np
import pytest

from rnnpool_keras.spec.random_params import quantize, random_float_params
from rnnpool_keras.spec import fixed_point as fp
from rnnpool_keras.spec import int8_params, int8_reference, integer_activations
from tflm_kernels import _rnnpool_core as _core
from tflm_kernels import core

GATES = integer_activations.GATE_ACTIVATIONS
UPDATES = integer_activations.UPDATE_ACTIVATIONS


def make_case(rng, k, h1, h2, pool, strides, padding, gate, update, *,
              weight_scale=None, pre_max=None, state_max=None, input_scale=None,
              output_scale=None, input_zero_point=None, output_zero_point=None,
              extreme_weights=False):
    """A random QuantizedRNNPool (random weights, ranges, scales, zero points)."""
    if weight_scale is None:
        weight_scale = float(rng.choice([0.05, 0.3, 1.0, 3.0]))
    params = random_float_params(rng, k, h1, h2, scale=weight_scale, zeta_nu=4.0)
    if extreme_weights:  # every matrix entry quantises to +-127
        for prefix in ("rnn1_", "rnn2_"):
            for name in ("kernel", "recurrent_kernel"):
                w = params[prefix + name]
                params[prefix + name] = np.where(w >= 0, 1.0, -1.0) * weight_scale
    log_uniform = lambda lo, hi: float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    quantized, _ = quantize(
        params, gate, update,
        pre_max=pre_max if pre_max is not None else log_uniform(0.05, 200.0),
        state_max=state_max if state_max is not None else log_uniform(0.05, 50.0),
        input_scale=input_scale if input_scale is not None else log_uniform(1e-4, 0.5),
        input_zero_point=(input_zero_point if input_zero_point is not None
                          else int(rng.integers(-128, 128))),
        output_scale=output_scale if output_scale is not None else log_uniform(1e-4, 5.0),
        output_zero_point=(output_zero_point if output_zero_point is not None
                           else int(rng.integers(-128, 128))),
        pool_size=pool, strides=strides, padding=padding)
    return quantized


def random_input(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def random_geometry_case(rng, k, h1, h2, max_stride, max_extra):
    """(QuantizedRNNPool, int8 input [1-2, H, W, k]) of random pool, strides,
    padding, activations and map size (up to max_extra past the pool)."""
    r, c = (int(v) for v in rng.integers(1, 7, size=2))
    sr, sc = (int(v) for v in rng.integers(1, max_stride + 1, size=2))
    padding = str(rng.choice(["valid", "same"]))
    gate, update = str(rng.choice(GATES)), str(rng.choice(UPDATES))
    height = int(rng.integers(r if padding == "valid" else 1, r + max_extra))
    width = int(rng.integers(c if padding == "valid" else 1, c + max_extra))
    params = make_case(rng, k, h1, h2, (r, c), (sr, sc), padding, gate, update,
                       extreme_weights=bool(rng.random() < 0.2))
    return params, random_input(rng, (int(rng.integers(1, 3)), height, width, k))


def assert_bit_exact(x, params):
    expected = int8_reference.rnnpool_int8(x, params)
    got = core.rnnpool_int8(x, params)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
    return got


# ---------------------------------------------------------------------------
# Fixed-point primitives against fixed_point.py.
# ---------------------------------------------------------------------------
EDGE_INT32 = np.array([fp.INT32_MIN, fp.INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30),
                       -(1 << 30) + 1, -65537, -65536, -32769, -32768, -16384, -129,
                       -128, -64, -3, -2, -1, 0, 1, 2, 3, 63, 64, 127, 16384, 32767, 32768,
                       65535, 65536, (1 << 30) - 1, 1 << 30, (1 << 30) + 1,
                       fp.INT32_MAX - 1, fp.INT32_MAX], dtype=np.int64)
EDGE_Q = [0, 1 << 30, (1 << 30) + 1, 3 << 29, (1 << 31) - 2, (1 << 31) - 1]


def _random_int32(rng, n):
    wide = rng.integers(fp.INT32_MIN, fp.INT32_MAX, size=n, endpoint=True)
    narrow = rng.integers(-(1 << 17), 1 << 17, size=n)
    return np.concatenate([wide, narrow, EDGE_INT32])


def test_quantize_multiplier_matches_python_on_many_values():
    rng = np.random.default_rng(1)
    values = list(np.exp(rng.uniform(math.log(2.0 ** -45), math.log(2.0 ** 30), 20000)))
    values += [2.0 ** e for e in range(-40, 30)]
    values += [2.0 ** e * (1 - 2.0 ** -33) for e in range(-35, 31)]  # rounds q up to 2^31
    # f * 2^31 exactly halfway between two integers: round half away from zero.
    values += [(2 ** 30 + i + 0.5) / 2.0 ** 31 * 2.0 ** e for i in range(0, 40, 3)
               for e in (-20, -1, 0, 5)]
    values += [2.0 ** -32, 2.0 ** -32 * 0.999, 2.0 ** -33, 1e-300, 5e-324,
               2.0 ** 30 * (1 - 2.0 ** -40)]
    rejected = 0
    for value in values:
        assert _outcome(_core.quantize_multiplier, value) == \
            _outcome(fp.quantize_multiplier, value), value
        rejected += _outcome(fp.quantize_multiplier, value) == "ValueError"
    assert rejected == 2  # 2^30 (1 - 2^-33) and 2^30 (1 - 2^-40) round up to 2^30


def _outcome(function, value):
    try:
        return function(float(value))
    except ValueError:
        return "ValueError"


@pytest.mark.parametrize("value", [0.0, -1.0, -1e-30, math.inf, -math.inf, math.nan,
                                   2.0 ** 30, 2.0 ** 31, 1e300])
def test_quantize_multiplier_rejects_what_python_rejects(value):
    with pytest.raises(ValueError):
        fp.quantize_multiplier(value)
    with pytest.raises(ValueError):
        _core.quantize_multiplier(value)


def test_srdhm_matches_python_including_int32_min_squared():
    rng = np.random.default_rng(2)
    a = _random_int32(rng, 20000)
    b = rng.permutation(_random_int32(rng, 20000))
    a = np.concatenate([a, [fp.INT32_MIN, fp.INT32_MIN, fp.INT32_MAX, fp.INT32_MIN, -1]])
    b = np.concatenate([b, [fp.INT32_MIN, fp.INT32_MAX, fp.INT32_MIN, 1, fp.INT32_MIN]])
    np.testing.assert_array_equal(_core.srdhm(a, b),
                                  fp.saturating_rounding_doubling_high_mul(a, b))
    assert _core.srdhm(np.array([fp.INT32_MIN]), np.array([fp.INT32_MIN]))[0] == fp.INT32_MAX


def test_rdbpot_matches_python_for_every_exponent():
    rng = np.random.default_rng(3)
    x = _random_int32(rng, 3000)
    for n in range(32):
        expected = fp.rounding_divide_by_pot(x, n)
        np.testing.assert_array_equal(_core.rdbpot(x, np.full(x.shape, n)), expected)


@pytest.mark.parametrize("shift", list(range(-31, 31)))
def test_mbqm_and_the_kernels_one_rounding_form_match_python(shift):
    """Every shift, huge ones included; edge q values and tie-heavy q = 2^30."""
    rng = np.random.default_rng(100 + shift)
    x = _random_int32(rng, 1500)
    x16 = np.concatenate([np.arange(-32768, 32768, 97), [-32768, -1, 0, 1, 32767]])
    qs = EDGE_Q + [int(q) for q in rng.integers(1 << 30, 1 << 31, size=3)]
    for q in qs:
        expected = fp.multiply_by_quantized_multiplier(x, (q, shift))
        np.testing.assert_array_equal(
            _core.mbqm(x, np.full(x.shape, q), np.full(x.shape, shift)), expected)
        np.testing.assert_array_equal(_core.requantize(x, q, shift), expected)
        np.testing.assert_array_equal(
            _core.requantize(x16, q, shift, int16_input=True),
            fp.multiply_by_quantized_multiplier(x16, (q, shift)))


def test_mbqm_left_shift_saturates():
    big = np.array([fp.INT32_MAX, 1 << 29, -(1 << 29), fp.INT32_MIN])
    got = _core.mbqm(big, np.full(4, 1 << 30), np.full(4, 10))
    np.testing.assert_array_equal(got, fp.multiply_by_quantized_multiplier(big, (1 << 30, 10)))


@pytest.mark.parametrize("name", UPDATES)
def test_activations_match_integer_activations_on_every_int16(name):
    x = np.arange(fp.INT16_MIN, fp.INT16_MAX + 1, dtype=np.int64)
    for pre_max in (0.1, 4.0, 8.0, 40.0, 3000.0, 1e6):  # 1e6: left shifts > 16
        scale = pre_max / fp.INT16_MAX
        table = (integer_activations.make_table(name)
                 if name in integer_activations.TABLE_ACTIVATIONS else None)
        multiplier = integer_activations.activation_multiplier(name, scale)
        expected = integer_activations.apply(name, x, table, multiplier)
        got = _core.activation_int16(core.ACTIVATIONS.index(name), x.astype(np.int16), table,
                                     multiplier or (0, 0))
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", integer_activations.TABLE_ACTIVATIONS)
def test_builtin_tables_equal_make_table(name):
    """rnnpool_tables.inc is current (else: python tflm_kernels/make_tables.py)."""
    np.testing.assert_array_equal(_core.builtin_table(core.ACTIVATIONS.index(name)),
                                  integer_activations.make_table(name))
    assert _core.builtin_table(core.ACTIVATIONS.index("relu")) is None


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("update", UPDATES)
def test_cpp_cell_multipliers_equal_cell_constants(gate, update):
    rng = np.random.default_rng(7)
    for _ in range(20):
        params = make_case(rng, 3, 4, 5, (2, 2), (1, 1), "valid", gate, update)
        for cell, input_scale in ((params.rnn1, params.input_scale),
                                  (params.rnn2, params.rnn1.state_scale)):
            expected = int8_params.cell_constants(cell, input_scale, gate, update)
            got = _core.cell_multipliers(input_scale, cell.kernel_scale, cell.recurrent_scale,
                                         cell.preactivation_scale, cell.state_scale,
                                         core.ACTIVATIONS.index(gate),
                                         core.ACTIVATIONS.index(update))
            for field in ("input_multiplier", "recurrent_multiplier", "update_multiplier",
                          "gate_activation_multiplier", "update_activation_multiplier"):
                want = getattr(expected, field)
                assert got[field] == (tuple(want) if want is not None else (0, 0)), field


# ---------------------------------------------------------------------------
# Whole maps against the oracle.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("update", UPDATES)
def test_every_activation_pair_is_bit_exact(gate, update):
    rng = np.random.default_rng(10 * GATES.index(gate) + UPDATES.index(update))
    for padding in ("valid", "same"):
        params = make_case(rng, 3, 5, 4, (3, 4), (2, 3), padding, gate, update)
        assert_bit_exact(random_input(rng, (2, 8, 10, 3)), params)


def test_random_shapes_strides_padding_scales_are_bit_exact():
    rng = np.random.default_rng(11)
    distinct = set()
    for _ in range(60):
        k, h1, h2 = (int(v) for v in rng.integers(1, 10, size=3))
        params, x = random_geometry_case(rng, k, h1, h2, max_stride=4, max_extra=8)
        got = assert_bit_exact(x, params)
        distinct.update(np.unique(got).tolist())
    assert len(distinct) > 100  # the cases exercise the output range, not a constant


@pytest.mark.parametrize("gate, update", [("sigmoid", "tanh"), ("quantSigm", "quantTanh"),
                                          ("tanh", "relu"), ("quantTanh", "sigmoid")])
def test_saturating_scales_and_extreme_weights(gate, update):
    """Tiny ranges (everything saturates int16 / int8) and huge ones (everything ~0)."""
    rng = np.random.default_rng(5)
    for pre_max, state_max, out_scale in ((1e-3, 1e-3, 1e-5), (1e3, 1e3, 50.0),
                                          (0.01, 100.0, 1e-4), (500.0, 0.01, 1.0)):
        params = make_case(rng, 4, 6, 5, (3, 3), (2, 2), "same", gate, update,
                           weight_scale=3.0, pre_max=pre_max, state_max=state_max,
                           input_scale=0.5, output_scale=out_scale, extreme_weights=True)
        assert_bit_exact(random_input(rng, (1, 7, 7, 4)), params)


def test_both_kernel_paths_are_exercised():
    """The kernel has a fast path (spec arithmetic regrouped, exact within the
    spec's bounds) and a direct transcription of the spec for the rest; the
    bit-exact cases above must reach both, or one of them is untested."""
    rng = np.random.default_rng(12)
    typical = make_case(rng, 8, 8, 8, (6, 6), (4, 4), "valid", "sigmoid", "tanh")
    assert core.int8_fast_path(typical)
    paths = set()
    for pre_max, state_max, out_scale in ((1e-3, 1e-3, 1e-5), (1e3, 1e3, 50.0),
                                          (0.01, 100.0, 1e-4), (500.0, 0.01, 1.0)):
        params = make_case(rng, 4, 6, 5, (3, 3), (2, 2), "same", "sigmoid", "tanh",
                           weight_scale=3.0, pre_max=pre_max, state_max=state_max,
                           input_scale=0.5, output_scale=out_scale, extreme_weights=True)
        paths.add(bool(core.int8_fast_path(params)))
        assert_bit_exact(random_input(rng, (1, 7, 7, 4)), params)
    assert paths == {True, False}


# ---------------------------------------------------------------------------
# SIMD (AVX2, x86-64) stages against the portable C++ and the oracle.
# ---------------------------------------------------------------------------
def _cpu_has_avx2():
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


HAS_AVX2 = _cpu_has_avx2()
SIMD_STAGES = ("rnn1_sweep", "rnn2_sweep", "rnn1_projection", "rnn2_projection")


def assert_simd_portable_oracle_equal(x, params):
    """The plan's SIMD stages, the portable C++ and the oracle: the same bits."""
    expected = int8_reference.rnnpool_int8(x, params)
    simd = core.rnnpool_int8(x, params)
    portable = core.rnnpool_int8(x, params, portable=True)
    np.testing.assert_array_equal(portable, expected)
    np.testing.assert_array_equal(simd, expected)
    return simd


def test_simd_stages_are_chosen_on_this_machine():
    """On an x86-64 CPU with AVX2 the VWW configuration runs every stage in
    AVX2; portable=True (and any other machine) runs none."""
    rng = np.random.default_rng(40)
    for gate, update in (("sigmoid", "tanh"), ("quantSigm", "quantTanh")):
        params = make_case(rng, 8, 8, 8, (6, 6), (4, 4), "valid", gate, update)
        assert core.int8_fast_path(params)
        stages = core.int8_simd_stages(params)
        assert stages == {name: HAS_AVX2 for name in SIMD_STAGES}, stages
        assert core.int8_simd_stages(params, portable=True) == \
            {name: False for name in SIMD_STAGES}
    # A cell whose units are not a multiple of 8 keeps its portable sweep and
    # projection; the other cell still runs AVX2.
    params = make_case(rng, 8, 8, 5, (6, 6), (4, 4), "valid", "sigmoid", "tanh")
    assert core.int8_simd_stages(params) == {
        "rnn1_sweep": HAS_AVX2, "rnn2_sweep": False,
        "rnn1_projection": HAS_AVX2, "rnn2_projection": False}


@pytest.mark.skipif(not HAS_AVX2, reason="needs an x86-64 CPU with AVX2")
def test_simd_and_portable_paths_are_bit_exact_on_random_cases():
    """Random sizes (units multiples of 8 and not, k with and without a tail
    of 8 channels, odd k), activations, scales, zero points, padding; whole
    maps and patches. Every case: SIMD == portable == oracle."""
    rng = np.random.default_rng(41)
    ran = {name: 0 for name in SIMD_STAGES}
    for case in range(48):
        k = int(rng.choice([1, 2, 3, 7, 8, 9, 16, 19]))
        h1 = int(rng.choice([8, 8, 16, 24, 3, 12]))
        h2 = int(rng.choice([8, 8, 16, 24, 5, 10]))
        params, x = random_geometry_case(rng, k, h1, h2, max_stride=3, max_extra=6)
        height, width = x.shape[1:3]
        stages = core.int8_simd_stages(params)
        for name in SIMD_STAGES:
            ran[name] += stages[name]
        assert_simd_portable_oracle_equal(x, params)
        if case % 4 == 0:  # patch entry point, corners partly outside the image
            r, c = params.pool_size
            top, left = int(rng.integers(-r, height)), int(rng.integers(-c, width))
            np.testing.assert_array_equal(
                core.rnnpool_int8_patch(x[0], params, top=top, left=left),
                core.rnnpool_int8_patch(x[0], params, top=top, left=left, portable=True))
    assert all(count >= 10 for count in ran.values()), ran


@pytest.mark.skipif(not HAS_AVX2, reason="needs an x86-64 CPU with AVX2")
@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("update", UPDATES)
def test_simd_path_every_activation_pair_saturating_and_extreme(gate, update):
    """Each activation pair through the AVX2 sweeps at VWW / Face sizes, with
    typical scales and with scales that saturate int16 and int8 (those may
    leave the fast path: then only the projections run AVX2)."""
    rng = np.random.default_rng(42 + 10 * GATES.index(gate) + UPDATES.index(update))
    for h, pre_max, state_max, out_scale in ((8, 8.0, 1.0, 0.05), (16, 8.0, 1.0, 0.05),
                                             (8, 1e-3, 1e-3, 1e-5), (16, 1e3, 1e3, 50.0),
                                             (8, 0.01, 100.0, 1e-4)):
        typical = pre_max == 8.0
        params = make_case(rng, 8, h, h, (4, 5), (2, 3), "same", gate, update,
                           pre_max=pre_max, state_max=state_max, output_scale=out_scale,
                           input_scale=0.02, extreme_weights=not typical)
        if typical:
            assert all(core.int8_simd_stages(params).values())
        assert_simd_portable_oracle_equal(random_input(rng, (1, 9, 8, 8)), params)
        assert_simd_portable_oracle_equal(np.full((1, 9, 8, 8), 127, np.int8), params)
        assert_simd_portable_oracle_equal(np.full((1, 9, 8, 8), -128, np.int8), params)


@pytest.mark.skipif(not HAS_AVX2, reason="needs an x86-64 CPU with AVX2")
def test_simd_path_at_the_largest_sizes():
    """Many blocks per step (h = 64: 8; the fast path's bounds exclude h = 256
    from its sweeps, not from the projections) and k = 1024."""
    rng = np.random.default_rng(43)
    for k, h1, h2, stages in ((3, 64, 64, SIMD_STAGES), (1024, 8, 16, SIMD_STAGES),
                              (3, 8, 256, ("rnn1_projection", "rnn2_projection"))):
        params = make_case(rng, k, h1, h2, (2, 2), (1, 1), "valid", "tanh", "sigmoid",
                           extreme_weights=True, weight_scale=1.0, pre_max=4.0,
                           state_max=2.0, input_scale=0.02)
        ran = core.int8_simd_stages(params)
        assert all(ran[name] for name in stages), ran
        for x in (random_input(rng, (1, 2, 2, k)), np.full((1, 2, 2, k), -128, np.int8)):
            assert_simd_portable_oracle_equal(x, params)


@pytest.mark.parametrize("value", [-128, 127, 0, "zero_point"])
def test_constant_inputs(value):
    rng = np.random.default_rng(6)
    for gate, update in (("sigmoid", "tanh"), ("quantSigm", "relu"), ("quantTanh", "quantSigm")):
        params = make_case(rng, 5, 4, 3, (4, 3), (2, 2), "same", gate, update,
                           input_scale=0.05)
        fill = params.input_zero_point if value == "zero_point" else value
        assert_bit_exact(np.full((1, 9, 8, 5), fill, dtype=np.int8), params)


def test_small_maps_and_windows_larger_than_the_map():
    rng = np.random.default_rng(8)
    params = make_case(rng, 2, 3, 3, (5, 4), (3, 3), "same", "sigmoid", "tanh")
    for shape in ((1, 1, 1, 2), (1, 2, 3, 2), (2, 5, 4, 2)):
        assert_bit_exact(random_input(rng, shape), params)
    valid = make_case(rng, 2, 3, 3, (5, 4), (1, 1), "valid", "sigmoid", "tanh")
    out = core.rnnpool_int8(random_input(rng, (1, 4, 9, 2)), valid)  # no full window fits
    assert out.shape == (1, 0, 6, 12)


@pytest.mark.parametrize("sizes", [
    dict(k=1024, h1=3, h2=2, pool=(2, 2), map=(2, 2)),
    dict(k=3, h1=256, h2=256, pool=(2, 2), map=(2, 2)),
    dict(k=2, h1=2, h2=3, pool=(64, 64), map=(64, 64)),
    dict(k=2, h1=2, h2=2, pool=(64, 1), map=(64, 2)),
], ids=["k1024", "h256", "patch64x64", "patch64x1"])
@pytest.mark.slow
def test_largest_supported_sizes(sizes):
    rng = np.random.default_rng(9)
    for gate, update in (("tanh", "sigmoid"), ("quantSigm", "quantTanh")):
        params = make_case(rng, sizes["k"], sizes["h1"], sizes["h2"], sizes["pool"],
                           (1, 1), "valid", gate, update, extreme_weights=True,
                           weight_scale=1.0, pre_max=4.0, state_max=2.0, input_scale=0.02)
        for x in (random_input(rng, (1,) + sizes["map"] + (sizes["k"],)),
                  np.full((1,) + sizes["map"] + (sizes["k"],), 127, np.int8),
                  np.full((1,) + sizes["map"] + (sizes["k"],), -128, np.int8)):
            assert_bit_exact(x, params)


def test_patch_entry_point_equals_the_whole_map():
    rng = np.random.default_rng(10)
    for padding in ("same", "valid"):
        params = make_case(rng, 3, 4, 5, (4, 3), (3, 2), padding, "sigmoid", "tanh")
        kernel_params = core.int8_kernel_params(params)
        x = random_input(rng, (2, 10, 9, 3))
        whole = core.rnnpool_int8(x, kernel_params)
        pad_top = _pad_before(10, 4, 3, padding)
        pad_left = _pad_before(9, 3, 2, padding)
        for b in range(2):
            for i in range(whole.shape[1]):
                for j in range(whole.shape[2]):
                    got = core.rnnpool_int8_patch(x[b], kernel_params,
                                                  top=i * 3 - pad_top, left=j * 2 - pad_left)
                    np.testing.assert_array_equal(got, whole[b, i, j])


def test_gathered_patch_with_zero_point_padding_equals_the_padded_map():
    """Outside pixels are zp_x: padding a patch by hand gives the same summary."""
    rng = np.random.default_rng(12)
    params = make_case(rng, 3, 4, 4, (5, 5), (1, 1), "valid", "tanh", "sigmoid")
    image = random_input(rng, (3, 4, 3))
    padded = np.full((5, 5, 3), params.input_zero_point, np.int8)
    padded[1:4, 2:, :] = image[:, :3, :]
    np.testing.assert_array_equal(core.rnnpool_int8_patch(image, params, top=-1, left=-2),
                                  core.rnnpool_int8_patch(padded, params))
    np.testing.assert_array_equal(core.rnnpool_int8_patch(padded, params),
                                  int8_reference.rnnpool_int8(padded[None], params)[0, 0, 0])


INT32_CORNERS = [(fp.INT32_MAX, 0), (fp.INT32_MIN, 0), (0, fp.INT32_MAX), (0, fp.INT32_MIN),
                 (fp.INT32_MAX, fp.INT32_MIN), (fp.INT32_MAX - 2, fp.INT32_MAX - 1)]


@pytest.mark.parametrize("top,left", INT32_CORNERS)
def test_patch_corner_at_the_ends_of_int32_is_all_padding(top, left):
    """A corner anywhere in int32 is safe (no overflow of top + row): a patch
    wholly outside the image summarises zp_x padding only."""
    rng = np.random.default_rng(13)
    params = make_case(rng, 3, 4, 4, (3, 3), (1, 1), "valid", "sigmoid", "tanh")
    image = random_input(rng, (4, 5, 3))
    padding_only = np.full((1, 3, 3, 3), params.input_zero_point, np.int8)
    np.testing.assert_array_equal(core.rnnpool_int8_patch(image, params, top=top, left=left),
                                  int8_reference.rnnpool_int8(padding_only, params)[0, 0, 0])


@pytest.mark.parametrize("argument,value,error", [
    ("top", 1 << 31, ValueError), ("left", -(1 << 31) - 1, ValueError),
    ("top", 1.5, TypeError), ("left", "0", TypeError)])
def test_patch_corner_outside_int32_is_refused(argument, value, error):
    rng = np.random.default_rng(14)
    params = make_case(rng, 3, 4, 4, (3, 3), (1, 1), "valid", "sigmoid", "tanh")
    with pytest.raises(error, match=argument):
        core.rnnpool_int8_patch(random_input(rng, (4, 5, 3)), params, **{argument: value})


@pytest.mark.parametrize("multiplier", [(1 << 30, 31), (1 << 30, -32), (1 << 30, 1000),
                                        (5, 0), (-(1 << 30), 0), ((1 << 30) - 1, 3)])
@pytest.mark.parametrize("name", ["sigmoid", "quantSigm", "quantTanh"])
def test_activation_refuses_a_multiplier_out_of_spec(name, multiplier):
    """Spec 2.1 multipliers only: q in {0} or [2^30, 2^31), shift in [-31, 30]
    (a shift of 1000 used to reach a shift by more than the width)."""
    table = (integer_activations.make_table(name)
             if name in integer_activations.TABLE_ACTIVATIONS else None)
    with pytest.raises(ValueError, match="multiplier"):
        _core.activation_int16(core.ACTIVATIONS.index(name), np.arange(-4, 4, dtype=np.int16),
                               table, multiplier)


def test_activation_refuses_a_missing_table_and_an_unknown_code():
    x = np.arange(-4, 4, dtype=np.int16)
    with pytest.raises(ValueError, match="table"):
        _core.activation_int16(core.ACTIVATIONS.index("tanh"), x, None, (1 << 30, 0))
    with pytest.raises(ValueError, match="activation"):
        _core.activation_int16(len(core.ACTIVATIONS), x, None, (1 << 30, 0))
    # relu needs neither a table nor a multiplier.
    np.testing.assert_array_equal(
        _core.activation_int16(core.ACTIVATIONS.index("relu"), x, None, (7, 99)),
        np.maximum(x, 0))


def _pad_before(n, window, stride, padding):
    if padding == "valid":
        return 0
    out = -(-n // stride)
    return max((out - 1) * stride + window - n, 0) // 2


# ---------------------------------------------------------------------------
# Scratch, validation.
# ---------------------------------------------------------------------------
def test_scratch_bytes_follow_the_documented_layout():
    def up16(n):
        return (n + 15) // 16 * 16

    rng = np.random.default_rng(13)
    for (k, h1, h2, r, c) in ((8, 8, 8, 6, 6), (4, 16, 16, 8, 8), (1, 3, 5, 2, 7),
                              (1024, 256, 256, 64, 64)):
        params = make_case(rng, k, h1, h2, (r, c), (1, 1), "valid", "sigmoid", "tanh")
        expected = (up16(4 * r * c * h1) + up16(4 * max(r, c) * h2) + up16(4 * max(h1, h2))
                    + up16(2 * (r + c) * h1) + up16(2 * h2))
        assert core.scratch_bytes_int8(params) == expected
    vww = make_case(rng, 8, 8, 8, (6, 6), (4, 4), "valid", "sigmoid", "tanh")
    assert core.scratch_bytes_int8(vww) == 1584


def _valid_kernel_dict(rng):
    return core.int8_kernel_params(
        make_case(rng, 3, 4, 5, (2, 3), (1, 1), "valid", "sigmoid", "tanh"))


@pytest.mark.parametrize("change, message", [
    (lambda d: None, None),  # unchanged: valid
    (lambda d: d.update(pool_size=(65, 2)), "pool"),
    (lambda d: d.update(pool_size=(0, 2)), "pool"),
    (lambda d: d.update(strides=(1, 0)), "strides"),
    (lambda d: d.update(padding=2), "padding"),
    (lambda d: d.update(gate_activation=core.ACTIVATIONS.index("relu")), "relu"),
    (lambda d: d.update(update_activation=7), "activation"),
    (lambda d: d["rnn1"].update(zeta_q14=16385), "zeta"),
    (lambda d: d["rnn2"].update(nu_q14=-1), "zeta"),
    (lambda d: d.update(input_zero_point=128), "zero point"),
    (lambda d: d.update(output_zero_point=-129), "zero point"),
    (lambda d: d["rnn1"].update(recurrent_multiplier=(5, 0)), "multiplier"),
    (lambda d: d["rnn2"].update(update_multiplier=(1 << 30, 31)), "multiplier"),
    (lambda d: d["rnn2"].update(gate_activation_multiplier=(-(1 << 30), 0)), "multiplier"),
    (lambda d: d.update(output_multiplier=(1 << 30, -32)), "multiplier"),
    (lambda d: d["rnn1"].update(gate_table=None), "null"),
])
def test_validate_rejects_out_of_spec_parameters(change, message):
    d = _valid_kernel_dict(np.random.default_rng(14))
    change(d)
    code, text = core.validate_int8(d)
    if message is None:
        assert (code, text) == (0, "ok")
        return
    assert code != 0 and message in text
    with pytest.raises(ValueError, match=message):
        core.rnnpool_int8(np.zeros((1, 4, 4, 3), np.int8), d)


@pytest.mark.parametrize("k, h1, h2, message", [
    (1025, 4, 4, "input channels"), (3, 257, 4, "units"), (3, 4, 257, "units"),
])
def test_validate_rejects_sizes_beyond_section_5(k, h1, h2, message):
    d = _valid_kernel_dict(np.random.default_rng(15))
    d["rnn1"]["kernel"] = np.zeros((k, h1), np.int8)
    d["rnn2"]["kernel"] = np.zeros((h1, h2), np.int8)
    code, text = core.validate_int8(d)
    assert code != 0 and message in text


def test_wrapper_rejects_non_int8_input():
    params = make_case(np.random.default_rng(16), 3, 4, 5, (2, 2), (1, 1), "valid",
                       "sigmoid", "tanh")
    with pytest.raises(ValueError, match="int8"):
        core.rnnpool_int8(np.zeros((1, 4, 4, 3), np.float32), params)
    with pytest.raises(ValueError, match="channels"):
        core.rnnpool_int8(np.zeros((1, 4, 4, 2), np.int8), params)
