"""converters.convert and run_tflite: the model a user flashes, checked on the host.

Float: the converted model, run by TFLM's builtin kernels plus our RNNPool
kernel core, equals Keras within 1e-5. int8: the RNNPool op's output equals
the NumPy integer reference bit for bit, and the whole integer model agrees
with its QAT model.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import rnnpool_keras
from converters import convert, run_tflite
from converters.tflite_io import schema
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract
from converters.tflite_io.rnnpool_params import int8_params_of_op
from model_cases import (TWO_RNNPOOL_SIZE, calibrated_int8_agreement,
                         randomize_rnnpool_weights, two_rnnpool_model)
from rnnpool_keras import RNNPool2D
from rnnpool_keras.quantization import layer_int8_params
from rnnpool_keras.spec import int8_reference

# Trains, converts or compiles: deselected by -m "not slow".
pytestmark = pytest.mark.slow


def _rnnpool_model(input_shape, seed=0, **layer_args):
    inputs = tf_keras.Input(input_shape)
    outputs = RNNPool2D(name="rnnpool", **layer_args)(inputs)
    return randomize_rnnpool_weights(tf_keras.Model(inputs, outputs), seed)


def _stem_rnnpool_head_model(data_format="channels_last"):
    return two_rnnpool_model(TWO_RNNPOOL_SIZE, data_format)


def _inputs(shape, count=3, seed=1):
    return np.random.default_rng(seed).normal(size=(count,) + shape).astype(np.float32)


def _types(model_bytes):
    """[(op name, [input types], [output types])] of the main subgraph."""
    model = tflite_model.load(model_bytes)
    subgraph = model.subgraphs[0]
    return [(tflite_model.op_name(model, op),
             [subgraph.tensors[t].type for t in op.inputs if t >= 0],
             [subgraph.tensors[t].type for t in op.outputs])
            for op in subgraph.operators]


# -- float ----------------------------------------------------------------------

@pytest.mark.parametrize("layer_args", [
    dict(rnn1_units=4, rnn2_units=3, pool_size=4, strides=2),
    dict(rnn1_units=5, rnn2_units=2, pool_size=(3, 2), strides=(2, 3), padding="same"),
    dict(rnn1_units=3, rnn2_units=4, pool_size=3, gate_activation="quantSigm",
         update_activation="quantTanh"),
    dict(rnn1_units=4, rnn2_units=3, pool_size=4, strides=3, gate_activation="tanh",
         update_activation="relu", rnn1_kernel_rank=2, rnn2_recurrent_rank=2),
], ids=["valid", "same-nonsquare", "quant-activations", "low-rank"])
def test_float_rnnpool_op_matches_keras(layer_args):
    model = _rnnpool_model((12, 11, 3), **layer_args)
    model_bytes = convert(model)
    assert tflite_model.op_names(model_bytes) == ["RNNPool"]
    x = _inputs((12, 11, 3))
    np.testing.assert_allclose(run_tflite(model_bytes, x)[0], model(x), atol=1e-5)


def test_float_options_and_weights_are_the_contract():
    model = _rnnpool_model((9, 9, 2), rnn1_units=3, rnn2_units=2, pool_size=3,
                           strides=2, padding="same", gate_activation="quantSigm",
                           rnn1_kernel_rank=2)
    layer = model.get_layer("rnnpool")
    tflite = tflite_model.load(convert(model))
    subgraph = tflite.subgraphs[0]
    (op,) = subgraph.operators
    assert flexbuffers_dict(op.customOptions) == {
        "version": 1, "pool_h": 3, "pool_w": 3, "stride_h": 2, "stride_w": 2,
        "padding": 1, "gate_activation": 3, "update_activation": 1,
        "rnn1_zeta": pytest.approx(float(layer.rnn1_zeta.numpy()), abs=0),
        "rnn1_nu": pytest.approx(float(layer.rnn1_nu.numpy()), abs=0),
        "rnn2_zeta": pytest.approx(float(layer.rnn2_zeta.numpy()), abs=0),
        "rnn2_nu": pytest.approx(float(layer.rnn2_nu.numpy()), abs=0)}
    values = [tflite_model.constant_value(tflite, subgraph.tensors[t]) for t in op.inputs[1:]]
    expected = [layer.rnn1_kernel_left.numpy() @ layer.rnn1_kernel_right.numpy(),
                layer.rnn1_recurrent_kernel, layer.rnn1_gate_bias, layer.rnn1_update_bias,
                layer.rnn2_kernel, layer.rnn2_recurrent_kernel, layer.rnn2_gate_bias,
                layer.rnn2_update_bias]
    for got, want in zip(values, expected):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-7)
    assert [int(n) for n in subgraph.tensors[op.outputs[0]].shape] == [1, 5, 5, 8]


def flexbuffers_dict(custom_options):
    from flatbuffers import flexbuffers
    return flexbuffers.Loads(bytes(custom_options))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_float_model_with_two_rnnpool_layers_matches_keras(data_format, two_rnnpool_files):
    if data_format == "channels_last":
        model, model_bytes = two_rnnpool_files.model, two_rnnpool_files["float"]
    else:
        model = _stem_rnnpool_head_model(data_format)
        model_bytes = convert(model)
    names = tflite_model.op_names(model_bytes)
    assert names.count("RNNPool") == 2
    assert not [n for n in names if n.startswith("Flex") or n == "CUSTOM"]
    x = _inputs((20, 20, 3), count=4)
    np.testing.assert_allclose(run_tflite(model_bytes, x)[0], model(x), atol=1e-5)


def test_a_composite_the_converter_did_not_fuse_is_an_error_not_zeros(monkeypatch):
    # The composite's body only gives the op's output shape (zeros): were the
    # converter to inline it instead of making the custom op, the file would
    # compute zeros. Without the fusion flag, it inlines.
    from converters.conversion import composite

    monkeypatch.setattr(composite, "fusable_op_attributes",
                        lambda index: f'name: "{contract.CUSTOM_CODE}"')
    model = _rnnpool_model((12, 11, 3), rnn1_units=4, rnn2_units=3, pool_size=4, strides=2)
    with pytest.raises(RuntimeError, match="made 0 RNNPool ops of 1 RNNPool2D layers"):
        convert(model)


def test_model_without_rnnpool_converts_like_the_stock_converter():
    inputs = tf_keras.Input((8, 8, 2))
    x = tf_keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3)(x))
    ours = convert(model)
    stock = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert tflite_model.op_names(ours) == tflite_model.op_names(stock)
    x = _inputs((8, 8, 2))
    interpreter = tf.lite.Interpreter(model_content=stock)
    interpreter.allocate_tensors()
    expected = []
    for sample in x:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample[None])
        interpreter.invoke()
        expected.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_allclose(run_tflite(ours, x)[0], np.concatenate(expected), atol=1e-6)


def test_several_inputs_and_outputs_keep_the_keras_order():
    # Two inputs of different shapes, two outputs of different shapes, and a
    # Reshape((-1, C)) that must not depend on a dynamic batch.
    image = tf_keras.Input((8, 8, 2), name="image")
    extra = tf_keras.Input((3,), name="a_side_input")  # sorts before "image"
    pooled = RNNPool2D(3, 2, pool_size=4, strides=4, name="rnnpool")(image)
    boxes = tf_keras.layers.Reshape((-1, 4))(
        tf_keras.layers.Conv2D(4, 1, name="z_boxes")(pooled))
    logits = tf_keras.layers.Dense(5, name="a_logits")(tf_keras.layers.Concatenate()(
        [tf_keras.layers.Flatten()(pooled), extra]))
    model = randomize_rnnpool_weights(tf_keras.Model([image, extra], [boxes, logits]))
    model_bytes = convert(model)
    x, side = _inputs((8, 8, 2)), _inputs((3,), seed=2)
    got = run_tflite(model_bytes, x, side)
    want = model([x, side])
    assert [g.shape for g in got] == [(3, 4, 4), (3, 5)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_every_buffer_is_16_byte_aligned(two_rnnpool_files):
    model_bytes = two_rnnpool_files["float"]
    model = schema.Model.GetRootAs(model_bytes, 0)
    base = np.frombuffer(model_bytes, np.uint8).__array_interface__["data"][0]
    offsets = []
    for i in range(model.BuffersLength()):
        data = model.Buffers(i).DataAsNumpy()
        if isinstance(data, np.ndarray) and data.size:
            offsets.append(data.__array_interface__["data"][0] - base)
    assert offsets and all(offset % 16 == 0 for offset in offsets), offsets


# -- int8 -----------------------------------------------------------------------

def _qat_of(model, data):
    qat = rnnpool_keras.quantize_model(model)
    return rnnpool_keras.calibrate(qat, data)


@pytest.mark.parametrize("layer_args", [
    dict(rnn1_units=4, rnn2_units=3, pool_size=4, strides=2),
    dict(rnn1_units=5, rnn2_units=2, pool_size=(3, 2), strides=(2, 3), padding="same",
         gate_activation="quantSigm", update_activation="quantTanh"),
], ids=["sigmoid-tanh-valid", "quant-same"])
def test_int8_rnnpool_op_is_bit_exact_with_the_integer_reference(layer_args):
    x = _inputs((12, 11, 3), count=6)
    qat = _qat_of(_rnnpool_model((12, 11, 3), **layer_args), x)
    model_bytes = convert(qat, quantize="int8")
    assert tflite_model.op_names(model_bytes) == ["RNNPool"]

    params = int8_params_of_op(model_bytes)
    # What the file holds is what the layer's ranges and weights say.
    wrapper = qat.get_layer("quant_rnnpool")
    expected = layer_int8_params.int8_params_of_layer(
        wrapper.layer, params.input_scale, params.input_zero_point,
        params.output_scale, params.output_zero_point)
    for cell, want in ((params.rnn1, expected.rnn1), (params.rnn2, expected.rnn2)):
        np.testing.assert_array_equal(cell.kernel, want.kernel)
        np.testing.assert_array_equal(cell.gate_bias, want.gate_bias)
        assert cell.state_scale == want.state_scale
        assert cell.zeta_q14 == want.zeta_q14
    assert (params.output_scale, params.output_zero_point) == pytest.approx(
        layer_int8_params.asymmetric_int8(*layer_int8_params.output_range(wrapper)), rel=1e-6)

    x_q = np.clip(np.round(x / params.input_scale) + params.input_zero_point,
                  -128, 127).astype(np.int8)
    y_lsb = np.round(run_tflite(model_bytes, x)[0] / params.output_scale) \
        + params.output_zero_point
    np.testing.assert_array_equal(y_lsb, int8_reference.rnnpool_int8(x_q, params))


def test_int8_model_is_integer_only_around_rnnpool():
    x = _inputs((20, 20, 3), count=8)
    model_bytes = convert(_qat_of(_stem_rnnpool_head_model(), x), quantize="int8")
    int8, int32 = schema.TensorType.INT8, schema.TensorType.INT32
    ops = _types(model_bytes)
    names = [name for name, _, _ in ops]
    assert "QUANTIZE" not in names and "DEQUANTIZE" not in names, names
    rnnpools = [op for op in ops if op[0] == "RNNPool"]
    assert len(rnnpools) == 2
    # Both take in the convolution that feeds them (the fused form: its filter
    # and bias follow the nine inputs of the plain op).
    assert [len(inputs) for _, inputs, _ in rnnpools] == [11, 11]
    for _, inputs, outputs in rnnpools:
        assert inputs[:9] == [int8, int8, int8, int32, int32, int8, int8, int32, int32]
        assert inputs[9:] in ([], [int8, int32])
        assert outputs == [int8]
    for name, inputs, outputs in ops:
        assert schema.TensorType.FLOAT32 not in inputs + outputs, name
    # No operator code left over from the removed QUANTIZE / DEQUANTIZE ops.
    assert len(tflite_model.load(model_bytes).operatorCodes) == len(set(names))
    options = contract.decode(tflite_model.load(model_bytes).subgraphs[0].operators[
        names.index("RNNPool")].customOptions)
    assert not {"rnn1_zeta", "rnn1_nu", "layer_index"} & set(options)
    assert {"rnn1_zeta_q14", "rnn2_state_scale"} <= set(options)


def test_int8_channels_first_model_keeps_the_transposes_integer():
    x = _inputs((20, 20, 3), count=8)
    qat = _qat_of(_stem_rnnpool_head_model("channels_first"), x)
    model_bytes = convert(qat, quantize="int8")
    names = tflite_model.op_names(model_bytes)
    assert names.count("RNNPool") == 2 and "DEQUANTIZE" not in names
    float_out = np.asarray(qat(x))
    int8_out = run_tflite(model_bytes, x)[0]
    # Same outputs up to int8 rounding along the way: a few output LSBs.
    scale = np.ptp(float_out) / 255
    assert np.max(np.abs(int8_out - float_out)) <= 6 * scale


@pytest.fixture(scope="module")
def trained_demo(trained_tiny_cnn, qat_tiny_cnn):
    """The demo CNN trained on the synthetic task, its QAT copy, and test data."""
    model, data, _ = trained_tiny_cnn
    qat, _ = qat_tiny_cnn
    return model, qat, data.x_test, data.y_test


def test_int8_model_agrees_with_its_qat_model(trained_demo):
    _, qat, x_test, y_test = trained_demo
    int8_logits = run_tflite(convert(qat, quantize="int8"), x_test)[0]
    qat_logits = np.asarray(qat(x_test))
    agreement = np.mean(int8_logits.argmax(1) == qat_logits.argmax(1))
    int8_accuracy = np.mean(int8_logits.argmax(1) == y_test)
    qat_accuracy = np.mean(qat_logits.argmax(1) == y_test)
    assert agreement >= 0.97, agreement
    assert abs(int8_accuracy - qat_accuracy) <= 0.02, (int8_accuracy, qat_accuracy)
    assert qat_accuracy >= 0.9  # the task is learnt: agreement is not about noise


def test_int8_post_training_from_a_float_model(trained_demo):
    model, _, x_test, _ = trained_demo
    _, names, agreement = calibrated_int8_agreement(model, x_test)
    # The first convolution is folded into the RNNPool op (fuse_stem).
    assert names == ["RNNPool", "RESHAPE", "FULLY_CONNECTED"]
    assert agreement >= 0.97


# -- errors ---------------------------------------------------------------------

def test_convert_rejects_bad_arguments():
    model = _rnnpool_model((8, 8, 2), rnn1_units=2, rnn2_units=2, pool_size=4)
    with pytest.raises(ValueError, match="quantize must be None .* or 'int8'"):
        convert(model, quantize="int4")
    with pytest.raises(ValueError, match="needs representative_data"):
        convert(model, quantize="int8")
    with pytest.raises(ValueError, match="representative_data is only used with"):
        convert(model, representative_data=_inputs((8, 8, 2)))
    with pytest.raises(ValueError, match="lowering must be 'custom'"):
        convert(model, lowering="fused")
    with pytest.raises(TypeError, match="tf_keras"):
        convert("model.keras")
    qat = _qat_of(model, _inputs((8, 8, 2)))
    with pytest.raises(ValueError, match="QAT model .* quantize='int8'"):
        convert(qat)
    with pytest.raises(ValueError, match="carries its own ranges"):
        convert(qat, quantize="int8", representative_data=_inputs((8, 8, 2)))


def test_run_tflite_rejects_bad_inputs():
    model_bytes = convert(_rnnpool_model((8, 8, 2), rnn1_units=2, rnn2_units=2,
                                         pool_size=4))
    with pytest.raises(ValueError, match="got 2 input arrays; the model has 1"):
        run_tflite(model_bytes, _inputs((8, 8, 2)), _inputs((8, 8, 2)))
    with pytest.raises(ValueError, match=r"sample shape \(8, 7, 2\); the model expects "
                                         r"\(8, 8, 2\)"):
        run_tflite(model_bytes, _inputs((8, 7, 2)))
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        run_tflite(b"not a model at all", _inputs((8, 8, 2)))
