"""RNNPool over a whole feature map, as one batched TensorFlow computation.

The steps follow docs/rnnpool_float.md (sections 3 and 4). Two reorderings of
its section 7 are used: the RNN1 input projection is a
1x1 convolution of the whole map taken before the patches (pixels shared by
overlapping patches, and by a patch's row and column sweeps, are projected
once), and every row, column, patch and RNN2 sweep is swept in one batch.
"""
import tensorflow as tf

from rnnpool_keras.layers import fastgrnn
from rnnpool_keras.spec import geometry
from rnnpool_keras.layers import int8_simulation as simulation_lib


def _pad_same(x, pool, strides):
    """Zero-pads an NHWC map so that valid patches give the "same" output size."""
    pads = [[0, 0]]
    for axis, (size, stride) in enumerate(zip(pool, strides), start=1):
        length = tf.shape(x)[axis]
        out = (length + stride - 1) // stride
        total = tf.maximum((out - 1) * stride + size - length, 0)
        pads.append([total // 2, total - total // 2])
    pads.append([0, 0])
    return tf.pad(x, pads)


def extract_patches(x, pool, strides):
    """All valid patches of an NHWC map, [B, H', W', r, c, C]."""
    (r, c), (sr, sc) = pool, strides
    patches = tf.image.extract_patches(
        x, sizes=[1, r, c, 1], strides=[1, sr, sc, 1], rates=[1, 1, 1, 1],
        padding="VALID")  # [B, H', W', r * c * C], ordered (row, column, channel)
    return tf.reshape(patches, tf.concat(
        [tf.shape(patches)[:3], [r, c, x.shape[-1]]], axis=0))


def rnnpool(x, rnn1, rnn2, pool, strides, padding, gate_activation,
            update_activation, simulation=None):
    """RNNPool of an NHWC map.

    Args:
      x: [B, H, W, k] float tensor.
      rnn1: fastgrnn.CellWeights of RNN1 (k -> h1).
      rnn2: fastgrnn.CellWeights of RNN2 (h1 -> h2).
      pool: (r, c) patch size; strides: (sr, sc); padding: "valid" or "same".
      simulation: None, or a `quantization.simulation` object (int8 simulation
        or range recording at the kernel's int16 points).
    Returns:
      [B, H', W', 4 * h2]: per patch concat(rows fwd, rows bwd, cols fwd, cols bwd).
    """
    r, c = pool
    projected = fastgrnn.matmul(x, rnn1.kernel)  # [B, H, W, h1]
    if padding == "same":
        # Zero pixels project to zero, so padding after the projection is exact.
        projected = _pad_same(projected, pool, strides)
    projected += rnn1.gate_bias
    patches = extract_patches(projected, pool, strides)  # [B, H', W', r, c, h1]
    out_shape = tf.shape(patches)[:3]
    h1 = patches.shape[-1]
    patches = tf.reshape(patches, [-1, r, c, h1])  # [N, r, c, h1]

    # RNN1 along rows (time = column index) and along columns (time = row index).
    row_inputs = tf.reshape(tf.transpose(patches, [2, 0, 1, 3]), [c, -1, h1])
    col_inputs = tf.reshape(tf.transpose(patches, [1, 0, 2, 3]), [r, -1, h1])
    simulation = simulation or simulation_lib.NoSimulation()
    row_states, col_states = fastgrnn.final_states(
        [row_inputs, col_inputs], rnn1, gate_activation, update_activation,
        simulation.cell("rnn1"))
    row_states = tf.reshape(row_states, [-1, r, h1])  # [N, r, h1]
    col_states = tf.reshape(col_states, [-1, c, h1])  # [N, c, h1]

    # RNN2, one set of weights, both directions over both summary sequences.
    rows2 = tf.transpose(fastgrnn.input_projection(row_states, rnn2), [1, 0, 2])
    cols2 = tf.transpose(fastgrnn.input_projection(col_states, rnn2), [1, 0, 2])
    sweeps = [rows2, tf.reverse(rows2, [0]), cols2, tf.reverse(cols2, [0])]
    summary = tf.concat(
        fastgrnn.final_states(sweeps, rnn2, gate_activation, update_activation,
                              simulation.cell("rnn2")),
        axis=-1)  # [N, 4 * h2]
    spatial = [geometry.output_length(n, p, s, padding)
               for n, p, s in zip(x.shape[1:3], pool, strides)]
    if None in spatial:
        return tf.reshape(summary, tf.concat([out_shape, [summary.shape[-1]]], 0))
    # Static sizes where the input's are known: the TFLite converter sizes
    # tensors from the graph, not from Python's static shapes.
    return tf.reshape(summary, [-1] + spatial + [summary.shape[-1]])
