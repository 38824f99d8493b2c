"""Training runs for test_distributed_training.py, each in a fresh process (logical devices
and TF_CONFIG are fixed per process and must not leak into other tests).

    python distributed_runs.py replicas OUT_DIR
        two logical CPU devices; for a float and a QAT tiny model, trains a few
        steps on one device and with MirroredStrategy on both, from the same
        initial weights on the same global batches (then calibrates the QAT
        model); writes the weights of each run to
        OUT_DIR/{float,qat}_{one_device,mirrored}.npz.

    TF_CONFIG=... python distributed_runs.py worker OUT_DIR EPOCHS [KILL_AT_STEP]
        one worker of a MultiWorkerMirroredStrategy cluster: `rnnpool train`'s
        function (float epochs, then one QAT epoch) on synthetic images, backups
        every 2 steps in OUT_DIR/train; appends the optimizer step after each
        batch to OUT_DIR/steps_<task>.txt, kills itself (SIGKILL) after step
        KILL_AT_STEP, and writes the final QAT weights to OUT_DIR/weights_<task>.npz.
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
    import rnnpool_keras
    from rnnpool_keras.app import demo

    model = demo.tiny_rnnpool_cnn(input_size=16, channels=3, num_classes=4)
    return rnnpool_keras.quantize_model(model) if qat else model


def quadrant_batches():
    return tf.data.Dataset.from_tensor_slices(quadrant_batches_arrays()).batch(GLOBAL_BATCH)


def train(strategy, qat, initial_weights=None):
    """(initial weights, weights [name -> array] after STEPS SGD steps) under
    `strategy`, from `initial_weights` (None: the new model's own)."""
    import tf_keras

    tf_keras.backend.clear_session()  # the same layer names in every run
    with strategy.scope():
        model = tiny_model(qat)
        if initial_weights is None:
            initial_weights = model.get_weights()
        else:
            model.set_weights(initial_weights)
        model.compile(optimizer=tf_keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(quadrant_batches(), epochs=1, verbose=0)
    weights = {f"{i:03d}:{w.name}": w.numpy() for i, w in enumerate(model.weights)}
    if qat:  # then post-training calibration of the trained model, in the scope
        import rnnpool_keras

        with strategy.scope():
            rnnpool_keras.calibrate(model, quadrant_batches_arrays()[0][:32], batch_size=16)
        weights.update({f"calibrated:{i:03d}:{w.name}": w.numpy()
                        for i, w in enumerate(model.weights)})
    return initial_weights, weights


def replicas(out_dir):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras

    strategies = {"one_device": tf.distribute.OneDeviceStrategy("/cpu:0"),
                  "mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
    for kind, qat in (("float", False), ("qat", True)):
        tf_keras.utils.set_random_seed(0)
        initial = None  # the first run's, for both
        for name, strategy in strategies.items():
            initial, weights = train(strategy, qat, initial)
            np.savez(os.path.join(out_dir, f"{kind}_{name}.npz"), **weights)


WORKER_STEPS_PER_EPOCH = 4


def worker(out_dir, epochs, kill_at_step=None):
    import json
    import signal

    from rnnpool_keras.app import training, training_data

    strategy = training.make_strategy("multiworker")  # first: collectives need it
    import tf_keras

    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    steps_file = os.path.join(out_dir, f"steps_{task}.txt")

    class RecordSteps(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            with open(steps_file, "a") as file:
                file.write(f"{step}\n")
            if kill_at_step is not None and step == int(kill_at_step):
                os.kill(os.getpid(), signal.SIGKILL)  # as a preempted machine

    x, y = quadrant_batches_arrays()
    data = training_data.TrainingData(
        training_data.Split(tf.data.Dataset.from_tensor_slices((x, y)), len(x)), None,
        ("q0", "q1", "q2", "q3"), x.shape[1:], "synthetic quadrants")
    trained = training.train(
        data, "tiny_rnnpool_cnn", os.path.join(out_dir, "train"), epochs=int(epochs),
        batch_size=GLOBAL_BATCH, strategy=strategy, qat_epochs=1,
        steps_per_epoch=WORKER_STEPS_PER_EPOCH, backup_every=2, export_int8=False,
        callbacks=[RecordSteps()])
    np.savez(os.path.join(out_dir, f"weights_{task}.npz"),
             **{f"{i:03d}:{w.name}": w.numpy()
                for i, w in enumerate(trained.qat_model.weights)})


def quadrant_batches_arrays():
    from rnnpool_keras.app import synthetic

    return synthetic.quadrant_images(GLOBAL_BATCH * STEPS, size=16, channels=3, seed=3)


if __name__ == "__main__":
    {"replicas": replicas, "worker": worker}[sys.argv[1]](*sys.argv[2:])
