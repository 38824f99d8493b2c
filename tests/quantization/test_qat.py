"""Quantization-aware training and calibration of RNNPool2D (tfmot, tf_keras).

The QAT model simulates docs/int8_rnnpool.md: its output must agree with the
NumPy integer reference run on the same quantised parameters and input.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import rnnpool_keras
from rnnpool_keras.spec.float_reference import rnnpool_reference
from rnnpool_keras import RNNPool2D
from rnnpool_keras.app import demo, synthetic
from rnnpool_keras.quantization import layer_int8_params
from rnnpool_keras.spec import int8_params, int8_reference
from model_cases import randomize_rnnpool_weights

# Trains, converts or compiles: deselected by -m "not slow".
pytestmark = pytest.mark.slow


def _single_layer_model(input_shape, seed=0, weight_scale=0.5, **layer_args):
    """Input -> RNNPool2D "rnnpool", random weights everywhere (zeta / nu too, so
    the defaults hide nothing)."""
    inputs = tf_keras.Input(input_shape)
    model = tf_keras.Model(inputs, RNNPool2D(name="rnnpool", **layer_args)(inputs))
    return randomize_rnnpool_weights(model, seed, weight_scale)


def _qat_against_integer_reference(model, x, calibration=None):
    """{RNNPool2D name: (QAT output in output LSBs, integer reference output,
    float output, params)} for each RNNPool2D of `model` (each reading the
    model's input; one per output, in order), after calibrating on
    `calibration` (default: x itself)."""
    qat = rnnpool_keras.quantize_model(model)
    rnnpool_keras.calibrate(qat, x if calibration is None else calibration)
    input_quantizer = qat.layers[1].quantizer_vars
    s_in, zp_in = layer_int8_params.asymmetric_int8(input_quantizer["min_var"],
                                                    input_quantizer["max_var"])
    x_q = np.clip(np.round(x / s_in) + zp_in, -128, 127).astype(np.int8)
    results = {}
    for output, qat_output, float_output in zip(model.outputs, tf.nest.flatten(qat(x)),
                                                tf.nest.flatten(model(x))):
        name = output.node.layer.name
        wrapper = qat.get_layer("quant_" + name)
        s_out, zp_out = layer_int8_params.asymmetric_int8(
            wrapper._output_quantizer_vars["min_var"], wrapper._output_quantizer_vars["max_var"])
        params = layer_int8_params.int8_params_of_layer(wrapper.layer, s_in, zp_in, s_out, zp_out)
        results[name] = (np.round(np.asarray(qat_output) / s_out) + zp_out,
                         int8_reference.rnnpool_int8(x_q, params), np.asarray(float_output),
                         params)
    return results


def _assert_agreement(simulated, integer):
    difference = np.abs(simulated - integer.astype(np.float64))
    assert np.mean(difference <= 1) >= 0.99, np.mean(difference <= 1)
    assert difference.max() <= 2, difference.max()


ACTIVATIONS = [("sigmoid", "tanh"), ("quantSigm", "quantTanh"), ("sigmoid", "relu"),
               ("tanh", "quantSigm")]
GEOMETRIES = {"valid": dict(pool_size=4, strides=2, padding="valid"),
              "same": dict(pool_size=(3, 2), strides=(2, 3), padding="same")}


@pytest.fixture(scope="module")
def agreement_results():
    """test_qat_output_agrees_with_the_integer_reference's cases as the branches
    of one model, an RNNPool2D per case on one input, each with the weights of
    its own single-layer model (seed 0): one quantize_model and calibration
    for all (each takes ~1 s)."""
    inputs = tf_keras.Input((12, 11, 3))
    outputs = []
    for gate, update in ACTIVATIONS:
        for geometry, geometry_args in GEOMETRIES.items():
            outputs.append(RNNPool2D(rnn1_units=4, rnn2_units=3,
                                     name=f"{gate}_{update}_{geometry}",
                                     gate_activation=gate, update_activation=update,
                                     **geometry_args)(inputs))
            randomize_rnnpool_weights(tf_keras.Model(inputs, outputs[-1]), 0)
    x = np.random.default_rng(1).normal(size=(6, 12, 11, 3)).astype(np.float32)
    return _qat_against_integer_reference(tf_keras.Model(inputs, outputs), x)


@pytest.mark.parametrize("gate, update", ACTIVATIONS)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_qat_output_agrees_with_the_integer_reference(agreement_results, gate, update,
                                                      geometry):
    simulated, integer, float_output, params = agreement_results[
        f"{gate}_{update}_{geometry}"]
    _assert_agreement(simulated, integer)
    # Integer vs float: the int8 input / weight / output quantisation, bounded.
    error = np.abs((integer.astype(np.float64) - params.output_zero_point)
                   * params.output_scale - float_output) / params.output_scale
    print(f"{gate}/{update} {geometry}: integer vs float max {error.max():.2f} LSB, "
          f"mean {error.mean():.3f} LSB")
    assert error.max() <= 8 and error.mean() <= 1.0


@pytest.mark.parametrize("case", ["zero", "saturating", "extreme_weights"])
def test_qat_agrees_with_the_integer_reference_on_edge_cases(case):
    rng = np.random.default_rng(2)
    model = _single_layer_model((8, 8, 2), rnn1_units=3, rnn2_units=3, pool_size=4,
                                strides=4)
    if case == "extreme_weights":  # every matrix entry at +-max: int8 +-127
        layer = model.get_layer("rnnpool")
        for name in ("rnn1_kernel", "rnn1_recurrent_kernel", "rnn2_kernel",
                     "rnn2_recurrent_kernel"):
            weight = getattr(layer, name)
            weight.assign(0.8 * np.sign(rng.normal(size=weight.shape)))
    x = rng.normal(size=(4, 8, 8, 2)).astype(np.float32)
    calibration = x
    if case == "zero":
        x = np.zeros_like(x)
    elif case == "saturating":
        x = np.sign(x) * 50.0  # far outside the calibrated input range
    simulated, integer, _, _ = _qat_against_integer_reference(model, x, calibration)["rnnpool"]
    _assert_agreement(simulated, integer)


@pytest.mark.parametrize("shape, args", [
    ((2, 2, 1024), dict(rnn1_units=2, rnn2_units=2, pool_size=2)),
    ((2, 2, 3), dict(rnn1_units=256, rnn2_units=256, pool_size=2)),
    ((64, 64, 1), dict(rnn1_units=2, rnn2_units=2, pool_size=64)),
], ids=["k1024", "units256", "pool64"])
def test_qat_agrees_with_the_integer_reference_at_the_largest_sizes(shape, args):
    model = _single_layer_model(shape, weight_scale=0.1, **args)
    x = np.random.default_rng(3).normal(size=(2,) + shape).astype(np.float32)
    simulated, integer, _, _ = _qat_against_integer_reference(model, x)["rnnpool"]
    _assert_agreement(simulated, integer)


def test_calibration_ranges_are_the_largest_magnitudes_of_the_float_operator():
    model = _single_layer_model((9, 9, 2), rnn1_units=3, rnn2_units=2, pool_size=3,
                                strides=2, padding="same")
    layer = model.get_layer("rnnpool")
    x = np.random.default_rng(4).normal(size=(5, 9, 9, 2)).astype(np.float32)
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), x)
    expected = {}
    params = {w.name.split("/")[-1].split(":")[0]: np.asarray(w, np.float64)
              for w in layer.weights}
    # Calibration runs the QAT model, so W and U are on their int8 grids.
    for name in ("rnn1_kernel", "rnn1_recurrent_kernel", "rnn2_kernel",
                 "rnn2_recurrent_kernel"):
        values, scale = int8_params.quantize_symmetric_int8(params[name])
        params[name] = values * scale
    rnnpool_reference(x, params, 3, 2, "same", "channels_last", "sigmoid", "tanh",
                      ranges=expected)
    got = layer_int8_params.layer_ranges(qat.get_layer("quant_rnnpool").layer)
    for key in ("rnn1_pre", "rnn1_state", "rnn2_pre", "rnn2_state"):
        name = key.replace("_pre", "_preactivation")
        assert got[name] == pytest.approx(expected[key], rel=1e-5), name


def test_qat_model_trains_from_scratch_and_tracks_its_ranges():
    # (That QAT fine-tuning keeps a trained model's accuracy is the demo's QAT
    # stage, tested in tests/app/test_training.py.)
    x, y = synthetic.quadrant_images(512, seed=7)
    tf_keras.utils.set_random_seed(7)
    qat = rnnpool_keras.quantize_model(demo.tiny_rnnpool_cnn())
    qat_layer = qat.get_layer("quant_rnnpool").layer
    assert qat_layer.int8_simulation is True
    with pytest.raises(ValueError, match="no calibrated range"):
        layer_int8_params.layer_ranges(qat_layer)  # none before training
    qat.compile(tf_keras.optimizers.Adam(3e-3),
                tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = qat.evaluate(x, y, verbose=0)
    qat.fit(x, y, batch_size=32, epochs=6, verbose=0)
    assert qat.evaluate(x, y, verbose=0) < initial / 3
    # The moving-average ranges were initialised and tracked during training.
    assert all(v > 0 for v in layer_int8_params.layer_ranges(qat_layer).values())


# tfmot's QAT models do not load from the `.keras` format (its QuantizeLayer
# builds twice: true of a Dense-only model too), so .h5 and SavedModel are tested.
@pytest.mark.parametrize("suffix", [".h5", "_savedmodel"])
def test_saved_qat_model_loads_under_quantize_scope_with_identical_outputs(tmp_path, suffix):
    model = _single_layer_model((8, 8, 2), rnn1_units=3, rnn2_units=2, pool_size=4,
                                strides=2)
    x = np.random.default_rng(8).normal(size=(3, 8, 8, 2)).astype(np.float32)
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), x)
    path = str(tmp_path / ("qat" + suffix))
    qat.save(path, save_format="h5" if suffix == ".h5" else "tf")
    with rnnpool_keras.quantize_scope():
        restored = tf_keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(qat(x)))
    assert layer_int8_params.layer_ranges(restored.get_layer("quant_rnnpool").layer) == \
        layer_int8_params.layer_ranges(qat.get_layer("quant_rnnpool").layer)


# -- bad input ------------------------------------------------------------------

def test_quantize_model_of_a_keras3_model_is_a_tf_keras_qat_model():
    import keras
    from rnnpool_keras.keras3 import RNNPool2D as Keras3RNNPool2D
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, Keras3RNNPool2D(2, 2, 2, name="pool")(inputs))
    qat = rnnpool_keras.quantize_model(model)
    assert isinstance(qat, tf_keras.Model)
    assert isinstance(qat.get_layer("quant_pool").layer, RNNPool2D)


def test_quantize_model_rejects_non_models_and_subclassed_models():
    with pytest.raises(TypeError, match="expects a tf_keras"):
        rnnpool_keras.quantize_model("model.keras")

    class Subclassed(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.pool = RNNPool2D(2, 2, 2)

        def call(self, x):
            return self.pool(x)

    model = Subclassed()
    model(np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(TypeError, match="subclassed"):
        rnnpool_keras.quantize_model(model)


@pytest.mark.parametrize("args, message", [
    (dict(rnn1_kernel_rank=2), "`rnn1_kernel_rank`=2"),
    (dict(rnn2_recurrent_rank=1), "`rnn2_recurrent_rank`=1"),
    (dict(gate_activation="relu"), "`gate_activation`='relu'"),
])
def test_quantize_model_names_what_has_no_int8_form(args, message):
    inputs = tf_keras.Input((4, 4, 2))
    model = tf_keras.Model(inputs, RNNPool2D(3, 2, 2, name="pool", **args)(inputs))
    with pytest.raises(ValueError, match=f"'pool' cannot be quantized to int8: .*{message}"):
        rnnpool_keras.quantize_model(model)


def test_int8_export_needs_calibrated_ranges():
    model = _single_layer_model((4, 4, 2), rnn1_units=2, rnn2_units=2, pool_size=2)
    with pytest.raises(ValueError, match="no calibrated range .*run calibrate"):
        layer_int8_params.int8_params_of_layer(model.get_layer("rnnpool"), 0.1, 0, 0.1, 0)


def test_quantize_config_checks_weight_count_and_shapes_and_serialises():
    config = rnnpool_keras.RNNPoolQuantizeConfig()
    layer = RNNPool2D(3, 2, 2)
    layer.build((None, 4, 4, 2))
    weights = [w for w, _ in config.get_weights_and_quantizers(layer)]
    assert [tuple(w.shape) for w in weights] == [(2, 3), (3, 3), (3, 2), (2, 2)]
    with pytest.raises(ValueError, match="expects 4 weights"):
        config.set_quantize_weights(layer, weights[:3])
    with pytest.raises(ValueError, match=r"rnn2_kernel has shape \(3, 2\)"):
        config.set_quantize_weights(layer, weights[:2] + [tf.zeros((2, 3))] + weights[3:])
    with pytest.raises(ValueError, match="expects no activations"):
        config.set_quantize_activations(layer, [object()])
    assert config.get_activations_and_quantizers(layer) == []
    assert len(config.get_output_quantizers(layer)) == 1
    assert type(config).from_config(config.get_config()).get_config() == {}


@pytest.mark.slow
def test_layers_with_a_swish_activation_become_integer_ops(tmp_path):
    """Conv2D / DepthwiseConv2D / Dense(activation="swish") (EfficientNet's
    squeeze-excite) lower to the layer, LOGISTIC and MUL: QAT must quantize the
    pre-activation too, or the converter keeps all three float between
    DEQUANTIZE and QUANTIZE. The model saves and reloads under quantize_scope."""
    from converters import convert, run_tflite
    from converters.tflite_io import tflite_model

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((12, 12, 3))
    x = tf_keras.layers.Conv2D(8, 3, padding="same", activation="swish")(inputs)
    x = tf_keras.layers.DepthwiseConv2D(3, padding="same", activation="swish")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    x = tf_keras.layers.Dense(5, activation="swish")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(3)(x))
    data = np.random.default_rng(0).uniform(0, 1, (16, 12, 12, 3)).astype(np.float32)
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), data)

    model_bytes = convert(qat, quantize="int8")
    names = tflite_model.op_names(model_bytes)
    assert "DEQUANTIZE" not in names and "QUANTIZE" not in names, names
    assert names.count("LOGISTIC") == 3 and names.count("MUL") == 3, names
    qat_out = np.asarray(qat(data))
    # int8 rounding through five layers: within a few output steps.
    assert np.max(np.abs(run_tflite(model_bytes, data)[0] - qat_out)) <= 6 * np.ptp(qat_out) / 255

    qat.save(tmp_path / "qat.h5")
    with rnnpool_keras.quantize_scope():
        reloaded = tf_keras.models.load_model(tmp_path / "qat.h5")
    np.testing.assert_array_equal(np.asarray(reloaded(data)), qat_out)


@pytest.mark.slow
def test_int8_file_computes_each_mobilenet_v1_block_layer_as_its_qat_model():
    """MobileNet v1's blocks (Conv2D / DepthwiseConv2D, BatchNorm, ReLU6;
    ZeroPadding2D before a stride-2 "valid" depthwise), with the large
    BatchNorm gains of a backbone trained from scratch: QAT quantizes the
    depthwise kernel per tensor before BatchNorm, the converter folds
    BatchNorm and stores it per channel. Fed the int8 file's own input
    tensor, each QAT layer must give the file's output within 1 LSB: the
    int8 / QAT disagreement of the trained MobileNet backbone
    (tests/app/test_stem_backbone.py) is these 1-LSB roundings amplified,
    not a layer computed otherwise."""
    from converters import convert

    tf_keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv1")(inputs)
    x = tf_keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = tf_keras.layers.ReLU(6.0, name="conv1_relu")(x)
    for block, strides in ((1, 1), (2, 2)):
        if strides == 2:
            x = tf_keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
        x = tf_keras.layers.DepthwiseConv2D(3, strides=strides, use_bias=False,
                                            padding="same" if strides == 1 else "valid",
                                            name=f"conv_dw_{block}")(x)
        x = tf_keras.layers.BatchNormalization(name=f"conv_dw_{block}_bn")(x)
        x = tf_keras.layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
        x = tf_keras.layers.Conv2D(16, 1, use_bias=False, name=f"conv_pw_{block}")(x)
        x = tf_keras.layers.BatchNormalization(name=f"conv_pw_{block}_bn")(x)
        x = tf_keras.layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(4, name="logits")(x))
    data = rng.uniform(0, 1, (16, 16, 16, 3)).astype(np.float32)
    # Small kernels, and each BatchNorm's statistics those of the data (as the
    # backbone test re-estimates them): gains gamma / sqrt(var + eps) of 5 to 30.
    for layer in model.layers:
        if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D)):
            layer.set_weights([w * 0.1 for w in layer.get_weights()])
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            features = np.asarray(tf_keras.Model(inputs, layer.input)(data))
            channels = features.shape[-1]
            layer.set_weights([rng.uniform(0.5, 1.5, channels), rng.uniform(-0.5, 0.5, channels),
                               features.mean(axis=(0, 1, 2)), features.var(axis=(0, 1, 2))])
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), data)
    # Every layer's output a whole tensor (no channel groups, which are bit-exact).
    model_bytes = convert(qat, quantize="int8", split_expansions=False)

    interpreter = tf.lite.Interpreter(model_content=model_bytes,
                                      experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    chain = ["quant_conv1_relu"] + [f"quant_conv_{kind}_{block}_relu" for block in (1, 2)
                                    for kind in ("dw", "pw")] + ["quant_logits"]
    details = {}
    for name in chain:
        shape = (1,) + tuple(qat.get_layer(name).output.shape[1:])
        details[name], = [d for d in interpreter.get_tensor_details()
                          if d["name"].split(";")[0].split("/")[1:2] == [name]
                          and d["dtype"] == np.int8 and tuple(d["shape"]) == shape]
    input_detail = interpreter.get_input_details()[0]
    tensors = {}
    for image in data:
        scale, zero_point = input_detail["quantization"]
        interpreter.set_tensor(input_detail["index"], np.clip(
            np.round(image[None] / scale + zero_point), -128, 127).astype(np.int8))
        interpreter.invoke()
        for name, detail in details.items():
            scale, zero_point = detail["quantization"]
            tensors.setdefault(name, []).append(
                (interpreter.get_tensor(detail["index"]).astype(np.float64) - zero_point) * scale)
    for before, after in zip(chain, chain[1:]):
        layer_input = np.concatenate(tensors[before]).astype(np.float32)
        simulated = np.asarray(tf_keras.Model(qat.get_layer(before).output,
                                              qat.get_layer(after).output)(layer_input))
        scale = details[after]["quantization"][0]
        assert np.max(np.abs(simulated - np.concatenate(tensors[after]))) <= 1.0001 * scale, after
