"""RNNPool over a whole feature map, as one batched TensorFlow computation.

The steps follow docs/rnnpool_float.md (one patch: RNN1 over its rows and
columns, RNN2 both ways over the summaries). Work shared between patches is
done once:
- the RNN1 input projection is a 1x1 convolution of the whole map, taken
  before the patches (a pixel is projected once, however many sweeps read it);
- overlapping patches read the same row / column segments of the map, so RNN1
  sweeps each distinct segment once ("lines" below), and RNN2 reads the
  summaries it needs with one gather;
- all sweeps of one length run as one batch, and the map is pixel-major
  ([pixels, batch, units]) so each gather yields time-major sequences directly.
"""
import numpy as np
import tensorflow as tf

from rnnpool_keras.layers import fastgrnn
from rnnpool_keras.layers import int8_simulation as simulation_lib
from rnnpool_keras.spec import geometry


def _pad_same(x, pool, strides):
    """Zero-pads an NHWC map so that valid patches give the "same" output size."""
    pads = [[0, 0]]
    for axis, (size, stride) in enumerate(zip(pool, strides), start=1):
        length = x.shape[axis]
        if length is not None:
            pads.append(list(geometry.same_padding(length, size, stride)))
            continue
        length = tf.shape(x)[axis]
        out = (length + stride - 1) // stride
        total = tf.maximum((out - 1) * stride + size - length, 0)
        pads.append([total // 2, total - total // 2])
    pads.append([0, 0])
    return tf.pad(x, pads)


def _dim(x, axis):
    """The static size of `axis` of x when known, else its run-time size."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


class _NumPyIndices:
    """Index arithmetic on a map of known size: NumPy at trace time, so the
    graph holds each index array as one constant instead of the ops that
    compute it (about 200 of the 600 ops of the tiny CNN's QAT RNNPool call,
    built again in every trace of the layer)."""
    range = staticmethod(lambda n: np.arange(n, dtype=np.int32))
    reshape = staticmethod(np.reshape)
    transpose = staticmethod(np.transpose)
    reverse = staticmethod(lambda a: a[::-1])
    stack = staticmethod(np.stack)
    concat = staticmethod(np.concatenate)
    size = staticmethod(np.size)
    shape = staticmethod(lambda a: list(a.shape))


class _TensorFlowIndices:
    """The same index arithmetic as graph ops, for a map of run-time size."""
    range = staticmethod(tf.range)
    reshape = staticmethod(tf.reshape)
    transpose = staticmethod(tf.transpose)
    reverse = staticmethod(lambda a: tf.reverse(a, [0]))
    stack = staticmethod(tf.stack)
    concat = staticmethod(tf.concat)
    size = staticmethod(tf.size)
    shape = staticmethod(tf.shape)


def _lines(count, pool, stride, xp):
    """The distinct lines (rows or columns of the map) that patches sweep along
    one axis, with `count` patch positions of `pool` lines every `stride`.

    Returns (positions [J] of the lines on the map, slots [count, pool]: the
    line index j of line i of patch p). Lines shared by overlapping patches
    (stride < pool) appear once.
    """
    if stride >= pool:
        j = xp.range(count * pool)
        positions = (j // pool) * stride + j % pool
        slots = xp.reshape(xp.range(count * pool), [count, pool])
    else:
        positions = xp.range((count - 1) * stride + pool)
        slots = xp.range(count)[:, None] * stride + xp.range(pool)[None, :]
    return positions, slots


def _sweep(sequences, cell, gate_activation, update_activation, simulation, sweep):
    """Final states [M, units] of time-major `sequences` [T, M, units]."""
    if sweep is not None:
        return sweep(sequences, cell, gate_activation, update_activation)
    return fastgrnn.final_state(sequences, cell, gate_activation, update_activation,
                                simulation)


def rnnpool(x, rnn1, rnn2, pool, strides, padding, gate_activation,
            update_activation, simulation=None, sweep=None):
    """RNNPool of an NHWC map.

    Args:
      x: [B, H, W, k] float tensor.
      rnn1: fastgrnn.CellWeights of RNN1 (k -> h1).
      rnn2: fastgrnn.CellWeights of RNN2 (h1 -> h2).
      pool: (r, c) patch size; strides: (sr, sc); padding: "valid" or "same".
      simulation: None, or an `int8_simulation` object (int8 simulation
        or range recording at the kernel's int16 points).
      sweep: None for the TensorFlow recurrence (`fastgrnn.final_state`), or a
        function (sequences [T, M, h], cell, gate_activation, update_activation)
        -> final states [M, h] computing the same float maths (the fused op).
    Returns:
      [B, H', W', 4 * h2]: per patch concat(rows fwd, rows bwd, cols fwd, cols bwd).
    """
    (r, c), (sr, sc) = pool, strides
    simulation = simulation or simulation_lib.NoSimulation()
    projected = fastgrnn.matmul(x, rnn1.kernel)  # [B, H, W, h1]
    if padding == "same":
        # Zero pixels project to zero, so padding after the projection is exact.
        projected = _pad_same(projected, pool, strides)
    projected += rnn1.gate_bias
    h1 = projected.shape[-1]
    height, width = _dim(projected, 1), _dim(projected, 2)  # padded map
    xp = (_NumPyIndices if isinstance(height, int) and isinstance(width, int)
          else _TensorFlowIndices)
    out_h = (height - r) // sr + 1
    out_w = (width - c) // sc + 1
    # Pixel-major [H * W, B, h1]: a gather of pixel indices [T, S] gives
    # time-major sequences [T, S, B, h1].
    pixels = tf.reshape(tf.transpose(projected, [1, 2, 0, 3]), [-1, tf.shape(x)[0], h1])

    # RNN1 along each distinct row segment (time = column) and column segment
    # (time = row). Row sequence j * W' + ox starts at (row_lines[j], ox * sc);
    # column sequence k * H' + oy at (oy * sr, col_lines[k]).
    row_lines, row_slots = _lines(out_h, r, sr, xp)
    col_lines, col_slots = _lines(out_w, c, sc, xp)
    row_index = (row_lines[None, :, None] * width + xp.range(out_w)[None, None, :] * sc
                 + xp.range(c)[:, None, None])  # [c, J, W']
    col_index = ((xp.range(out_h)[None, None, :] * sr + xp.range(r)[:, None, None]) * width
                 + col_lines[None, :, None])  # [r, K, H']
    row_index = xp.reshape(row_index, [c, -1])
    col_index = xp.reshape(col_index, [r, -1])
    rnn1_args = (rnn1, gate_activation, update_activation, simulation.cell("rnn1"), sweep)
    if r == c:  # one batch of sequences
        both = tf.gather(pixels, xp.concat([row_index, col_index], axis=1))
        states = _sweep(tf.reshape(both, [r, -1, h1]), *rnn1_args)
    else:
        states = tf.concat([
            _sweep(tf.reshape(tf.gather(pixels, row_index), [c, -1, h1]), *rnn1_args),
            _sweep(tf.reshape(tf.gather(pixels, col_index), [r, -1, h1]), *rnn1_args)],
            axis=0)
    # Summaries of every row then column sequence, projected for RNN2 once each.
    summaries = fastgrnn.input_projection(
        tf.reshape(states, [-1, tf.shape(x)[0], h1]), rnn2)  # [J*W' + K*H', B, h2]
    h2 = summaries.shape[-1]

    # RNN2 over patch (oy, ox): its row i is row sequence row_slots[oy, i] * W' + ox,
    # its column j is column sequence col_slots[ox, j] * H' + oy (after the rows).
    rows2 = (xp.transpose(row_slots)[:, :, None] * out_w
             + xp.range(out_w)[None, None, :])  # [r, H', W']
    cols2 = (xp.size(row_index) // c
             + xp.transpose(col_slots)[:, None, :] * out_h
             + xp.range(out_h)[None, :, None])  # [c, H', W']
    sweeps = [rows2, xp.reverse(rows2), cols2, xp.reverse(cols2)]
    rnn2_args = (rnn2, gate_activation, update_activation, simulation.cell("rnn2"), sweep)

    def final(index, length):  # [length, n, H', W'] -> [n, H', W', B, h2]
        sequences = tf.reshape(tf.gather(summaries, index), [length, -1, h2])
        return tf.reshape(_sweep(sequences, *rnn2_args),
                          tf.concat([xp.shape(index)[1:], [-1, h2]], axis=0))
    if r == c:
        summary = final(xp.stack(sweeps, axis=1), r)
    else:
        summary = tf.concat([final(xp.stack(sweeps[:2], axis=1), r),
                             final(xp.stack(sweeps[2:], axis=1), c)], axis=0)
    summary = tf.transpose(summary, [3, 1, 2, 0, 4])  # [B, H', W', 4, h2]
    spatial = list(geometry.output_size(x.shape[1:3], pool, strides, padding))
    if None in spatial:
        return tf.reshape(summary, tf.concat(
            [tf.shape(summary)[:3], [4 * h2]], axis=0))
    # Static sizes where the input's are known: the TFLite converter sizes
    # tensors from the graph, not from Python's static shapes.
    return tf.reshape(summary, [-1] + spatial + [4 * h2])
