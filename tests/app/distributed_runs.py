"""Training runs for test_distributed.py, each in a fresh process (logical devices
and TF_CONFIG are fixed per process and must not leak into other tests).

    python distributed_runs.py replicas OUT_DIR
        two logical CPU devices; for a float and a QAT tiny model, trains a few
        steps on one device and with MirroredStrategy on both, from the same
        initial weights on the same global batches; writes the weights of each
        run to OUT_DIR/{float,qat}_{one_device,mirrored}.npz.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

GLOBAL_BATCH = 16
STEPS = 4


def tiny_model(qat):
    """The demo's conv -> RNNPool2D -> dense model on 16x16x3, or its QAT copy."""
    import tf_keras
    import rnnpool_keras
    from rnnpool_keras.app import demo

    model = demo.tiny_rnnpool_cnn(input_size=16, channels=3, num_classes=4)
    return rnnpool_keras.quantize_model(model) if qat else model


def quadrant_batches():
    from rnnpool_keras.app import synthetic

    x, y = synthetic.quadrant_images(GLOBAL_BATCH * STEPS, size=16, channels=3, seed=3)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)


def train(strategy, qat, initial_weights):
    """Weights [name -> array] after STEPS SGD steps under `strategy`."""
    import tf_keras

    with strategy.scope():
        model = tiny_model(qat)
        model.set_weights(initial_weights)
        model.compile(optimizer=tf_keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(quadrant_batches(), epochs=1, verbose=0)
    return {f"{i:03d}:{w.name}": w.numpy() for i, w in enumerate(model.weights)}


def replicas(out_dir):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras

    strategies = {"one_device": tf.distribute.OneDeviceStrategy("/cpu:0"),
                  "mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
    for kind, qat in (("float", False), ("qat", True)):
        tf_keras.utils.set_random_seed(0)
        initial = tiny_model(qat).get_weights()
        for name, strategy in strategies.items():
            np.savez(os.path.join(out_dir, f"{kind}_{name}.npz"),
                     **train(strategy, qat, initial))


if __name__ == "__main__":
    {"replicas": replicas}[sys.argv[1]](*sys.argv[2:])
