"""TFLM arena of the deployable VWW MobileNetV2-RNNPool (int8, 224x224), by
converter form: the stem convolution fused into the RNNPool op or not
(`convert(..., fuse_stem=)`, converters.conversion.stem_fusion) and expansion
convolutions split into channel groups or not (`split_expansions=`,
converters.conversion.channel_groups). Issue 15's target: MicroInterpreter
arena_used_bytes <= 240,000.

One Keras model (random weights; calibrated on random images: memory does not
depend on the weights), converted three ways. Printed per form: operators,
memory_report's tflm_arena_bytes and the operator that sets it, the outputs
of run_tflite against the unfused file's (identical bytes expected), and with
TFLM_ROOT set (see tests/tflm_build.py) rnnpool_run_model's MicroInterpreter
arena_used_bytes, the RecordingMicroAllocator's head / tail, and its bit-exact
check against run_tflite. Then what else would shrink the arena, from the same
planner: the image kept outside the arena (a camera buffer), and the baseline
MobileNetV2 split and whole. About 8 minutes on 2 cores.

    TFLM_ROOT=/path/to/tflite-micro python bench/bench_vww_arena.py
"""
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import converters  # noqa: E402
from converters.analysis import memory_plan, op_costs  # noqa: E402
from converters.tflite_io import tflite_model  # noqa: E402
from rnnpool_keras.app import zoo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
INPUT_SHAPE = (224, 224, 3)
FORMS = (("unfused, whole", dict(fuse_stem=False, split_expansions=False)),
         ("stem fused", dict(fuse_stem=True, split_expansions=False)),
         ("stem fused + split (default)", dict(fuse_stem=True, split_expansions=True)))


def _tflm_run(binary, model_bytes, image, directory):
    """{figure: value} and passed, of rnnpool_run_model on one image."""
    import tflm_build

    paths = tflm_build.write_model_case(Path(directory), model_bytes, image)
    result = tflm_build.run([binary, *paths], timeout=1200)
    output = result.stdout + result.stderr
    figures = {}
    for label, pattern in (("arena_used_bytes", r"^MicroInterpreter arena_used_bytes: (\d+)"),
                           ("head", r"Arena allocation head (\d+)"),
                           ("tail", r"Arena allocation tail (\d+)")):
        match = re.search(pattern, output, re.M)
        figures[label] = int(match.group(1)) if match else None
    return figures, result.returncode == 0 and "~~~MODEL PASSED~~~" in output


def _arena_without_input(model_bytes):
    """The planner's arena if the model input lived outside the arena."""
    model = tflite_model.load(model_bytes)
    graph = model.subgraphs[0]
    planned = memory_plan.planned_tensor_bytes(model, graph)
    planned.pop(int(graph.inputs[0]))
    requests = [op_costs.scratch_requests(model, graph, i) for i in range(len(graph.operators))]
    return memory_plan.arena_bytes(memory_plan.plan_buffers(graph, planned, set(planned),
                                                            requests))


def _peak_op(report):
    row = max(report["operators"], key=lambda r: r["live_bytes"] + r["scratch_bytes"])
    return f"{row['index']} {row['op']} ({row['live_bytes'] + row['scratch_bytes']:,} B)"


def main():
    sys.path.insert(0, str(REPO / "tests"))
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4,) + INPUT_SHAPE).astype(np.float32)
    test_images = rng.uniform(size=(2,) + INPUT_SHAPE).astype(np.float32)
    binary, workdir = None, Path(tempfile.mkdtemp(prefix="bench_vww_arena_"))
    if os.environ.get("TFLM_ROOT"):
        import tflm_build

        binary = tflm_build.build_run_model(workdir)
    model = zoo.vww_mobilenetv2_rnnpool(INPUT_SHAPE)
    print("| form | ops | tflm_arena_bytes | set by | run_tflite = unfused | "
          "TFLM arena_used_bytes | TFLM head / tail | TFLM bit-exact |")
    print("|---|--:|--:|---|---|--:|---|---|")
    reference, files = None, {}
    for index, (name, kwargs) in enumerate(FORMS):
        files[name] = converters.convert(model, quantize="int8", representative_data=images,
                                         **kwargs)
        report = converters.memory_report(files[name])
        outputs = converters.run_tflite(files[name], test_images)[0]
        reference = outputs if reference is None else reference
        tflm = ("n/a", "n/a", "n/a")
        if binary is not None:
            figures, passed = _tflm_run(binary, files[name], test_images[:1],
                                        workdir / f"form{index}")
            tflm = (f"{figures['arena_used_bytes']:,}",
                    f"{figures['head']:,} / {figures['tail']:,}", "yes" if passed else "NO")
        print(f"| {name} | {len(report['operators'])} | {report['tflm_arena_bytes']:,} | "
              f"{_peak_op(report)} | {'yes' if np.array_equal(outputs, reference) else 'NO'} | "
              f"{tflm[0]} | {tflm[1]} | {tflm[2]} |")
    default = files[FORMS[-1][0]]
    print(f"\nDefault file with the image outside the arena (planner): "
          f"{_arena_without_input(default):,} B")
    baseline = zoo.vww_mobilenetv2(INPUT_SHAPE)
    for split in (False, True):
        report = converters.memory_report(converters.convert(
            baseline, quantize="int8", representative_data=images, split_expansions=split))
        print(f"Baseline vww_mobilenetv2, split_expansions={split}: tflm_arena_bytes "
              f"{report['tflm_arena_bytes']:,}, set by {_peak_op(report)}")


if __name__ == "__main__":
    main()
