"""Keras 3 models (`import keras`, rnnpool_keras.keras3.RNNPool2D) through the
whole pipeline: float and int8 conversion, QAT and calibration, the host
runner, memory report, C array, the CLI; checked against the Keras 3 model.
"""
import numpy as np
import pytest

import rnnpool_keras
from converters import convert, export_c_array, memory_report, run_tflite
from converters.tflite_io import tflite_model
from rnnpool_keras.app import demo, synthetic, zoo
from model_cases import calibrated_int8_agreement
from rnnpool_keras.flat_model import copy_weights_back, flat_tf_keras_model

keras = pytest.importorskip("keras")
from rnnpool_keras.keras3 import RNNPool2D  # noqa: E402  (after the skip)

# Every test converts a Keras 3 model (seconds each): the slow set.
pytestmark = pytest.mark.slow


def _inputs(shape, count=4, seed=1):
    return np.random.default_rng(seed).normal(size=(count,) + shape).astype(np.float32)


def _randomize(model, seed=0):
    """Random biases, BatchNorm statistics and RNNPool2D weights (kernels keep
    their random initialisation), so every copied weight shows in the output
    while the outputs stay O(1), where float32 rounding is below 1e-5."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        path = variable.path
        if "_range" in path or (len(variable.shape) >= 2 and "rnn_pool" not in path
                                and "rnnpool" not in path):
            continue  # int8 ranges (set by calibration / QAT), and kernels
        values = rng.normal(0, 0.3, variable.shape)
        if "variance" in path:
            values = np.abs(values) + 0.5
        variable.assign(values.astype(variable.dtype))
    return model


def _standard_layer_model():
    """Every standard layer the tf_keras path supports (and Keras Applications'
    Normalization), around one RNNPool2D."""
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(0.5, offset=-0.25)(inputs)
    x = keras.layers.Normalization(mean=[0.1, -0.2, 0.3], variance=[1.5, 0.5, 2.0])(x)
    x = keras.layers.ZeroPadding2D(1)(x)
    x = keras.layers.Conv2D(8, 3, strides=2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.ReLU()(keras.layers.DepthwiseConv2D(3, padding="same")(x))
    x = keras.layers.Add()([x, y])
    z = keras.layers.SeparableConv2D(8, 3, padding="same")(x)
    x = keras.layers.Concatenate()([x, z])
    x = RNNPool2D(4, 4, pool_size=2, strides=2, name="rnnpool")(x)
    x = keras.layers.Concatenate()([keras.layers.MaxPooling2D(2)(x),
                                    keras.layers.AveragePooling2D(2)(x)])
    flat = keras.layers.Flatten()(keras.layers.Reshape((4, 32))(x))
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), flat])
    x = keras.layers.Dropout(0.3)(x)
    return _randomize(keras.Model(inputs, keras.layers.Dense(5)(x)))


def _assert_float_file_matches(model, shape, count=4):
    model_bytes = convert(model)
    names = tflite_model.op_names(model_bytes)
    assert not [n for n in names if n.startswith("Flex")], names
    x = _inputs(shape, count)
    want = model(x)
    got = run_tflite(model_bytes, x)
    for g, w in zip(got, want if isinstance(want, (list, tuple)) else [want]):
        assert np.max(np.abs(g - np.asarray(w))) <= 1e-5
    return names


def test_float_file_of_every_standard_layer_matches_the_keras3_model():
    names = _assert_float_file_matches(_standard_layer_model(), (16, 16, 3))
    assert names.count("RNNPool") == 1
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D",
            "FULLY_CONNECTED", "CONCATENATION"} <= set(names)


def test_int8_file_of_every_standard_layer_is_integer_and_close_to_qat():
    model = _standard_layer_model()
    x = _inputs((16, 16, 3), count=32, seed=3)
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), x)
    model_bytes = convert(qat, quantize="int8")
    assert "DEQUANTIZE" not in tflite_model.op_names(model_bytes)
    int8_out, qat_out = run_tflite(model_bytes, x)[0], np.asarray(qat(x))
    # int8 rounding along ~10 layers: within a few output LSBs.
    assert np.max(np.abs(int8_out - qat_out)) <= 8 * np.ptp(qat_out) / 255


def test_keras3_model_zoo_small_models_convert_to_the_same_function():
    model = _randomize(zoo.small_mobilenetv2_rnnpool((32, 32, 1), 10,
                                                     framework=keras))
    assert isinstance(model, keras.Model)
    _assert_float_file_matches(model, (32, 32, 1))
    tiny = _randomize(demo.tiny_rnnpool_cnn(framework=keras))
    _assert_float_file_matches(tiny, (32, 32, 3))


@pytest.mark.slow
@pytest.mark.parametrize("builder, shape", [
    (lambda: zoo.vww_mobilenetv2_rnnpool((48, 48, 3), last_rnnpool=True,
                                            framework=keras), (48, 48, 3)),
    (lambda: zoo.rnnpool_face_m4((32, 40, 1), framework=keras), (32, 40, 1)),
    (lambda: zoo.vww_mobilenetv2((32, 32, 3), framework=keras), (32, 32, 3)),
], ids=["vww_rnnpool_last", "face_m4", "vww_baseline"])
def test_keras3_model_zoo_converts_to_the_same_function(builder, shape):
    _assert_float_file_matches(_randomize(builder()), shape, count=2)


@pytest.fixture(scope="module")
def trained_keras3():
    """The demo CNN built and trained with Keras 3, its (tf_keras) QAT model
    fine-tuned, and test data."""
    x_train, y_train = synthetic.quadrant_images(512, seed=5)
    x_test, y_test = synthetic.quadrant_images(256, seed=6)
    keras.utils.set_random_seed(5)
    model = demo.tiny_rnnpool_cnn(framework=keras)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, batch_size=32, epochs=4, verbose=0)
    import tf_keras

    qat = rnnpool_keras.quantize_model(model)
    qat.compile(tf_keras.optimizers.Adam(5e-4),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0)
    return model, qat, x_test, y_test


def test_int8_file_agrees_with_the_qat_model_of_a_keras3_model(trained_keras3):
    _, qat, x_test, y_test = trained_keras3
    model_bytes = convert(qat, quantize="int8")
    int8_logits = run_tflite(model_bytes, x_test)[0]
    qat_logits = np.asarray(qat(x_test))
    assert np.mean(int8_logits.argmax(1) == qat_logits.argmax(1)) >= 0.97
    assert np.mean(qat_logits.argmax(1) == y_test) >= 0.9  # the task is learnt
    report = memory_report(model_bytes)
    assert [op["op"] for op in report["operators"]].count("RNNPool") == 1
    files = export_c_array(model_bytes, "keras3_model")
    assert f"keras3_model_len = {len(model_bytes)};" in files.source


def test_int8_file_calibrated_from_a_keras3_model_agrees_with_it(trained_keras3):
    model, _, x_test, _ = trained_keras3
    _, names, agreement = calibrated_int8_agreement(model, x_test)
    # The first convolution is folded into the RNNPool op (fuse_stem).
    assert names == ["RNNPool", "RESHAPE", "FULLY_CONNECTED"]
    assert agreement >= 0.97


def test_qat_weights_go_back_into_the_keras3_model(trained_keras3):
    model, qat, x_test, _ = trained_keras3
    copy = demo.tiny_rnnpool_cnn(framework=keras)
    copy.set_weights(model.get_weights())
    copied = copy_weights_back(qat, copy)
    assert sorted(copied) == ["classifier", "rnnpool", "stem"]
    for name in copied:
        trained = {v.name.split("/")[-1].split(":")[0]: v.numpy()
                   for v in qat.get_layer("quant_" + name).weights}
        for variable in copy.get_layer(name).weights:
            np.testing.assert_array_equal(variable.numpy(), trained[variable.name])
    # QAT moved the weights: the copy now differs from the float model it came from.
    assert not np.allclose(copy(x_test), model(x_test))


def test_cli_converts_a_keras3_dot_keras_file(tmp_path):
    from rnnpool_keras.app import cli

    model = _randomize(demo.tiny_rnnpool_cnn(framework=keras))
    path, output = str(tmp_path / "model.keras"), str(tmp_path / "model.tflite")
    model.save(path)
    assert cli.main(["convert", path, "-o", output]) == 0
    with open(output, "rb") as file:
        model_bytes = file.read()
    x = _inputs((32, 32, 3))
    assert np.max(np.abs(run_tflite(model_bytes, x)[0] - np.asarray(model(x)))) <= 1e-5


def test_weights_go_back_into_a_keras3_depthwise_convolution():
    """Keras 3 calls a DepthwiseConv2D's kernel "kernel", tf_keras "depthwise_kernel"."""
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(x))
    flat = flat_tf_keras_model(model)
    kernel = np.arange(18, dtype=np.float32).reshape(3, 3, 2, 1)
    flat.get_layer("depthwise").depthwise_kernel.assign(kernel)
    assert "depthwise" in copy_weights_back(flat, model)
    np.testing.assert_array_equal(model.get_layer("depthwise").kernel.numpy(), kernel)
