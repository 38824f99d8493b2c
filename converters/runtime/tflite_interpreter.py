"""converters.tflite_interpreter: a converted model in TFLite's own interpreters.

A model from `converters.convert` holds CUSTOM "RNNPool" ops, for which the
stock runtimes have no kernel. The package builds a TFLite external delegate
(`tflm_kernels/_rnnpool_delegate*.so`, sources in tflm_kernels/litert/) that
claims those ops and runs them on the package's C++ core; everything else
runs on the runtime's own kernels (XNNPACK by default). Unlike
`converters.run_tflite` ("what the device computes", TFLM's reference
kernels), this is the fast host path: RNNPool outputs are bit-exact with the
kernel core, builtin ops are the runtime's (int8 XNNPACK kernels may differ from
TFLM's reference ones by a few LSB).
"""
import glob
import importlib.machinery
import os

RUNTIMES = ("litert", "tflite")


def delegate_path():
    """Path of the RNNPool delegate shared library built by `pip install`."""
    import tflm_kernels

    folder = os.path.dirname(tflm_kernels.__file__)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "_rnnpool_delegate" + suffix)
        if os.path.isfile(path):
            return path
    found = sorted(glob.glob(os.path.join(folder, "_rnnpool_delegate*")))
    if not found:
        raise FileNotFoundError(
            f"the RNNPool delegate library is not in {folder}: reinstall the package "
            "(pip install .) or build it in place (python setup.py build_clib build_ext "
            "--inplace)")
    return found[0]


def _runtime_module(runtime):
    """(Interpreter class, load_delegate) of "litert", "tflite" or None (the first
    one installed, LiteRT first)."""
    if runtime not in (None,) + RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES} or None, got {runtime!r}")
    if runtime in (None, "litert"):
        try:
            from ai_edge_litert import interpreter as litert
        except ImportError:
            if runtime == "litert":
                raise ImportError("runtime='litert' needs the ai-edge-litert package "
                                  "(pip install ai-edge-litert)") from None
        else:
            return litert.Interpreter, litert.load_delegate
    import tensorflow as tf

    return tf.lite.Interpreter, tf.lite.experimental.load_delegate


def _check_like_run_tflite(model_bytes):
    """The file checks of `run_tflite`, so that both accept the same files.

    The delegate's Prepare runs the same validator, but on the shapes the
    runtime hands it: tf.lite re-derives an intermediate tensor's shape from
    the op that writes it, so a file declaring another shape for an RNNPool
    op's input would run on the derived one, where TFLM and run_tflite refuse
    the file. Checking the file as written first keeps the three in step."""
    from converters.tflite_io import model_checks, rnnpool_validation, tflite_model
    from rnnpool_keras.spec import contract

    model = model_checks.load_checked(model_bytes, "tflite_interpreter")
    subgraph = model.subgraphs[0]
    for index, op in enumerate(subgraph.operators or []):
        if tflite_model.op_name(model, op) == contract.CUSTOM_CODE:
            rnnpool_validation.validated_rnnpool_op(model, subgraph, op, index)


def tflite_interpreter(model_bytes, num_threads=None, runtime=None, delegate_options=None,
                       **interpreter_args):
    """A ready interpreter (tensors allocated) for a converted model, RNNPool delegated.

    Args:
      model_bytes: the .tflite flatbuffer (float or int8, from `converters.convert`).
      num_threads: threads for the runtime's kernels and the RNNPool op (which
        splits its patches over them); None leaves the runtime's default
        (one thread for the RNNPool op).
      runtime: "litert" (ai_edge_litert.interpreter), "tflite"
        (tf.lite.Interpreter) or None: LiteRT when installed, else tf.lite.
      delegate_options: dict of delegate options (tflm_kernels/litert/README.md).
      **interpreter_args: passed to the Interpreter (e.g.
        experimental_preserve_all_tensors=True).
    Returns:
      The interpreter; use it as usual (set_tensor / invoke / get_tensor).
    Raises:
      ValueError for a file that `run_tflite` would refuse (the same structure
      checks and RNNPool validator), naming the operator and tensor; ValueError /
      ImportError for bad arguments; RuntimeError from the runtime if a builtin
      op's Prepare refuses the model or the runtime's ABI does not match the
      delegate.
    """
    if not isinstance(model_bytes, (bytes, bytearray)):
        raise TypeError(f"model_bytes must be the .tflite bytes, got {type(model_bytes).__name__}")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads must be None or an int >= 1, got {num_threads!r}")
    interpreter_class, load_delegate = _runtime_module(runtime)
    _check_like_run_tflite(model_bytes)
    delegate = load_delegate(delegate_path(), options=dict(delegate_options or {}))
    interpreter = interpreter_class(model_content=bytes(model_bytes),
                                    experimental_delegates=[delegate],
                                    num_threads=num_threads, **interpreter_args)
    interpreter.allocate_tensors()
    return interpreter
