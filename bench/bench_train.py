"""Training throughput of `rnnpool train` (its function, app.training.train):
images/s for 1 replica against 2 replicas on this machine.

Configurations, each in its own process, interleaved over --rounds and reported
as medians:
- 1 replica: the default strategy;
- 2 replicas, MirroredStrategy over two logical CPU devices of one process;
- 2 replicas, MultiWorkerMirroredStrategy with two worker processes on
  127.0.0.1 (TF_CONFIG), as two machines would run it.
The model is the package's small MobileNetV2-RNNPool on 32x32 grey images
(Fashion-MNIST if installed, else synthetic), global batch --batch; images/s
is measured over the epochs after the first (which traces the graph).
On CPUs, replicas share the same cores: the figures show the distribution
overhead, not the speed-up GPUs give. This machine is shared with other jobs.

    python bench/bench_train.py [--rounds 3] [--steps 20] [--batch 64]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONFIGS = ("default", "mirrored2", "multiworker2")
LABELS = {"default": ("1", "default (one device)"),
          "mirrored2": ("2", "mirrored, 2 logical CPU devices"),
          "multiworker2": ("2", "multiworker, 2 processes on 127.0.0.1")}
EPOCHS = 3


def child(config, steps, batch):
    """One training run; prints {"images_per_s": ...} as its last line."""
    import tensorflow as tf

    if config == "mirrored2":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        from rnnpool_keras.app import training
        strategy = training.make_strategy(
            "multiworker" if config == "multiworker2" else "default")
    import tempfile

    import tf_keras
    from rnnpool_keras.app import datasets, synthetic, training, training_data

    if datasets.fashion_mnist_available():
        data = training_data.fashion_mnist(32, train_count=steps * batch,
                                           validation_count=1)
    else:
        x, y = synthetic.quadrant_images(steps * batch, 32, 1)
        data = training_data.TrainingData(
            training_data.Split(tf.data.Dataset.from_tensor_slices((x, y)), len(x)),
            None, tuple("abcd"), x.shape[1:], "synthetic quadrants")
    data = data._replace(validation=None)

    class EpochTimes(tf_keras.callbacks.Callback):
        times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimes()
    with tempfile.TemporaryDirectory() as out:
        training.train(data, "small_mobilenetv2_rnnpool", out, epochs=EPOCHS,
                       batch_size=batch, strategy=strategy, steps_per_epoch=steps,
                       callbacks=[timer])
    seconds = sum(timer.times[1:])
    print(json.dumps({"images_per_s": steps * batch * (EPOCHS - 1) / seconds,
                      "replicas": strategy.num_replicas_in_sync}))


def measure(config, steps, batch):
    command = [sys.executable, os.path.abspath(__file__), "--child", config,
               "--steps", str(steps), "--batch", str(batch)]
    if config != "multiworker2":
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(result.stdout.strip().splitlines()[-1])
    from rnnpool_keras.app import training

    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=dict(os.environ, TF_CONFIG=config))
               for config in training.localhost_tf_configs(2)]
    outputs = [worker.communicate()[0] for worker in workers]
    if any(worker.returncode for worker in workers):
        raise RuntimeError(f"a worker failed: {[w.returncode for w in workers]}")
    return json.loads(outputs[0].strip().splitlines()[-1])  # the chief's


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.steps, args.batch)
        return
    import machine

    configs = args.configs.split(",")
    rates = {config: [] for config in configs}
    for _ in range(args.rounds):
        for config in configs:  # interleaved: load changes hit every config alike
            rates[config].append(measure(config, args.steps, args.batch)["images_per_s"])
    print(machine.describe() + " (shared with other jobs)")
    print(f"small_mobilenetv2_rnnpool, 32x32x1, global batch {args.batch}, "
          f"{args.steps} steps/epoch, epochs 2-{EPOCHS} timed, {args.rounds} rounds\n")
    print("| replicas | strategy | images/s (median) | min - max |")
    print("|--:|---|--:|--:|")
    for config in configs:
        replicas, label = LABELS[config]
        values = rates[config]
        print(f"| {replicas} | {label} | {statistics.median(values):,.0f} | "
              f"{min(values):,.0f} - {max(values):,.0f} |")


if __name__ == "__main__":
    main()
