"""Training throughput of RNNPool2D, side by side with the authors' PyTorch RNNPool.

Layer (the paper's VWW configuration): input 112x112x8, 6x6 patches, stride 4,
rnn1_units = rnn2_units = 8, batch 32 (729 patches per image), forward and
forward+backward (gradients of the input and every weight), for tf_keras and
Keras 3 on each path of the layer: the TensorFlow recurrence, the same under
XLA (`jit_compile=True`), and the fused op. EdgeML's `RNNPool` runs in the
same process when torch is installed and EDGEML_ROOT names a checkout of
microsoft/EdgeML (its `pytorch/` directory is imported; nothing is copied),
fed the way the authors' `model_mobilenet_rnnpool.py` feeds it (unfold, one
batch of patches). Then `model.fit` images/s of `vww_mobilenetv2_rnnpool` at
224x224x3 against `vww_mobilenetv2` (no RNNPool).

Every timed function runs once per round, rounds interleaved, so a load change
on a shared machine hits all of them alike; the table gives the median, the
min-max over rounds and the ratio of medians to EdgeML, and the median CPU
time per call (process_time: all threads of this process).

    EDGEML_ROOT=/path/to/EdgeML python bench/bench_layer.py [--rounds 7] [--threads 2]
        [--fit-steps 3] [--no-fit]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# PyTorch's OpenMP threads spin while waiting; on a shared (oversubscribed)
# machine that costs EdgeML up to 10x. Passive waiting is the fair setting there.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)
import rnnpool_keras  # noqa: E402
from rnnpool_keras.layers import fused_sweep  # noqa: E402
from rnnpool_keras.app import zoo  # noqa: E402
from rnnpool_keras.keras3 import RNNPool2D as Keras3RNNPool2D  # noqa: E402

BATCH = 32
INPUT_SHAPE = (112, 112, 8)
POOL, STRIDE, UNITS = 6, 4, 8
LAYER_ARGS = dict(rnn1_units=UNITS, rnn2_units=UNITS, pool_size=POOL, strides=STRIDE)
FIT_INPUT_SHAPE = (224, 224, 3)


def _on_path(fused, make):
    """Traces `make()`'s tf.function with the fused op allowed or not (the
    layer picks its path when traced)."""
    previous = os.environ.get(fused_sweep.ENVIRONMENT_VARIABLE)
    os.environ[fused_sweep.ENVIRONMENT_VARIABLE] = "1" if fused else "0"
    try:
        return make()
    finally:
        if previous is None:
            del os.environ[fused_sweep.ENVIRONMENT_VARIABLE]
        else:
            os.environ[fused_sweep.ENVIRONMENT_VARIABLE] = previous


def keras_candidates(x):
    """{(implementation, pass): function of no argument} for our layer."""
    candidates = {}
    for flavour, layer_class in (("tf_keras", rnnpool_keras.RNNPool2D),
                                 ("Keras 3", Keras3RNNPool2D)):
        layer = layer_class(**LAYER_ARGS)
        layer(x[:1])
        for path, fused, jit_compile in (("TF path", False, False),
                                         ("TF path + XLA", False, True),
                                         ("fused op", True, False)):
            forward = tf.function(lambda t, layer=layer: layer(t), jit_compile=jit_compile)

            @tf.function(jit_compile=jit_compile)
            def forward_backward(t, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(t)
                    loss = tf.reduce_sum(layer(t))
                return tape.gradient(loss, [t] + layer.trainable_weights)

            name = f"{flavour}, {path}"
            for pass_name, fn in (("forward", forward), ("forward+backward", forward_backward)):
                _on_path(fused, lambda fn=fn: fn.get_concrete_function(x))
                candidates[(name, pass_name)] = lambda fn=fn: fn(x)
    return candidates


def edgeml_candidates(x_nhwc, threads):
    """EdgeML's RNNPool fed as in the authors' VWW model; {} (and why) if unavailable."""
    root = os.environ.get("EDGEML_ROOT")
    if not root:
        return {}, "EDGEML_ROOT not set"
    try:
        import torch
        sys.path.insert(0, os.path.join(root, "pytorch"))
        from edgeml_pytorch.graph.rnnpool import RNNPool
    except ImportError as error:
        return {}, f"EdgeML PyTorch unavailable: {error}"
    torch.set_num_threads(threads)
    channels = INPUT_SHAPE[2]
    model = RNNPool(POOL, POOL, UNITS, UNITS, channels)
    unfold = torch.nn.Unfold(kernel_size=(POOL, POOL), stride=(STRIDE, STRIDE))
    x = torch.from_numpy(np.transpose(x_nhwc, (0, 3, 1, 2)).copy())
    out_size = (INPUT_SHAPE[0] - POOL) // STRIDE + 1

    def rnnpool(images):  # model_mobilenet_rnnpool.py's forward, up to the fold
        patches = unfold(images)
        patches = torch.cat(torch.unbind(patches, dim=2), dim=0)
        patches = torch.reshape(patches, (-1, channels, POOL, POOL))
        out = model(patches, BATCH * out_size * out_size)
        return torch.stack(torch.split(out, BATCH, dim=0), dim=2)

    def forward():
        with torch.no_grad():
            return rnnpool(x)

    def forward_backward():
        images = x.clone().requires_grad_(True)
        for parameter in model.parameters():
            parameter.grad = None
        rnnpool(images).sum().backward()
        return images.grad

    name = f"EdgeML PyTorch {torch.__version__}"
    return {(name, "forward"): forward, (name, "forward+backward"): forward_backward}, name


def interleaved(candidates, rounds, images):
    """{key: (images/s per round, CPU seconds per round)}, every candidate timed
    once per round. CPU time (this process, all threads) is less sensitive to
    other jobs on a shared machine than wall time."""
    for fn in candidates.values():  # warm-up: tracing, allocation
        fn()
        fn()
    rates = {key: ([], []) for key in candidates}
    for _ in range(rounds):
        for key, fn in candidates.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            result = fn()
            if tf.is_tensor(result) or isinstance(result, list):
                tf.nest.map_structure(lambda t: t.numpy() if tf.is_tensor(t) else t, result)
            rates[key][0].append(images / (time.perf_counter() - start))
            rates[key][1].append(time.process_time() - cpu_start)
    return rates


def print_table(rates, reference):
    print("| implementation | pass | images/s (median) | min-max | x EdgeML "
          "| CPU s/call (median) |")
    print("|---|---|---|---|---|---|")
    for key, (values, cpu) in rates.items():
        name, pass_name = key
        median = np.median(values)
        ref = rates.get((reference, pass_name))
        ratio = f"{median / np.median(ref[0]):.2f}x" if ref is not None else "-"
        print(f"| {name} | {pass_name} | {median:.1f} | {min(values):.1f}-{max(values):.1f} "
              f"| {ratio} | {np.median(cpu):.3f} |")


def fit_candidates(steps):
    """model.fit of the VWW networks at 224x224x3, batch 32, on random images."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(BATCH * steps,) + FIT_INPUT_SHAPE).astype(np.float32)
    labels = rng.integers(0, 2, size=(BATCH * steps,))
    candidates = {}
    for name, build, fused in (
            ("vww_mobilenetv2 (no RNNPool)", zoo.vww_mobilenetv2, True),
            ("vww_mobilenetv2_rnnpool, fused op", zoo.vww_mobilenetv2_rnnpool, True),
            ("vww_mobilenetv2_rnnpool, TF path", zoo.vww_mobilenetv2_rnnpool, False)):
        model = build(FIT_INPUT_SHAPE)
        model.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        def fit(model=model):
            model.fit(images, labels, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        _on_path(fused, fit)  # traces train_function on the chosen path
        candidates[(name, "model.fit")] = fit
    return candidates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fit-steps", type=int, default=3,
                        help="batches per model.fit call")
    parser.add_argument("--no-fit", action="store_true")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    print(machine.describe())
    print(f"TensorFlow {tf.__version__}, {args.threads} intra-op threads (torch: "
          f"set_num_threads({args.threads}), OMP_WAIT_POLICY="
          f"{os.environ['OMP_WAIT_POLICY']}); {args.rounds} interleaved rounds after warm-up")
    x = np.random.default_rng(0).normal(size=(BATCH,) + INPUT_SHAPE).astype(np.float32)
    print(f"\nRNNPool2D, VWW config: input {INPUT_SHAPE}, pool {POOL}, stride {STRIDE}, "
          f"h1 = h2 = {UNITS}, batch {BATCH}")
    edgeml, reference = edgeml_candidates(x, args.threads)
    if not edgeml:
        print(f"(no EdgeML column: {reference})")
    candidates = dict(edgeml)
    candidates.update(keras_candidates(tf.constant(x)))
    print_table(interleaved(candidates, args.rounds, BATCH), reference)

    if not args.no_fit:
        print(f"\nmodel.fit, input {FIT_INPUT_SHAPE}, batch {BATCH}, {args.fit_steps} "
              "batches per call, Adam (images/s)")
        print_table(interleaved(fit_candidates(args.fit_steps), max(3, args.rounds // 2),
                                BATCH * args.fit_steps), reference=None)


if __name__ == "__main__":
    main()
