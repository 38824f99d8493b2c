"""Throughput of RNNPool2D alone on the paper's VWW configuration.

Input 112x112x8, 6x6 patches, stride 4, rnn1_units = rnn2_units = 8, batch 32
(729 patches per image). Prints forward and forward+backward images/s and
patches/s for the tf_keras and Keras 3 layers, compiled with tf.function, with
and without XLA (`jit_compile=True`, what `model.compile(jit_compile=True)` uses).

    python bench/bench_layer.py [--batch 32] [--repeats 10]
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import rnnpool_keras  # noqa: E402
from rnnpool_keras import keras3  # noqa: E402

INPUT_SHAPE = (112, 112, 8)
LAYER_ARGS = dict(rnn1_units=8, rnn2_units=8, pool_size=6, strides=4)


def _time_per_call(fn, x, repeats):
    fn(x)  # trace and warm up
    fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return (time.perf_counter() - start) / repeats


def measure(layer_class, batch, repeats, jit_compile):
    layer = layer_class(**LAYER_ARGS)
    x = tf.constant(np.random.default_rng(0).normal(
        size=(batch,) + INPUT_SHAPE).astype(np.float32))
    layer(x[:1])
    patches = int(np.prod(layer.compute_output_shape((1,) + INPUT_SHAPE)[1:3]))

    forward = tf.function(lambda t: layer(t), jit_compile=jit_compile)

    @tf.function(jit_compile=jit_compile)
    def forward_backward(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            loss = tf.reduce_sum(layer(t))
        return tape.gradient(loss, [t] + layer.trainable_weights)

    rows = []
    for name, fn in (("forward", forward), ("forward+backward", forward_backward)):
        seconds = _time_per_call(fn, x, repeats)
        rows.append((name, batch / seconds, batch * patches / seconds, seconds * 1e3))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(f"RNNPool2D, VWW config: input {INPUT_SHAPE}, pool 6, stride 4, h1 = h2 = 8, "
          f"batch {args.batch}")
    print(f"TensorFlow {tf.__version__}, {threads} intra-op threads "
          f"({os.cpu_count()} CPUs), mean of {args.repeats} calls after warm-up")
    print(f"| {'layer':8} | {'XLA':3} | {'pass':16} | {'images/s':>9} | {'patches/s':>10} "
          f"| {'ms/batch':>9} |")
    print(f"|{'-' * 10}|{'-' * 5}|{'-' * 18}|{'-' * 11}|{'-' * 12}|{'-' * 11}|")
    for flavour, layer_class in (("tf_keras", rnnpool_keras.RNNPool2D),
                                 ("keras3", keras3.RNNPool2D)):
        for jit_compile in (False, True):
            for name, images, patches, ms in measure(layer_class, args.batch, args.repeats,
                                                     jit_compile):
                print(f"| {flavour:8} | {'yes' if jit_compile else 'no':3} | {name:16} "
                      f"| {images:9.1f} | {patches:10.0f} | {ms:9.1f} |")


if __name__ == "__main__":
    main()
