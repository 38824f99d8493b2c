"""The global-batch twins of tfmot's activation quantizers compute exactly what
tfmot's do on one device (the replica-count independence itself is tested with
two replicas in tests/app/test_distributed_training.py)."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
import tensorflow_model_optimization as tfmot

from rnnpool_keras.quantization import global_batch_quantizer

QUANTIZERS = tfmot.quantization.keras.quantizers


def _run(quantizer, batches, shape):
    holder = tf_keras.layers.Layer()
    variables = quantizer.build(shape, "x", holder)
    outputs = [quantizer(tf.constant(batch), True, variables).numpy() for batch in batches]
    outputs.append(quantizer(tf.constant(batches[0]), False, variables).numpy())
    return outputs, [variables["min_var"].numpy(), variables["max_var"].numpy()]


@pytest.mark.parametrize("tfmot_class,twin_class", [
    (QUANTIZERS.MovingAverageQuantizer, global_batch_quantizer.GlobalBatchMovingAverageQuantizer),
    (QUANTIZERS.AllValuesQuantizer, global_batch_quantizer.GlobalBatchAllValuesQuantizer),
])
@pytest.mark.parametrize("symmetric,narrow_range", [(False, False), (True, False), (True, True)])
def test_twin_matches_tfmot_quantizer_on_one_device(tfmot_class, twin_class, symmetric,
                                                     narrow_range):
    rng = np.random.default_rng(0)
    # Shifted batches: the ranges move, and differ on each side of zero.
    batches = [(rng.normal(size=(4, 5, 3)) * scale + shift).astype(np.float32)
               for scale, shift in ((1.0, 0.5), (3.0, -1.0), (0.5, 2.0))]
    settings = dict(num_bits=8, per_axis=False, symmetric=symmetric,
                    narrow_range=narrow_range)
    expected = _run(tfmot_class(**settings), batches, (4, 5, 3))
    got = _run(twin_class(**settings), batches, (4, 5, 3))
    for want, have in zip(expected[0] + expected[1], got[0] + got[1]):
        np.testing.assert_array_equal(have, want)


@pytest.mark.slow
def test_quantize_model_uses_the_twins_and_they_reload_under_quantize_scope(tmp_path):
    import rnnpool_keras
    from rnnpool_keras.app import demo

    qat = rnnpool_keras.quantize_model(demo.tiny_rnnpool_cnn(16, 3, 4))
    slots = [type(layer.quantizer).__name__ for layer in qat.layers
             if type(layer).__name__ == "QuantizeLayer"]
    outputs = [type(q).__name__ for layer in qat.layers
               for q in getattr(layer, "_output_quantizers", [])]
    activations = [type(a.quantizer).__name__ for layer in qat.layers
                   for a in getattr(layer, "_quantize_activations", [])
                   if hasattr(a, "_post_activation_vars")]
    assert slots == ["GlobalBatchAllValuesQuantizer"]
    assert outputs and set(outputs) == {"GlobalBatchMovingAverageQuantizer"}
    assert activations and set(activations) == {"GlobalBatchMovingAverageQuantizer"}
    path = str(tmp_path / "qat.h5")
    qat.save(path)
    with rnnpool_keras.quantize_scope():
        loaded = tf_keras.models.load_model(path)
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), qat(x).numpy())
