"""Which FastGRNN sweep a training call of RNNPool2D runs: the fused op or TF.

The fused C++ op (`op.final_state`) runs the float recurrence when it loads and
the call allows it; the TensorFlow recurrence (`fastgrnn.final_state`) is the
exact fallback, and the only path under XLA (the op has no XLA kernel), in the
int8 simulation / range recording (their hooks sit inside the step), for
dtypes other than float32, and while a SavedModel is written (so the saved
graph loads where the op library is absent).

    RNNPOOL_KERAS_FUSED_SWEEP=0   always use the TensorFlow recurrence
"""
import logging
import os

import tensorflow as tf
from tensorflow.python.ops import control_flow_util
from tensorflow.python.saved_model import save_context

from rnnpool_keras.layers.fused_sweep import op

ENVIRONMENT_VARIABLE = "RNNPOOL_KERAS_FUSED_SWEEP"
_logger = logging.getLogger("rnnpool_keras")
_reported = set()  # the log line is written once per outcome and process


def _report(message, level=logging.INFO):
    if message not in _reported:
        _reported.add(message)
        _logger.log(level, message)


def _under_xla():
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def select(dtype, float_only):
    """The `sweep` for `rnnpool_math.rnnpool`: `op.final_state`, or None for the
    TensorFlow recurrence.

    Args:
      dtype: the computation's dtype (the op is float32 only).
      float_only: True when the call has no int8 simulation / range recording.
    """
    if (tf.as_dtype(dtype) != tf.float32 or not float_only or _under_xla()
            or save_context.in_save_context()):
        return None
    if os.environ.get(ENVIRONMENT_VARIABLE, "1") == "0":
        _report(f"RNNPool2D: TensorFlow recurrence ({ENVIRONMENT_VARIABLE}=0)")
        return None
    if op.load() is None:
        _report("RNNPool2D: TensorFlow recurrence; the fused op is unavailable: "
                + op.failure(), logging.WARNING)
        return None
    _report("RNNPool2D: fused FastGRNN op")
    return op.final_state
