"""Whole VWW inference on an emulated Cortex-M4: MobileNetV2-RNNPool against
MobileNetV2, int8, 224x224, TFLM with CMSIS-NN.

Converts `rnnpool_keras.app.zoo.vww_mobilenetv2_rnnpool` and
`zoo.vww_mobilenetv2` to int8 with `converters.convert`'s defaults (the stem
convolution fused into the RNNPool op, expansion convolutions split into
channel groups where that shrinks the arena) and the variants of VARIANTS
(random weights, seeded, calibrated on a few random images; the counts depend
on the weights by about 0.01%), builds
`tflm_kernels/tflm/rnnpool_run_model.cc` for the board
(`-DRNNPOOL_RUN_MODEL_ON_BOARD`) with the RNNPool kernel against a TFLM library
built for `cortex_m_generic` Cortex-M4F with CMSIS-NN, runs each model once on
QEMU's `mps2-an386` (`tflm_kernels/cortex_m`: start-up, `mps2_4m.ld`, files
through semihosting), and prints per model the executed instructions of one
Invoke and of its RNNPool ops (counted by `insn_count_plugin.c` between the
program's markers, one QEMU run each: instructions, not cycles), the ratio to
the baseline, MicroInterpreter's `arena_used_bytes`, and whether the int8
output equals `converters.run_tflite`'s bit for bit.

Build the library once in a tflite-micro checkout (about 25 minutes on 2
cores; Debian's `gcc-arm-none-eabi` via TARGET_TOOLCHAIN_ROOT, else the
Makefile downloads Arm's toolchain; it also downloads CMSIS_6, Cortex_DFP and
CMSIS-NN into tensorflow/lite/micro/tools/make/downloads/ unless the `cmsis`
and `cmsis_nn` folders are already there):

    make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic \\
        TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn \\
        TARGET_TOOLCHAIN_ROOT=/usr/bin/ -j2 microlite

It writes gen/cortex_m_generic_cortex-m4+fp_default_cmsis_nn_gcc/lib/
libtensorflow-microlite.a. Then, from this repository's root:

    TFLM_ROOT=/path/to/tflite-micro \\
    TFLM_M4_LIB=$TFLM_ROOT/gen/cortex_m_generic_cortex-m4+fp_default_cmsis_nn_gcc/lib/libtensorflow-microlite.a \\
    python bench/bench_model_m4.py [--keep DIR]

TFLM_M4_LIB defaults to that path. Needs arm-none-eabi-g++ and
qemu-system-arm (tflm_kernels/cortex_m/README.md). About 15 minutes on 2
cores, nearly all of it the five conversions (--variants picks the converter
settings); each QEMU run takes about a second.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
import tflm_build  # noqa: E402  (tests/tflm_build.py: the board build, the expected outputs)
from tflm_kernels.cortex_m import emulator  # noqa: E402

TARGET = "cortex-m4"
INPUT_SHAPE = (224, 224, 3)
MODELS = ("vww_mobilenetv2_rnnpool", "vww_mobilenetv2")  # the first is measured against the second
# converters.convert's keyword arguments per variant: its defaults; the
# expansion convolutions kept whole (the split, made for the arena, applies to
# both models and costs instructions); the stem convolution left to CMSIS-NN's
# CONV_2D (not fused into RNNPool; the baseline, without RNNPool, is the
# defaults' file).
VARIANTS = {"defaults": {}, "split_expansions=False": {"split_expansions": False},
            "fuse_stem=False": {"fuse_stem": False}}
SAME_BASELINE = {"fuse_stem=False"}


def convert_models(workdir, variants, calibration_images, seed):
    """Case folders (model.tflite, input.bin, expected.bin) by (model, variant)."""
    import numpy as np
    import tf_keras

    import converters
    from rnnpool_keras.app import zoo

    rng = np.random.default_rng(seed)
    calibration = [rng.uniform(size=(1,) + INPUT_SHAPE).astype(np.float32)
                   for _ in range(calibration_images)]
    image = rng.uniform(size=(1,) + INPUT_SHAPE).astype(np.float32)
    folders = {}
    for variant in variants:
        for name in MODELS:
            if variant in SAME_BASELINE and name == MODELS[1]:
                continue  # the ratio uses the defaults' baseline
            started = time.time()
            tf_keras.utils.set_random_seed(seed)  # the weights: counts depend on them slightly
            model = getattr(zoo, name)(input_shape=INPUT_SHAPE)
            model_bytes = converters.convert(model, quantize="int8",
                                             representative_data=calibration,
                                             **VARIANTS[variant])
            folder = Path(workdir) / f"{name}_{len(folders)}"
            tflm_build.write_model_case(folder, model_bytes, image)
            folders[name, variant] = folder
            print(f"converted {name} ({variant}): {len(model_bytes):,} B in "
                  f"{time.time() - started:.0f} s", file=sys.stderr)
    return folders


def baseline_of(results, variant):
    """The baseline's row a variant is measured against."""
    return results[MODELS[1], "defaults" if variant in SAME_BASELINE else variant]


def run_on_board(elf, folder, plugin):
    """One model on the emulated M4: a dict of the measured figures."""
    args = ["model.tflite", "input.bin", "expected.bin"]
    status, text, invoke = emulator.run(TARGET, elf, args, cwd=folder, plugin=plugin)
    _, _, rnnpool = emulator.run(TARGET, elf, args, cwd=folder, plugin=plugin,
                                 markers=("RnnPoolOpBegin", "RnnPoolOpEnd"))
    arena = re.search(r"MicroInterpreter arena_used_bytes: (\d+)", text)
    operators = re.search(r"operators: (\d+)", text)
    mismatches = re.search(r"output 0: .* (\d+) mismatches", text)
    if invoke is None or arena is None:
        print(text, file=sys.stderr)
        raise RuntimeError(f"{folder.name} did not run on the board (exit status {status})")
    return {"instructions": invoke, "rnnpool": rnnpool, "arena": int(arena.group(1)),
            "operators": int(operators.group(1)) if operators else None,
            "model_bytes": (folder / "model.tflite").stat().st_size,
            "mismatches": int(mismatches.group(1)) if mismatches else None,
            "bit_exact": status == 0 and "~~~MODEL PASSED~~~" in text}


def print_table(results):
    """Markdown: one row per (model, variant), the ratio to the baseline of its variant."""
    print("| model | convert(...) | ops | model B | instructions per inference "
          "| x MobileNetV2 | of which the RNNPool op | arena_used_bytes "
          "| bit-exact with run_tflite |")
    print("|---|---|--:|--:|--:|--:|--:|--:|---|")
    for (name, variant), r in results.items():
        baseline = baseline_of(results, variant)["instructions"]
        share = (f"{r['rnnpool']:,} ({r['rnnpool'] / r['instructions']:.1%})"
                 if r["rnnpool"] else "-")
        exact = "yes" if r["bit_exact"] else f"NO ({r['mismatches']} mismatches)"
        print(f"| `{name}` | {variant} | {r['operators']} | {r['model_bytes']:,} "
              f"| {r['instructions']:,} | {r['instructions'] / baseline:.3f} | {share} "
              f"| {r['arena']:,} | {exact} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="write the models, cases and program here (kept)")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS),
                        default=tuple(VARIANTS), help="converter settings to measure")
    parser.add_argument("--calibration-images", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if any(v in SAME_BASELINE for v in args.variants) and "defaults" not in args.variants:
        args.variants = ["defaults", *args.variants]
    missing = tflm_build.m4_missing()
    if missing:
        sys.exit(missing)
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="bench_model_m4_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        elf = tflm_build.build_run_model_m4(workdir)
    except subprocess.CalledProcessError as error:
        sys.exit(f"building rnnpool_run_model for the M4 failed:\n{error.stderr}")
    plugin = emulator.build_plugin(workdir)
    folders = convert_models(workdir, args.variants, args.calibration_images, args.seed)
    results = {key: run_on_board(elf, folder, plugin) for key, folder in folders.items()}
    print(f"TFLM library: {tflm_build.m4_library()[1]}")
    print(f"Program: {elf.name}, {emulator.text_bytes(elf):,} B .text; QEMU {TARGET} "
          f"({emulator.TARGETS[TARGET][0]}), executed instructions (not cycles) of one Invoke\n")
    print_table(results)
    for variant in args.variants:
        ratio = (results[MODELS[0], variant]["instructions"]
                 / baseline_of(results, variant)["instructions"])
        print(f"\n{variant}: MobileNetV2-RNNPool / MobileNetV2 = {ratio:.3f} "
              "(issue 20's target: <= 0.7)", end="")
    exact = all(r["bit_exact"] for r in results.values())
    print(f"\nAll bit-exact with run_tflite: {'yes' if exact else 'NO'}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
