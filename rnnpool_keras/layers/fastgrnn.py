"""The FastGRNN cell and batched final-state sweeps (RNNPOOL.md, "FastGRNN cell").

Everything here is plain TensorFlow on tensors the caller passes in, so the
tf_keras and Keras 3 layers (and the QAT wrapper, which swaps weights before a
call) share one implementation of the equations.
"""
import collections

import tensorflow as tf

from rnnpool_keras.layers import activations

# The weights of one FastGRNN cell as tensors. `kernel` / `recurrent_kernel`
# are full matrices or (left, right) pairs for the low-rank form W = left @ right.
CellWeights = collections.namedtuple(
    "CellWeights",
    ["kernel", "recurrent_kernel", "gate_bias", "update_bias", "zeta", "nu"])


def matmul(x, matrix):
    """x @ W for x [..., in] and W [in, out] or a low-rank pair (left, right)."""
    if isinstance(matrix, tuple):
        left, right = matrix
        return matmul(matmul(x, left), right)
    return tf.tensordot(x, matrix, axes=[[x.shape.rank - 1], [0]])


def input_projection(x, cell):
    """x @ W + b_gate [..., units]: the state-independent part of the gate
    pre-activation, computed once for every step before the recurrence."""
    return matmul(x, cell.kernel) + cell.gate_bias


def final_state(sequence, cell, gate_activation, update_activation, simulation):
    """Runs the cell over a batch of sequences from h0 = 0; returns [M, units].

    Args:
      sequence: time-major [T, M, units] (T static) holding `input_projection`
        of each step's input.
      cell: CellWeights.
      simulation: a `quantization.simulation` object bound to this cell, applied
        where the int8 kernel rounds (`simulation.Float()` for plain float).
    The steps come from one `tf.unstack`: its gradient is one stack, where
    slicing `sequence[t]` per step would write a full-size gradient per step.
    """
    gate = activations.get(gate_activation)
    update = activations.get(update_activation)
    # Per-call constants. The update pre-activation is the gate one plus
    # (b_update - b_gate), and z*h + (sz*(1 - z) + snu)*c is regrouped as
    # z*(h - sz*c) + (sz + snu)*c: fewer element-wise ops in the hot loop.
    zeta = tf.math.sigmoid(cell.zeta)
    zeta_plus_nu = zeta + tf.math.sigmoid(cell.nu)
    update_offset = cell.update_bias - cell.gate_bias
    steps = tf.unstack(sequence, num=sequence.shape[0], axis=0)
    state = None
    for step in steps:
        # h0 = 0: the first step has no recurrent term.
        gate_pre = step if state is None else step + matmul(state, cell.recurrent_kernel)
        update_pre = simulation.preactivation(gate_pre + update_offset)
        gate_pre = simulation.preactivation(gate_pre)
        z = simulation.activation_output(gate_activation, gate(gate_pre))
        c = simulation.activation_output(update_activation, update(update_pre))
        if state is None:
            state = simulation.state(zeta_plus_nu * c - z * (zeta * c))
        else:
            state = simulation.state(z * (state - zeta * c) + zeta_plus_nu * c)
    return state
