"""Fashion-MNIST accuracy: small MobileNetV2-RNNPool vs its strided-conv baseline.

Both models (rnnpool_keras.app.zoo.small_mobilenetv2[_rnnpool]) are trained the
same way on Fashion-MNIST resized to --size, then fine-tuned with QAT and
converted to full int8; the int8 accuracy is that of the .tflite file run by
`converters.run_tflite` (TFLM reference kernels + our RNNPool kernel). Prints a
markdown table with the peak-RAM and MAdds figures next to the accuracies.

    apt-get install dataset-fashion-mnist
    python bench/bench_accuracy.py [--size 64] [--train-count 10000] [--epochs 3]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

import machine  # noqa: E402
from rnnpool_keras.app import datasets, demo, zoo  # noqa: E402


def evaluate(build, data, epochs, seed):
    from converters import convert, memory_report, run_tflite

    tf_keras.utils.set_random_seed(seed)
    model = build(data.x_train.shape[1:], data.num_classes)
    start = time.time()
    demo.train_float(model, data, epochs)
    qat, qat_results = demo.train_qat(model, data)
    model_bytes = convert(qat, quantize="int8")
    int8_logits = run_tflite(model_bytes, data.x_test)[0]
    row = {
        "model": model.name,
        "params": model.count_params(),
        "madds": zoo.count_madds(model),
        "float": qat_results["float_accuracy"],
        "qat": qat_results["qat_accuracy"],
        "int8": float(np.mean(int8_logits.argmax(1) == data.y_test)),
        "int8_bytes": len(model_bytes),
        "seconds": time.time() - start,
    }
    report = memory_report(model_bytes)
    row["peak"] = report["peak_activation_bytes"]
    row["arena"] = report["tflm_arena_bytes"]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train-count", type=int, default=10000)
    parser.add_argument("--test-count", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not datasets.fashion_mnist_available():
        sys.exit("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    data = demo.demo_data(args.train_count, args.test_count, args.size, "fashion-mnist")
    rows = [evaluate(build, data, args.epochs, args.seed)
            for build in (zoo.small_mobilenetv2, zoo.small_mobilenetv2_rnnpool)]
    print()
    print(machine.describe())
    print(f"Fashion-MNIST {args.size}x{args.size}, {args.train_count:,} training images, "
          f"{args.epochs} float epochs + 1 QAT epoch, {args.test_count:,} test images")
    print()
    print("| model | params | MAdds | float | QAT | int8 .tflite (host) | int8 size | "
          "peak RAM (paper) | TFLM arena (int8) | time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        peak, arena = f"{r['peak'] / 1024:.1f} KB", f"{r['arena'] / 1024:.1f} KB"
        print(f"| {r['model']} | {r['params']:,} | {r['madds'] / 1e6:.2f}M | "
              f"{r['float']:.1%} | {r['qat']:.1%} | {r['int8']:.1%} | "
              f"{r['int8_bytes'] / 1024:.1f} KB | {peak} | {arena} | {r['seconds']:.0f} s |")


if __name__ == "__main__":
    main()
