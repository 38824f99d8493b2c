"""The user-facing quantisation API: quantize_model, quantize_scope, calibrate.

Import cost note: tensorflow_model_optimization switches TF to tf_keras when
imported (TF_USE_LEGACY_KERAS=1), so this module is only loaded on first use.
"""
import numpy as np
import tensorflow as tf
import tf_keras
import tensorflow_model_optimization as tfmot

from rnnpool_keras.flat_model import flat_tf_keras_model
from rnnpool_keras.layers.rnnpool2d import RNNPool2D
from rnnpool_keras.layers.rnnpool2d_base import RANGE_NAMES
from rnnpool_keras.quantization import global_batch_quantizer
from rnnpool_keras.quantization import standard_layers
from rnnpool_keras.spec import integer_activations
from rnnpool_keras.quantization.quantize_config import RNNPoolQuantizeConfig

_RANK_ARGUMENTS = ("rnn1_kernel_rank", "rnn1_recurrent_rank",
                   "rnn2_kernel_rank", "rnn2_recurrent_rank")


def quantize_scope():
    """Scope in which saved QAT models with RNNPool2D load:

        with rnnpool_keras.quantize_scope():
            model = tf_keras.models.load_model(path)
    """
    return tfmot.quantization.keras.quantize_scope(
        {"RNNPool2D": RNNPool2D, "RNNPoolQuantizeConfig": RNNPoolQuantizeConfig,
         **standard_layers.CUSTOM_OBJECTS,
         **global_batch_quantizer.CUSTOM_OBJECTS})


def _check_int8_compatible(layer):
    problems = [f"`{name}`={getattr(layer, name)} (int8 needs full-rank matrices: "
                "train without it, or fold W_left @ W_right into a full-rank layer)"
                for name in _RANK_ARGUMENTS if getattr(layer, name) is not None]
    if layer.gate_activation not in integer_activations.GATE_ACTIVATIONS:
        problems.append(f"`gate_activation`={layer.gate_activation!r} (int8 supports "
                        f"{list(integer_activations.GATE_ACTIVATIONS)})")
    if problems:
        raise ValueError(f"RNNPool2D layer {layer.name!r} cannot be quantized to int8: "
                         + "; ".join(problems))


def quantize_model(model, custom_twins=None):
    """A tfmot quantization-aware-training copy of a Keras model with RNNPool2D.

    The model may be tf_keras or Keras 3 (functional or Sequential) and may
    nest functional / Sequential models: it is first rebuilt as one flat
    tf_keras model (`rnnpool_keras.flat_model`), so the QAT model returned is
    always a tf_keras model (fit it, then `converters.convert(qat,
    quantize="int8")`; `flat_model.copy_weights_back` returns its float
    weights to a Keras 3 model). RNNPool2D layers get `RNNPoolQuantizeConfig`;
    Multiply, Subtract, Rescaling and Normalization get an output quantizer,
    Conv2D / DepthwiseConv2D / Dense with a swish activation a quantizer
    before swish too (`quantization.standard_layers`); every other layer
    tfmot's default 8-bit scheme. The returned model shares no variables with
    `model`, trains like any Keras model, and saves / loads under
    `quantize_scope()`.

    Args:
      model: a built tf_keras or Keras 3 Sequential or functional model.
      custom_twins: {Keras 3 layer class: tf_keras layer class}, see
        `flat_model.flat_tf_keras_model`.
    Raises:
      TypeError: `model` is not a Sequential / functional model.
      ValueError: a layer has no tf_keras twin, or an RNNPool2D layer has no
        int8 form (low rank, relu gate).
    """
    model = flat_tf_keras_model(model, custom_twins, caller="quantize_model")
    for layer in model.layers:
        if isinstance(layer, RNNPool2D):
            _check_int8_compatible(layer)

    def annotate(layer):
        # Every layer, as tfmot's quantize_annotate_model would (config None:
        # the default 8-bit scheme's), in the one clone: each clone re-traces
        # every layer, RNNPool2D's recurrences included.
        if isinstance(layer, RNNPool2D):
            config = RNNPoolQuantizeConfig()
        else:
            config = standard_layers.quantize_config_for(layer)
        return tfmot.quantization.keras.quantize_annotate_layer(
            layer, quantize_config=config)

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with quantize_scope():
        qat_model = tfmot.quantization.keras.quantize_apply(annotated)
    return use_global_batch_ranges(qat_model)


def use_global_batch_ranges(qat_model):
    """Makes the activation ranges of a QAT model (quantize_model's, or one
    loaded from a file) follow the global batch under tf.distribute, so they do
    not depend on the replica count; the same ranges as before on one device.
    Returns `qat_model`, changed in place."""
    global_batch_quantizer.use_global_batch_ranges(_quantizer_slots(qat_model))
    return qat_model


class _RecordRange:
    """Stands in for a tfmot activation quantizer during calibration: widens
    its min / max variables to cover what it sees, and passes values through."""

    def __call__(self, inputs, training, weights, **kwargs):
        weights["min_var"].assign(tf.minimum(weights["min_var"], tf.reduce_min(inputs)))
        weights["max_var"].assign(tf.maximum(weights["max_var"], tf.reduce_max(inputs)))
        return inputs


def _quantizer_slots(model):
    """(owner, attribute) of every activation quantizer in a QAT model."""
    slots = []
    for layer in model.layers:
        if isinstance(layer, tfmot.quantization.keras.QuantizeWrapperV2):
            if layer._output_quantizers:
                slots.append((layer, "_output_quantizers", layer._output_quantizer_vars))
            for activation in layer._quantize_activations:
                for name in ("_pre_activation_vars", "_post_activation_vars"):
                    if hasattr(activation, name):
                        slots.append((activation, "quantizer", getattr(activation, name)))
        elif type(layer).__name__ == "QuantizeLayer" and layer.quantizer is not None:
            slots.append((layer, "quantizer", layer.quantizer_vars))
    return slots


def calibrate(qat_model, representative_data, batch_size=32):
    """Post-training calibration: sets every range of a quantize_model() model
    from float runs over `representative_data`, as QAT would have tracked them.

    Weight ranges come from the weights. Then the model runs on the data with
    int8 weights in place (as the deployed model computes) and float
    activations: activation and output ranges become the min / max seen, and
    RNNPool2D's int16 ranges the largest magnitudes seen (docs/int8_rnnpool.md, 7).

    Args:
      qat_model: the result of `quantize_model`.
      representative_data: an array [N, ...] of model inputs, or an iterable of
        input batches.
    """
    qat_model = flat_tf_keras_model(qat_model, caller="calibrate")
    wrappers = [layer for layer in qat_model.layers
                if isinstance(layer, tfmot.quantization.keras.QuantizeWrapperV2)]
    if not wrappers:
        raise ValueError("calibrate expects a model returned by quantize_model")
    for wrapper in wrappers:
        for weight, quantizer, variables in wrapper._weight_vars:
            quantizer(weight, True, variables)  # LastValue: ranges from the weights
    slots = _quantizer_slots(qat_model)
    originals = []
    rnnpools = [w.layer for w in wrappers if isinstance(w.layer, RNNPool2D)]
    try:
        for owner, attribute, variables in slots:
            variables["min_var"].assign(0.0)
            variables["max_var"].assign(0.0)
            original = getattr(owner, attribute)
            originals.append((owner, attribute, original))
            setattr(owner, attribute,
                    [_RecordRange()] if isinstance(original, list) else _RecordRange())
        for layer in rnnpools:
            for name in RANGE_NAMES:
                getattr(layer, name + "_range").assign(0.0)
            layer.recording_ranges = True
        if isinstance(representative_data, np.ndarray):
            batches = (representative_data[i:i + batch_size]
                       for i in range(0, len(representative_data), batch_size))
        else:
            batches = representative_data
        seen = 0
        for batch in batches:
            qat_model(batch, training=False)
            seen += 1
        if not seen:
            raise ValueError("calibrate got no representative data")
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)
        for layer in rnnpools:
            layer.recording_ranges = False
    return qat_model
