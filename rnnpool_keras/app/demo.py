"""The main job, end to end (`rnnpool demo`).

Trains a small MobileNetV2-RNNPool on Fashion-MNIST (the offline Debian
package `dataset-fashion-mnist`, else Keras' own cached download; synthetic
images when neither is there, and the demo says which), fine-tunes it with quantization-aware training, converts it to a
full-int8 .tflite with the RNNPool custom op, runs that file on the host
through TFLM's kernels and ours, prints float / QAT / int8 accuracy, the memory
report next to the same network without RNNPool, and writes the model, its C
array and a memory plot.

`tiny_rnnpool_cnn` is the small model `rnnpool train --model tiny_rnnpool_cnn`
builds.
"""
import collections
import os
import time

import numpy as np
import tf_keras

from rnnpool_keras.app import datasets
from rnnpool_keras.app import synthetic
from rnnpool_keras.app import zoo
from rnnpool_keras.layers.rnnpool2d import RNNPool2D

Data = collections.namedtuple(
    "Data", ["x_train", "y_train", "x_test", "y_test", "name", "num_classes"])


def tiny_rnnpool_cnn(input_size=32, channels=3, num_classes=4, framework=None):
    """Conv stem -> RNNPool2D (4x4 patches, stride 2) -> dense classifier;
    `framework`: None for tf_keras, or Keras 3's `keras` module."""
    keras, rnnpool = (tf_keras, RNNPool2D) if framework is None else _keras3()
    inputs = keras.Input((input_size, input_size, channels), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same",
                            activation="relu", name="stem")(inputs)
    x = rnnpool(rnn1_units=8, rnn2_units=8, pool_size=4, strides=2,
                padding="same", name="rnnpool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name="tiny_rnnpool_cnn")


def _keras3():
    import keras
    from rnnpool_keras.keras3 import RNNPool2D as Keras3RNNPool2D

    return keras, Keras3RNNPool2D


def _keras_of(model):
    """The Keras module that made `model`: tf_keras, or Keras 3's `keras`."""
    return tf_keras if isinstance(model, tf_keras.Model) else _keras3()[0]


# -- data -------------------------------------------------------------------------

def synthetic_data(train_count=1024, test_count=256, size=32, channels=3, seed=0):
    x_train, y_train = synthetic.quadrant_images(train_count, size, channels, seed=seed)
    x_test, y_test = synthetic.quadrant_images(test_count, size, channels, seed=seed + 1)
    return Data(x_train, y_train, x_test, y_test, "synthetic quadrants", 4)


def demo_data(train_count, test_count, size, source="auto"):
    """Fashion-MNIST resized to size x size (Debian package, else Keras' copy), or
    synthetic images for source="synthetic" or when "auto" finds neither; prints
    which. Raises FileNotFoundError for source="fashion-mnist" without data."""
    if source != "synthetic":
        origin = datasets.fashion_mnist_origin()
        try:
            x_train, y_train = datasets.load_fashion_mnist("train", train_count, size,
                                                           allow_keras=True)
            x_test, y_test = datasets.load_fashion_mnist("test", test_count, size,
                                                         allow_keras=True)
        except FileNotFoundError as error:
            if source == "fashion-mnist":
                raise
            print(f"{error}: using synthetic images")
        else:
            print(f"Data: Fashion-MNIST from {origin}")
            return Data(x_train, y_train, x_test, y_test, "Fashion-MNIST", 10)
    else:
        print("Data: synthetic images (--data synthetic)")
    return synthetic_data(train_count, test_count, size, channels=1)


# -- stages -----------------------------------------------------------------------

def compile_classifier(model, learning_rate):
    """Adam at `learning_rate` (a float or a schedule), cross-entropy on logits,
    accuracy, from the model's own Keras (tf_keras or Keras 3)."""
    keras = _keras_of(model)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def _cosine_decay(learning_rate, epochs, data, batch_size, keras=tf_keras):
    """`learning_rate` decaying to 0 over the training steps of `epochs` epochs."""
    steps = epochs * int(np.ceil(len(data.x_train) / batch_size))
    return keras.optimizers.schedules.CosineDecay(learning_rate, steps)


def train_float(model, data, epochs, learning_rate=3e-3, batch_size=32, decay=True):
    """Trains `model` on `data`; prints progress, loss and test accuracy.

    With `decay` the learning rate decays to 0 (cosine), which models with
    BatchNorm need: their moving statistics then settle on the final weights.
    RNNPool's outputs vary little, so the BN after it scales them up, and
    statistics averaged over still-moving weights cost a constant learning
    rate most of its test accuracy (18% instead of 82% on Fashion-MNIST).
    """
    compile_classifier(model, _cosine_decay(learning_rate, epochs, data, batch_size,
                                            _keras_of(model)) if decay else learning_rate)
    initial_loss = model.evaluate(data.x_train, data.y_train, verbose=0)[0]
    print(f"Training {epochs} epochs on {len(data.x_train):,} {data.name} images "
          f"(initial loss {initial_loss:.3f})")
    start = time.time()
    model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=2)
    final_loss = model.evaluate(data.x_train, data.y_train, verbose=0)[0]
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    print(f"Trained in {time.time() - start:.1f} s. Training loss {initial_loss:.3f} -> "
          f"{final_loss:.3f}; test accuracy {test_accuracy:.1%} "
          f"(chance {1 / data.num_classes:.0%})")
    return {"initial_loss": initial_loss, "final_loss": final_loss,
            "test_accuracy": test_accuracy}


def train_qat(model, data, epochs=1, learning_rate=5e-4, batch_size=32):
    """QAT copy of `model`, fine-tuned; prints float vs QAT accuracy and checks
    the int8 RNNPool layer (NumPy integer reference) against the simulation."""
    import rnnpool_keras  # the quantisation API loads tfmot: only now

    float_accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)[1]
    qat = rnnpool_keras.quantize_model(model)
    # Decayed as in train_float, for the same BatchNorm statistics.
    compile_classifier(qat, _cosine_decay(learning_rate, epochs, data, batch_size))
    print(f"Quantization-aware training, {epochs} epoch(s)")
    qat.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=2)
    qat_accuracy = qat.evaluate(data.x_test, data.y_test, verbose=0)[1]
    print(f"Test accuracy: float {float_accuracy:.1%}, QAT (int8 simulation) "
          f"{qat_accuracy:.1%}")
    results = {"float_accuracy": float_accuracy, "qat_accuracy": qat_accuracy}
    if any(isinstance(getattr(layer, "layer", None), RNNPool2D) for layer in qat.layers):
        difference = _int8_layer_vs_qat(qat, data.x_test[:32])
        print(f"int8 RNNPool (NumPy integer reference) vs QAT: "
              f"{np.mean(difference == 0):.2%} identical, {np.mean(difference <= 1):.2%} "
              f"within 1 LSB, max {difference.max()} LSB over {difference.size:,} values")
        results["max_lsb_difference"] = int(difference.max())
    return qat, results


def _int8_layer_vs_qat(qat, x):
    """|integer RNNPool - QAT RNNPool| in output LSBs, on the int8 tensor feeding it."""
    from rnnpool_keras.quantization import layer_int8_params
    from rnnpool_keras.spec import int8_reference

    wrapper = next(layer for layer in qat.layers
                   if isinstance(getattr(layer, "layer", None), RNNPool2D))
    producer = wrapper.inbound_nodes[0].inbound_layers
    feed = tf_keras.Model(qat.input, wrapper.input)(x)
    s_in, zp_in = layer_int8_params.asymmetric_int8(*layer_int8_params.output_range(producer))
    s_out, zp_out = layer_int8_params.asymmetric_int8(*layer_int8_params.output_range(wrapper))
    params = layer_int8_params.int8_params_of_layer(wrapper.layer, s_in, zp_in, s_out, zp_out)
    x_q = np.clip(np.round(np.asarray(feed) / s_in) + zp_in, -128, 127).astype(np.int8)
    y_int8 = int8_reference.rnnpool_int8(x_q, params).astype(np.int64)
    y_qat = np.round(np.asarray(wrapper(feed)) / s_out).astype(np.int64) + zp_out
    return np.abs(y_int8 - y_qat)


def deploy(qat, data, output_dir, name="rnnpool_demo_int8"):
    """int8 .tflite of `qat`, its accuracy on the host, and its C array."""
    from converters import convert, export_c_array, run_tflite
    from converters.tflite_io import tflite_model

    print("Converting the QAT model to a full-int8 TFLite model")
    start = time.time()
    model_bytes = convert(qat, quantize="int8")
    print(f"  {len(model_bytes):,} bytes, {len(tflite_model.op_names(model_bytes))} ops "
          f"({time.time() - start:.1f} s)")
    print(f"Running it on the host (TFLM reference kernels + our RNNPool kernel) on "
          f"{len(data.x_test):,} test images")
    start = time.time()
    int8_logits = run_tflite(model_bytes, data.x_test)[0]
    int8_accuracy = float(np.mean(int8_logits.argmax(1) == data.y_test))
    qat_agreement = float(np.mean(int8_logits.argmax(1)
                                  == np.asarray(qat(data.x_test)).argmax(1)))
    print(f"  int8 TFLite test accuracy {int8_accuracy:.1%}; same class as QAT on "
          f"{qat_agreement:.1%} of images ({time.time() - start:.1f} s)")
    os.makedirs(output_dir, exist_ok=True)
    model_path = os.path.join(output_dir, name + ".tflite")
    with open(model_path, "wb") as file:
        file.write(model_bytes)
    files = export_c_array(model_bytes, name)
    files.write(output_dir)
    print(f"Wrote {model_path} and its C array {files.header_name} / "
          f"{files.source_name} in {output_dir}")
    return model_bytes, {"int8_accuracy": int8_accuracy, "qat_agreement": qat_agreement,
                         "model_bytes": len(model_bytes)}


def _print_model(model):
    from rnnpool_keras.flat_model import flat_tf_keras_model

    model = flat_tf_keras_model(model)  # a Keras 3 model: its tf_keras twin, same shapes
    print(f"Model {model.name} (input -> output shape per layer):")
    for layer in model.layers:
        print(f"  {layer.name:28s} {str(layer.output_shape):22s}")
    for layer in model.layers:
        if isinstance(layer, RNNPool2D):
            print(f"RNNPool layer {layer.name}: {layer.madds_per_patch():,} MAdds/patch, "
                  f"{layer.madds():,} MAdds/image")
    print(f"{model.count_params():,} parameters, {zoo.count_madds(model):,} MAdds/image")


# -- the main job ---------------------------------------------------------------------

def main(epochs=3, output_dir="rnnpool_demo", source="auto", train_count=10000,
         test_count=1000, size=32, seed=0, keras_version=2):
    """`rnnpool demo`: train, QAT, int8 conversion, host run, memory report, C array.

    keras_version: 2 builds and trains the model with tf_keras; 3 with Keras 3
    (`import keras`, `rnnpool_keras.keras3.RNNPool2D`): QAT then trains its
    tf_keras copy, whose weights go back into the Keras 3 model.
    """
    if keras_version not in (2, 3):
        raise ValueError(f"keras_version must be 2 (tf_keras) or 3, got {keras_version!r}")
    framework = None if keras_version == 2 else _keras3()[0]
    tf_keras.utils.set_random_seed(seed)
    if framework is not None:
        framework.utils.set_random_seed(seed)
    data = demo_data(train_count, test_count, size, source)
    input_shape = data.x_train.shape[1:]
    model = zoo.small_mobilenetv2_rnnpool(input_shape, data.num_classes,
                                          framework=framework)
    print(f"Built with {'tf_keras' if framework is None else 'Keras 3'}")
    _print_model(model)
    float_results = train_float(model, data, epochs)
    qat, qat_results = train_qat(model, data)
    if framework is not None:
        from rnnpool_keras.flat_model import copy_weights_back

        copied = copy_weights_back(qat, model)
        print(f"QAT weights copied back into the Keras 3 model ({len(copied)} layers)")
    model_bytes, int8_results = deploy(qat, data, output_dir)
    memory_results = report_memory(model_bytes, input_shape, data, output_dir)
    print("Summary ({}): test accuracy float {:.1%}, QAT {:.1%}, int8 TFLite {:.1%}; "
          "int8 model {:,} bytes".format(data.name, qat_results["float_accuracy"],
                                         qat_results["qat_accuracy"],
                                         int8_results["int8_accuracy"],
                                         int8_results["model_bytes"]))
    return {**float_results, **qat_results, **int8_results, **memory_results}


def report_memory(model_bytes, input_shape, data, output_dir):
    """Memory report of the int8 model next to the same network without RNNPool
    (untrained: its memory does not depend on its weights), and the plot."""
    import rnnpool_keras
    from converters import convert, format_table, memory_report, plot_memory
    print("Memory report of the int8 model (per operator):")
    report = memory_report(model_bytes)
    print(format_table(report))
    baseline = zoo.small_mobilenetv2(input_shape, data.num_classes)
    print("Converting the same network without RNNPool (strided MobileNetV2 blocks) "
          "for comparison")
    baseline_bytes = convert(rnnpool_keras.calibrate(
        rnnpool_keras.quantize_model(baseline), data.x_train[:64]), quantize="int8")
    baseline_report = memory_report(baseline_bytes)
    for label, r in (("RNNPool", report), ("baseline", baseline_report)):
        print(f"  {label:8s}: peak RAM (paper convention) "
              f"{r['peak_activation_bytes'] / 1024:7.2f} KB, TFLM arena "
              f"{r['tflm_arena_bytes'] / 1024:7.2f} KB, {r['total_madds']:,} MAdds")
    results = {"peak_activation_bytes": report["peak_activation_bytes"],
               "tflm_arena_bytes": report["tflm_arena_bytes"],
               "baseline_peak_activation_bytes": baseline_report["peak_activation_bytes"],
               "baseline_tflm_arena_bytes": baseline_report["tflm_arena_bytes"]}
    plot_path = os.path.join(output_dir, "memory.png")
    try:
        plot_memory([baseline_report, report], plot_path,
                    labels=["MobileNetV2 (strided blocks)", "MobileNetV2-RNNPool"])
        print(f"Wrote the memory plot {plot_path}")
    except ImportError:
        print("No memory plot: matplotlib is not installed "
              "(pip install 'rnnpool-keras[plot]')")
    return results
