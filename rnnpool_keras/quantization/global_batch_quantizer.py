"""tfmot's activation quantizers, fed the global batch's extremes.

tfmot's `MovingAverageQuantizer` and `AllValuesQuantizer` fold each replica's own
batch min / max into the range, and the replicas' values are then averaged (or
one is kept): the mean of the halves' maxima is not the global batch's maximum,
so a QAT model's activation ranges (and the int8 model made from them) depend on
the replica count. The twins here take the extremes over all replicas first
(layers.replica_extremes) and are otherwise the same computation, so on
one device they give tfmot's result exactly.
"""
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from rnnpool_keras.layers import replica_extremes

_EMA_DECAY = 0.999  # tfmot's MovingAverageQuantizer's


def _global_batch_extremes(inputs, per_axis):
    """(min, max) of `inputs` over the global batch: scalars, or per last-axis
    channel when `per_axis` (tfmot's convention)."""
    axes = list(range(len(inputs.shape) - 1)) if per_axis else None
    return (replica_extremes.global_min(tf.reduce_min(inputs, axis=axes)),
            replica_extremes.global_max(tf.reduce_max(inputs, axis=axes)))


def _symmetric_ratio(quantizer):
    """min / max of the int grid tfmot uses for symmetric ranges."""
    if quantizer.narrow_range:
        return -1.0
    return -((1 << quantizer.num_bits) - 2) / (1 << quantizer.num_bits)


def _fake_quant(quantizer, inputs, min_value, max_value):
    if quantizer.per_axis:
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(
            inputs, min_value, max_value, num_bits=quantizer.num_bits,
            narrow_range=quantizer.narrow_range)
    return tf.quantization.fake_quant_with_min_max_vars(
        inputs, min_value, max_value, num_bits=quantizer.num_bits,
        narrow_range=quantizer.narrow_range)


class GlobalBatchMovingAverageQuantizer(
        tfmot.quantization.keras.quantizers.MovingAverageQuantizer):
    """MovingAverageQuantizer whose batch range is that of the global batch."""

    # `training` is a Python bool (tfmot's wrapper picks the call with a
    # smart_cond), so autograph, which converts what the wrapper's call
    # calls, would only re-parse this: not converted, here and below.
    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs, training, weights, **kwargs):
        min_value, max_value = weights["min_var"], weights["max_var"]
        if training:
            batch_min, batch_max = _global_batch_extremes(inputs, self.per_axis)
            if self.symmetric:
                ratio = _symmetric_ratio(self)
                range_min = tf.minimum(batch_min, batch_max / ratio)
                range_max = tf.maximum(batch_max, batch_min * ratio)
            else:  # TFLite needs 0 inside the range
                range_min = tf.minimum(batch_min, 0.0)
                range_max = tf.maximum(batch_max, 0.0)
            # Every replica passes the same value, so the replicas' mean is it.
            min_value = tf.__internal__.train.assign_moving_average(
                min_value, range_min, _EMA_DECAY, zero_debias=False)
            max_value = tf.__internal__.train.assign_moving_average(
                max_value, range_max, _EMA_DECAY, zero_debias=False)
        return _fake_quant(self, inputs, min_value, max_value)


class GlobalBatchAllValuesQuantizer(
        tfmot.quantization.keras.quantizers.AllValuesQuantizer):
    """AllValuesQuantizer (running min / max, tfmot's choice for model inputs)
    whose batch range is that of the global batch."""

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs, training, weights, **kwargs):
        min_value, max_value = weights["min_var"], weights["max_var"]
        if training:
            batch_min, batch_max = _global_batch_extremes(inputs, False)
            if self.symmetric:  # in tfmot's order: the new min widens the max
                ratio = _symmetric_ratio(self)
                batch_min = tf.minimum(batch_min, batch_max / ratio)
                batch_max = tf.maximum(batch_max, batch_min * ratio)
            min_value = min_value.assign(
                tf.minimum(tf.minimum(min_value, batch_min), 0.0))
            max_value = max_value.assign(
                tf.maximum(tf.maximum(max_value, batch_max), 0.0))
        return _fake_quant(self, inputs, min_value, max_value)


_REPLACEMENTS = {
    tfmot.quantization.keras.quantizers.MovingAverageQuantizer:
    GlobalBatchMovingAverageQuantizer,
    tfmot.quantization.keras.quantizers.AllValuesQuantizer: GlobalBatchAllValuesQuantizer,
}
CUSTOM_OBJECTS = {cls.__name__: cls for cls in _REPLACEMENTS.values()}


def use_global_batch_ranges(quantizer_slots):
    """Replaces every tfmot MovingAverageQuantizer / AllValuesQuantizer among
    `quantizer_slots` ((owner, attribute, variables) as quantization.api lists
    them) by its global-batch twin with the same settings and variables."""
    def replacement(quantizer):
        cls = _REPLACEMENTS.get(type(quantizer))
        return quantizer if cls is None else cls(**quantizer.get_config())

    for owner, attribute, _ in quantizer_slots:
        current = getattr(owner, attribute)
        setattr(owner, attribute, [replacement(q) for q in current]
                if isinstance(current, list) else replacement(current))
