"""RNNPool2D (tf_keras and Keras 3, float32) agrees with the float64 NumPy oracle.

Every case randomises all weights first (matrices and biases ~ 0.5 * N(0, 1),
zeta / nu ~ U(-2, 2)) so the default initialisation (biases 1, sigmoid(zeta) = 1,
sigmoid(nu) = 0) cannot hide a bug, then compares in float64 with atol = 1e-5.
"""

import numpy as np
import pytest
import tensorflow as tf

from layer_weights import layer_params, layer_variables, randomize_layer_weights
from rnnpool_keras.spec.float_reference import rnnpool_reference

ATOL = 1e-5
# At least this fraction of expected output values must have |v| > 0.01.
MIN_NONZERO_FRACTION = 0.4
ACTS = ("sigmoid", "tanh", "relu", "quantSigm", "quantTanh")
RANKS = ("rnn1_kernel_rank", "rnn1_recurrent_rank", "rnn2_kernel_rank", "rnn2_recurrent_rank")


def _input_shape(batch, hw, k, data_format):
    h, w = hw
    return (batch, h, w, k) if data_format == "channels_last" else (batch, k, h, w)


def build_random_layer(RNNPool2D, x_shape, seed, **kwargs):
    """Builds the layer on `x_shape` and randomises every weight; returns (layer, params)."""
    layer = RNNPool2D(**kwargs)
    layer(np.zeros(x_shape, np.float32))
    params = randomize_layer_weights(layer, np.random.default_rng(seed))
    return layer, params


def check_layer_against_reference(RNNPool2D, *, hw, k, h1, h2, pool, strides=None,
                                  padding="valid", data_format="channels_last",
                                  gate="sigmoid", update="tanh", ranks=None, batch=2,
                                  seed=0):
    ranks = ranks or {}
    x_shape = _input_shape(batch, hw, k, data_format)
    layer, params = build_random_layer(
        RNNPool2D, x_shape, seed, rnn1_units=h1, rnn2_units=h2, pool_size=pool,
        strides=strides, padding=padding, data_format=data_format,
        gate_activation=gate, update_activation=update, **ranks)
    x = np.random.default_rng(seed + 1000).normal(size=x_shape).astype(np.float32)
    # Re-draw the weights (deterministically) until the expected output is not
    # degenerate: e.g. a relu update can zero almost everything, and a test
    # comparing zeros with zeros would prove nothing.
    for attempt in range(1, 30):
        want = rnnpool_reference(x.astype(np.float64), params, pool, strides, padding,
                                 data_format, gate, update)
        if np.mean(np.abs(want) > 1e-2) >= MIN_NONZERO_FRACTION:
            break
        params = randomize_layer_weights(layer, np.random.default_rng(seed + 7919 * attempt))
    else:
        pytest.fail("could not draw weights giving a non-degenerate output")
    got = np.asarray(layer(x), dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert tuple(layer.compute_output_shape(x_shape)) == want.shape
    assert want.size > 0
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    return got, want


# (id, kwargs). Sizes kept small: H, W <= 9, k <= 3, units <= 4.
GEOMETRY_CASES = [
    ("square_3x3_pool_default_stride_equals_pool_valid",
     dict(hw=(6, 6), k=2, h1=3, h2=2, pool=3)),
    ("nonsquare_2x3_pool_stride_1_smaller_than_pool_valid",
     dict(hw=(5, 7), k=2, h1=3, h2=2, pool=(2, 3), strides=1)),
    ("nonsquare_3x2_pool_strides_4x3_larger_than_pool_valid",
     dict(hw=(9, 8), k=3, h1=2, h2=3, pool=(3, 2), strides=(4, 3))),
    ("square_pool_nonsquare_strides_1x2_valid_with_leftover_pixels",
     dict(hw=(8, 7), k=1, h1=4, h2=2, pool=3, strides=(1, 2))),
    ("pool_equal_to_whole_input_single_patch",
     dict(hw=(4, 5), k=2, h1=3, h2=4, pool=(4, 5))),
    ("pool_1x1_stride_1_every_pixel_is_a_patch",
     dict(hw=(3, 4), k=3, h1=2, h2=2, pool=1)),
    ("pool_1x1_stride_2_subsamples",
     dict(hw=(5, 4), k=2, h1=3, h2=2, pool=1, strides=2)),
    ("same_3x3_stride_2_on_4x4_pads_only_bottom_right",
     dict(hw=(4, 4), k=2, h1=3, h2=2, pool=3, strides=2, padding="same")),
    ("same_4x3_pool_stride_2x3_pads_1_top_2_bottom",
     dict(hw=(5, 6), k=2, h1=2, h2=3, pool=(4, 3), strides=(2, 3), padding="same")),
    ("same_2x3_pool_stride_3x2_pads_bottom_only_and_both_sides",
     dict(hw=(7, 5), k=1, h1=3, h2=2, pool=(2, 3), strides=(3, 2), padding="same")),
    ("same_stride_4_larger_than_pool_2",
     dict(hw=(9, 6), k=2, h1=2, h2=2, pool=2, strides=4, padding="same")),
    ("same_3x3_stride_1_keeps_size_symmetric_pad",
     dict(hw=(5, 4), k=2, h1=2, h2=2, pool=3, strides=1, padding="same")),
    ("same_where_no_padding_is_needed",
     dict(hw=(6, 6), k=2, h1=2, h2=2, pool=2, padding="same")),
    ("channels_first_valid_nonsquare",
     dict(hw=(6, 7), k=3, h1=3, h2=2, pool=(3, 2), strides=(2, 2), data_format="channels_first")),
    ("channels_first_same_asymmetric_padding",
     dict(hw=(5, 6), k=2, h1=2, h2=3, pool=(4, 3), strides=(2, 3), padding="same",
          data_format="channels_first")),
    ("batch_1",
     dict(hw=(5, 5), k=2, h1=3, h2=2, pool=(2, 3), strides=(1, 2), batch=1)),
    ("batch_3",
     dict(hw=(5, 5), k=2, h1=3, h2=2, pool=(3, 2), strides=(2, 1), batch=3)),
    ("edgeml_vww_like_6x6_pool_stride_4_h8",
     dict(hw=(9, 9), k=3, h1=4, h2=4, pool=6, strides=3)),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for _, c in GEOMETRY_CASES],
                         ids=[i for i, _ in GEOMETRY_CASES])
def test_layer_matches_reference_for_pool_stride_padding_format_batch(framework, case):
    _, RNNPool2D = framework
    check_layer_against_reference(RNNPool2D, **case, seed=len(str(case)))


@pytest.mark.slow
@pytest.mark.parametrize("gate", ACTS)
@pytest.mark.parametrize("update", ACTS)
def test_layer_matches_reference_for_every_gate_and_update_activation(framework, gate, update):
    _, RNNPool2D = framework
    check_layer_against_reference(RNNPool2D, hw=(5, 5), k=2, h1=3, h2=2, pool=(3, 2),
                                  strides=(2, 3), gate=gate, update=update,
                                  seed=ACTS.index(gate) * 5 + ACTS.index(update))


@pytest.mark.parametrize("ranks", [
    {"rnn1_kernel_rank": 1},
    {"rnn1_recurrent_rank": 2},
    {"rnn2_kernel_rank": 2},
    {"rnn2_recurrent_rank": 1},
    {"rnn1_kernel_rank": 2, "rnn1_recurrent_rank": 2, "rnn2_kernel_rank": 1,
     "rnn2_recurrent_rank": 2},
], ids=["rnn1_kernel", "rnn1_recurrent", "rnn2_kernel", "rnn2_recurrent", "all_four"])
@pytest.mark.slow
def test_layer_matches_reference_with_low_rank_matrix(framework, ranks):
    _, RNNPool2D = framework
    check_layer_against_reference(RNNPool2D, hw=(6, 5), k=3, h1=4, h2=3, pool=(3, 2),
                                  strides=(1, 2), padding="same", ranks=ranks,
                                  seed=sum(ranks.values()) + len(ranks))


@pytest.mark.parametrize("ranks", [
    {},
    {"rnn1_kernel_rank": 2},
    {"rnn1_recurrent_rank": 2},
    {"rnn2_kernel_rank": 2},
    {"rnn2_recurrent_rank": 2},
], ids=["full", "rnn1_kernel", "rnn1_recurrent", "rnn2_kernel", "rnn2_recurrent"])
def test_low_rank_exposes_left_right_factors_and_sets_full_matrix_attribute_to_none(
        framework, ranks):
    _, RNNPool2D = framework
    layer = RNNPool2D(rnn1_units=4, rnn2_units=3, pool_size=2, **ranks)
    layer(np.zeros((1, 4, 4, 3), np.float32))
    shapes = {"rnn1_kernel": (3, 4), "rnn1_recurrent_kernel": (4, 4),
              "rnn2_kernel": (4, 3), "rnn2_recurrent_kernel": (3, 3)}
    for rank_arg, matrix in zip(RANKS, shapes):
        rows, cols = shapes[matrix]
        rank = ranks.get(rank_arg)
        if rank is None:
            assert tuple(getattr(layer, matrix).shape) == (rows, cols)
            assert getattr(layer, matrix + "_left") is None
            assert getattr(layer, matrix + "_right") is None
        else:
            assert getattr(layer, matrix) is None
            assert tuple(getattr(layer, matrix + "_left").shape) == (rows, rank)
            assert tuple(getattr(layer, matrix + "_right").shape) == (rank, cols)
    for prefix, h in (("rnn1_", 4), ("rnn2_", 3)):
        assert tuple(getattr(layer, prefix + "gate_bias").shape) == (h,)
        assert tuple(getattr(layer, prefix + "update_bias").shape) == (h,)
        assert tuple(getattr(layer, prefix + "zeta").shape) == ()
        assert tuple(getattr(layer, prefix + "nu").shape) == ()
    # Every trainable weight is one of the named attributes, and vice versa.
    named = {id(v) for v in layer_variables(layer).values()}
    assert named == {id(v) for v in layer.trainable_weights}
    assert len(named) == 12 + len(ranks)  # each factorised matrix: 1 weight -> 2


def test_default_initialisation_matches_reference(framework):
    """Defaults (biases 1, zeta 100, nu -100) also agree, without randomising."""
    _, RNNPool2D = framework
    layer = RNNPool2D(rnn1_units=3, rnn2_units=2, pool_size=(2, 3), strides=(2, 1))
    x = np.random.default_rng(7).normal(size=(2, 5, 6, 2)).astype(np.float32)
    got = np.asarray(layer(x), np.float64)
    params = layer_params(layer)
    np.testing.assert_allclose(params["rnn1_gate_bias"], 1.0)
    np.testing.assert_allclose(params["rnn2_zeta"], 100.0)
    np.testing.assert_allclose(params["rnn2_nu"], -100.0)
    np.testing.assert_allclose(got, rnnpool_reference(x, params, (2, 3), (2, 1)),
                               rtol=0, atol=ATOL)


def test_data_format_none_means_channels_last(framework):
    keras, RNNPool2D = framework
    assert keras.backend.image_data_format() == "channels_last"
    check_layer_against_reference(RNNPool2D, hw=(4, 5), k=2, h1=2, h2=2, pool=(2, 3),
                                  strides=1, data_format=None, seed=11)



# ---------------------------------------------------------------------------
# Graph mode and unknown dimensions
# ---------------------------------------------------------------------------

GRAPH_CASE = dict(rnn1_units=3, rnn2_units=2, pool_size=(3, 2), strides=(2, 1),
                  padding="same", gate_activation="sigmoid", update_activation="tanh")


def _graph_setup(RNNPool2D, seed, x_shape=(3, 7, 6, 2), **overrides):
    kwargs = dict(GRAPH_CASE, **overrides)
    layer, params = build_random_layer(RNNPool2D, x_shape, seed, **kwargs)
    x = np.random.default_rng(seed).normal(size=x_shape).astype(np.float32)
    want = rnnpool_reference(x, params, kwargs["pool_size"], kwargs["strides"],
                             kwargs["padding"], "channels_last",
                             kwargs["gate_activation"], kwargs["update_activation"])
    return layer, x, want


@pytest.mark.slow
def test_tf_function_graph_output_equals_eager_and_reference(framework):
    _, RNNPool2D = framework
    layer, x, want = _graph_setup(RNNPool2D, seed=21)
    eager = np.asarray(layer(x), np.float64)
    graph = np.asarray(tf.function(lambda t: layer(t))(tf.constant(x)), np.float64)
    np.testing.assert_allclose(graph, eager, rtol=0, atol=1e-6)
    np.testing.assert_allclose(graph, want, rtol=0, atol=ATOL)


@pytest.mark.slow
def test_tf_function_with_unknown_batch_size_traces_once_and_matches_reference(framework):
    _, RNNPool2D = framework
    layer, x, want = _graph_setup(RNNPool2D, seed=22)
    fn = tf.function(lambda t: layer(t),
                     input_signature=[tf.TensorSpec([None, 7, 6, 2], tf.float32)])
    concrete = fn.get_concrete_function()
    assert concrete.outputs[0].shape.as_list() == [None, 4, 6, 8]
    for batch in (1, 3):
        got = np.asarray(fn(tf.constant(x[:batch])), np.float64)
        np.testing.assert_allclose(got, want[:batch], rtol=0, atol=ATOL)
    assert fn.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_tf_function_with_unknown_height_width_matches_reference(framework):
    """[None, None, None, k]: patch count and 'same' padding computed at run time."""
    _, RNNPool2D = framework
    layer, x, want = _graph_setup(RNNPool2D, seed=23)
    fn = tf.function(lambda t: layer(t),
                     input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32)])
    got = np.asarray(fn(tf.constant(x)), np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    # A different spatial size through the same trace.
    x2 = x[:2, :5, :4]
    params = layer_params(layer)
    want2 = rnnpool_reference(x2, params, (3, 2), (2, 1), "same")
    np.testing.assert_allclose(np.asarray(fn(tf.constant(x2)), np.float64), want2,
                               rtol=0, atol=ATOL)


@pytest.mark.slow
def test_functional_model_with_unknown_batch_matches_reference(framework):
    keras, RNNPool2D = framework
    layer, x, want = _graph_setup(RNNPool2D, seed=24)
    inputs = keras.Input(shape=(7, 6, 2))
    model = keras.Model(inputs, layer(inputs))
    assert tuple(model.output_shape) == (None, 4, 6, 8)
    got = np.asarray(model.predict(x, batch_size=2, verbose=0), np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
