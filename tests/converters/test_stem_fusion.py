"""The fused stem convolution (contract version 2) through the converter.

The same Keras model converted with and without `fuse_stem`: the fused file
has one op where the unfused has CONV_2D -> RNNPool, and gives the same
outputs (int8 bit for bit: the unfused CONV_2D runs on TFLM's own reference
kernel in run_tflite, so this checks the fused convolution against TFLM's);
the memory report sees the convolution's map gone.
"""
import functools

import numpy as np
import pytest
import tf_keras

import rnnpool_keras
from converters import convert, memory_report, run_tflite
from converters.tflite_io import tflite_model
from converters.tflite_io.rnnpool_params import int8_params_of_op, stem_of_op
from model_cases import randomize_rnnpool_weights
from rnnpool_keras import RNNPool2D
from rnnpool_keras.spec import contract, int8_reference, stem_conv

pytestmark = pytest.mark.slow  # converts models


def _stem_model(input_shape=(33, 29, 3), conv=None, activation="relu6", pool=6, stride=4,
                padding="valid", second_reader=False, seed=0):
    """Input -> Conv2D -> BatchNorm -> activation -> RNNPool2D (the output)."""
    rng = np.random.default_rng(seed)
    inputs = tf_keras.Input(input_shape)
    conv_args = dict(filters=8, kernel_size=3, strides=2, padding="same", use_bias=False)
    conv_args.update(conv or {})
    x = tf_keras.layers.Conv2D(**conv_args)(inputs)
    bn = tf_keras.layers.BatchNormalization()
    x = bn(x)
    if activation == "relu6":
        x = tf_keras.layers.ReLU(6.0)(x)
    elif activation == "relu":
        x = tf_keras.layers.ReLU()(x)
    pooled = RNNPool2D(rnn1_units=8, rnn2_units=4, pool_size=pool, strides=stride,
                       padding=padding, name="rnnpool")(x)
    outputs = [pooled, tf_keras.layers.GlobalAveragePooling2D()(x)] if second_reader else pooled
    model = tf_keras.Model(inputs, outputs)
    # A trained BatchNorm: the folded filter and bias are not the raw ones.
    gamma, beta, mean, var = (w.numpy() for w in bn.weights)
    bn.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.5, beta.shape),
                    rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return randomize_rnnpool_weights(model, seed)


def _images(shape, count=4, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (count,) + shape).astype(np.float32)


def _pair(model, quantize=None):
    return convert(model, quantize=quantize), convert(model, quantize=quantize, fuse_stem=False)


@functools.lru_cache(maxsize=None)
def _int8_pair(case):
    """(model, fused int8 file, unfused int8 file) of CASES[case], calibrated on 8
    images; converted once per process, as several tests read the same files.
    Both files come from one calibrated QAT model (what convert does with
    representative data, done once for the two)."""
    model = _stem_model(**CASES[case])
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model),
                                  _images(model.input_shape[1:], 8))
    return (model, *_pair(qat, "int8"))


CASES = {
    "same_relu6": {},
    "valid_relu_stride1": dict(conv=dict(padding="valid", strides=1, kernel_size=(3, 2)),
                               activation="relu", pool=(4, 3), stride=(3, 2)),
    "no_activation_same_pool": dict(activation=None, pool=3, stride=2, padding="same"),
    "overlap_gap": dict(pool=(2, 4), stride=(3, 2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_fused_equals_unfused_bit_for_bit(case):
    model, fused, unfused = _int8_pair(case)
    assert tflite_model.op_names(unfused) == ["CONV_2D", "RNNPool"]
    assert tflite_model.op_names(fused) == ["RNNPool"]
    op = tflite_model.load(fused).subgraphs[0].operators[0]
    assert len(op.inputs) == contract.NUM_FUSED_STEM_INPUTS
    assert contract.decode(op.customOptions)["version"] == contract.FUSED_STEM_VERSION
    x = _images(model.input_shape[1:], 3, seed=7)
    np.testing.assert_array_equal(run_tflite(fused, x), run_tflite(unfused, x))


def test_int8_fused_op_equals_the_numpy_reference():
    """The file's own numbers through the NumPy oracles: the convolution of
    rnnpool_keras.spec.stem_conv, then the integer RNNPool reference."""
    model, fused, _ = _int8_pair("same_relu6")  # the default _stem_model()
    parsed = tflite_model.load(fused)
    subgraph = parsed.subgraphs[0]
    op = subgraph.operators[0]
    options = contract.decode(op.customOptions)
    stem = stem_of_op(parsed, subgraph, op, options)
    params = int8_params_of_op(fused)
    image = subgraph.tensors[op.inputs[0]]
    scale, zero_point = tflite_model.quantization_of(image)
    x = _images(model.input_shape[1:], 2, seed=3)
    x_q = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
    expected = int8_reference.rnnpool_int8(stem_conv.conv_int8_of(x_q, stem), params)
    out_scale, out_zero_point = params.output_scale, params.output_zero_point
    # run_tflite quantises its float input and dequantises the output.
    dequantized = run_tflite(fused, (x_q.astype(np.float32) - zero_point) * scale)[0]
    got = np.round(dequantized / out_scale + out_zero_point)
    np.testing.assert_array_equal(got, expected)


def test_float_fused_equals_unfused():
    model = _stem_model(**CASES["valid_relu_stride1"])
    fused, unfused = _pair(model)
    assert tflite_model.op_names(fused) == ["RNNPool"]
    x = _images(model.input_shape[1:], 3)
    np.testing.assert_allclose(run_tflite(fused, x), run_tflite(unfused, x), atol=1e-5)
    np.testing.assert_allclose(run_tflite(fused, x)[0], model.predict(x, verbose=0), atol=1e-4)


def test_not_fused_where_the_map_has_another_reader():
    model = _stem_model(second_reader=True)
    data = _images(model.input_shape[1:], 8)
    assert tflite_model.op_names(convert(model, quantize="int8", representative_data=data)) \
        .count("CONV_2D") == 1


def test_not_fused_with_dilation():
    model = _stem_model(conv=dict(dilation_rate=2, strides=1))
    assert tflite_model.op_names(convert(model))[:2] == ["CONV_2D", "RNNPool"]


def test_memory_report_of_the_fused_op():
    # 33x29x3 int8 image (2,871 B) -> 17x15x8 map (2,040 B) -> 3x3x16 output
    # (144 B). Fused: the map is gone; the scratch gains pool_h rows of it,
    # 6 * 15 * 8 = 720 B (a multiple of 16), and one 3x3x3 window as int16,
    # 27 taps rounded up to 28 * 2 = 56 B, 64 B aligned. MAdds keep the
    # convolution's 17 * 15 * 8 * 27 = 55,080.
    _, fused, unfused = _int8_pair("same_relu6")  # the default _stem_model()
    f, u = memory_report(fused), memory_report(unfused)
    assert [row["live_bytes"] for row in u["operators"]] == [2871 + 2040, 2040 + 144]
    assert f["operators"][0]["live_bytes"] == 2871 + 144
    assert f["operators"][0]["scratch_bytes"] == u["operators"][1]["scratch_bytes"] + 720 + 64
    assert u["operators"][0]["madds"] == 55_080
    assert f["total_madds"] == u["total_madds"]


def test_fuse_stem_argument_is_checked():
    model = _stem_model()
    with pytest.raises(TypeError, match="fuse_stem"):
        convert(model, fuse_stem="yes")
    with pytest.raises(ValueError, match="fuse_stem"):
        convert(model, lowering="builtin", fuse_stem=True)
