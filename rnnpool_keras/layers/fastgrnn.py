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


def final_states(projected_sequences, cell, gate_activation, update_activation,
                 simulation):
    """Runs the cell over several independent batches of sequences from h0 = 0.

    Args:
      projected_sequences: list of time-major tensors [T_i, M_i, units] holding
        `input_projection` of each step's input.
      cell: CellWeights.
      simulation: a `quantization.simulation` object bound to this cell, applied
        where the int8 kernel rounds (`int8_simulation.NoSimulation()` for plain float).
    Returns:
      list of final states [M_i, units], in the order of the inputs.
    Sequences of equal length are concatenated and swept together, so the
    number of sequential steps is the number of distinct lengths' total.
    """
    gate = activations.get(gate_activation)
    update = activations.get(update_activation)
    # Per-call constants. The update pre-activation is the gate one plus
    # (b_update - b_gate), and z*h + (sz*(1 - z) + snu)*c is regrouped as
    # z*(h - sz*c) + (sz + snu)*c: fewer element-wise ops in the hot loop.
    zeta = tf.math.sigmoid(cell.zeta)
    zeta_plus_nu = zeta + tf.math.sigmoid(cell.nu)
    update_offset = cell.update_bias - cell.gate_bias

    by_length = collections.defaultdict(list)
    for index, sequence in enumerate(projected_sequences):
        by_length[sequence.shape[0]].append(index)

    results = [None] * len(projected_sequences)
    for length, indices in by_length.items():
        batch = tf.concat([projected_sequences[i] for i in indices], axis=1)
        state = tf.zeros_like(batch[0])
        for t in range(length):
            gate_pre = batch[t] + matmul(state, cell.recurrent_kernel)
            update_pre = simulation.preactivation(gate_pre + update_offset)
            gate_pre = simulation.preactivation(gate_pre)
            z = simulation.activation_output(gate_activation, gate(gate_pre))
            c = simulation.activation_output(update_activation, update(update_pre))
            state = simulation.state(z * (state - zeta * c) + zeta_plus_nu * c)
        sizes = [tf.shape(projected_sequences[i])[1] for i in indices]
        for i, part in zip(indices, tf.split(state, tf.stack(sizes), axis=0)):
            results[i] = part
    return results
