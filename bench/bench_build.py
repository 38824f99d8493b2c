"""Time to build, quantize and convert models with RNNPool2D (the user's wait
between training runs, and most of the test suite's time).

For the demo's tiny CNN (32x32x3) and the paper's VWW MobileNetV2-RNNPool
(224x224x3): building the tf_keras model, `rnnpool_keras.quantize_model`,
`converters.convert` of the float model and of the calibrated QAT model
(int8). Process CPU seconds per call, median over rounds; every step runs
once before timing (TensorFlow's first-use costs).

    python bench/bench_build.py [--rounds 5] [--models tiny,vww]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import rnnpool_keras  # noqa: E402
from converters import convert  # noqa: E402
from rnnpool_keras.app import demo, zoo  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)

BUILDERS = {
    "tiny": (demo.tiny_rnnpool_cnn, (32, 32, 3)),
    "vww": (zoo.vww_mobilenetv2_rnnpool, (224, 224, 3)),
}
STEPS = ("build", "quantize_model", "convert float", "convert int8")


def _cpu_seconds(function):
    start = time.process_time()
    result = function()
    return time.process_time() - start, result


def _one_round(name):
    """{step: CPU seconds} for one pass over STEPS on model `name`."""
    builder, shape = BUILDERS[name]
    seconds = {}
    seconds["build"], model = _cpu_seconds(builder)
    seconds["quantize_model"], qat = _cpu_seconds(lambda: rnnpool_keras.quantize_model(model))
    images = np.random.default_rng(0).uniform(0, 1, (4,) + shape).astype(np.float32)
    rnnpool_keras.calibrate(qat, images)
    seconds["convert float"], _ = _cpu_seconds(lambda: convert(model))
    seconds["convert int8"], _ = _cpu_seconds(lambda: convert(qat, quantize="int8"))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default="tiny,vww",
                        help=f"comma-separated, of {sorted(BUILDERS)}")
    args = parser.parse_args(argv)
    names = args.models.split(",")
    unknown = sorted(set(names) - set(BUILDERS))
    if unknown:
        parser.error(f"--models: unknown {unknown}; expected names from {sorted(BUILDERS)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    for name in names:  # warm-up: first-use costs are not the steps'
        _one_round(name)
    times = {name: {step: [] for step in STEPS} for name in names}
    for _ in range(args.rounds):  # interleaved: a slow phase hits every model
        for name in names:
            for step, seconds in _one_round(name).items():
                times[name][step].append(seconds)
    print(machine.describe())
    print(f"CPU seconds per call, median of {args.rounds} rounds")
    print("| model | " + " | ".join(STEPS) + " |")
    print("|---|" + "--:|" * len(STEPS))
    for name in names:
        print(f"| {name} | " + " | ".join(
            f"{statistics.median(times[name][step]):.2f}" for step in STEPS) + " |")


if __name__ == "__main__":
    main()
