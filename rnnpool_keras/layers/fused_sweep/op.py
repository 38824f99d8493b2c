"""The fused FastGRNN sweep as a differentiable TensorFlow function.

`final_state` has the signature of the `sweep` argument of `rnnpool_math.rnnpool`
and computes what `fastgrnn.final_state` computes in float, in two C++ ops
(forward, and backward-through-time from the forward's saved states).
"""
import threading

import tensorflow as tf

from rnnpool_keras.layers import fastgrnn

_lock = threading.Lock()
_library = None
_failure = None  # why the library is unavailable, once tried


def load():
    """The loaded op module, building it on first use; None if that failed.

    The outcome is cached for the process; `failure()` says why it failed.
    """
    global _library, _failure
    # Imported here, so `python -m rnnpool_keras.layers.fused_sweep.build` runs
    # the module once (the package imports this module).
    from rnnpool_keras.layers.fused_sweep import build
    with _lock:
        if _library is None and _failure is None:
            try:
                _library = tf.load_op_library(build.build())
            except (build.BuildError, OSError, tf.errors.OpError) as error:
                _failure = f"{type(error).__name__}: {error}"
        return _library


def failure():
    """Why `load()` returned None (None if it has not failed)."""
    return _failure


def final_state(sequences, cell, gate_activation, update_activation):
    """Final states [M, h] of the FastGRNN `cell` over time-major `sequences`
    [T, M, h] (each step's x @ W + b_gate) from h0 = 0, float32."""
    library = load()
    recurrent = cell.recurrent_kernel
    if isinstance(recurrent, tuple):  # low rank: the op takes the full matrix
        recurrent = fastgrnn.matmul(*recurrent)
    # Tensors, not variables: the custom gradient then covers every input.
    recurrent = tf.convert_to_tensor(recurrent)
    attributes = dict(gate_activation=gate_activation, update_activation=update_activation)

    @tf.custom_gradient
    def sweep(sequences, recurrent, update_offset, zeta, nu):
        final, states = library.rnnpool_fastgrnn_sweep(
            sequences, recurrent, update_offset, zeta, nu, **attributes)

        def gradient(grad_final):
            return library.rnnpool_fastgrnn_sweep_grad(
                sequences, recurrent, update_offset, zeta, nu, states, grad_final,
                **attributes)
        return final, gradient

    return sweep(sequences, recurrent, cell.update_bias - cell.gate_bias,
                 tf.math.sigmoid(cell.zeta), tf.math.sigmoid(cell.nu))
