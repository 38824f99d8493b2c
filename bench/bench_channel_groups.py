"""TFLM arena of the VWW MobileNetV2-RNNPool (int8, 224x224) with its expansion
convolutions whole and split into channel groups (`convert(...,
split_expansions=False / True)`, converters.conversion.channel_groups).

Two models, each converted both ways (calibrated on random images: memory
does not depend on the weights):
- `vww_mobilenetv2_rnnpool` as it is: the image and the stem convolution's
  output (150,528 + 100,352 B) set the arena, above the first inverted-residual
  block's 188,160 B, so the split has nothing to gain and the file stays as it is.
- a stand-in for the model once the stem is fused into RNNPool: a 3x3 stride-4
  conv (224 -> 56x56x8) and RNNPool (4x4 patches, stride 2, "same": 28x28x32),
  so the head holds the image and 25,088 B (the fused op's 150,528 + 23,328 B
  plus scratch, within 1%), then the same 28x28 stages, last conv and
  classifier. Here the first block sets the arena and is split.
Printed: tflm_arena_bytes, the live bytes of the first block's ops, whether
run_tflite gives identical int8 outputs split and whole, and, with TFLM_ROOT
set (see tests/tflm_build.py), rnnpool_run_model's MicroInterpreter
arena_used_bytes and its bit-exact check against run_tflite. About 6 minutes
on 2 cores.

    python bench/bench_channel_groups.py
"""
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import converters  # noqa: E402
from converters.tflite_io import tflite_model  # noqa: E402
from rnnpool_keras import RNNPool2D  # noqa: E402
from rnnpool_keras.app import zoo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
INPUT_SHAPE = (224, 224, 3)


def fused_stem_stand_in():
    """The VWW RNNPool model with a head of the fused stem's size (module docstring)."""
    inputs = zoo.keras.Input(INPUT_SHAPE, name="image")
    x = zoo._conv_bn(inputs, 8, 3, 4, "stem_conv")
    x = RNNPool2D(8, 8, pool_size=4, strides=2, padding="same", name="rnnpool")(x)
    x = zoo._stages(x, zoo._VWW_RNNPOOL_STAGES, "block")
    x = zoo._conv_bn(x, zoo._VWW_LAST_CHANNELS, 1, 1, "last_conv")
    return zoo.keras.Model(inputs, zoo._classifier(x, 2), name="vww_fused_stem_stand_in")


def _first_block(report):
    """Rows of the operators of the first inverted-residual block (split or not)."""
    block = next(b for b in report["blocks"] if b["kind"] == "mbconv")
    return [report["operators"][i] for i in block["operators"]]


def _tflm_run(binary, model_bytes, image, directory):
    """(arena_used_bytes line, passed) of rnnpool_run_model on one image."""
    import tflm_build

    paths = tflm_build.write_model_case(Path(directory), model_bytes, image)
    result = tflm_build.run([binary, *paths], timeout=1200)
    output = result.stdout + result.stderr
    arena = [line.strip() for line in output.splitlines() if "arena_used_bytes" in line]
    return arena, result.returncode == 0 and "~~~MODEL PASSED~~~" in output


def main():
    sys.path.insert(0, str(REPO / "tests"))
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4,) + INPUT_SHAPE).astype(np.float32)
    test_images = rng.uniform(size=(2,) + INPUT_SHAPE).astype(np.float32)
    binary, workdir = None, tempfile.mkdtemp(prefix="bench_channel_groups_")
    if os.environ.get("TFLM_ROOT"):
        import tflm_build

        binary = tflm_build.build_run_model(Path(workdir))
    for name, builder in (("vww_mobilenetv2_rnnpool", zoo.vww_mobilenetv2_rnnpool),
                          ("fused-stem stand-in", fused_stem_stand_in)):
        model = builder(INPUT_SHAPE) if builder is zoo.vww_mobilenetv2_rnnpool else builder()
        files = {}
        for split in (False, True):
            start = time.perf_counter()
            files[split] = converters.convert(model, quantize="int8", representative_data=images,
                                              split_expansions=split)
            seconds = time.perf_counter() - start
            report = converters.memory_report(files[split])
            live = ", ".join(f"{row['index']} {row['op']} {row['live_bytes']:,}"
                             for row in _first_block(report))
            print(f"{name}, split_expansions={split}: {len(report['operators'])} ops, "
                  f"tflm_arena_bytes {report['tflm_arena_bytes']:,}, peak live "
                  f"{report['peak_live_bytes']:,}, paper convention "
                  f"{report['peak_activation_bytes']:,} B; conversion {seconds:.0f} s")
            print(f"  first block, live bytes per op: {live}")
        same = tflite_model.op_names(files[True]) == tflite_model.op_names(files[False])
        outputs = [converters.run_tflite(files[split], test_images)[0] for split in (False, True)]
        print(f"  ops {'unchanged' if same else 'split'}; run_tflite outputs of both files "
              f"bit-identical: {np.array_equal(*outputs)}")
        if binary is not None:
            for split in (False, True):
                arena, passed = _tflm_run(binary, files[split], test_images[:1],
                                          Path(workdir) / f"{name[:4]}_{split}")
                print(f"  TFLM rnnpool_run_model, split_expansions={split}: "
                      f"{'; '.join(arena)}; bit-exact with run_tflite: {passed}")
        print()


if __name__ == "__main__":
    main()
