"""The FastGRNN cell: one step, and batched final-state sweeps
(docs/rnnpool_float.md, sections 2 and 7).

`step` is the one FastGRNN step of the project: the layer (and so its QAT
simulation) sweeps with it here, and the builtin lowering unrolls it into
TFLite ops. Everything is plain TensorFlow on tensors the caller passes in, so
the tf_keras and Keras 3 layers (and the QAT wrapper, which swaps weights
before a call) share one implementation of the equations.
"""
import collections

import tensorflow as tf

from rnnpool_keras.layers import activations

# The weights of one FastGRNN cell as tensors. `kernel` / `recurrent_kernel`
# are full matrices or (left, right) pairs for the low-rank form W = left @ right.
CellWeights = collections.namedtuple(
    "CellWeights",
    ["kernel", "recurrent_kernel", "gate_bias", "update_bias", "zeta", "nu"])

# What a step needs of a cell: `recurrent(h)` computes h @ U; `update_offset` is
# b_update - b_gate (None when known to be 0); `zeta` is sigmoid(zeta) and
# `zeta_plus_nu` sigmoid(zeta) + sigmoid(nu), tensors or Python floats.
StepWeights = collections.namedtuple(
    "StepWeights", ["recurrent", "update_offset", "zeta", "zeta_plus_nu"])


class NoPoints:
    """`step`'s points left alone: the float computation."""

    def at(self, name, x):
        return x


def step(projected, state, weights, gate, update, points=NoPoints()):
    """One FastGRNN step for a batch: h' from the projected input and h.

    h' = z h + (sigmoid(zeta) (1 - z) + sigmoid(nu)) c, with z = gate(pre + b_gate),
    c = update(pre + b_update), pre = x W + h U, computed in the regrouped form
    z (h - sz c) + (sz + sn) c of docs/rnnpool_float.md, section 7.

    Args:
      projected: x @ W + b_gate, [..., units].
      state: h [..., units], or None for h0 = 0 (the first step: no h @ U).
      weights: StepWeights of the cell. With Python floats sz = 1, sz + sn = 1
        (frozen zeta / nu, the quantised models' choice) the step skips them.
      gate, update: the activations, pre-activation -> output, including what
        the caller does around them (the QAT simulation rounds both sides).
      points: `points.at(name, x)` sees, and may replace, every intermediate
        result: "recurrent", "gate_pre", "update_pre", "one_minus_gate",
        "zeta_gate", "coefficient", "zeta_update", "difference", "kept",
        "fresh", "state" (the QAT simulation rounds the state, the builtin
        lowering records or fake-quantises all).
    Returns:
      h' [..., units].
    """
    gate_pre = projected
    if state is not None:
        recurrent = points.at("recurrent", weights.recurrent(state))
        gate_pre = points.at("gate_pre", projected + recurrent)
    update_pre = gate_pre
    if weights.update_offset is not None:
        update_pre = points.at("update_pre", gate_pre + weights.update_offset)
    z = gate(gate_pre)
    c = update(update_pre)
    zeta, zeta_plus_nu = weights.zeta, weights.zeta_plus_nu
    if isinstance(zeta, float) and zeta == 1.0 and zeta_plus_nu == 1.0:
        if state is None:
            return points.at("state", c * points.at("one_minus_gate", 1.0 - z))
        return points.at("state", c + points.at(
            "kept", z * points.at("difference", state - c)))
    if state is None:
        coefficient = points.at("coefficient",
                                zeta_plus_nu - points.at("zeta_gate", zeta * z))
        return points.at("state", c * coefficient)
    difference = points.at("difference", state - points.at("zeta_update", zeta * c))
    return points.at("state", points.at("kept", z * difference)
                     + points.at("fresh", zeta_plus_nu * c))


def matmul(x, matrix):
    """x @ W for x [..., in] and W [in, out] or a low-rank pair (left, right)."""
    if isinstance(matrix, tuple):
        left, right = matrix
        return matmul(matmul(x, left), right)
    if x.shape.rank == 2:
        # One MatMul op; tensordot would wrap it in reshapes and, for an
        # unknown batch, shape arithmetic (the recurrence's h @ U: once a step).
        return tf.linalg.matmul(x, matrix)
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
      simulation: an `int8_simulation` object bound to this cell, applied
        where the int8 kernel rounds (`int8_simulation.NoSimulation()` for plain float).
    The steps come from one `tf.unstack`: its gradient is one stack, where
    slicing `sequence[t]` per step would write a full-size gradient per step.
    """
    gate = activations.get(gate_activation)
    update = activations.get(update_activation)
    weights = StepWeights(
        recurrent=lambda h: matmul(h, cell.recurrent_kernel),
        update_offset=cell.update_bias - cell.gate_bias,
        zeta=tf.math.sigmoid(cell.zeta),
        zeta_plus_nu=tf.math.sigmoid(cell.zeta) + tf.math.sigmoid(cell.nu))

    # The int8 kernel rounds both pre-activations to int16, each from the exact
    # sum (docs/int8_rnnpool.md), and the activations' outputs.
    def gate_output(x):
        return simulation.activation_output(gate_activation,
                                            gate(simulation.preactivation(x)))

    def update_output(x):
        return simulation.activation_output(update_activation,
                                            update(simulation.preactivation(x)))

    state = None
    for projected in tf.unstack(sequence, num=sequence.shape[0], axis=0):
        state = step(projected, state, weights, gate_output, update_output, simulation)
    return state
