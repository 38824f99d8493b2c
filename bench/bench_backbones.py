"""Memory of Keras Applications backbones behind an RNNPool stem vs their own stem.

For each family of rnnpool_keras.app.stem_backbone.FAMILIES, converts to int8
(calibrated on random images: memory does not depend on the weights) the
classifier with the family's own stem and the same backbone behind an RNNPool
stem (Conv2D stride 2 / BN / ReLU6 -> RNNPool2D(8, 8, 4x4, stride 2) -> 1x1
Conv2D), and prints converters.memory_report's figures as a markdown table:
MAdds, int8 model size, peak RAM by the paper's convention, TFLM arena.

    python bench/bench_backbones.py [--size 160] [--families MobileNet,EfficientNetB0]
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import rnnpool_keras  # noqa: E402
import machine  # noqa: E402
from converters import convert, memory_report  # noqa: E402
from converters.analysis.memory import KB  # noqa: E402
from rnnpool_keras.app.stem_backbone import (FAMILIES, backbone_classifier,  # noqa: E402
                                         rnnpool_stem_backbone)


def _int8_report(model, size):
    images = np.random.default_rng(0).uniform(0, 1, (4, size, size, 3)).astype(np.float32)
    qat = rnnpool_keras.calibrate(rnnpool_keras.quantize_model(model), images)
    model_bytes = convert(qat, quantize="int8")
    return len(model_bytes), memory_report(model_bytes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160, help="input height and width")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated FAMILIES keys")
    args = parser.parse_args()
    print(machine.describe())
    print(f"Input {args.size}x{args.size}x3, 2 classes, int8; KB = 1024 bytes.\n")
    print("| backbone | stem | backbone input | MAdds | int8 model | peak RAM, paper "
          "convention | TFLM arena |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for family in args.families.split(","):
        for stem, build in (("own", backbone_classifier),
                            ("RNNPool", rnnpool_stem_backbone)):
            start = time.time()
            model = build(family, (args.size, args.size, 3), 2)
            backbone_input = (args.size if stem == "own" else
                              (-(-args.size // 2) - 4) // 2 + 1)
            size_bytes, report = _int8_report(model, args.size)
            print(f"| {family} | {stem} | {backbone_input} | "
                  f"{report['total_madds'] / 1e6:.1f}M | {size_bytes / KB:,.1f} KB | "
                  f"{report['peak_activation_bytes'] / KB:,.1f} KB | "
                  f"{report['tflm_arena_bytes'] / KB:,.1f} KB |", flush=True)
            print(f"<!-- {family} {stem}: {time.time() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
