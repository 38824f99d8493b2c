"""What happens at the int16 points of the int8 kernel, in float (spec 1, 4.3).

RNNPool2D passes one of these to the recurrence for each call:
- `NoSimulation`: nothing (the float layer);
- `CalibrationRangeRecorder`: records the largest |pre-activation| and |state| of each
  cell (post-training calibration);
- `QatInt16Simulation`: also fake-quantises pre-activations and states to int16
  and gate / update outputs to Q15, where the kernel rounds (QAT).
Each tracked range is a layer weight `<cell>_preactivation_range` /
`<cell>_state_range` (0 until calibrated), which the converter reads.
"""
import tensorflow as tf

from rnnpool_keras.layers import replica_extremes
from rnnpool_keras.spec import fixed_point

# Used before a range has been observed (in QAT's first batch): the pre-activation
# range of saturating activations and a state range that fits the default |h| <= 1.
DEFAULT_RANGES = {"preactivation": 8.0, "state": 2.0}


class NoSimulation:
    """No simulation: the identity at every point."""

    def cell(self, name):
        return self

    def at(self, name, x):
        """fastgrnn.step's named points: the kernel rounds the new state to int16
        (pre-activations are rounded by the activations' callers)."""
        return self.state(x) if name == "state" else x

    def preactivation(self, x):
        return x

    def activation_output(self, activation, x):
        return x

    def state(self, x):
        return x

    def finish(self, training):
        pass


class CalibrationRangeRecorder(NoSimulation):
    """Collects each call's largest magnitudes, and folds them into the ranges."""

    def __init__(self, ranges, decay=None):
        """ranges: {"rnn1_preactivation": variable, ...}; decay: None keeps the
        running maximum (calibration), a float keeps an exponential moving
        average of the per-call maxima (QAT, as tfmot's MovingAverageQuantizer)."""
        self._ranges = ranges
        self._decay = decay
        self._observed = {key: [] for key in ranges}
        self._cell = None

    def cell(self, name):
        view = type(self).__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._cell = name
        return view

    def _observe(self, kind, x):
        key = f"{self._cell}_{kind}"
        self._observed[key].append(tf.reduce_max(tf.abs(tf.cast(x, tf.float32))))
        return key

    def preactivation(self, x):
        self._observe("preactivation", x)
        return x

    def state(self, x):
        self._observe("state", x)
        return x

    def finish(self, training):
        """Folds this call's maxima into the range weights: always when
        calibrating, and only in training when averaging (QAT)."""
        if self._decay is None or training is True:
            self._fold(apply=True)
        elif tf.is_tensor(training):
            # A select, not tf.cond: the fold synchronises replicas, which a cond
            # branch cannot do under tf.distribute.
            self._fold(apply=tf.cast(training, tf.bool))

    def _fold(self, apply):
        keys = [key for key, maxima in self._observed.items() if maxima]
        if not keys:
            return
        # Every replica folds the global batch's maxima, so all hold one range.
        observed = replica_extremes.global_max(tf.stack(
            [tf.reduce_max(tf.stack(self._observed[key])) for key in keys]))
        for key, value in zip(keys, tf.unstack(observed)):
            variable = self._ranges[key]
            if self._decay is None:
                updated = tf.maximum(variable, value)
            else:  # the first observation initialises the average
                updated = tf.where(variable > 0,
                                   self._decay * variable + (1 - self._decay) * value,
                                   value)
            if apply is not True:
                updated = tf.where(apply, updated, variable)
            variable.assign(updated)


def fake_quant_symmetric16(x, bounds):
    """Rounds x to the int16 grid of scale max_abs / 32767 (spec 1), clamping
    to bounds = (-max_abs, max_abs)."""
    return tf.quantization.fake_quant_with_min_max_vars(
        x, bounds[0], bounds[1], num_bits=16, narrow_range=True)


def fake_quant_q15(x):
    """Rounds x to Q15, the grid of the integer activations' outputs (spec 4.4)."""
    return tf.quantization.fake_quant_with_min_max_args(
        x, min=-1.0, max=1.0 - 1.0 / fixed_point.ONE_Q15, num_bits=16)


class QatInt16Simulation(CalibrationRangeRecorder):
    """QAT: records ranges (moving average) and fake-quantises with them."""

    def __init__(self, ranges, decay=0.999):
        super().__init__(ranges, decay)
        self._range_values = {}  # shared by the cell views, like _observed

    def _fake_quant(self, kind, x):
        # Each range is read (and negated) once per call: the variables change
        # only in finish(), after the recurrence, so every step sees the same
        # value, and the graph has one read per range instead of one per step.
        key = f"{self._cell}_{kind}"
        if key not in self._range_values:
            value = tf.cast(self._ranges[key], tf.float32)
            value = tf.where(value > 0, value, DEFAULT_RANGES[kind])
            self._range_values[key] = (-value, value)
        return fake_quant_symmetric16(x, self._range_values[key])

    def preactivation(self, x):
        self._observe("preactivation", x)
        return self._fake_quant("preactivation", x)

    def activation_output(self, activation, x):
        # relu keeps the pre-activation's int16 grid; the others output Q15.
        return x if activation == "relu" else fake_quant_q15(x)

    def state(self, x):
        self._observe("state", x)
        return self._fake_quant("state", x)
