"""RNNPool in builtin TFLite ops only: `convert(..., lowering="builtin")`.

For runtimes that cannot take the RNNPool custom kernel (a vendor's prebuilt
TFLM, a phone's TFLite, delegates). While the stock converter traces the
model, each RNNPool2D builds the graph below instead of its training graph
(`graph_override`). Every op in it is on TFLM's builtin list
(tflite-micro `tensorflow/lite/micro/micro_mutable_op_resolver.h`) with float
and int8 kernels there.

The graph, for an NHWC map [B, H, W, k] with static H and W (RNNPOOL.md's
steps, batched as in `rnnpool_op`):
1. PAD ("same" only), FULLY_CONNECTED with the gate bias: every pixel's RNN1
   input projection, computed once.
2. Two GATHERs with small constant index tables (row, then column offsets of
   every patch) give every patch pixel, [B, r * H', c * W', h1].
3. RNN1 unrolled, first along the rows then along the columns of every
   patch: step t is one STRIDED_SLICE of that tensor (column t of every row
   of every patch, or row t of every column), one FULLY_CONNECTED (h @ U) and
   element-wise ops (ADD, SUB, MUL, LOGISTIC, TANH, RELU / RELU6).
4. RNN2 over the row and column summaries, forward and backward (REVERSE_V2)
   in one batch (CONCATENATION, a STRIDED_SLICE per step), then SPLIT and
   CONCATENATION of the four final states and a RESHAPE to [B, H', W', 4 h2].

int8 is the stock converter's full-integer quantisation of this graph:
calibrated on representative data for a float model; for a QAT model, the
layers around RNNPool keep their QAT ranges and the lowered graph gets
fake-quantisation points with ranges recorded on representative data (its
tensors are not the custom op's, so QAT has no ranges for them).
"""

import numpy as np
import tensorflow as tf

from converters.conversion import composite
from converters.conversion import keras_to_tflite
from converters.tflite_io import tflite_model
from rnnpool_keras.layers import graph_override
from rnnpool_keras.spec import geometry


# -- quantisation points ------------------------------------------------------------

class _NoPoints:
    """Float lowering, and the trace the stock calibrator quantises: identities."""

    def at(self, key, x):
        return x


class _RangeRecorder:
    """Records the range of every point over eager runs of the lowered graph."""

    def __init__(self):
        self.ranges = {}

    def at(self, key, x):
        low, high = float(tf.reduce_min(x)), float(tf.reduce_max(x))
        # Zero stays inside the range: an int8 zero point must exist.
        old_low, old_high = self.ranges.get(key, (0.0, 0.0))
        self.ranges[key] = (min(old_low, low), max(old_high, high))
        return x


class _FakeQuantPoints:
    """Fake-quantises every point to 8 bits with its recorded range, as tfmot
    does after each layer, so the converter has a range for every tensor."""

    def __init__(self, ranges):
        self._ranges = ranges

    def at(self, key, x):
        low, high = self._ranges[key]
        return tf.quantization.fake_quant_with_min_max_args(x, low, high, num_bits=8)


# -- one FastGRNN cell, unrolled -------------------------------------------------

def _eager_values(layer, prefix):
    """(update bias - gate bias, sigmoid(zeta), sigmoid(nu)) of a cell as float32
    numbers, read outside the converter's trace."""
    with tf.init_scope():
        def value(name):
            return tf.convert_to_tensor(getattr(layer, f"{prefix}_{name}"))
        return ((value("update_bias") - value("gate_bias")).numpy(),
                tf.math.sigmoid(value("zeta")).numpy(),
                tf.math.sigmoid(value("nu")).numpy())


class _Cell:
    """One cell's weights and the ops of its steps.

    zeta, nu and the bias difference are read as numbers so that the step
    leaves out what they make trivial: the common frozen sigmoid(zeta) = 1,
    sigmoid(nu) = 0, and equal gate and update biases (the default init).
    Every op output whose range the converter cannot infer passes a point.
    """

    def __init__(self, layer, prefix, points):
        self.kernel = composite.full_matrix(layer, prefix + "_kernel")
        self.recurrent_kernel = composite.full_matrix(layer, prefix + "_recurrent_kernel")
        self.gate_bias = tf.convert_to_tensor(getattr(layer, prefix + "_gate_bias"))
        offset, zeta, nu = _eager_values(layer, prefix)
        self.update_offset = offset if np.any(offset) else None
        self.zeta = float(zeta)
        self.zeta_plus_nu = float(zeta + nu)  # float32 sum, as the layer computes it
        self.gate_activation = layer.gate_activation
        self.update_activation = layer.update_activation
        self._points = points
        self._key = f"{layer.name}/{prefix}"

    def _at(self, step_key, name, x):
        return self._points.at(f"{self._key}/{step_key}/{name}", x)

    def project(self, x):
        """x @ W + b_gate for x [B, ..., in]: the state-independent pre-activation.

        All projections of a cell share one point: RNN2's row and column
        projections are joined into one batch, and with two ranges there the
        converter requantises a REVERSE_V2's input but not its output.
        """
        return self._at("inputs", "projection", tf.matmul(x, self.kernel) + self.gate_bias)

    def _activation(self, name, x, step_key, role):
        if name == "sigmoid":
            return tf.math.sigmoid(x)  # LOGISTIC: fixed int8 output range
        if name == "tanh":
            return tf.math.tanh(x)  # TANH: fixed int8 output range
        if name == "relu":
            return self._at(step_key, role, tf.nn.relu(x))
        # quantSigm = clip((x+1)/2, 0, 1) = relu6(3x+3)/6 and quantTanh =
        # clip(x, -1, 1) = relu6(3x+3)/3 - 1: a clip becomes RELU_0_TO_1 /
        # RELU_N1_TO_1, which TFLM does not have; relu6 fuses into the ADD.
        scaled = self._at(step_key, role + "_scaled", x * 3.0)
        clipped = self._at(step_key, role + "_clipped", tf.nn.relu6(scaled + 3.0))
        if name == "quantSigm":
            return self._at(step_key, role, clipped * (1.0 / 6.0))
        third = self._at(step_key, role + "_third", clipped * (1.0 / 3.0))
        return self._at(step_key, role, third - 1.0)

    def step(self, projected, state, step_key):
        """One step for a batch [B, ..., units]; `state` None is h0 = 0.
        `step_key` names the step's points."""
        def at(name, x):
            return self._at(step_key, name, x)

        gate_pre = projected
        if state is not None:
            recurrent = at("recurrent", tf.matmul(state, self.recurrent_kernel))
            gate_pre = at("gate_pre", projected + recurrent)
        update_pre = gate_pre
        if self.update_offset is not None:
            update_pre = at("update_pre", gate_pre + self.update_offset)
        z = self._activation(self.gate_activation, gate_pre, step_key, "gate")
        c = self._activation(self.update_activation, update_pre, step_key, "update")
        # h' = z*h + (sz*(1 - z) + snu)*c, regrouped as in fastgrnn.final_state.
        if self.zeta == 1.0 and self.zeta_plus_nu == 1.0:
            if state is None:
                return at("state", c * at("one_minus_gate", 1.0 - z))
            return at("state", c + at("kept", z * at("difference", state - c)))
        if state is None:
            coefficient = at("coefficient",
                             self.zeta_plus_nu - at("zeta_gate", self.zeta * z))
            return at("state", c * coefficient)
        difference = at("difference", state - at("zeta_update", self.zeta * c))
        return at("state", at("kept", z * difference)
                  + at("fresh", self.zeta_plus_nu * c))


def _final_state(cell, length, step_inputs, name):
    """Runs `cell` from h0 = 0 over `length` steps; step_inputs(t) builds the
    projected inputs [B, ..., units] of step t. Returns the final state.

    Each step's inputs are sliced when the step runs, so that only they, not
    a time-major copy of every patch, are alive beside the patches. (One
    UNPACK of such a copy also trips the stock quantiser, and joining slices
    step by step makes it requantise the whole sliced tensor for every step.)
    """
    state = None
    for t in range(length):
        state = cell.step(step_inputs(t), state, f"{name}{t}")
    return state


# -- the layer ------------------------------------------------------------------

def _offsets(count, pool, stride):
    """Map index of offset a of patch i, for (a, i) in row-major order: [pool * count]."""
    return np.array([i * stride + a for a in range(pool) for i in range(count)], np.int32)


def lowered_rnnpool(layer, x, points=None):
    """RNNPool of an NHWC map in ops that convert to TFLM builtins.

    Every tensor keeps the batch as its own leading axis and every other size
    static, so the graph is right for any batch: traced with an unknown one,
    the converter writes a shape's -1 as 1, and a batch merged with another
    axis would give TFLM (which sizes tensors from the file) wrong shapes.

    Args:
      layer: the RNNPool2D whose weights and options to use.
      x: [B, H, W, k] float tensor with static H, W and k.
      points: where int8 ranges are recorded or applied; None for plain float.
    Returns:
      [B, H', W', 4 * h2], as `rnnpool_op.rnnpool` computes it.
    """
    height, width = x.shape[1:3]
    if height is None or width is None:
        raise ValueError(
            f"lowering='builtin' needs the height and width of RNNPool2D layer "
            f"{layer.name!r}'s input to be known, got input shape {tuple(x.shape)}: "
            "give the model a fixed input size (e.g. tf_keras.Input((H, W, C)))")
    points = points or _NoPoints()
    (r, c), (sr, sc) = layer.pool_size, layer.strides
    if layer.padding == "same":
        # Zero pixels, projected below to the gate bias, as in the layer.
        pads = [geometry.same_padding(n, p, s)
                for n, p, s in ((height, r, sr), (width, c, sc))]
        x = tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
        height, width = x.shape[1], x.shape[2]
    out_h = geometry.output_length(height, r, sr, "valid")
    out_w = geometry.output_length(width, c, sc, "valid")
    rnn1, rnn2 = _Cell(layer, "rnn1", points), _Cell(layer, "rnn2", points)
    h2 = layer.rnn2_units
    count = out_h * out_w  # patches per map

    projected = rnn1.project(x)  # [B, H, W, h1]
    patches = tf.gather(projected, _offsets(out_h, r, sr), axis=1)
    patches = tf.gather(patches, _offsets(out_w, c, sc), axis=2)
    # patches: [B, r * H', c * W', h1], axes (row a, patch i), (column b, patch j).

    def row_step(b):  # [B, r * H', W', h1]: column b of every row a of every patch
        return patches[:, :, b * out_w:(b + 1) * out_w]

    def col_step(a):  # [B, H', c * W', h1]: row a of every column b of every patch
        return patches[:, a * out_h:(a + 1) * out_h]

    # One chain after the other: only one chain's step tensors are alive at a time.
    row_states = _final_state(rnn1, c, row_step, "rows")  # [B, r * H', W', h1]
    col_states = _final_state(rnn1, r, col_step, "cols")  # [B, H', c * W', h1]

    # RNN2 over the summaries, time-major: [B, r, count, h2] and [B, c, count, h2].
    rows2 = tf.reshape(rnn2.project(row_states), [-1, r, count, h2])
    cols2 = tf.reshape(tf.transpose(
        tf.reshape(rnn2.project(col_states), [-1, out_h, c, out_w * h2]), [0, 2, 1, 3]),
        [-1, c, count, h2])
    # Both directions of a summary sequence, and rows with columns when r == c,
    # run as one batch: [B, T, n * count, h2], cut per step.
    groups = [[rows2, tf.reverse(rows2, [1])], [cols2, tf.reverse(cols2, [1])]]
    if r == c:
        groups = [groups[0] + groups[1]]
    finals = []
    for group in groups:
        sweeps = tf.concat(group, axis=2)
        state = _final_state(rnn2, sweeps.shape[1], lambda t, joined=sweeps: joined[:, t],
                             f"sweeps{len(finals)}_")
        finals.extend(tf.split(state, len(group), axis=1))
    summary = tf.concat(finals, axis=-1)  # [B, count, 4 * h2], (i, j)
    return tf.reshape(summary, [-1, out_h, out_w, 4 * h2])


class BuiltinBuilder:
    """A `graph_override` build function: the lowered graph of every RNNPool2D
    (the RNNPool2D itself inside a tfmot wrapper), with the given points."""

    def __init__(self, points=None):
        self.points = points

    def __call__(self, layer, x):
        return lowered_rnnpool(layer, x, self.points)


# -- conversion -----------------------------------------------------------------

def _batches(model, representative_data):
    """Lists of per-input float arrays [N, ...], from an array [N, ...] or an
    iterable of batches (a list of arrays per batch for several inputs)."""
    batches = [representative_data] if isinstance(representative_data, np.ndarray) \
        else representative_data
    count = len(model.inputs)
    seen = 0
    for batch in batches:
        arrays = [batch] if count == 1 and not isinstance(batch, (list, tuple)) \
            else list(batch)
        if len(arrays) != count:
            raise ValueError(f"representative_data gives {len(arrays)} arrays per "
                             f"batch; the model has {count} inputs")
        arrays = [np.asarray(a, np.float32) for a in arrays]
        seen += len(arrays[0])
        yield arrays
    if not seen:
        raise ValueError("representative_data holds no samples")


def _representative_dataset(model, representative_data):
    """The stock converter's representative dataset: one [1, ...] sample at a time."""
    def samples():
        for arrays in _batches(model, representative_data):
            for i in range(len(arrays[0])):
                yield [a[i:i + 1] for a in arrays]
    return samples


def _record_ranges(qat_model, representative_data):
    """Ranges of the lowered graphs' points over eager runs of the QAT model."""
    recorder = _RangeRecorder()
    with graph_override.override(BuiltinBuilder(recorder)):
        for arrays in _batches(qat_model, representative_data):
            qat_model(arrays[0] if len(arrays) == 1 else arrays, training=False)
    return recorder.ranges


# Ops whose int8 kernels move bytes without requantising (TFLM's CONCATENATION
# refuses differing scales; the others would silently compute wrong values).
_BYTE_MOVING_OPS = ("CONCATENATION", "GATHER", "PAD", "RESHAPE", "REVERSE_V2", "SPLIT",
                    "SPLIT_V", "STRIDED_SLICE", "TRANSPOSE", "UNPACK")


def _scale_and_zero_point(tensor):
    q = tensor.quantization
    if q is None or q.scale is None or not len(q.scale):
        return None
    return tuple(float(v) for v in q.scale), tuple(int(v) for v in q.zeroPoint)


def check_byte_moving_ops(model_bytes):
    """Raises RuntimeError if an int8 data-movement op of the main subgraph reads
    and writes different scales or zero points.

    The stock converter can produce one (seen: a REVERSE_V2 whose input it
    requantised for a CONCATENATION elsewhere), and runtimes then copy bytes
    from one scale to another; this check turns that into an error.
    """
    model = tflite_model.load(model_bytes)
    subgraph = model.subgraphs[0]
    for index, op in enumerate(subgraph.operators):
        name = tflite_model.op_name(model, op)
        if name not in _BYTE_MOVING_OPS:
            continue
        data = [t for t in op.inputs if t >= 0 and subgraph.tensors[t].type
                == subgraph.tensors[op.outputs[0]].type]
        params = {_scale_and_zero_point(subgraph.tensors[t])
                  for t in list(data) + list(op.outputs)}
        if len(params) > 1:
            raise RuntimeError(
                f"the TFLite converter produced operator {index} ({name}) with inputs "
                f"and outputs of different quantisation {sorted(params, key=str)}: it "
                "would copy int8 values between scales. Please report this with the "
                "model")


def convert_builtin(model, quantize, representative_data):
    """A tf_keras model with RNNPool2D layers -> .tflite bytes of builtin ops only.

    Called by `converters.convert(..., lowering="builtin")`, which has checked
    the arguments. float: the lowered graph as traced. int8: full-integer
    quantisation by the stock converter (int8 input and output): a float
    model is calibrated on `representative_data`; a QAT model keeps its
    ranges outside RNNPool, and its lowered RNNPool graphs are calibrated on
    `representative_data`.

    Args:
      model: a built tf_keras model (float, or QAT from rnnpool_keras.quantize_model)
        whose RNNPool2D inputs have a static height and width.
      quantize: None or "int8".
      representative_data: for int8, an array [N, ...] of typical model inputs
        (or an iterable of batches; a list of arrays per batch for several inputs).
    Returns:
      The .tflite model as bytes.
    Raises:
      ValueError: int8 without representative_data, or an RNNPool2D input of
        unknown height or width.
    """
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "lowering='builtin' with quantize='int8' needs representative_data, also "
            "for a QAT model: the stock converter quantises the lowered RNNPool "
            "graph, whose tensors have no QAT ranges, from ranges seen on typical "
            "inputs")
    qat = quantize == "int8" and keras_to_tflite.is_qat_model(model)
    points = _FakeQuantPoints(_record_ranges(model, representative_data)) if qat else None
    # A QAT graph carries its ranges in fake-quant ops; a float one is calibrated.
    dataset = (_representative_dataset(model, representative_data)
               if quantize == "int8" and not qat else None)
    model_bytes = keras_to_tflite.finish(
        keras_to_tflite.run_stock_converter(model, BuiltinBuilder(points), quantize,
                                       representative_dataset=dataset), model)
    if quantize == "int8":
        check_byte_moving_ops(model_bytes)
    return model_bytes
