"""converters.memory_report: RAM, MAdds and parameters of .tflite models.

Expected figures are derived by hand from the layer shapes (bytes = values x
4 for float32, x 1 for int8; TFLM rounds each buffer up to 16 bytes). The
arena planner is also checked against TFLM itself (the tflite_micro Python
interpreter's recorded head usage) on builtin-only models, including one
where greedy placement leaves a gap, so the figure is the planner's, not a
lower bound. The paper's VWW figures (Section 5.2; Appendix E) are met
within 5% on the paper's own networks from rnnpool_keras.app.zoo.
"""
import json
import re
import sys

import numpy as np
import pytest
import tf_keras as keras

import converters
from converters.analysis import memory_plan
from converters.conversion import channel_groups
from converters.tflite_io import tflite_model
from converters.analysis.memory import format_table, memory_report, plot_memory
from rnnpool_keras import RNNPool2D

# Trains, converts or compiles: deselected by -m "not slow".
pytestmark = pytest.mark.slow

F32 = 4  # bytes per float32 value
PAPER_TOLERANCE = 0.05
KB = 1024  # the paper's kilobyte: 80 x 60 x 48 bytes is its "225 KB"


def _convert(inputs, outputs, **kwargs):
    return converters.convert(keras.Model(inputs, outputs), **kwargs)


def _tflm_planned_bytes(model_bytes, capfd):
    """The arena head (planned tensors + scratch) TFLM reports for a model."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=16 << 20)
    capfd.readouterr()
    interpreter.print_allocations()  # RecordingMicroAllocator, printed by C++ to stderr
    printed = capfd.readouterr().err
    return int(re.search(r"Arena allocation head (\d+) bytes", printed).group(1))


# -- models ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv_conv():
    """5x5x1 -> 3x3 conv (3 filters, same) -> 1x1 conv (2 filters), float, no biases."""
    inputs = keras.Input((5, 5, 1))
    x = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)(inputs)
    outputs = keras.layers.Conv2D(2, 1, use_bias=False)(x)
    return _convert(inputs, outputs)


@pytest.fixture(scope="module")
def dense_chain():
    """23 -> 15 -> 11 -> 19 floats: sizes 92, 60, 44, 76 B, aligned 96, 64, 48, 80."""
    inputs = keras.Input((23,))
    x = keras.layers.Dense(15, use_bias=False)(inputs)
    x = keras.layers.Dense(11, use_bias=False)(x)
    outputs = keras.layers.Dense(19, use_bias=False)(x)
    return _convert(inputs, outputs)


@pytest.fixture(scope="module")
def int8_mean():
    """int8 3x3x8 -> 3x3 conv to 1x1x64 -> global mean (64) -> dense 2."""
    inputs = keras.Input((3, 3, 8))
    x = keras.layers.Conv2D(64, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)
    data = np.random.default_rng(0).uniform(size=(8, 3, 3, 8)).astype(np.float32)
    return _convert(inputs, outputs, quantize="int8", representative_data=data)


@pytest.fixture(scope="module")
def rnnpool_only():
    """10x10x2 image -> RNNPool 4x4 patches, stride 2, h1=3, h2=2 -> 4x4x8, float."""
    inputs = keras.Input((10, 10, 2))
    return _convert(inputs, RNNPool2D(3, 2, pool_size=4, strides=2)(inputs))


def _stem_rnnpool(fuse_stem):
    """9x9x1 -> 3x3 stride-2 conv (4) -> RNNPool 2x2/2 (h1=h2=2) -> 1x1 conv (3)."""
    inputs = keras.Input((9, 9, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, use_bias=False)(inputs)
    x = RNNPool2D(2, 2, pool_size=2, strides=2)(x)
    outputs = keras.layers.Conv2D(3, 1, use_bias=False)(x)
    return _convert(inputs, outputs, fuse_stem=fuse_stem)


@pytest.fixture(scope="module")
def stem_rnnpool():
    """_stem_rnnpool with the conv and RNNPool as two ops."""
    return _stem_rnnpool(fuse_stem=False)


@pytest.fixture(scope="module")
def two_mbconvs():
    """8x8x4 -> MBConv t=3 stride 1 with residual -> MBConv t=3 stride 2 to 6 -> GAP
    -> dense 2. The strided depthwise is padded by an explicit PAD, as in the
    paper's models."""
    inputs = keras.Input((8, 8, 4))
    y = keras.layers.Conv2D(12, 1, use_bias=False)(inputs)
    y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
    y = keras.layers.Conv2D(4, 1, use_bias=False)(y)
    x = keras.layers.Add()([inputs, y])
    y = keras.layers.Conv2D(12, 1, use_bias=False)(x)
    y = keras.layers.ZeroPadding2D(1)(y)
    y = keras.layers.DepthwiseConv2D(3, strides=2, use_bias=False)(y)
    x = keras.layers.Conv2D(6, 1, use_bias=False)(y)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _convert(inputs, keras.layers.Dense(2, use_bias=False)(x))


# -- the planner ------------------------------------------------------------------------

def test_greedy_planner_places_equal_sizes_last_added_first():
    # TFLM lists online buffers from the tail before its stable sort by size.
    buffers = [memory_plan.Buffer(16, 0, 1), memory_plan.Buffer(16, 1, 2)]
    assert memory_plan.greedy_offsets(buffers) == [16, 0]


def test_greedy_planner_places_largest_first_in_the_lowest_gap_that_fits():
    # Added in this order; placed P(50), S(45), Q(40), R(30). S shares P's offset
    # (never live together); R cannot use the 5-byte gap between S and Q.
    buffers = [memory_plan.Buffer(50, 0, 1), memory_plan.Buffer(40, 1, 2),
               memory_plan.Buffer(30, 2, 3), memory_plan.Buffer(45, 3, 4)]
    assert memory_plan.greedy_offsets(buffers) == [0, 50, 90, 0]
    assert memory_plan.arena_bytes(buffers) == 120  # more than the 90 ever live at once


def test_planner_rounds_every_buffer_up_to_16_bytes():
    assert [memory_plan.align(n) for n in (0, 1, 16, 17, 300)] == [0, 16, 16, 32, 304]


def test_lifetimes_run_from_the_writing_op_to_the_last_reader(conv_conv):
    subgraph = tflite_model.load(conv_conv).subgraphs[0]
    image, middle, output = (int(subgraph.inputs[0]), int(subgraph.operators[0].outputs[0]),
                             int(subgraph.outputs[0]))
    lifetimes = memory_plan.tensor_lifetimes(subgraph, {image, middle, output})
    assert lifetimes == {image: (0, 1), middle: (1, 2), output: (2, 2)}


# -- per-operator table, arena and MAdds by hand -------------------------------------------

def test_conv_conv_table_arena_and_madds_by_hand(conv_conv):
    report = memory_report(conv_conv)
    rows = report["operators"]
    assert [row["op"] for row in rows] == ["CONV_2D", "CONV_2D"]
    assert [row["output_shapes"] for row in rows] == [[[1, 5, 5, 3]], [[1, 5, 5, 2]]]
    # 100 B image + 300 B middle map; then 300 B middle + 200 B output.
    assert [row["live_bytes"] for row in rows] == [400, 500]
    assert [row["scratch_bytes"] for row in rows] == [0, 0]
    # 25 positions x 3 filters x 3x3x1; 25 positions x 2 filters x 1x1x3.
    assert [row["madds"] for row in rows] == [675, 150]
    assert report["total_madds"] == 825
    # The two largest tensors live together: 304 + 208 after alignment.
    assert report["tflm_arena_bytes"] == 512
    assert report["peak_live_bytes"] == 500
    # Weights, and the zero biases the converter gives every TFLite CONV_2D.
    assert report["parameter_bytes"] == (27 + 3 + 6 + 2) * F32
    assert report["model_bytes"] == len(conv_conv)
    assert report["activation_types"] == ["float32"]
    assert report["rnnpool_ops"] == []


def test_fully_connected_madds_and_a_fragmented_arena_by_hand(dense_chain):
    report = memory_report(dense_chain)
    assert [row["madds"] for row in report["operators"]] == [23 * 15, 15 * 11, 11 * 19]
    assert report["parameter_bytes"] == (23 * 15 + 15 * 11 + 11 * 19) * F32
    # Placed 96 (input), 80 (output), 64, 48: the output shares the input's
    # offset, the 64 B map goes above the input, and the 48 B map fits neither
    # the 16 B gap under it nor anywhere below 160: 96 + 64 + 48.
    assert report["tflm_arena_bytes"] == 208
    assert report["peak_live_bytes"] == 92 + 60


def test_depthwise_and_mbconv_blocks_by_hand(two_mbconvs):
    report = memory_report(two_mbconvs)
    names = [row["op"] for row in report["operators"]]
    assert names == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "CONV_2D", "PAD",
                     "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED"]
    assert [row["madds"] for row in report["operators"]] == [
        64 * 12 * 4, 64 * 12 * 9, 64 * 4 * 12, 0,   # stride 1 on 8x8
        64 * 12 * 4, 0, 16 * 12 * 9, 16 * 6 * 12,  # stride 2 to 4x4
        0, 6 * 2]
    # MEAN (float) asks for one int per input dimension and one per reduced axis.
    assert report["operators"][8]["scratch_bytes"] == 4 * 4 + 4 * 2
    blocks = report["blocks"]
    assert [(b["kind"], b["operators"]) for b in blocks] == [
        ("mbconv", [0, 1, 2, 3]), ("mbconv", [4, 5, 6, 7]), ("layer", [8]), ("layer", [9])]
    # Input and output whole, plus (3 - stride) rows of the 8-wide, 12-channel
    # expanded map: 1024 + 1024 + 2*8*12*4, then 1024 + 4*4*6*4 + 1*8*12*4.
    assert [(b["input_bytes"], b["output_bytes"], b["extra_bytes"]) for b in blocks[:2]] \
        == [(1024, 1024, 768), (1024, 384, 384)]
    assert [b["bytes"] for b in blocks] == [2816, 1792, 384 + 24 + 24, 24 + 8]
    assert report["peak_activation_bytes"] == 2816 and report["peak_block"] == 0
    assert [row["block"] for row in report["operators"]] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 3]


def test_live_bytes_at_an_rnnpool_op_are_input_output_and_kernel_scratch(rnnpool_only):
    from tflm_kernels import core

    report = memory_report(rnnpool_only)
    (row,) = report["operators"]
    scratch = core.scratch_bytes_float(2, 3, 2, (4, 4))
    assert scratch > 0
    assert row["op"] == "RNNPool" and row["output_shapes"] == [[1, 4, 4, 8]]
    assert row["live_bytes"] == 10 * 10 * 2 * F32 + 4 * 4 * 8 * F32  # 800 + 512
    assert row["scratch_bytes"] == scratch
    # All three live at once; 800 and 512 are already multiples of 16.
    assert report["tflm_arena_bytes"] == 800 + 512 + memory_plan.align(scratch)
    # 16 patches x (2*4*4*(2*3 + 3*3) + 2*(4 + 4)*(3*2 + 2*2)) = 16 x 640.
    assert row["madds"] == 10240
    (op,) = report["rnnpool_ops"]
    assert op == {"index": 0, "input_shape": [1, 10, 10, 2], "output_shape": [1, 4, 4, 8],
                  "pool_size": [4, 4], "strides": [2, 2], "padding": "valid",
                  "in_channels": 2, "rnn1_units": 3, "rnn2_units": 2, "patches": 16,
                  "type": "float32", "madds": 10240, "scratch_bytes": scratch}
    # Paper convention: the image is read one 4x4x2 patch at a time.
    (block,) = report["blocks"]
    assert (block["kind"], block["input_bytes"], block["output_bytes"], block["extra_bytes"]) \
        == ("rnnpool", 0, 512, 4 * 4 * 2 * F32 + scratch)


def test_rnnpool_block_runs_its_stem_patch_by_patch_from_the_image(stem_rnnpool):
    from tflm_kernels import core

    report = memory_report(stem_rnnpool)
    assert [row["op"] for row in report["operators"]] == ["CONV_2D", "RNNPool", "CONV_2D"]
    # 4x4 positions x 4 filters x 3x3x1; 4 patches x (2*2*2*(4*2 + 2*2) + 2*4*(2*2 + 2*2));
    # 2x2 positions x 3 filters x 8.
    assert [row["madds"] for row in report["operators"]] == [576, 640, 96]
    scratch = core.scratch_bytes_float(4, 2, 2, (2, 2))
    rnnpool_block, last = report["blocks"]
    assert rnnpool_block["kind"] == "rnnpool" and rnnpool_block["operators"] == [0, 1]
    # Output 2x2x8 floats; per patch a 2x2x4 window of the conv output and the
    # (2-1)*2 + 3 = 5 x 5 x 1 window of the image it comes from, plus scratch.
    assert rnnpool_block["input_bytes"] == 0
    assert rnnpool_block["output_bytes"] == 128
    assert rnnpool_block["extra_bytes"] == 64 + 100 + scratch
    assert (last["kind"], last["bytes"]) == ("layer", 128 + 48)
    # Layer by layer TFLM holds the image and the whole conv output.
    assert report["operators"][0]["live_bytes"] == 9 * 9 * F32 + 4 * 4 * 4 * F32


def test_fused_stem_rnnpool_op_holds_the_image_and_a_band_of_conv_rows():
    from tflm_kernels import core

    report = memory_report(_stem_rnnpool(fuse_stem=True))
    assert [row["op"] for row in report["operators"]] == ["RNNPool", "CONV_2D"]
    # The fused op counts its convolution once: 576 + 640, as the two ops.
    assert [row["madds"] for row in report["operators"]] == [576 + 640, 96]
    # Scratch: RNNPool's plus 2 rows (pool_h) of the 4-wide, 4-channel conv
    # output, 2 * 4 * 4 floats = 128 B.
    scratch = core.scratch_bytes_float(4, 2, 2, (2, 2)) + 128
    row = report["operators"][0]
    assert row["scratch_bytes"] == scratch
    # Live: the image and the output; the conv output map is gone.
    assert row["live_bytes"] == 9 * 9 * F32 + 2 * 2 * 8 * F32
    (op,) = report["rnnpool_ops"]
    assert op["input_shape"] == [1, 9, 9, 1]
    assert op["stem"] == {"kernel_size": [3, 3], "strides": [2, 2], "output_shape": [1, 4, 4, 4]}
    # Paper convention: as unfused, the image's 5x5 window per patch; the
    # conv rows are the band in the scratch.
    rnnpool_block = report["blocks"][0]
    assert rnnpool_block["operators"] == [0]
    assert (rnnpool_block["input_bytes"], rnnpool_block["output_bytes"],
            rnnpool_block["extra_bytes"]) == (0, 128, 100 + scratch)


# -- the planner against TFLM -------------------------------------------------------------

def test_arena_matches_tflm_for_two_convolutions(conv_conv, capfd):
    assert _tflm_planned_bytes(conv_conv, capfd) == memory_report(conv_conv)["tflm_arena_bytes"]


def test_arena_matches_tflm_where_greedy_placement_leaves_a_gap(dense_chain, capfd):
    assert _tflm_planned_bytes(dense_chain, capfd) == 208


def test_arena_matches_tflm_with_the_int8_mean_accumulator_scratch(int8_mean, capfd):
    report = memory_report(int8_mean)
    mean = report["operators"][1]
    assert mean["op"] == "MEAN"
    # int32 accumulator per output, one int per input dimension and per axis.
    assert mean["scratch_bytes"] == 64 * 4 + 4 * 4 + 2 * 4
    # At MEAN: 64 B conv output, 64 B mean, 256 + 16 + 16 B aligned scratch.
    assert report["tflm_arena_bytes"] == 64 + 64 + 256 + 16 + 16
    assert _tflm_planned_bytes(int8_mean, capfd) == 416


# -- output formats ----------------------------------------------------------------------

def test_report_is_json_ready(stem_rnnpool):
    report = memory_report(stem_rnnpool)
    assert json.loads(json.dumps(report)) == report


def test_format_table_has_a_row_per_operator_and_the_totals(stem_rnnpool):
    report = memory_report(stem_rnnpool)
    text = format_table(report)
    lines = text.splitlines()
    assert lines[0].startswith("| # | operator | output shape | live KB | scratch B | MAdds")
    assert lines[2].startswith("| 0 | CONV_2D | 1x4x4x4 | 0.57 | 0 | 576 | 0 rnnpool")
    assert lines[3].startswith("| 1 | RNNPool | 1x2x2x8 |")
    assert lines[4].startswith("| 2 | CONV_2D | 1x2x2x3 |")
    assert f"{report['peak_activation_bytes']:,} B" in text
    assert f"TFLM planned arena: {report['tflm_arena_bytes']:,} B" in text
    assert "MAdds: 1,312" in text
    assert "RNNPool op 1 (float32): 2x2 patches, stride 2x2, k=4, h1=2, h2=2" in text


def test_plot_memory_writes_a_png_of_two_models(conv_conv, stem_rnnpool, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "memory.png"
    plot_memory([memory_report(conv_conv), memory_report(stem_rnnpool)], path,
                labels=["conv", "rnnpool"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_memory_without_matplotlib_says_how_to_install_it(conv_conv, tmp_path,
                                                               monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends",
                 "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import` fail
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_memory(memory_report(conv_conv), tmp_path / "memory.png")


# -- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, error", [("model.tflite", TypeError), (None, TypeError),
                                          (b"not a flatbuffer", ValueError)])
def test_memory_report_rejects_what_is_not_a_tflite_model(value, error):
    with pytest.raises(error, match="model_bytes"):
        memory_report(value)


def test_format_table_rejects_what_is_not_a_report():
    with pytest.raises(TypeError, match="report"):
        format_table([])
    with pytest.raises(ValueError, match="report"):
        format_table({"operators": []})


@pytest.mark.parametrize("call, error, word", [
    (lambda r, p: plot_memory([r, r, r], p), ValueError, "reports"),
    (lambda r, p: plot_memory("report", p), TypeError, "reports"),
    (lambda r, p: plot_memory(r, 3), TypeError, "path"),
    (lambda r, p: plot_memory([r, r], p, labels=["one"]), ValueError, "labels"),
])
def test_plot_memory_rejects_bad_arguments(conv_conv, tmp_path, call, error, word):
    with pytest.raises(error, match=word):
        call(memory_report(conv_conv), tmp_path / "memory.png")


# -- the paper's Visual Wake Words models -------------------------------------------------

@pytest.fixture(scope="module")
def vww_models():
    """rnnpool_keras.app.zoo, skipping when it is not there (written separately)."""
    models = pytest.importorskip("rnnpool_keras.app.zoo")
    if not hasattr(models, "vww_mobilenetv2_rnnpool"):
        pytest.skip("rnnpool_keras.app.zoo has no VWW builders yet")
    return models


@pytest.fixture(scope="module")
def vww(vww_models):
    """(Keras model, float .tflite as convert writes it, the same with every op
    whole) of the paper's baseline and RNNPool VWW networks.

    Float conversion keeps the tests quick; every activation is then 4 bytes,
    so a figure / 4 is the int8 figure the paper quotes (bench/bench_memory.py
    converts to int8 as well and prints both). Each network is converted once,
    with split_expansions=False; convert's default file is that file through
    channel_groups.split_expansions, which is what convert does
    (test_channel_groups.py: test_pass_is_idempotent_and_max_groups_1_splits_nothing)."""
    models = vww_models
    built = {"baseline": models.vww_mobilenetv2(),
             "rnnpool": models.vww_mobilenetv2_rnnpool()}
    files = {}
    for name, model in built.items():
        whole = converters.convert(model, split_expansions=False)
        files[name] = (model, channel_groups.split_expansions(whole), whole)
    return files


@pytest.mark.parametrize("name, hand_bytes, paper_kb", [
    # Image + first conv output: 224*224*3 + 112*112*8 ("250 KB", Section 5.2).
    ("baseline", 150528 + 100352, 250.0),
    # First MBConv after RNNPool: 28x28x32 in, 14x14x24 out, one 28-wide row of
    # the 192-channel expanded map (33.68 KB, Section 5.2).
    ("rnnpool", 25088 + 4704 + 28 * 192, 33.68),
])
def test_vww_peak_ram_by_the_paper_convention_is_the_papers(vww, name, hand_bytes, paper_kb):
    report = memory_report(vww[name][1])
    int8_bytes = report["peak_activation_bytes"] // F32
    assert int8_bytes * F32 == report["peak_activation_bytes"]
    assert int8_bytes == hand_bytes
    assert abs(int8_bytes / KB - paper_kb) <= PAPER_TOLERANCE * paper_kb


def test_vww_rnnpool_model_has_one_rnnpool_op_of_729_patches(vww):
    (op,) = memory_report(vww["rnnpool"][1])["rnnpool_ops"]
    # The fused form: the op reads the image and computes its 3x3 stride-2
    # convolution to 112x112x8 itself (112 * 112 * 8 * 27 MAdds).
    assert (op["input_shape"], op["output_shape"]) == ([1, 224, 224, 3], [1, 27, 27, 32])
    assert op["stem"]["output_shape"] == [1, 112, 112, 8]
    assert (op["patches"], op["madds"]) == (729, 729 * 12288 + 112 * 112 * 8 * 27)


@pytest.mark.parametrize("name", ["baseline", "rnnpool"])
def test_vww_madds_of_the_graph_equal_those_of_the_keras_model(vww, vww_models, name):
    model, model_bytes, _ = vww[name]
    assert memory_report(model_bytes)["total_madds"] == vww_models.count_madds(model)


def test_vww_baseline_arena_matches_tflm(vww, capfd):
    _, split_bytes, model_bytes = vww["baseline"]
    report = memory_report(model_bytes)
    assert _tflm_planned_bytes(model_bytes, capfd) == report["tflm_arena_bytes"]
    # Layer by layer, nothing like the paper's 250 KB: the first strided
    # block's 112x112x48 expanded map and the 56x56x48 depthwise output made
    # from it are live together (float32: 4 bytes each).
    assert report["tflm_arena_bytes"] == 4 * (112 * 112 * 48 + 56 * 56 * 48)
    # convert's default splits such expansions into channel groups: TFLM
    # plans the split file as the planner here does, and smaller.
    split = memory_report(split_bytes)
    assert _tflm_planned_bytes(split_bytes, capfd) == split["tflm_arena_bytes"]
    assert split["tflm_arena_bytes"] < report["tflm_arena_bytes"]
