"""`rnnpool train`: trains a model on tf.distribute, then QAT and the int8 model.

One function, `train`, runs the stages: the input pipeline
(app.training_data), float training under the chosen strategy with a cosine
learning rate, backups to resume from (BackupAndRestore) and TensorBoard logs,
then optional quantization-aware epochs, the full-int8 .tflite with its host
accuracy and C array (the demo's `deploy`) and its memory report.

Multi-worker training reads the cluster from TF_CONFIG; every worker runs the
same command, and only the chief keeps models, logs and the .tflite in
`output_dir` (the other workers write theirs to a temporary directory).
"""
import collections
import json
import os
import shutil
import tempfile

import tensorflow as tf

from rnnpool_keras.app import demo
from rnnpool_keras.app import training_data
from rnnpool_keras.app import zoo

STRATEGIES = ("default", "mirrored", "multiworker")
MODELS = {
    "tiny_rnnpool_cnn": lambda shape, classes: demo.tiny_rnnpool_cnn(
        shape[0], shape[2], classes),
    "small_mobilenetv2_rnnpool": zoo.small_mobilenetv2_rnnpool,
    "small_mobilenetv2": zoo.small_mobilenetv2,
    "vww_mobilenetv2_rnnpool": zoo.vww_mobilenetv2_rnnpool,
    "vww_mobilenetv2": zoo.vww_mobilenetv2,
}
FLOAT_MODEL_FILE = "float_model.h5"
QAT_MODEL_FILE = "qat_model.h5"
INT8_NAME = "model_int8"
_EXPORT_IMAGES = 1000  # validation images the int8 model is run on, at most

Trained = collections.namedtuple("Trained", ["model", "qat_model", "metrics"])


def make_strategy(name):
    """The tf.distribute strategy called `name` (one of STRATEGIES).

    "mirrored": every local GPU (or the CPU); "multiworker": the cluster in
    TF_CONFIG, each worker's local devices; "default": no distribution.
    Create it before any other TensorFlow work (multi-worker needs that).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`strategy` must be one of {list(STRATEGIES)}, got {name!r}")


def localhost_tf_configs(workers):
    """TF_CONFIG values (JSON strings), one per worker, of a cluster of `workers`
    processes on 127.0.0.1 on free ports: multi-worker training on one machine."""
    import socket

    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:  # released just before the workers bind them
        s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(workers)]


def is_chief(strategy):
    """True on the worker that keeps the outputs: the chief, else worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (
        not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def use_mixed_precision(enabled):
    """Switches Keras to float16 compute with float32 weights, on GPUs only."""
    if not enabled:
        return
    if not tf.config.list_physical_devices("GPU"):
        raise ValueError("`mixed_precision` needs a GPU: on a CPU float16 is "
                         "emulated and slower than float32; train without it")
    import tf_keras
    tf_keras.mixed_precision.set_global_policy("mixed_float16")


def _check_arguments(epochs, batch_size, learning_rate, qat_epochs, steps_per_epoch,
                     backup_every):
    problems = []
    for name, value, minimum in (("epochs", epochs, 1), ("batch_size", batch_size, 1),
                                 ("qat_epochs", qat_epochs, 0)):
        if not isinstance(value, int) or value < minimum:
            problems.append(f"`{name}` must be an int >= {minimum}, got {value!r}")
    if not learning_rate > 0:
        problems.append(f"`learning_rate` must be > 0, got {learning_rate!r}")
    if steps_per_epoch is not None and (not isinstance(steps_per_epoch, int)
                                        or steps_per_epoch < 1):
        problems.append(f"`steps_per_epoch` must be None or an int >= 1, "
                        f"got {steps_per_epoch!r}")
    if backup_every != "epoch" and (not isinstance(backup_every, int) or backup_every < 1):
        problems.append(f"`backup_every` must be 'epoch' or a step count >= 1, "
                        f"got {backup_every!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _build(model, input_shape, num_classes):
    build = MODELS.get(model) if isinstance(model, str) else model
    if build is None:
        raise ValueError(f"`model` must be one of {sorted(MODELS)} or a function "
                         f"(input_shape, num_classes) -> model, got {model!r}")
    built = build(input_shape, num_classes)
    if tuple(built.input_shape[1:]) != tuple(input_shape):
        raise ValueError(f"the model takes inputs of shape {built.input_shape[1:]}, the "
                         f"data has images of shape {tuple(input_shape)}: choose "
                         "the image size and channels of the model")
    return built


def _tensorboard_installed():
    import importlib.util
    return importlib.util.find_spec("tensorboard") is not None


def _fit(model, learning_rate, data, train_batches, epochs, steps, phase, output_dir,
         work_dir, backup_every, chief, extra_callbacks):
    """Compiles (cosine decay over the phase) and fits, resuming from a backup."""
    import tf_keras

    demo.compile_classifier(model, tf_keras.optimizers.schedules.CosineDecay(
        learning_rate, epochs * steps))
    callbacks = [tf_keras.callbacks.BackupAndRestore(
        os.path.join(output_dir, "backup", phase), save_freq=backup_every)]
    if _tensorboard_installed():
        callbacks.append(tf_keras.callbacks.TensorBoard(os.path.join(work_dir, "logs", phase)))
    else:
        print("No TensorBoard logs: tf.summary needs the tensorboard package "
              "(pip install 'rnnpool-keras[train]')")
    callbacks.extend(extra_callbacks)
    history = model.fit(train_batches, epochs=epochs, steps_per_epoch=steps,
                        validation_data=data, callbacks=callbacks,
                        verbose=1 if chief else 2)
    return {f"{phase}_{key}": float(values[-1])
            for key, values in history.history.items()}


def train(data, model="small_mobilenetv2_rnnpool", output_dir="rnnpool_train",
          epochs=10, batch_size=64, learning_rate=3e-3, strategy="default",
          qat_epochs=0, qat_learning_rate=5e-4, augment=(), mixed_precision=False,
          steps_per_epoch=None, backup_every="epoch", seed=0, export_int8=True,
          callbacks=()):
    """Trains `model` on `data` under a tf.distribute strategy, then (with
    `qat_epochs`) fine-tunes it with QAT and writes the int8 .tflite.

    Args:
      data: a `training_data.TrainingData` (image_folder() or fashion_mnist()).
      model: a name in MODELS, or a function (input_shape, num_classes) -> an
        uncompiled tf_keras model; called under the strategy's scope.
      output_dir: float_model.h5, qat_model.h5, model_int8.tflite (+ C array,
        memory_report.json), logs/ (TensorBoard), backup/ (emptied when a phase
        completes; a rerun with the same output_dir resumes from it).
      epochs, qat_epochs: float and QAT epochs; learning_rate and
        qat_learning_rate decay to 0 over each (cosine).
      batch_size: the global batch (split across replicas), examples.
      strategy: a name in STRATEGIES, or a tf.distribute.Strategy made first
        (make_strategy) when TensorFlow must not start before it.
      augment: names in training_data.AUGMENTATIONS.
      mixed_precision: float16 compute; refused without a GPU.
      steps_per_epoch: steps per epoch (None: the training split once).
      backup_every: "epoch" or a step count: how often to back up for resuming.
      export_int8: after QAT, write the int8 .tflite, C array and memory report.
      callbacks: more Keras callbacks for both phases.
    Returns:
      Trained(model, qat_model or None, metrics dict).
    Raises:
      ValueError: a bad argument (named in the message), a model whose input
        does not match the images, mixed precision without a GPU.
    """
    import tf_keras
    import rnnpool_keras

    _check_arguments(epochs, batch_size, learning_rate, qat_epochs, steps_per_epoch,
                     backup_every)
    strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
    use_mixed_precision(mixed_precision)
    chief = is_chief(strategy)
    # Non-chief workers write the same files, to a directory that is then dropped.
    work_dir = output_dir if chief else tempfile.mkdtemp(prefix="rnnpool_worker_")
    os.makedirs(work_dir, exist_ok=True)
    tf_keras.utils.set_random_seed(seed)
    steps = steps_per_epoch or data.train.count // batch_size
    if steps < 1:
        raise ValueError(f"`batch_size` {batch_size} is larger than the "
                         f"{data.train.count} training images")
    train_batches = training_data.batched(data.train, batch_size, True, augment,
                                          data.input_shape, seed)
    validation = (training_data.batched(data.validation, batch_size, False)
                  if data.validation else None)
    print(f"Training on {data.name}: {data.train.count:,} images "
          f"{data.input_shape}, {len(data.class_names)} classes, "
          f"{strategy.num_replicas_in_sync} replica(s), global batch {batch_size}")
    float_path = os.path.join(output_dir, FLOAT_MODEL_FILE)
    with strategy.scope():
        float_model = _build(model, data.input_shape, len(data.class_names))
    metrics = {"replicas": strategy.num_replicas_in_sync}
    if os.path.exists(float_path):  # a restarted run whose float phase had finished
        print(f"Resuming after the float phase: weights from {float_path}")
        float_model.load_weights(float_path)
    else:
        metrics.update(_fit(float_model, learning_rate, validation, train_batches,
                            epochs, steps, "float", output_dir, work_dir,
                            backup_every, chief, callbacks))
        float_model.save(os.path.join(work_dir, FLOAT_MODEL_FILE))
    qat_model = None
    if qat_epochs:
        with strategy.scope():
            qat_model = rnnpool_keras.quantize_model(float_model)
        metrics.update(_fit(qat_model, qat_learning_rate, validation, train_batches,
                            qat_epochs, steps, "qat", output_dir, work_dir,
                            backup_every, chief, callbacks))
        qat_model.save(os.path.join(work_dir, QAT_MODEL_FILE))
        if chief and export_int8:
            metrics.update(_export_int8(qat_model, data, output_dir))
    if not chief:
        shutil.rmtree(work_dir, ignore_errors=True)
    return Trained(float_model, qat_model, metrics)


def _export_int8(qat_model, data, output_dir):
    """The demo's deploy stage (int8 .tflite, host accuracy, C array) and the
    memory report, on validation images (training images if there are none)."""
    from converters import format_table, memory_report

    split = data.validation or data.train
    x, y = training_data.as_arrays(split, _EXPORT_IMAGES)
    arrays = demo.Data(None, None, x, y, data.name, len(data.class_names))
    model_bytes, results = demo.deploy(qat_model, arrays, output_dir, name=INT8_NAME)
    report = memory_report(model_bytes)
    print(format_table(report))
    with open(os.path.join(output_dir, "memory_report.json"), "w") as file:
        json.dump(report, file, indent=2)
    return {**results, "peak_activation_bytes": report["peak_activation_bytes"],
            "tflm_arena_bytes": report["tflm_arena_bytes"]}
