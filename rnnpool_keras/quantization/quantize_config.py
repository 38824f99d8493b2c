"""tfmot QuantizeConfig of RNNPool2D: where QAT rounds (docs/int8_rnnpool.md).

- W and U of both cells: 8-bit symmetric per-tensor (tfmot LastValueQuantizer,
  narrow range), as spec section 1;
- the int16 points (pre-activations, Q15 activation outputs, states): the
  layer's own `QatInt16Simulation`, switched on here, with its ranges stored as
  layer weights;
- the output: 8-bit asymmetric moving-average quantizer, as any tfmot layer;
- the input: quantised by whatever precedes the layer (tfmot's scheme).
"""
import tensorflow as tf
import tensorflow_model_optimization as tfmot

_QUANTIZED_MATRICES = ("rnn1_kernel", "rnn1_recurrent_kernel",
                       "rnn2_kernel", "rnn2_recurrent_kernel")


class RNNPoolQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """QuantizeConfig for `rnnpool_keras.RNNPool2D` (full-rank matrices)."""

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, name),
                 tfmot.quantization.keras.quantizers.LastValueQuantizer(
                     num_bits=8, per_axis=False, symmetric=True, narrow_range=True))
                for name in _QUANTIZED_MATRICES]

    def get_activations_and_quantizers(self, layer):
        # RNNPool's internal points are not Keras activations: see set_quantize_activations.
        return []

    # tfmot's wrapper calls these two from its call, which autograph converts
    # with everything it calls; they hold no tensor-dependent control flow.
    @tf.autograph.experimental.do_not_convert
    def set_quantize_weights(self, layer, quantize_weights):
        if len(quantize_weights) != len(_QUANTIZED_MATRICES):
            raise ValueError(
                f"RNNPoolQuantizeConfig.set_quantize_weights expects "
                f"{len(_QUANTIZED_MATRICES)} weights ({', '.join(_QUANTIZED_MATRICES)}), "
                f"got {len(quantize_weights)}")
        for name, weight in zip(_QUANTIZED_MATRICES, quantize_weights):
            current = getattr(layer, name)
            if tuple(current.shape) != tuple(weight.shape):
                raise ValueError(
                    f"RNNPoolQuantizeConfig.set_quantize_weights: {name} has shape "
                    f"{tuple(current.shape)}, got a quantized weight of shape "
                    f"{tuple(weight.shape)}")
            setattr(layer, name, weight)

    @tf.autograph.experimental.do_not_convert
    def set_quantize_activations(self, layer, quantize_activations):
        if quantize_activations:
            raise ValueError("RNNPoolQuantizeConfig.set_quantize_activations expects no "
                             f"activations, got {len(quantize_activations)}")
        # Called before every call of the wrapped layer: fake-quantise its int16 points.
        layer.int8_simulation = True

    def get_output_quantizers(self, layer):
        return [tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}
