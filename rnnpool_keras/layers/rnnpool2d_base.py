"""The one implementation of RNNPool2D, shared by its tf_keras and Keras 3 classes.

`RNNPool2DBase` is a mixin: `rnnpool_keras.layers.rnnpool2d.RNNPool2D` puts it on
tf_keras' `Layer`, `rnnpool_keras.keras3.RNNPool2D` on Keras 3's, and each sets
`_keras` to its Keras module. The maths lives in `rnnpool_math`, so the two
flavours cannot drift apart.
"""
import tensorflow as tf

from rnnpool_keras.layers import arguments
from rnnpool_keras.layers import fastgrnn
from rnnpool_keras.layers import fused_sweep
from rnnpool_keras.layers import graph_override
from rnnpool_keras.layers import int8_simulation
from rnnpool_keras.layers import rnnpool_math
from rnnpool_keras.layers import shape_inference
from rnnpool_keras.spec import cost
from rnnpool_keras.spec import geometry

# The Keras registration of both classes: saved models name "rnnpool_keras>RNNPool2D".
REGISTERED_PACKAGE = "rnnpool_keras"

# (attribute prefix, rank argument) for each weight matrix, in creation order.
_MATRICES = (
    ("rnn1_kernel", "rnn1_kernel_rank"),
    ("rnn1_recurrent_kernel", "rnn1_recurrent_rank"),
    ("rnn2_kernel", "rnn2_kernel_rank"),
    ("rnn2_recurrent_kernel", "rnn2_recurrent_rank"),
)
RANK_ARGUMENTS = tuple(rank for _, rank in _MATRICES)
# The int16 points of the int8 kernel whose ranges the layer tracks
# (docs/int8_rnnpool.md, section 7), as "<cell>_<kind>".
RANGE_NAMES = ("rnn1_preactivation", "rnn1_state", "rnn2_preactivation", "rnn2_state")


def _replicated_range_options(keras):
    """add_weight options of the range weights under tf.distribute: every replica
    writes the same value (the global batch's, layers.replica_extremes), so
    the first replica's write is mirrored to all and saved."""
    if keras.__name__ == "tf_keras":
        return {"synchronization": tf.VariableSynchronization.ON_WRITE,
                "aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA}
    return {"aggregation": "only_first_replica"}  # Keras 3 mirrors on write by default


def _weight_options(keras):
    """(argument name, Keras module that gets/serialises it) of every weight option,
    GRUCell's initializer / regularizer / constraint triple for W, U and the biases."""
    return [(f"{weight}_{kind}", module)
            for kind, module in (("initializer", keras.initializers),
                                 ("regularizer", keras.regularizers),
                                 ("constraint", keras.constraints))
            for weight in ("kernel", "recurrent", "bias")]


class RNNPool2DBase:
    """RNNPool: non-linear pooling of every patch by two FastGRNN RNNs.

    Slides an `r x c` window (like a pooling layer) over an image-like map
    and summarises each patch into `4 * rnn2_units` values: RNN1 sweeps every
    row and every column of the patch, RNN2 (bidirectional, shared weights)
    sweeps the row summaries and the column summaries. Saha et al.,
    "RNNPool: Efficient Non-linear Pooling for RAM Constrained Inference",
    NeurIPS 2020.

    Args:
      rnn1_units: h1, hidden units of RNN1 (rows and columns of a patch).
      rnn2_units: h2, hidden units of RNN2; the output has 4 * h2 channels.
      pool_size: int or (r, c), the patch size in rows and columns.
      strides: int or (sr, sc); defaults to `pool_size`.
      padding: "valid" or "same" (zero padding, Keras pooling's size rule).
      data_format: "channels_last" (NHWC) or "channels_first" (NCHW);
        defaults to Keras' `image_data_format()`.
      gate_activation: "sigmoid", "tanh", "relu", "quantSigm" or "quantTanh".
      update_activation: same choices; default "tanh".
      rnn1_kernel_rank, rnn1_recurrent_rank, rnn2_kernel_rank,
      rnn2_recurrent_rank: None for a full matrix, or the rank r of a
        factorisation W = W_left [in, r] @ W_right [r, out].
      zeta_init, nu_init: initial raw zeta and nu of both cells; the cell
        uses sigmoid(zeta) and sigmoid(nu).
      freeze_zeta_nu: if True, zeta and nu are not trained.
      kernel_*, recurrent_*, bias_*: initializer, regularizer and constraint
        of the input matrices W, the recurrent matrices U, and the gate and
        update biases, as in Keras' GRUCell.

    Input shape: [batch, H, W, k] (or [batch, k, H, W] for channels_first).
    Output shape: [batch, H', W', 4 * rnn2_units] (or channels first) with
      H' = floor((H - r) / sr) + 1 for "valid", ceil(H / sr) for "same";
      channels are concat(rows forward, rows backward, columns forward,
      columns backward) RNN2 final states.
    """

    _keras = None  # the tf_keras or keras module, set by the concrete class

    def __init__(self, rnn1_units, rnn2_units, pool_size, strides=None,
                 padding="valid", data_format=None,
                 gate_activation="sigmoid", update_activation="tanh",
                 rnn1_kernel_rank=None, rnn1_recurrent_rank=None,
                 rnn2_kernel_rank=None, rnn2_recurrent_rank=None,
                 zeta_init=100.0, nu_init=-100.0, freeze_zeta_nu=False,
                 kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer="ones",
                 kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, str):
            padding = padding.lower()
        if data_format is None:
            data_format = self._keras.backend.image_data_format()
        args = arguments.validate(
            rnn1_units=rnn1_units, rnn2_units=rnn2_units,
            pool_size=pool_size, strides=strides, padding=padding,
            data_format=data_format, gate_activation=gate_activation,
            update_activation=update_activation, zeta_init=zeta_init,
            nu_init=nu_init,
            ranks={"rnn1_kernel_rank": rnn1_kernel_rank,
                   "rnn1_recurrent_rank": rnn1_recurrent_rank,
                   "rnn2_kernel_rank": rnn2_kernel_rank,
                   "rnn2_recurrent_rank": rnn2_recurrent_rank})
        for name, value in args.items():
            setattr(self, name, value)
        self.freeze_zeta_nu = bool(freeze_zeta_nu)
        # The authors' FastGRNN initialisation: W, U ~ 0.1 * N(0, 1).
        given = {
            "kernel_initializer": kernel_initializer or
            self._keras.initializers.RandomNormal(stddev=0.1),
            "recurrent_initializer": recurrent_initializer or
            self._keras.initializers.RandomNormal(stddev=0.1),
            "bias_initializer": bias_initializer,
            "kernel_regularizer": kernel_regularizer,
            "recurrent_regularizer": recurrent_regularizer,
            "bias_regularizer": bias_regularizer,
            "kernel_constraint": kernel_constraint,
            "recurrent_constraint": recurrent_constraint,
            "bias_constraint": bias_constraint,
        }
        for name, module in _weight_options(self._keras):
            setattr(self, name, module.get(given[name]))
        self.input_spec = self._keras.layers.InputSpec(ndim=4)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1
        self.input_channels = None
        self._spatial_input_shape = (None, None)
        # Set by RNNPoolQuantizeConfig (QAT) and by calibration respectively.
        self.int8_simulation = False
        self.recording_ranges = False

    # -- shapes -----------------------------------------------------------

    def _spatial(self, shape):
        """(H, W) of an input shape in this layer's data format."""
        if self.data_format == "channels_last":
            return shape[1], shape[2]
        return shape[2], shape[3]

    def _check_input_shape(self, input_shape):
        shape = tuple(tf.TensorShape(input_shape).as_list())
        if len(shape) != 4:
            raise ValueError(
                f"RNNPool2D expects a 4D input [batch, H, W, channels] "
                f"({self.data_format}), got shape {shape}")
        if shape[self._channel_axis] is None:
            raise ValueError(
                f"RNNPool2D needs a known channel count on axis "
                f"{self._channel_axis} ({self.data_format}), got shape {shape}")
        if self.padding == "valid":
            for axis, n, p in zip(("height", "width"), self._spatial(shape),
                                  self.pool_size):
                if n is not None and n < p:
                    raise ValueError(
                        f"`pool_size` {self.pool_size} is larger than the input "
                        f"{axis} {n} with padding='valid' (input shape "
                        f"{shape}); use a smaller pool or padding='same'")
        return shape

    def _output_spatial(self, spatial):
        """(H', W') for an input (H, W); None where unknown."""
        return geometry.output_size(spatial, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        shape = self._check_input_shape(input_shape)
        height, width = self._output_spatial(self._spatial(shape))
        channels = 4 * self.rnn2_units
        if self.data_format == "channels_last":
            return (shape[0], height, width, channels)
        return (shape[0], channels, height, width)

    # -- weights ------------------------------------------------------------

    def _add_matrix(self, name, rank, rows, cols, initializer, regularizer,
                    constraint):
        """Creates `name` [rows, cols], or `name`_left/_right of rank `rank`."""
        def add(weight_name, shape):
            # A fresh initializer per weight: tf_keras returns the same values
            # from every call of one unseeded instance.
            fresh = self._keras.initializers.get(self._keras.initializers.serialize(initializer))
            return self.add_weight(
                name=weight_name, shape=shape, initializer=fresh,
                regularizer=regularizer, constraint=constraint)
        if rank is None:
            created = {name: add(name, (rows, cols)),
                       name + "_left": None, name + "_right": None}
        else:
            created = {name: None, name + "_left": add(name + "_left", (rows, rank)),
                       name + "_right": add(name + "_right", (rank, cols))}
        for attribute, variable in created.items():
            setattr(self, attribute, variable)
        # Untracked references (object.__setattr__ bypasses Keras tracking):
        # QAT replaces the attributes above with fake-quantised tensors.
        if "_matrix_variables" not in self.__dict__:
            object.__setattr__(self, "_matrix_variables", {})
        self._matrix_variables.update(created)

    def _add_cell_matrices(self, prefix, inputs, units):
        self._add_matrix(prefix + "_kernel", getattr(self, prefix + "_kernel_rank"),
                         inputs, units, self.kernel_initializer,
                         self.kernel_regularizer, self.kernel_constraint)
        self._add_matrix(prefix + "_recurrent_kernel",
                         getattr(self, prefix + "_recurrent_rank"), units, units,
                         self.recurrent_initializer, self.recurrent_regularizer,
                         self.recurrent_constraint)

    def _add_cell_vectors(self, prefix, units):
        for bias in ("gate_bias", "update_bias"):
            setattr(self, f"{prefix}_{bias}", self.add_weight(
                name=f"{prefix}_{bias}", shape=(units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint))
        for scalar, init in (("zeta", self.zeta_init), ("nu", self.nu_init)):
            setattr(self, f"{prefix}_{scalar}", self.add_weight(
                name=f"{prefix}_{scalar}", shape=(),
                initializer=self._keras.initializers.Constant(init),
                trainable=not self.freeze_zeta_nu))

    def build(self, input_shape):
        shape = self._check_input_shape(input_shape)
        self.input_channels = shape[self._channel_axis]
        self._spatial_input_shape = self._spatial(shape)
        # The four matrices first: tfmot's wrapper, rebuilt when a QAT model
        # loads, lists its quantised weights first, and saved weights are
        # matched by position.
        self._add_cell_matrices("rnn1", self.input_channels, self.rnn1_units)
        self._add_cell_matrices("rnn2", self.rnn1_units, self.rnn2_units)
        self._add_cell_vectors("rnn1", self.rnn1_units)
        self._add_cell_vectors("rnn2", self.rnn2_units)
        # Largest |pre-activation| / |state| per cell, 0 until calibrated or
        # trained with quantisation; the int8 converter reads them.
        for name in RANGE_NAMES:
            setattr(self, name + "_range", self.add_weight(
                name=name + "_range", shape=(), initializer="zeros",
                trainable=False, **_replicated_range_options(self._keras)))
        self.input_spec = self._keras.layers.InputSpec(
            ndim=4, axes={self._channel_axis: self.input_channels})
        self.built = True

    def matrix_variable(self, name):
        """The variable behind a matrix attribute (e.g. "rnn1_kernel", or
        "rnn1_kernel_left"), None if that form is not used. Unlike the
        attribute, this is the float variable even inside a QAT model."""
        return self._matrix_variables[name]

    def _cell_weights(self, prefix):
        """The current weights of one cell, read afresh on every call."""
        def matrix(name):
            full = getattr(self, name)
            if full is not None:
                return full
            return (getattr(self, name + "_left"), getattr(self, name + "_right"))
        return fastgrnn.CellWeights(
            kernel=matrix(prefix + "_kernel"),
            recurrent_kernel=matrix(prefix + "_recurrent_kernel"),
            gate_bias=getattr(self, prefix + "_gate_bias"),
            update_bias=getattr(self, prefix + "_update_bias"),
            zeta=getattr(self, prefix + "_zeta"),
            nu=getattr(self, prefix + "_nu"))

    def _simulation(self):
        """The int16-point behaviour of this call (quantization.simulation)."""
        ranges = {name: getattr(self, name + "_range") for name in RANGE_NAMES}
        if self.recording_ranges:  # calibration sees float values, even under QAT
            return int8_simulation.CalibrationRangeRecorder(ranges)
        if self.int8_simulation:
            return int8_simulation.QatInt16Simulation(ranges)
        return int8_simulation.NoSimulation()

    def call(self, inputs, training=None):
        return self._call_unconverted(inputs, training)

    # The call has no tensor-dependent control flow; autograph (which Keras
    # applies to a subclassed layer's call and everything it calls) would only
    # re-parse the maths, seconds in a new process (quantize_model of the tiny
    # CNN: 5.0 s -> 2.3 s). Not on `call` itself: tfmot's wrapper reads call's
    # signature to decide whether to pass `training`.
    @tf.autograph.experimental.do_not_convert
    def _call_unconverted(self, inputs, training):
        if shape_inference.inferring_output_shape():
            # tf_keras only reads the output's shape: no recurrences to build.
            shape = self.compute_output_shape(tuple(inputs.shape))
            if None not in shape[1:]:
                return shape_inference.tensor_of_shape(inputs, shape)
        x = inputs
        if self.data_format == "channels_first":
            x = tf.transpose(x, [0, 2, 3, 1])
        build = graph_override.current()
        if build is not None:  # a converter is tracing (graph_override)
            y = build(self, x)
        else:
            points = self._simulation()
            y = rnnpool_math.rnnpool(
                x, self._cell_weights("rnn1"), self._cell_weights("rnn2"),
                self.pool_size, self.strides, self.padding,
                self.gate_activation, self.update_activation, points,
                fused_sweep.select(x.dtype, type(points) is int8_simulation.NoSimulation))
            points.finish(training)
        if self.data_format == "channels_first":
            y = tf.transpose(y, [0, 3, 1, 2])
        return y

    # -- cost -----------------------------------------------------------------

    def madds_per_patch(self):
        """Multiply-adds per patch, as counted in the paper (needs a built layer)."""
        if not self.built:
            raise ValueError("RNNPool2D.madds_per_patch() needs a built layer "
                             "(call it on an input first)")
        return cost.madds_per_patch(
            self.pool_size, self.input_channels, self.rnn1_units,
            self.rnn2_units,
            **{name: getattr(self, name) for name in RANK_ARGUMENTS})

    def madds(self):
        """Multiply-adds for one image at the built size: per patch x H' x W'."""
        height, width = self._output_spatial(self._spatial_input_shape)
        if height is None or width is None:
            raise ValueError("RNNPool2D.madds() needs the layer built on a known "
                             f"height and width, got {self._spatial_input_shape}")
        return self.madds_per_patch() * height * width

    # -- serialisation ----------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update({
            "rnn1_units": self.rnn1_units,
            "rnn2_units": self.rnn2_units,
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "gate_activation": self.gate_activation,
            "update_activation": self.update_activation,
            "zeta_init": self.zeta_init,
            "nu_init": self.nu_init,
            "freeze_zeta_nu": self.freeze_zeta_nu,
        })
        for name, module in _weight_options(self._keras):
            config[name] = module.serialize(getattr(self, name))
        config.update({name: getattr(self, name) for name in RANK_ARGUMENTS})
        return config
