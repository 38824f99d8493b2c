"""The `rnnpool` command line: demo, train, convert, export-c, report.

Errors a user can cause (a bad path, a file that is no model, an option the
model does not support) end in one line on stderr and exit status 1, never a
traceback; argparse's own usage errors exit with 2. The output is the
command's own: TensorFlow's C++ log lines are dropped unless --verbose.
"""
import argparse
import contextlib
import os
import sys


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _progress(message):
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _native_stderr_dropped():
    """Within: what native code writes to file descriptor 2 (TensorFlow's C++ log
    lines, which ignore TF_CPP_MIN_LOG_LEVEL before absl is initialised) goes to
    /dev/null, while Python's sys.stderr still reaches the terminal."""
    sys.stderr.flush()
    try:
        on_fd_2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # e.g. captured by a test
        on_fd_2 = False
    terminal = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    python_stderr = sys.stderr
    if on_fd_2:
        sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1)
    try:
        yield
    finally:
        if on_fd_2:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


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
    """Writes through a temporary file and a rename: a failure keeps the old file."""
    from converters.interop import atomic_write

    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        atomic_write.write_atomically(path, data)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None


def _refuse_same_file(output, *inputs):
    """An output that would replace one of the command's inputs is refused."""
    for given in inputs:
        if given and os.path.exists(output) and os.path.exists(given) and \
                os.path.samefile(output, given):
            raise CommandError(f"output {output} is the input {given}; choose another path")


def _convert(args):
    _refuse_same_file(args.output, args.model, args.representative)
    model = _load_keras_model(args.model)  # a missing file: refused before TF loads
    representative = None
    if args.representative:
        if not args.int8:
            raise CommandError("--representative is only used with --int8")
        representative = _load_representative(args.representative)
    _progress("Converting to " + ("int8" if args.int8 else "float32") + " TFLite"
              + (" (calibrating on representative data)" if representative is not None
                 else ""))
    from converters import convert

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
    for file_name in (files.header_name, files.source_name):
        _refuse_same_file(os.path.join(args.output_dir, file_name), args.model)
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
        _refuse_same_file(args.plot, args.model)
        try:
            memory.plot_memory([report], args.plot,
                                    labels=[os.path.basename(args.model)])
        except (ImportError, ValueError, OSError) as error:
            raise CommandError(f"cannot write the plot {args.plot}: {error}") from None
        _progress(f"Wrote {args.plot}")


def _c_name(path):
    """A C identifier from a file name: model-v2.tflite -> model_v2."""
    import re

    from converters.interop import c_array

    stem = os.path.splitext(os.path.basename(path))[0]
    # One "_" per run (no reserved "__"), none leading (no reserved "_X").
    name = re.sub(r"[^A-Za-z0-9_]+", "_", stem)
    name = re.sub(r"_+", "_", name).strip("_")
    if not name or name[0].isdigit() or name in c_array.RESERVED_NAMES:
        return "model_" + name if name else "model"
    return name


def _demo(args):
    from rnnpool_keras.app import demo as demo_module  # TF loads slowly: only now

    try:
        demo_module.main(epochs=args.epochs, output_dir=args.output_dir,
                         source=args.data, train_count=args.train_count,
                         keras_version=args.keras)
    except FileNotFoundError as error:  # --data fashion-mnist without the data
        raise CommandError(f"{error}; or use --data synthetic") from None


def _train(args):
    from rnnpool_keras.app import datasets
    from rnnpool_keras.app import training  # TF loads slowly: only now
    from rnnpool_keras.app import training_data

    # Before any other TensorFlow work: multi-worker collectives need that.
    strategy = training.make_strategy(args.strategy)
    if args.model in training.MODELS:
        model = args.model
    else:
        def model(input_shape, num_classes):  # a user's model file, in the scope
            return _load_keras_model(args.model)
    try:
        if args.data == "fashion-mnist":
            if not datasets.fashion_mnist_available():
                raise CommandError(f"Fashion-MNIST not found in {datasets.DEFAULT_ROOT}: "
                                   "`apt-get install dataset-fashion-mnist`")
            data = training_data.fashion_mnist(args.image_size, args.train_count)
        else:
            data = training_data.image_folder(args.data, args.image_size, args.channels,
                                              args.validation_fraction, args.seed)
        trained = training.train(
            data, model, args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, strategy=strategy,
            qat_epochs=args.qat_epochs, qat_learning_rate=args.qat_learning_rate,
            augment=tuple(a for a in args.augment.split(",") if a),
            mixed_precision=args.mixed_precision, steps_per_epoch=args.steps_per_epoch,
            backup_every=args.backup_every, seed=args.seed)
    except (ValueError, TypeError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    print("Done: " + ", ".join(f"{key} {value:.4g}" if isinstance(value, float)
                               else f"{key} {value}"
                               for key, value in trained.metrics.items()))


def _backup_every(text):
    if text == "epoch":
        return text
    try:
        steps = int(text)
    except ValueError:
        steps = 0
    if steps < 1:
        raise argparse.ArgumentTypeError(f"expected 'epoch' or a step count >= 1, got {text!r}")
    return steps


def _parser():
    parser = argparse.ArgumentParser(
        prog="rnnpool", description="RNNPool for Keras, TFLite and TFLM.")
    verbose_help = "also show TensorFlow's own log lines"
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="train a small RNNPool CNN on Fashion-MNIST, QAT, convert to int8, "
        "run it on the host, memory report, C array")
    demo.add_argument("--epochs", type=int, default=3, help="float training epochs")
    demo.add_argument("--data", choices=("auto", "fashion-mnist", "synthetic"),
                      default="auto", help="auto: Fashion-MNIST (Debian package, else "
                      "Keras' cached download), else synthetic images")
    demo.add_argument("--train-count", type=int, default=10000,
                      help="training images to use")
    demo.add_argument("--keras", type=int, choices=(2, 3), default=2,
                      help="build and train with tf_keras (2) or Keras 3 (3)")
    demo.add_argument("--output-dir", default="rnnpool_demo",
                      help="where the .tflite model and its C array go")
    demo.set_defaults(run=_demo)

    train = commands.add_parser(
        "train", help="train a model on an image folder or Fashion-MNIST under "
        "tf.distribute, then QAT and the int8 .tflite")
    train.add_argument("--data", required=True,
                       help="an image folder (DIR/<class>/<images>) or 'fashion-mnist'")
    train.add_argument("--model", default="small_mobilenetv2_rnnpool",
                       help="a model name (small_mobilenetv2_rnnpool, small_mobilenetv2, "
                       "vww_mobilenetv2_rnnpool, vww_mobilenetv2, tiny_rnnpool_cnn) or a "
                       "Keras model file")
    train.add_argument("--output-dir", default="rnnpool_train",
                       help="models, .tflite, TensorBoard logs and backups")
    train.add_argument("--epochs", type=int, default=10, help="float training epochs")
    train.add_argument("--batch-size", type=int, default=64,
                       help="global batch, split across replicas")
    train.add_argument("--learning-rate", type=float, default=3e-3,
                       help="initial learning rate (cosine decay to 0)")
    train.add_argument("--image-size", type=int, default=32,
                       help="images are resized to this many pixels square")
    train.add_argument("--channels", type=int, choices=(1, 3), default=3,
                       help="image folder: 1 (grey) or 3 (RGB)")
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="image folder: share of images held out")
    train.add_argument("--train-count", type=int, default=None,
                       help="fashion-mnist: training images to use (default all)")
    train.add_argument("--augment", default="",
                       help="comma-separated: flip, crop, brightness")
    train.add_argument("--strategy", choices=("default", "mirrored", "multiworker"),
                       default="default", help="mirrored: all local GPUs; multiworker: "
                       "the cluster in TF_CONFIG")
    train.add_argument("--qat-epochs", type=int, default=0,
                       help="quantization-aware epochs, then the int8 .tflite")
    train.add_argument("--qat-learning-rate", type=float, default=5e-4)
    train.add_argument("--mixed-precision", action="store_true",
                       help="float16 compute (GPUs only; refused on a CPU)")
    train.add_argument("--steps-per-epoch", type=int, default=None,
                       help="steps per epoch (default: the training images once)")
    train.add_argument("--backup-every", type=_backup_every, default="epoch",
                       help="'epoch' or a step count: backups to resume from")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)

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
    for command in (demo, convert, export, report):  # also after the command's name
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=verbose_help)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and (args.epochs < 1 or args.train_count < 1):
        parser.error("--epochs and --train-count must be >= 1")
    quiet = contextlib.nullcontext() if args.verbose else _native_stderr_dropped()
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with quiet:
            args.run(args)
    except CommandError as error:
        print(f"rnnpool {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as error:  # the library's answer to bad input
        print(f"rnnpool {args.command}: error: {_first_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: still one line, and how to report it
        print(f"rnnpool {args.command}: error: unexpected {type(error).__name__}: "
              f"{_first_line(error)} (please report this)", file=sys.stderr)
        return 1
    return 0


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
