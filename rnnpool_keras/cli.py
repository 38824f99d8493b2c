"""The `rnnpool` command line."""
import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="rnnpool", description="RNNPool for Keras, TFLite and TFLM.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train a tiny RNNPool CNN on synthetic data, QAT, int8 check")
    demo.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rnnpool_keras import demo as demo_module  # TF loads slowly: only now
    model, _ = demo_module.run(epochs=args.epochs)
    demo_module.run_quantized(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
