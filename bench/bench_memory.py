"""RAM, MAdds and size of the paper's VWW models as .tflite, beside the paper's figures.

Converts MobileNetV2-0.35 (baseline) and MobileNetV2-RNNPool from
rnnpool_keras.app.zoo to float and to int8 (calibrated on random images:
memory figures do not depend on the weights) and prints, per model, a
markdown table from converters.memory_report: MAdds, parameters, model size,
peak RAM by the paper's convention (Appendix E; int8, as the paper counts),
the arena TFLM's greedy planner needs layer by layer (float and int8), and
the paper's published numbers (Section 5.2, Table 2). For the builtin-only
baseline it also asks TFLM's interpreter (tflite-micro, if installed) for its
planned arena, to compare with the planner here. About 6 minutes on 2 cores
(four conversions).

    python bench/bench_memory.py [--plot vww_memory.png]
"""
import argparse
import os
import platform
import re
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import converters  # noqa: E402
from converters.analysis.memory import KB, memory_report, plot_memory  # noqa: E402
from rnnpool_keras.app import zoo  # noqa: E402

INPUT_SHAPE = (224, 224, 3)
# Paper, Section 5.2 and Table 2: peak RAM (KB), MAdds, parameters.
PAPER = {"MobileNetV2-0.35": ("250 KB", "53.2M", "296K"),
         "MobileNetV2-RNNPool": ("33.68 KB", "37.7M", "255K")}
BUILDERS = {"MobileNetV2-0.35": zoo.vww_mobilenetv2,
            "MobileNetV2-RNNPool": zoo.vww_mobilenetv2_rnnpool}


def _machine():
    try:
        from importlib.metadata import version
        tflm = version("tflite-micro")
    except Exception:  # only for the printout: the planner does not need it
        tflm = "not installed"
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, tflite-micro {tflm}")


def _tflm_planned_bytes(model_bytes):
    """TFLM's own arena head for a builtin-only model, None without tflite-micro."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None
    interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=16 << 20)
    # The recording allocator prints from C++ to stderr: catch file descriptor 2.
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        printed = captured.read().decode(errors="replace")
    found = re.search(r"Arena allocation head (\d+) bytes", printed)
    return int(found.group(1)) if found else None


def _reports(name, builder):
    model = builder(INPUT_SHAPE)
    images = np.random.default_rng(0).uniform(size=(4,) + INPUT_SHAPE).astype(np.float32)
    start = time.perf_counter()
    float_bytes = converters.convert(model)
    int8_bytes = converters.convert(model, quantize="int8", representative_data=images)
    seconds = time.perf_counter() - start
    reports = memory_report(float_bytes), memory_report(int8_bytes)
    checks = []
    for report, model_bytes in zip(reports, (float_bytes, int8_bytes)):
        # TFLM's interpreter knows only builtins: the RNNPool model is not checked.
        if not report["rnnpool_ops"]:
            checks.append((report["activation_types"][0], _tflm_planned_bytes(model_bytes),
                           report["tflm_arena_bytes"]))
    return reports[0], reports[1], seconds, checks


def _kb(size):
    return f"{size / KB:,.2f} KB"


def _block(report):
    block = report["blocks"][report["peak_block"]]
    ops = block["operators"]
    return (f"{block['kind']} ops {ops[0]}-{ops[-1]}: {block['input_bytes']:,} + "
            f"{block['output_bytes']:,} + {block['extra_bytes']:,} B")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="also write the int8 models' live memory as a PNG")
    args = parser.parse_args()
    print(f"Machine: {_machine()}")
    print(f"Input {INPUT_SHAPE[0]}x{INPUT_SHAPE[1]}x{INPUT_SHAPE[2]}; KB = 1024 bytes "
          "(the paper's unit); params = float constant bytes / 4 (BatchNorm folded)\n")
    rows, int8_reports = [], []
    for name, builder in BUILDERS.items():
        float_report, int8_report, seconds, checks = _reports(name, builder)
        int8_reports.append(int8_report)
        peak_ratio = (float_report["peak_activation_bytes"]
                      / int8_report["peak_activation_bytes"])
        rows.append((name, float_report, int8_report, seconds, peak_ratio, checks))
    print("| model | MAdds | params | int8 model | peak RAM, paper convention (int8) "
          "| TFLM arena float | TFLM arena int8 | paper: peak RAM, MAdds, params |")
    print("|---|--:|--:|--:|--:|--:|--:|---|")
    for name, float_report, int8_report, _, _, _ in rows:
        print(f"| {name} | {int8_report['total_madds'] / 1e6:.1f}M "
              f"| {float_report['parameter_bytes'] / 4 / 1e3:.0f}K "
              f"| {_kb(int8_report['model_bytes'])} "
              f"| {_kb(int8_report['peak_activation_bytes'])} "
              f"| {_kb(float_report['tflm_arena_bytes'])} "
              f"| {_kb(int8_report['tflm_arena_bytes'])} | {', '.join(PAPER[name])} |")
    print()
    for name, float_report, int8_report, seconds, peak_ratio, checks in rows:
        rnnpool = ", ".join(f"op {op['index']} scratch {op['scratch_bytes']:,} B (int8)"
                            for op in int8_report["rnnpool_ops"]) or "none"
        print(f"- {name}: peak block {_block(int8_report)}; float peak = "
              f"{peak_ratio:.2f} x int8; RNNPool ops: {rnnpool}; "
              f"conversions {seconds:.0f} s")
        for kind, tflm, ours in checks:
            said = "tflite-micro not installed" if tflm is None else f"{tflm:,} B"
            print(f"  - TFLM interpreter's planned arena, {kind}: {said}; "
                  f"this planner: {ours:,} B")
    if args.plot:
        plot_memory(int8_reports, args.plot, labels=list(BUILDERS))
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
