"""Host runtimes for the same int8 model: images/s and distance from run_tflite.

VWW MobileNetV2-RNNPool at 96x96 (rnnpool_keras.app.zoo.vww_mobilenetv2_rnnpool:
stem to 48x48x8, RNNPool 6x6 / stride 4 / h1 = h2 = 8 -> 11x11x32, then the
MobileNetV2 stages), int8, calibrated on synthetic images, converted twice:
with RNNPool as the custom op and with `lowering="builtin"`. Runtimes:

- run_tflite (TFLM reference kernels + our C++ core; "what the device
  computes"), plan built inside the call (the pre-cache behaviour) and cached;
- tf.lite.Interpreter and ai_edge_litert (LiteRT), RNNPool delegated to the
  C++ core (converters.tflite_interpreter), builtins on XNNPACK;
- the builtin lowering in the same two interpreters (XNNPACK, no custom op);

each at 1 and 2 threads, one image per invoke. Time: every variant runs the
same N images once per round, rounds interleaved, median over rounds. The
machine is shared with other jobs: compare rows of one run, not across runs.
"LSB" is the largest |difference| of the int8 logits from run_tflite's (for
the lowering, in the custom-op model's output steps).

    python bench/bench_runtime.py [--images 32] [--rounds 7]
"""
import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)

SIZE = 96


def build_models(seed=0):
    import tf_keras

    from converters import convert
    from rnnpool_keras import RNNPool2D
    from rnnpool_keras.app import zoo

    tf_keras.utils.set_random_seed(seed)
    model = zoo.vww_mobilenetv2_rnnpool((SIZE, SIZE, 3))
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # trained-like, not the initial zeta / nu
        if isinstance(layer, RNNPool2D):
            layer.set_weights([np.zeros(w.shape) if "_range" in w.name
                               else rng.normal(0, 0.5, w.shape) for w in layer.weights])
    calibration = rng.uniform(0, 1, (16, SIZE, SIZE, 3)).astype(np.float32)
    return (convert(model, quantize="int8", representative_data=calibration),
            convert(model, quantize="int8", representative_data=calibration,
                    lowering="builtin"))


def interpreter_runner(model_bytes, runtime, threads, delegate):
    """A function images -> int8 logits [N, classes], one invoke per image."""
    from converters import tflite_interpreter

    if delegate:
        interpreter = tflite_interpreter(model_bytes, num_threads=threads, runtime=runtime)
    elif runtime == "litert":
        from ai_edge_litert import interpreter as litert

        interpreter = litert.Interpreter(model_content=model_bytes, num_threads=threads)
        interpreter.allocate_tensors()
    else:
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_content=model_bytes, num_threads=threads)
        interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(images_q):
        logits = []
        for image in images_q:
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            logits.append(interpreter.get_tensor(out["index"]))
        return np.concatenate(logits), out["quantization"]

    return run, inp["quantization"]


def run_tflite_runner(model_bytes, cached):
    from converters import run_tflite
    from converters.runtime import host_runner

    def run(images_float):
        if not cached:
            host_runner._PLANS.clear()
        return run_tflite(model_bytes, images_float)[0]

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    custom, builtin = build_models()
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (args.images, SIZE, SIZE, 3)).astype(np.float32)

    runtimes = ["tflite"] + (["litert"] if importlib.util.find_spec("ai_edge_litert") else [])
    names = {"tflite": "tf.lite", "litert": "LiteRT"}
    variants = {}  # name -> (function, float images or quantised, model output scale)
    variants["run_tflite, plan built per call"] = (run_tflite_runner(custom, False), None)
    variants["run_tflite, plan cached"] = (run_tflite_runner(custom, True), None)
    for runtime in runtimes:
        for threads in (1, 2):
            for model_bytes, label, delegate in ((custom, "custom op + RNNPool delegate", True),
                                                 (builtin, "builtin lowering, XNNPACK", False)):
                variants[f"{names[runtime]}, {label}, {threads} thread(s)"] = \
                    interpreter_runner(model_bytes, runtime, threads, delegate)

    # Reference logits: run_tflite, re-quantised to the custom model's output steps.
    quantised = {}
    first_interp = next(v for v in variants.values() if v[1] is not None)
    scale, zero_point = first_interp[1]
    quantised_images = np.clip(np.round(images / scale) + zero_point, -128, 127).astype(np.int8)
    reference = variants["run_tflite, plan cached"][0](images)
    _, (out_scale, out_zero_point) = next(
        v[0](quantised_images[:1]) for k, v in variants.items() if "custom op" in k)

    def lsb(name, result):
        if name.startswith("run_tflite"):
            return float(np.abs(result - reference).max() / out_scale)
        logits, (s, z) = result
        return float(np.abs((logits.astype(np.float64) - z) * s - reference).max() / out_scale)

    times = {name: [] for name in variants}
    errors = {}
    for _ in range(args.rounds):
        for name, (run, input_quantization) in variants.items():
            if input_quantization is None:
                batch = images
            else:
                s, z = input_quantization
                batch = np.clip(np.round(images / s) + z, -128, 127).astype(np.int8)
            start = time.perf_counter()
            result = run(batch)
            times[name].append(time.perf_counter() - start)
            errors[name] = lsb(name, result)

    print(machine.describe())
    print(f"VWW MobileNetV2-RNNPool {SIZE}x{SIZE} int8, {args.images} images per round, "
          f"median of {args.rounds} interleaved rounds; machine shared with other jobs\n")
    base = args.images / np.median(times["run_tflite, plan built per call"])
    lowering = {}
    for name in variants:
        if "builtin lowering" in name:
            lowering[name.replace("builtin lowering, XNNPACK", "")] = args.images / np.median(times[name])
    print("| runtime | images/s | x run_tflite (plan per call) | x builtin lowering, same runtime & threads | max LSB vs run_tflite |")
    print("|---|---:|---:|---:|---:|")
    for name in variants:
        rate = args.images / np.median(times[name])
        key = name.replace("custom op + RNNPool delegate", "")
        versus = f"{rate / lowering[key]:.2f}" if "custom op" in name else ""
        print(f"| {name} | {rate:.1f} | {rate / base:.1f} | {versus} | {errors[name]:.0f} |")


if __name__ == "__main__":
    main()
