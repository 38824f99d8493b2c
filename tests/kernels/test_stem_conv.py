"""The fused stem convolution + RNNPool (contract version 2) in the C++ core
against the NumPy references: the convolution bit for bit with
rnnpool_keras.spec.stem_conv (TFLite's int8 CONV_2D, checked by hand here and
against TFLM's own CONV_2D in tests/converters/test_stem_fusion.py), the fused
op bit for bit with RNNPool run on the convolution's whole map.
"""
import math

import numpy as np
import pytest

from rnnpool_keras.spec import float_reference, int8_reference, stem_conv
from rnnpool_keras.spec.random_params import random_float_params
from test_kernel_core_int8 import HAS_AVX2, make_case, random_input
from tflm_kernels import core


def random_stem(rng, k, channels, kernel, strides, padding, activation, per_channel=True):
    log_uniform = lambda lo, hi: float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return {
        "filter": rng.integers(-127, 128, size=(k, *kernel, channels)).astype(np.int8),
        "bias": rng.integers(-3000, 3000, size=k).astype(np.int32),
        "strides": strides, "padding": padding, "activation": activation,
        "input_scale": log_uniform(1e-3, 0.1),
        "input_zero_point": int(rng.integers(-128, 128)),
        "filter_scales": ([log_uniform(1e-3, 0.05) for _ in range(k)] if per_channel
                          else log_uniform(1e-3, 0.05)),
        "output_scale": log_uniform(0.01, 0.5),
        "output_zero_point": int(rng.integers(-128, 128)),
    }


def test_int8_conv_by_hand():
    # One 1x1 filter of weight 2 over a 1x3 image, zp_x = 1, bias 4, scales
    # s_x = 0.5, s_w = 0.25, s_y = 0.25: M = 0.5, acc = 2 (x - 1) + 4,
    # y = round_half_away(acc / 2) + zp_y (zp_y = -3), relu6 clamps to
    # [zp_y, zp_y + round(6 / 0.25)] = [-3, 21].
    stem = {"filter": np.array([[[[2]]]], np.int8), "bias": np.array([4], np.int32),
            "strides": 1, "padding": "valid", "activation": "relu6", "input_scale": 0.5,
            "input_zero_point": 1, "filter_scales": [0.25], "output_scale": 0.25,
            "output_zero_point": -3}
    x = np.array([[[[-6], [1], [40]]]], np.int8)
    # acc: 2 * -7 + 4 = -10 -> -5 - 3 = -8 -> clamp -3; 4 -> 2 - 3 = -1;
    # 2 * 39 + 4 = 82 -> 41 - 3 = 38 -> clamp 21.
    expected = np.array([[[[-3], [-1], [21]]]], np.int8)
    np.testing.assert_array_equal(stem_conv.conv_int8_of(x, stem), expected)


def test_activation_range_int8_by_hand():
    # relu6 with scale 0.1, zp -128: [-128, -128 + 60]; relu: [zp, 127]; none: full.
    assert stem_conv.activation_range_int8("relu6", 0.1, -128) == (-128, -68)
    assert stem_conv.activation_range_int8("relu", 0.1, 5) == (5, 127)
    assert stem_conv.activation_range_int8("none", 0.1, 5) == (-128, 127)
    # relu_n1_to_1 with scale 0.5, zp 0: [-2, 2].
    assert stem_conv.activation_range_int8("relu_n1_to_1", 0.5, 0) == (-2, 2)


def test_same_padding_puts_the_odd_row_after():
    # TFLite's rule: 224 -> 112 with a 3x3 stride-2 window pads 0 before, 1 after.
    assert stem_conv.padding_before(224, 3, 2, "same") == 0
    assert stem_conv.output_size(224, 3, 2, "same") == 112
    assert stem_conv.padding_before(7, 3, 1, "same") == 1


# k: output channels (the AVX2 form runs them 8 per register: 5 and 13 leave
# a partial block); channels: the image's (odd tap counts leave a pad tap).
@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("kernel,strides,padding,activation,per_channel,k,channels", [
    ((3, 3), (2, 2), "same", "relu6", True, 8, 3),
    ((3, 3), (2, 2), "valid", "relu", True, 13, 3),
    ((1, 1), (1, 1), "valid", "none", False, 5, 3),
    ((5, 3), (1, 2), "same", "relu_n1_to_1", True, 16, 4),
    ((2, 2), (3, 1), "same", "relu6", False, 5, 1),
    ((3, 3), (1, 1), "same", "none", True, 8, 8),
])
def test_int8_conv_matches_numpy(kernel, strides, padding, activation, per_channel, k,
                                 channels, portable):
    rng = np.random.default_rng(sum(kernel) * 101 + sum(strides) * 11 + k + channels)
    stem = random_stem(rng, k, channels, kernel, strides, padding, activation, per_channel)
    params = make_case(rng, k, 4, 3, (2, 2), (2, 2), "valid", "sigmoid", "tanh")
    x = random_input(rng, (2, 11, 9, channels))
    got = core.stem_rnnpool_int8(x, params, stem, portable=portable, conv_only=True)
    np.testing.assert_array_equal(got, stem_conv.conv_int8_of(x, stem))


@pytest.mark.skipif(not HAS_AVX2, reason="needs an x86-64 CPU with AVX2")
def test_int8_conv_keeps_the_portable_row_where_the_avx2_form_does_not_apply():
    """The AVX2 form takes |acc + bias| against each channel's multiplier
    bound: a bias near 2^31 (the sum could saturate) keeps the portable row;
    both give NumPy's bytes (the extreme bias saturates the same way)."""
    rng = np.random.default_rng(5)
    stem = random_stem(rng, 8, 3, (3, 3), (2, 2), "same", "none")
    params = make_case(rng, 8, 4, 3, (2, 2), (2, 2), "valid", "sigmoid", "tanh")
    x = random_input(rng, (1, 9, 9, 3))
    assert core.stem_int8_simd(x, params, stem)
    stem["bias"] = stem["bias"].copy()
    stem["bias"][3] = 2**31 - 1000
    assert not core.stem_int8_simd(x, params, stem)
    expected = stem_conv.conv_int8_of(x, stem)
    np.testing.assert_array_equal(core.stem_rnnpool_int8(x, params, stem, conv_only=True),
                                  expected)


# (pool, strides, padding) of RNNPool after the convolution: overlapping rows
# (stride < pool, kept in the band), stride == pool, gaps (stride > pool), same.
GEOMETRIES = [((6, 6), (4, 4), "valid"), ((3, 2), (3, 2), "valid"),
              ((2, 3), (3, 2), "valid"), ((4, 4), (2, 3), "same"), ((1, 1), (1, 1), "same")]


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("pool,strides,padding", GEOMETRIES)
def test_fused_int8_is_rnnpool_of_the_conv_map(pool, strides, padding, portable):
    rng = np.random.default_rng(sum(pool) * 31 + sum(strides) * 7 + len(padding))
    k = 8
    stem = random_stem(rng, k, 3, (3, 3), (2, 2), "same", "relu6")
    params = make_case(rng, k, 8, 8, pool, strides, padding, "sigmoid", "tanh",
                       input_scale=stem["output_scale"],
                       input_zero_point=stem["output_zero_point"])
    x = random_input(rng, (2, 29, 23, 3))
    expected = int8_reference.rnnpool_int8(stem_conv.conv_int8_of(x, stem), params)
    got = core.stem_rnnpool_int8(x, params, stem, portable=portable)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("pool,strides,padding", GEOMETRIES)
def test_fused_float_matches_the_reference(pool, strides, padding):
    rng = np.random.default_rng(sum(pool) * 13 + sum(strides))
    k, channels = 4, 2
    params = random_float_params(rng, k, 5, 3)
    stem = {"filter": rng.normal(0, 0.5, (k, 3, 3, channels)), "bias": rng.normal(0, 0.5, k),
            "strides": (2, 1), "padding": "same", "activation": "relu"}
    x = rng.normal(0, 1, (2, 17, 13, channels))
    conv = stem_conv.conv_float(x, stem["filter"], stem["bias"], (2, 1), "same", "relu")
    np.testing.assert_allclose(core.stem_rnnpool_float(x, params, stem, (1, 1), conv_only=True),
                               conv, atol=1e-5)
    expected = float_reference.rnnpool_reference(conv, params, pool, strides, padding)
    got = core.stem_rnnpool_float(x, params, stem, pool, strides, padding)
    np.testing.assert_allclose(got, expected, atol=1e-5)
