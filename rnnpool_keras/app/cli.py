"""The `rnnpool` command line: demo, convert, export-c, report.

Errors a user can cause (a bad path, a file that is no model, an option the
model does not support) end in one line on stderr and exit status 1, never a
traceback; argparse's own usage errors exit with 2.
"""
import argparse
import os
import sys


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _load_keras_model(path):
    """A tf_keras model (float or QAT) from .keras, .h5 or a SavedModel directory,
    or a Keras 3 model from a .keras file Keras 3 wrote."""
    if not os.path.exists(path):
        raise CommandError(f"model file not found: {path}")
    import rnnpool_keras  # registers RNNPool2D for deserialisation
    from rnnpool_keras.app import saved_model_files

    _progress(f"Loading {path}")
    try:
        if saved_model_files.written_by_keras3(path):
            import keras
            import rnnpool_keras.keras3  # registers the Keras 3 RNNPool2D

            model = keras.saving.load_model(path, compile=False)
        else:
            import tf_keras

            with rnnpool_keras.quantize_scope():  # QAT models need tfmot's classes
                model = tf_keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for an unreadable file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CommandError(f"cannot load a Keras model from {path}: "
                           f"{type(error).__name__}: {first_line}") from None
    return model


def _load_representative(path):
    """The input array of an .npz (its only array, or the one named "x") or .npy."""
    if not os.path.exists(path):
        raise CommandError(f"representative data file not found: {path}")
    import numpy as np

    try:
        data = np.load(path)
    except Exception as error:
        raise CommandError(f"cannot read representative data {path}: {error}") from None
    if isinstance(data, np.ndarray):
        return data
    names = list(data.files)
    if len(names) == 1:
        return data[names[0]]
    if "x" in names:
        return data["x"]
    raise CommandError(f"{path} holds arrays {names}: name the input array 'x' "
                       "or store only one array")


def _read_bytes(path):
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None


def _write(path, data):
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as file:
            file.write(data)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None


def _convert(args):
    from converters import convert

    model = _load_keras_model(args.model)
    representative = None
    if args.representative:
        if not args.int8:
            raise CommandError("--representative is only used with --int8")
        representative = _load_representative(args.representative)
    _progress("Converting to " + ("int8" if args.int8 else "float32") + " TFLite"
              + (" (calibrating on representative data)" if representative is not None
                 else ""))
    try:
        model_bytes = convert(model, quantize="int8" if args.int8 else None,
                              representative_data=representative)
    except (ValueError, TypeError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    _write(args.output, model_bytes)
    print(f"Wrote {args.output} ({len(model_bytes):,} bytes)")


def _export_c(args):
    from converters import export_c_array

    model_bytes = _read_bytes(args.model)
    from converters.tflite_io import tflite_model
    try:
        tflite_model.load(model_bytes)
        name = args.name or _c_name(args.model)
        files = export_c_array(model_bytes, name)
    except (ValueError, TypeError) as error:
        raise CommandError(f"{args.model}: {error}") from None
    try:
        paths = files.write(args.output_dir)
    except OSError as error:
        raise CommandError(f"cannot write into {args.output_dir}: {error.strerror}") \
            from None
    for path in paths:
        print(f"Wrote {path}")


def _report(args):
    import json

    from converters.analysis import memory

    model_bytes = _read_bytes(args.model)
    try:
        report = memory.memory_report(model_bytes)
    except (ValueError, TypeError) as error:
        raise CommandError(f"{args.model}: {error}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(memory.format_table(report))
    if args.plot:
        try:
            memory.plot_memory([report], args.plot,
                                    labels=[os.path.basename(args.model)])
        except (ImportError, ValueError, OSError) as error:
            raise CommandError(f"cannot write the plot {args.plot}: {error}") from None
        _progress(f"Wrote {args.plot}")


def _c_name(path):
    """A C identifier from a file name: model-v2.tflite -> model_v2."""
    import re

    stem = os.path.splitext(os.path.basename(path))[0]
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    return name if name and not name[0].isdigit() else "model_" + name


def _demo(args):
    from rnnpool_keras.app import datasets
    from rnnpool_keras.app import demo as demo_module  # TF loads slowly: only now

    if args.data == "fashion-mnist" and not datasets.fashion_mnist_available():
        raise CommandError(f"Fashion-MNIST not found in {datasets.DEFAULT_ROOT}: "
                           "`apt-get install dataset-fashion-mnist`, or --data synthetic")
    demo_module.main(epochs=args.epochs, output_dir=args.output_dir, source=args.data,
                     train_count=args.train_count, keras_version=args.keras)


def _parser():
    parser = argparse.ArgumentParser(
        prog="rnnpool", description="RNNPool for Keras, TFLite and TFLM.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="train a small RNNPool CNN on Fashion-MNIST, QAT, convert to int8, "
        "run it on the host, memory report, C array")
    demo.add_argument("--epochs", type=int, default=3, help="float training epochs")
    demo.add_argument("--data", choices=("auto", "fashion-mnist", "synthetic"),
                      default="auto", help="auto: Fashion-MNIST if installed, else "
                      "synthetic images")
    demo.add_argument("--train-count", type=int, default=10000,
                      help="training images to use")
    demo.add_argument("--keras", type=int, choices=(2, 3), default=2,
                      help="build and train with tf_keras (2) or Keras 3 (3)")
    demo.add_argument("--output-dir", default="rnnpool_demo",
                      help="where the .tflite model and its C array go")
    demo.set_defaults(run=_demo)

    convert = commands.add_parser(
        "convert", help="Keras model (.keras, .h5, SavedModel) -> .tflite")
    convert.add_argument("model", help="the Keras model file or SavedModel directory")
    convert.add_argument("-o", "--output", required=True, help="the .tflite file to write")
    convert.add_argument("--int8", action="store_true",
                         help="full-integer model (QAT model, or --representative data)")
    convert.add_argument("--representative", metavar="DATA.npz",
                         help="inputs to calibrate a float model on (.npz or .npy)")
    convert.set_defaults(run=_convert)

    export = commands.add_parser(
        "export-c", help=".tflite -> NAME.h / NAME.cc for a firmware build")
    export.add_argument("model", help="the .tflite file")
    export.add_argument("-o", "--output-dir", required=True, help="directory for the files")
    export.add_argument("--name", help="C array name (default: from the file name)")
    export.set_defaults(run=_export_c)

    report = commands.add_parser(
        "report", help="peak RAM, TFLM arena, MAdds per operator of a .tflite")
    report.add_argument("model", help="the .tflite file")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--plot", metavar="FILE.png",
                        help="also draw live memory per operator (needs matplotlib)")
    report.set_defaults(run=_report)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and (args.epochs < 1 or args.train_count < 1):
        parser.error("--epochs and --train-count must be >= 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args.run(args)
    except CommandError as error:
        print(f"rnnpool {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
