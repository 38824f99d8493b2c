"""The fused FastGRNN op path of RNNPool2D against the TensorFlow path and the
NumPy reference, and the rules that pick between them.

The op library is built on first use (rnnpool_keras/layers/fused_sweep/build.py); a
build failure fails these tests rather than skipping them, so CI proves a fresh
install compiles it. The TensorFlow path's gradients are checked against
float64 finite differences in test_layer_gradients.py; here the op's
gradients are compared with the TensorFlow path's, at float32 level.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from layer_weights import layer_params, randomize_layer_weights
from rnnpool_keras.spec.float_reference import rnnpool_reference
from rnnpool_keras.layers import fused_sweep
from rnnpool_keras.layers.fused_sweep import op as fused_op

FORWARD_ATOL = 1e-6
# Weights ~ 0.3 * N(0, 1) (3x the authors' initialisation): outputs of order 1,
# where float32 rounding stays below FORWARD_ATOL on both paths.
WEIGHT_SCALE = 0.3
# Gradients: float32 level relative to the largest entry of each gradient.
GRADIENT_RTOL = 1e-5
OP_TYPES = {"RnnpoolFastgrnnSweep", "RnnpoolFastgrnnSweepGrad"}


@pytest.fixture(autouse=True)
def fused_allowed(monkeypatch):
    """Every test starts with the op path allowed, whatever the environment says."""
    monkeypatch.delenv(fused_sweep.ENVIRONMENT_VARIABLE, raising=False)


def test_fused_op_library_builds_and_loads_for_the_installed_tensorflow():
    assert fused_op.load() is not None, fused_op.failure()
    assert fused_sweep.select(tf.float32, float_only=True) is fused_op.final_state


def _forward_backward(layer, x, weight, fused, monkeypatch):
    """(output, {name: gradient}) of sum(layer(x) * weight), on the chosen path."""
    monkeypatch.setenv(fused_sweep.ENVIRONMENT_VARIABLE, "1" if fused else "0")
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * weight)
    variables = layer.trainable_weights
    grads = tape.gradient(loss, [x] + variables)
    names = ["input"] + [v.name for v in variables]
    return np.asarray(y, np.float64), {n: np.asarray(g, np.float64)
                                       for n, g in zip(names, grads)}


ACTIVATION_PAIRS = [("sigmoid", "tanh"), ("tanh", "sigmoid"), ("relu", "quantTanh"),
                    ("quantSigm", "relu"), ("quantTanh", "quantSigm")]
CASES = [
    # (id, input shape, layer arguments); units 4 / 8 / 16 run the op's
    # fixed-size code, others its any-size code.
    ("vww_like_pool6_stride4_units8", (2, 14, 14, 3),
     dict(rnn1_units=8, rnn2_units=8, pool_size=6, strides=4)),
    ("nonsquare_pool_stride_valid_units3_2", (2, 7, 8, 2),
     dict(rnn1_units=3, rnn2_units=2, pool_size=(3, 2), strides=(2, 1))),
    ("same_padding_stride_gt_pool_units4_16", (3, 9, 7, 2),
     dict(rnn1_units=4, rnn2_units=16, pool_size=2, strides=3, padding="same")),
    ("channels_first_same_nonsquare", (2, 3, 6, 7),
     dict(rnn1_units=4, rnn2_units=3, pool_size=(4, 3), strides=(2, 3), padding="same",
          data_format="channels_first")),
    ("low_rank_all_four_matrices", (2, 6, 5, 3),
     dict(rnn1_units=4, rnn2_units=4, pool_size=(3, 2), strides=(1, 2), padding="same",
          rnn1_kernel_rank=2, rnn1_recurrent_rank=2, rnn2_kernel_rank=1,
          rnn2_recurrent_rank=3)),
    ("batch_of_13_leaves_a_partial_block_of_8", (13, 5, 5, 2),
     dict(rnn1_units=8, rnn2_units=4, pool_size=3, strides=2)),
] + [(f"activations_{gate}_{update}", (2, 6, 6, 2),
      dict(rnn1_units=4, rnn2_units=3, pool_size=3, strides=2, gate_activation=gate,
           update_activation=update)) for gate, update in ACTIVATION_PAIRS]


@pytest.mark.slow
@pytest.mark.parametrize("x_shape,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fused_op_path_matches_tf_path_and_reference_forward_and_gradients(
        framework, monkeypatch, x_shape, kwargs):
    _, RNNPool2D = framework
    layer = RNNPool2D(**kwargs)
    layer(np.zeros(x_shape, np.float32))
    rng = np.random.default_rng(len(x_shape) * 31 + sum(x_shape))
    params = randomize_layer_weights(layer, rng, scale=WEIGHT_SCALE)
    x = rng.normal(size=x_shape).astype(np.float32)
    fmt = kwargs.get("data_format", "channels_last")
    want = rnnpool_reference(x.astype(np.float64), params, kwargs["pool_size"],
                             kwargs.get("strides"), kwargs.get("padding", "valid"), fmt,
                             kwargs.get("gate_activation", "sigmoid"),
                             kwargs.get("update_activation", "tanh"))
    weight = tf.constant(rng.normal(size=want.shape).astype(np.float32))

    fused_y, fused_grads = _forward_backward(layer, x, weight, True, monkeypatch)
    tf_y, tf_grads = _forward_backward(layer, x, weight, False, monkeypatch)
    assert np.mean(np.abs(want) > 1e-2) > 0.3  # not a comparison of zeros
    np.testing.assert_allclose(fused_y, want, rtol=0, atol=FORWARD_ATOL)
    np.testing.assert_allclose(tf_y, want, rtol=0, atol=FORWARD_ATOL)
    for name, tf_grad in tf_grads.items():
        scale = np.max(np.abs(tf_grad))
        if "gate_bias" in name:
            # Both paths compute the update pre-activation as gate pre-activation +
            # (b_update - b_gate), so b_gate's gradient is the difference of two sums
            # the size of b_update's: float32 rounding is relative to those sums.
            scale = max(scale, np.max(np.abs(tf_grads[name.replace("gate_bias",
                                                                   "update_bias")])))
        np.testing.assert_allclose(fused_grads[name], tf_grad, rtol=0,
                                   atol=GRADIENT_RTOL * scale + 1e-7,
                                   err_msg="gradient of " + name)


def _op_types(concrete_function):
    graph = concrete_function.graph
    types = {node.op for node in graph.as_graph_def().node}
    for function in graph.as_graph_def().library.function:
        types |= {node.op for node in function.node_def}
    return types


@pytest.mark.slow
def test_graph_runs_the_op_unless_the_environment_variable_forces_tf(monkeypatch):
    import rnnpool_keras
    layer = rnnpool_keras.RNNPool2D(rnn1_units=4, rnn2_units=4, pool_size=3, strides=2)
    spec = tf.TensorSpec([None, None, None, 2], tf.float32)

    def gradient_function():
        @tf.function(input_signature=[spec])
        def forward_backward(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            return y, tape.gradient(y, x)
        return forward_backward.get_concrete_function()

    assert OP_TYPES <= _op_types(gradient_function())
    monkeypatch.setenv(fused_sweep.ENVIRONMENT_VARIABLE, "0")
    assert not OP_TYPES & _op_types(gradient_function())


@pytest.mark.slow
def test_jit_compile_uses_the_tf_path_and_matches_reference(framework):
    _, RNNPool2D = framework
    layer = RNNPool2D(rnn1_units=4, rnn2_units=3, pool_size=(3, 2), strides=2)
    x = np.random.default_rng(3).normal(size=(2, 7, 6, 2)).astype(np.float32)
    layer(x)
    params = randomize_layer_weights(layer, np.random.default_rng(4), scale=WEIGHT_SCALE)
    compiled = tf.function(lambda t: layer(t), jit_compile=True)
    assert not OP_TYPES & _op_types(compiled.get_concrete_function(tf.constant(x)))
    # The op has no XLA kernel: running it under XLA would fail outright.
    got = np.asarray(compiled(tf.constant(x)), np.float64)
    np.testing.assert_allclose(got, rnnpool_reference(x, params, (3, 2), 2), rtol=0,
                               atol=FORWARD_ATOL)


def test_float64_and_int8_simulation_use_the_tf_path():
    assert fused_sweep.select(tf.float64, float_only=True) is None
    assert fused_sweep.select(tf.float32, float_only=False) is None


LOAD_SAVEDMODEL_WITHOUT_OP = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    y = loaded.signatures["serving_default"](tf.constant(x))
    np.save(sys.argv[3], np.asarray(list(y.values())[0]))
    print("modules", sorted(m for m in sys.modules if m.startswith("rnnpool_keras")))
""")


@pytest.mark.slow
def test_savedmodel_saved_after_op_path_training_loads_and_runs_without_the_op(tmp_path):
    """Saving traces the TF path, so the SavedModel holds no custom op: a fresh
    process that never imports rnnpool_keras (so never loads the op library)
    loads it with plain TensorFlow and gets the layer's outputs."""
    import tf_keras
    import rnnpool_keras
    inputs = tf_keras.Input(shape=(9, 9, 2))
    model = tf_keras.Model(inputs, rnnpool_keras.RNNPool2D(4, 4, 3, strides=2)(inputs))
    model.compile("sgd", "mse")
    x = np.random.default_rng(5).normal(size=(2, 9, 9, 2)).astype(np.float32)
    model.fit(x, np.zeros((2, 4, 4, 16), np.float32), epochs=1, verbose=0)  # op path
    want = np.asarray(model(x))
    tf.saved_model.save(model, str(tmp_path / "model"))
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SAVEDMODEL_WITHOUT_OP, str(tmp_path / "model"),
         str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "modules []" in result.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_keras3_file_saved_after_op_path_loads_with_the_op_disabled(tmp_path, monkeypatch):
    import keras
    from rnnpool_keras.keras3 import RNNPool2D
    inputs = keras.Input(shape=(8, 8, 2))
    model = keras.Model(inputs, RNNPool2D(4, 4, 2)(inputs))
    model.compile("sgd", "mse")
    x = np.random.default_rng(6).normal(size=(2, 8, 8, 2)).astype(np.float32)
    model.fit(x, np.zeros((2, 4, 4, 16), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    monkeypatch.setenv(fused_sweep.ENVIRONMENT_VARIABLE, "0")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=0,
                               atol=FORWARD_ATOL)
    want = rnnpool_reference(x, layer_params(loaded.layers[-1]), (2, 2), (2, 2))
    np.testing.assert_allclose(np.asarray(loaded(x)), want, rtol=0, atol=FORWARD_ATOL)


def test_without_a_compiler_the_layer_says_why_and_runs_the_tf_path(
        monkeypatch, tmp_path, caplog):
    """A fresh install where the op cannot be built: one warning naming the
    reason, and the layer still gives the reference's output."""
    import logging
    import rnnpool_keras
    monkeypatch.setattr(fused_op, "_library", None)
    monkeypatch.setattr(fused_op, "_failure", None)
    monkeypatch.setattr(fused_sweep, "_reported", set())
    monkeypatch.setenv("RNNPOOL_KERAS_CACHE", str(tmp_path))  # nothing cached
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    layer = rnnpool_keras.RNNPool2D(rnn1_units=3, rnn2_units=2, pool_size=2)
    x = np.random.default_rng(8).normal(size=(1, 4, 4, 2)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="rnnpool_keras"):
        got = np.asarray(layer(x), np.float64)
        layer(x)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no-such-compiler" in warnings[0].getMessage()
    assert "TensorFlow recurrence" in warnings[0].getMessage()
    np.testing.assert_allclose(got, rnnpool_reference(x, layer_params(layer), (2, 2), (2, 2)),
                               rtol=0, atol=FORWARD_ATOL)
