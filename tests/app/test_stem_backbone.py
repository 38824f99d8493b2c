"""RNNPool stem + Keras Applications backbones (issue 18), nested and flat,
tf_keras and Keras 3: QAT / calibration, int8 conversion, the host runner.

The int8 file must be integer throughout (no float op between QUANTIZE and
DEQUANTIZE) and, on a tiny trained task, pick the QAT model's class on
>= 97% of test images. Slow: every case converts a whole backbone.
"""
import os

import numpy as np
import pytest

import rnnpool_keras
from converters import convert, run_tflite
from converters.tflite_io import tflite_model
from rnnpool_keras.app import synthetic
from rnnpool_keras.app.stem_backbone import FAMILIES, rnnpool_stem_backbone

# Each case converts a whole backbone (minutes on 2 cores; about an hour for the
# module): opt-in, like the TFLM tests, so the default run stays within CI's time.
pytestmark = pytest.mark.skipif(
    os.environ.get("RNNPOOL_BACKBONE_TESTS") != "1",
    reason="Keras Applications backbone cases: set RNNPOOL_BACKBONE_TESTS=1 to run them")

# 66x66, stem stride 1, RNNPool stride 2 (valid): the backbone sees 32x32,
# the smallest input Keras Applications accept.
INPUT = (66, 66, 3)


def _framework(name):
    if name == "keras3":
        import keras
        return keras
    return None


def _model(family, nested, framework, seed=0):
    keras_module = _framework(framework)
    (keras_module or __import__("tf_keras")).utils.set_random_seed(seed)
    return rnnpool_stem_backbone(family, INPUT, num_classes=4, nested=nested,
                                 stem_strides=1, framework=keras_module)


def _assert_integer_only(model_bytes):
    names = tflite_model.op_names(model_bytes)
    assert "DEQUANTIZE" not in names and "QUANTIZE" not in names, names
    assert names.count("RNNPool") == 1


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["tf_keras", "keras3"])
@pytest.mark.parametrize("nested", [True, False], ids=["nested", "flat"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_backbone_converts_to_int8_and_runs_on_the_host(family, nested, framework):
    model = _model(family, nested, framework)
    x = synthetic.quadrant_images(8, INPUT[0], seed=1)[0]
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), x)
    model_bytes = convert(qat, quantize="int8")
    _assert_integer_only(model_bytes)
    int8_out, qat_out = run_tflite(model_bytes, x)[0], np.asarray(qat(x))
    assert int8_out.shape == (8, 4)
    # int8 rounding through a whole backbone: within a tenth of the output range.
    assert np.max(np.abs(int8_out - qat_out)) <= 0.1 * max(np.ptp(qat_out), 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("family, nested, framework", [
    ("MobileNetV3Small", True, "keras3"),
    ("MobileNetV2", False, "tf_keras"),
])
def test_int8_backbone_agrees_with_its_qat_model_on_a_trained_task(family, nested,
                                                                   framework):
    x_train, y_train = synthetic.quadrant_images(256, INPUT[0], seed=5)
    x_test, y_test = synthetic.quadrant_images(128, INPUT[0], seed=6)
    import tf_keras

    qat = rnnpool_keras.quantize_model(_model(family, nested, framework, seed=5))
    qat.compile(tf_keras.optimizers.Adam(2e-3),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, y_train, batch_size=32, epochs=4, verbose=0)
    model_bytes = convert(qat, quantize="int8")
    _assert_integer_only(model_bytes)
    int8_logits = run_tflite(model_bytes, x_test)[0]
    qat_logits = np.asarray(qat(x_test))
    assert np.mean(int8_logits.argmax(1) == qat_logits.argmax(1)) >= 0.97
    assert np.mean(qat_logits.argmax(1) == y_test) >= 0.6  # learnt, not chance (0.25)
