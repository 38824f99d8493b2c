"""RNNPool in builtin TFLite ops only: `convert(..., lowering="builtin")`.

For runtimes that cannot take the RNNPool custom kernel (a vendor's prebuilt
TFLM, a phone's TFLite, delegates). While the stock converter traces the
model, each RNNPool2D builds the graph below instead of its training graph
(`graph_override`); every op in it is on TFLM's builtin list
(tflite-micro `tensorflow/lite/micro/micro_mutable_op_resolver.h`), float and
int8, and the stock converter quantises it like any other builtin graph.

The graph, for an NHWC map [B, H, W, k] with static H and W (RNNPOOL.md's
steps, batched as in `rnnpool_op`):
1. PAD ("same" only), TRANSPOSE to [W, H, B, k], FULLY_CONNECTED with the
   gate bias: every pixel's RNN1 input projection, computed once.
2. Two GATHERs with small constant index tables (column then row offsets of
   every patch) give [c * W', r * H', B, h1]: every patch pixel, laid out so
   that a RESHAPE makes it time-major for the row sweeps and one TRANSPOSE
   time-major for the column sweeps.
3. The FastGRNN recurrence unrolled over the r (or c) time steps, each step
   one FULLY_CONNECTED (h @ U) and element-wise ops on the batch of every
   row / column of every patch; sweeps of equal length share their steps
   (CONCATENATION, UNPACK, then SPLIT of the final states).
4. RNN2 the same way over the row and column summaries, forward and backward;
   CONCATENATION of the four final states, RESHAPE and TRANSPOSE back to NHWC.
"""
import numpy as np
import tensorflow as tf

from converters import composite
from rnnpool_keras import graph_override
from rnnpool_keras import patch_geometry


# -- the non-linearities ------------------------------------------------------

def _quant_sigm(x):
    # clip((x + 1) / 2, 0, 1) as relu6(3x + 3) / 6: the converter fuses a
    # clip into RELU_0_TO_1 / RELU_N1_TO_1, which TFLM does not have.
    return tf.nn.relu6(x * 3.0 + 3.0) * (1.0 / 6.0)


def _quant_tanh(x):
    # clip(x, -1, 1) as relu6(3x + 3) / 3 - 1, for the same reason.
    return tf.nn.relu6(x * 3.0 + 3.0) * (1.0 / 3.0) - 1.0


# Each becomes LOGISTIC, TANH, RELU, or MUL / ADD with a fused RELU6.
_NONLINEARITIES = {
    "sigmoid": tf.math.sigmoid,
    "tanh": tf.math.tanh,
    "relu": tf.nn.relu,
    "quantSigm": _quant_sigm,
    "quantTanh": _quant_tanh,
}


# -- one FastGRNN cell, unrolled -------------------------------------------------

class _Cell:
    """A cell's weights as the lowered graph uses them.

    zeta and nu are read as Python numbers so that the state update can be
    specialised for the common frozen case sigmoid(zeta) = 1, sigmoid(nu) = 0.
    """

    def __init__(self, layer, prefix):
        self.kernel = composite.full_matrix(layer, prefix + "_kernel")
        self.recurrent_kernel = composite.full_matrix(layer, prefix + "_recurrent_kernel")
        gate_bias = getattr(layer, prefix + "_gate_bias")
        self.gate_bias = tf.convert_to_tensor(gate_bias)
        self.update_offset = tf.convert_to_tensor(getattr(layer, prefix + "_update_bias")) \
            - self.gate_bias
        with tf.init_scope():  # eager values, outside the converter's trace
            zeta = tf.math.sigmoid(getattr(layer, prefix + "_zeta"))
            nu = tf.math.sigmoid(getattr(layer, prefix + "_nu"))
            # float32 sums, as the layer computes them
            self.zeta = float(zeta.numpy())
            self.zeta_plus_nu = float((zeta + nu).numpy())
        self.gate = _NONLINEARITIES[layer.gate_activation]
        self.update = _NONLINEARITIES[layer.update_activation]

    def project(self, x):
        """x @ W + b_gate for x [M, in]: the state-independent pre-activation."""
        return tf.matmul(x, self.kernel) + self.gate_bias

    def step(self, projected, state):
        """One step for a batch [M, units]; `state` None is h0 = 0."""
        gate_pre = projected if state is None else \
            projected + tf.matmul(state, self.recurrent_kernel)
        z = self.gate(gate_pre)
        c = self.update(gate_pre + self.update_offset)
        # h' = z*h + (sz*(1 - z) + snu)*c, regrouped as in fastgrnn.final_states.
        if self.zeta == 1.0 and self.zeta_plus_nu == 1.0:
            if state is None:
                return c * (1.0 - z)
            return c + z * (state - c)
        if state is None:
            return c * (self.zeta_plus_nu - self.zeta * z)
        return z * (state - self.zeta * c) + self.zeta_plus_nu * c


def _final_states(cell, sweeps):
    """Final states of several sweeps [B, T_i, M, units] (projected inputs, time
    on axis 1), each forward or (reverse=True) backward; sweeps of equal length
    run together, their sequences joined on axis 1.

    All sweeps hold the same number M of sequences (true of RNNPool's: a patch
    has as many rows as columns when their lengths are equal), so the joint
    final state splits into equal parts. Returns a list of [B, M, units].
    """
    by_length = {}
    for index, (sequence, reverse) in enumerate(sweeps):
        by_length.setdefault(int(sequence.shape[1]), []).append((index, sequence, reverse))
    results = [None] * len(sweeps)
    for length, group in by_length.items():
        # One UNPACK per distinct tensor: a backward sweep reads the same steps.
        steps = {}
        for _, sequence, _ in group:
            steps.setdefault(id(sequence), tf.unstack(sequence, axis=1))
        state = None
        for t in range(length):
            inputs = [steps[id(sequence)][length - 1 - t if reverse else t]
                      for _, sequence, reverse in group]
            joined = inputs[0] if len(inputs) == 1 else tf.concat(inputs, axis=1)
            state = cell.step(joined, state)
        parts = [state] if len(group) == 1 else tf.split(state, len(group), axis=1)
        for (index, _, _), part in zip(group, parts):
            results[index] = part
    return results


# -- the layer ------------------------------------------------------------------

def _offsets(count, pool, stride):
    """Map index of offset a of patch i, for (a, i) in row-major order: [pool * count]."""
    return np.array([i * stride + a for a in range(pool) for i in range(count)], np.int32)


def _swap_middle(x, shape):
    """Reshapes x to [B] + shape (three static sizes) and swaps axes 1 and 2."""
    return tf.transpose(tf.reshape(x, [-1] + shape), [0, 2, 1, 3])


def lowered_rnnpool(layer, x):
    """RNNPool of an NHWC map in builtin-convertible TensorFlow ops.

    Every tensor keeps the batch as its own leading axis and every other size
    static: the converter writes a -1 of a shape as 1, so merging the batch
    with another axis would give TFLM (which sizes tensors from the file)
    wrong shapes.

    Args:
      layer: the RNNPool2D whose weights and options to use.
      x: [B, H, W, k] float tensor with static H, W and k.
    Returns:
      [B, H', W', 4 * h2], as `rnnpool_op.rnnpool` computes it.
    """
    height, width, channels = x.shape[1:]
    if height is None or width is None:
        raise ValueError(
            f"lowering='builtin' needs the height and width of RNNPool2D layer "
            f"{layer.name!r}'s input to be known, got input shape {tuple(x.shape)}: "
            "give the model a fixed input size (e.g. tf_keras.Input((H, W, C)))")
    (r, c), (sr, sc) = layer.pool_size, layer.strides
    if layer.padding == "same":
        # Zero pixels, projected below to the gate bias, as in the layer.
        pads = [patch_geometry.same_padding(n, p, s)
                for n, p, s in ((height, r, sr), (width, c, sc))]
        x = tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
        height, width = x.shape[1], x.shape[2]
    out_h = patch_geometry.output_length(height, r, sr, "valid")
    out_w = patch_geometry.output_length(width, c, sc, "valid")
    rnn1, rnn2 = _Cell(layer, "rnn1"), _Cell(layer, "rnn2")
    h1, h2 = layer.rnn1_units, layer.rnn2_units
    patches_per_map = out_h * out_w

    pixels = tf.reshape(x, [-1, height * width, channels])
    projected = tf.reshape(rnn1.project(pixels), [-1, height, width, h1])
    patches = tf.gather(projected, _offsets(out_h, r, sr), axis=1)
    patches = tf.gather(patches, _offsets(out_w, c, sc), axis=2)
    # patches: [B, r * H', c * W', h1], axes (row a, patch i), (column b, patch j).
    col_sweeps = tf.reshape(patches, [-1, r, out_h * c * out_w, h1])  # time a; (i, b, j)
    row_sweeps = tf.reshape(_swap_middle(patches, [r * out_h, c, out_w * h1]),
                            [-1, c, r * patches_per_map, h1])  # time b; (a, i, j)
    row_states, col_states = _final_states(
        rnn1, [(row_sweeps, False), (col_sweeps, False)])

    # RNN2 over the summaries: time a for rows, b for columns; sequences (i, j).
    rows2 = tf.reshape(rnn2.project(row_states), [-1, r, patches_per_map, h2])
    cols2 = tf.reshape(_swap_middle(rnn2.project(col_states), [out_h, c, out_w * h2]),
                       [-1, c, patches_per_map, h2])
    summary = tf.concat(_final_states(
        rnn2, [(rows2, False), (rows2, True), (cols2, False), (cols2, True)]), axis=-1)
    return tf.reshape(summary, [-1, out_h, out_w, 4 * h2])


def build(layer, x):
    """A `graph_override` build function: the lowered graph for every RNNPool2D."""
    return lowered_rnnpool(layer, x)


# -- conversion -----------------------------------------------------------------

def _is_qat_model(model):
    return any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.submodules)


def _samples(model, representative_data):
    """The stock converter's representative dataset: one [1, ...] sample per
    model input at a time, from an array [N, ...] or an iterable of batches."""
    batches = [representative_data] if isinstance(representative_data, np.ndarray) \
        else representative_data
    count = len(model.inputs)

    def generate():
        seen = 0
        for batch in batches:
            arrays = [batch] if count == 1 and not isinstance(batch, (list, tuple)) \
                else list(batch)
            if len(arrays) != count:
                raise ValueError(f"representative_data gives {len(arrays)} arrays per "
                                 f"batch; the model has {count} inputs")
            arrays = [np.asarray(a, np.float32) for a in arrays]
            for i in range(len(arrays[0])):
                seen += 1
                yield [a[i:i + 1] for a in arrays]
        if not seen:
            raise ValueError("representative_data holds no samples")

    return generate


def convert_builtin(model, quantize, representative_data):
    """A tf_keras model with RNNPool2D layers -> .tflite bytes of builtin ops only.

    Called by `converters.convert(..., lowering="builtin")`, which has checked
    the arguments. float: the lowered graph as traced. int8: the stock
    converter's full-integer post-training quantisation of the lowered graph
    (int8 input and output), calibrated on `representative_data`.

    Args:
      model: a built tf_keras float model with static input height and width.
      quantize: None or "int8".
      representative_data: for int8, an array [N, ...] of typical inputs (or
        an iterable of batches, a list of arrays per batch for several inputs).
    Raises:
      ValueError: int8 of a QAT model (its ranges cover the custom op's integer
        points, not the lowered graph's tensors: convert the float model it was
        made from with representative_data), or an RNNPool2D input of unknown size.
    """
    if quantize == "int8" and _is_qat_model(model):
        raise ValueError(
            "lowering='builtin' quantises the lowered RNNPool graph with the stock "
            "converter, which needs ranges for every tensor of it; a QAT model's "
            "ranges are those of the RNNPool custom op. Pass the float model and "
            "representative_data (e.g. the QAT model's training images) instead")
    with graph_override.override(build):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _samples(model, representative_data)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()
