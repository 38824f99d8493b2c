"""converters.conversion.channel_groups: expansion convolutions split into
channel groups by `convert` (split_expansions=True), bit-exact, with the
TFLM arena it saves derived by hand.

The model: 32x32x8 -> 3x3 conv stride 2 (8 ch) -> 1x1 expand to 48 ch (+BN,
ReLU6) -> 3x3 depthwise stride 2 (ReLU6) -> 1x1 project to 8 ch. Bytes int8
(float: x 4), every size a multiple of 16 so TFLM's alignment adds nothing:

    input 32x32x8 = 8,192    stem out 16x16x8 = 2,048    expanded 16x16x48 = 12,288
    depthwise out 8x8x48 = 3,072    output 8x8x8 = 512

Unsplit, live per op: stem 10,240, expand 14,336, depthwise 15,360, project
3,584; greedy plan: expanded at 0, depthwise output at 12,288: arena 15,360.
The largest live set outside the pair is the stem's 10,240. With G = 2
(24 channels each: expanded slices 6,144, depthwise slices 1,536) the ops
conv_1, dw_1, conv_2, dw_2, concat hold 8,192, 9,728, 9,728, 9,216, 6,144
(the stem output stays live until conv_2), all <= 10,240, so G = 2. Greedy
plan (largest first; equal sizes last added first, and the pass adds group
2's tensors before group 1's): input, both expanded slices and the depthwise
output at 0 (disjoint lifetimes), the stem output at 8,192, slice 1 of the
depthwise at 6,144, slice 2 at 7,680, the output at 3,072: arena 8,192 +
2,048 = 10,240. TFLM's own planner gives the same.
"""
import numpy as np
import pytest
import tf_keras as keras

import converters
from converters.conversion import channel_groups
from converters.tflite_io import schema
from converters.tflite_io import tflite_model

INT8_ARENA_UNSPLIT, INT8_ARENA_SPLIT = 15_360, 10_240
F32 = 4
SPLIT_OPS = ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
             "CONCATENATION", "CONV_2D"]


def _expansion_model(input_shape=(32, 32, 8)):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(48, 1, use_bias=False)(x)
    x = keras.layers.BatchNormalization(
        beta_initializer="random_normal", gamma_initializer="random_uniform",
        moving_mean_initializer="random_normal", moving_variance_initializer="ones")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same",
                                     bias_initializer="random_normal")(x)
    x = keras.layers.ReLU(6.0)(x)
    return keras.Model(inputs, keras.layers.Conv2D(8, 1)(x))


def _images(shape, count=4, seed=0):
    return np.random.default_rng(seed).standard_normal((count,) + shape).astype(np.float32)


@pytest.fixture(scope="module", params=[None, "int8"], ids=["float", "int8"])
def converted(request):
    """(quantize, unsplit bytes, split bytes) of the expansion model."""
    model = _expansion_model()
    options = {"quantize": request.param}
    if request.param == "int8":
        options["representative_data"] = _images((32, 32, 8))
    return (request.param, converters.convert(model, split_expansions=False, **options),
            converters.convert(model, **options))


def _ops_and_tensors(model_bytes):
    model = tflite_model.load(model_bytes)
    subgraph = model.subgraphs[0]
    return model, subgraph, [tflite_model.op_name(model, op) for op in subgraph.operators]


@pytest.mark.slow
def test_split_model_gives_the_unsplit_outputs_bit_for_bit(converted):
    quantize, unsplit, split = converted
    x = _images((32, 32, 8), count=8, seed=1)
    expected, got = converters.run_tflite(unsplit, x)[0], converters.run_tflite(split, x)[0]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)  # int8 dequantised or float: same bits


@pytest.mark.slow
def test_expansion_becomes_two_conv_depthwise_pairs_and_one_concatenation(converted):
    quantize, unsplit, split = converted
    assert tflite_model.op_names(unsplit) == ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                                              "CONV_2D"]
    model, subgraph, names = _ops_and_tensors(split)
    assert names == SPLIT_OPS
    conv_1, dw_1, conv_2, dw_2, concat = subgraph.operators[1:6]
    tensors = subgraph.tensors
    stem_output = subgraph.operators[0].outputs[0]
    for conv, depthwise in ((conv_1, dw_1), (conv_2, dw_2)):
        assert conv.inputs[0] == stem_output  # each group reads the whole block input
        assert depthwise.inputs[0] == conv.outputs[0]
        assert tflite_model.shape_of(tensors[conv.outputs[0]]) == [1, 16, 16, 24]
        assert tflite_model.shape_of(tensors[conv.inputs[1]]) == [24, 1, 1, 8]
        assert tflite_model.shape_of(tensors[depthwise.inputs[1]]) == [1, 3, 3, 24]
        assert tflite_model.shape_of(tensors[depthwise.outputs[0]]) == [1, 8, 8, 24]
        assert conv.builtinOptions.fusedActivationFunction == \
            schema.ActivationFunctionType.RELU6
        assert depthwise.builtinOptions.strideH == 2
        if quantize == "int8":
            for weights, axis in ((conv.inputs[1], 0), (depthwise.inputs[1], 3)):
                q = tensors[weights].quantization
                assert len(q.scale) == 24 and q.quantizedDimension == axis
    assert list(concat.inputs) == [dw_1.outputs[0], dw_2.outputs[0]]
    assert concat.builtinOptions.axis == 3
    assert concat.builtinOptions.fusedActivationFunction == \
        schema.ActivationFunctionType.NONE
    assert subgraph.operators[6].inputs[0] == concat.outputs[0]
    if quantize == "int8":  # equal quantisation: TFLM's int8 concatenation copies
        for piece in concat.inputs:
            assert tflite_model.quantization_of(tensors[piece]) == \
                tflite_model.quantization_of(tensors[concat.outputs[0]])


@pytest.mark.slow
def test_split_arena_is_the_hand_derived_figure(converted):
    quantize, unsplit, split = converted
    scale = 1 if quantize == "int8" else F32
    before, after = converters.memory_report(unsplit), converters.memory_report(split)
    assert before["tflm_arena_bytes"] == INT8_ARENA_UNSPLIT * scale
    assert after["tflm_arena_bytes"] == INT8_ARENA_SPLIT * scale
    assert [row["live_bytes"] for row in before["operators"]] == \
        [scale * b for b in (10_240, 14_336, 15_360, 3_584)]
    assert [row["live_bytes"] for row in after["operators"]] == \
        [scale * b for b in (10_240, 8_192, 9_728, 9_728, 9_216, 6_144, 3_584)]


@pytest.mark.slow
def test_split_arena_equals_tflm_own_planner(converted, capfd):
    """TFLM's recording allocator (the tflite_micro Python interpreter) plans
    the split builtin-only model to the same head as memory_report."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    import re

    quantize, _, split = converted
    interpreter = runtime.Interpreter.from_bytes(split, arena_size=1 << 20)
    capfd.readouterr()
    interpreter.print_allocations()
    printed = capfd.readouterr().err
    head = int(re.search(r"Arena allocation head (\d+) bytes", printed).group(1))
    assert head == converters.memory_report(split)["tflm_arena_bytes"]


@pytest.mark.slow
def test_paper_convention_sees_the_split_pair_as_the_same_mbconv_block(converted):
    _, unsplit, split = converted
    before, after = converters.memory_report(unsplit), converters.memory_report(split)
    strip = [{k: v for k, v in block.items() if k != "operators"} for block in before["blocks"]]
    assert [{k: v for k, v in block.items() if k != "operators"}
            for block in after["blocks"]] == strip
    assert [block["kind"] for block in after["blocks"]] == ["layer", "mbconv"]
    assert after["blocks"][1]["operators"] == [1, 2, 3, 4, 5, 6]
    assert after["peak_activation_bytes"] == before["peak_activation_bytes"]


@pytest.mark.slow
def test_model_whose_head_sets_the_arena_is_returned_unchanged():
    """32x32x32 input (32,768 B) + stem output: 34,816 B live, above the pair's
    15,360: splitting cannot shrink the arena, so nothing is split."""
    model = _expansion_model((32, 32, 32))
    x = _images((32, 32, 32))
    model_bytes = converters.convert(model, quantize="int8", representative_data=x,
                                     split_expansions=False)
    assert channel_groups.split_expansions(model_bytes) == model_bytes
    assert tflite_model.op_names(converters.convert(
        model, quantize="int8", representative_data=x)) == tflite_model.op_names(model_bytes)


@pytest.mark.slow
def test_pass_is_idempotent_and_max_groups_1_splits_nothing(converted):
    _, unsplit, split = converted
    assert channel_groups.split_expansions(unsplit, max_groups=1) == unsplit
    again = channel_groups.split_expansions(unsplit)  # what convert did
    assert tflite_model.op_names(again) == SPLIT_OPS
    assert converters.memory_report(again)["tflm_arena_bytes"] == \
        converters.memory_report(split)["tflm_arena_bytes"]
    assert channel_groups.split_expansions(split) == split  # nothing left to split


@pytest.mark.parametrize("value", ["yes", 1, None, 0.0])
def test_convert_rejects_a_split_expansions_that_is_not_a_bool(value):
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    with pytest.raises(TypeError, match="split_expansions must be True .* or False"):
        converters.convert(model, split_expansions=value)


@pytest.mark.parametrize("max_groups, error", [(0, ValueError), (-3, ValueError),
                                               (2.0, TypeError), (True, TypeError),
                                               ("4", TypeError)])
def test_split_expansions_rejects_a_bad_max_groups(max_groups, error):
    with pytest.raises(error, match="max_groups"):
        channel_groups.split_expansions(b"\0" * 8, max_groups=max_groups)


def test_split_expansions_rejects_what_is_not_a_tflite_model():
    with pytest.raises(TypeError, match="model_bytes"):
        channel_groups.split_expansions("model.tflite")
    with pytest.raises(ValueError, match="model_bytes"):
        channel_groups.split_expansions(b"not a flatbuffer")
