"""The main job, end to end: a tiny RNNPool CNN trained on synthetic data,
quantization-aware training, conversion to a full-int8 .tflite with the RNNPool
custom op, that model run on the host through TFLM's kernels and ours, and the
C array a firmware build includes.

Run with `rnnpool demo`.
"""
import os
import time

import numpy as np
import tf_keras

from rnnpool_keras import synthetic
from rnnpool_keras.layer import RNNPool2D


def tiny_rnnpool_cnn(input_size=32, channels=3, num_classes=4):
    """Conv stem -> RNNPool2D (4x4 patches, stride 2) -> dense classifier."""
    inputs = tf_keras.Input((input_size, input_size, channels), name="image")
    x = tf_keras.layers.Conv2D(8, 3, strides=2, padding="same",
                               activation="relu", name="stem")(inputs)
    x = RNNPool2D(rnn1_units=8, rnn2_units=8, pool_size=4, strides=2,
                  padding="same", name="rnnpool")(x)
    x = tf_keras.layers.Flatten(name="flatten")(x)
    outputs = tf_keras.layers.Dense(num_classes, name="classifier")(x)
    return tf_keras.Model(inputs, outputs, name="tiny_rnnpool_cnn")


def run(epochs=5, train_count=1024, test_count=256, seed=0):
    """Trains the tiny model and prints shapes, losses, accuracy and MAdds."""
    tf_keras.utils.set_random_seed(seed)
    x_train, y_train = synthetic.quadrant_images(train_count, seed=seed)
    x_test, y_test = synthetic.quadrant_images(test_count, seed=seed + 1)
    model = tiny_rnnpool_cnn()
    model.compile(optimizer=tf_keras.optimizers.Adam(3e-3),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    print("Model (input -> output shape per layer):")
    for layer in model.layers:
        print(f"  {layer.name:12s} {str(layer.output_shape):22s}")
    rnnpool = model.get_layer("rnnpool")
    print(f"RNNPool layer: {rnnpool.madds_per_patch():,} MAdds/patch, "
          f"{rnnpool.madds():,} MAdds/image")

    initial_loss = model.evaluate(x_train, y_train, verbose=0)[0]
    print(f"Training {epochs} epochs on {train_count} synthetic images "
          f"(initial loss {initial_loss:.3f})")
    start = time.time()
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=2)
    print(f"Trained in {time.time() - start:.1f} s")
    final_loss = model.evaluate(x_train, y_train, verbose=0)[0]
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Training loss {initial_loss:.3f} -> {final_loss:.3f}; "
          f"test loss {test_loss:.3f}, test accuracy {test_accuracy:.1%} "
          f"(chance 25%)")
    return model, {"initial_loss": initial_loss, "final_loss": final_loss,
                   "test_accuracy": test_accuracy}


def run_quantized(model, epochs=1, train_count=1024, test_count=256, seed=0):
    """QAT fine-tuning of `model`, then the int8 RNNPool layer vs its simulation."""
    import rnnpool_keras  # the quantisation API loads tfmot: only now
    from rnnpool_keras.quantization import from_keras, int8_reference

    x_train, y_train = synthetic.quadrant_images(train_count, seed=seed)
    x_test, y_test = synthetic.quadrant_images(test_count, seed=seed + 1)
    float_accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    qat = rnnpool_keras.quantize_model(model)
    qat.compile(optimizer=tf_keras.optimizers.Adam(5e-4),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    print(f"Quantization-aware training, {epochs} epoch(s)")
    qat.fit(x_train, y_train, batch_size=32, epochs=epochs, verbose=2)
    qat_accuracy = qat.evaluate(x_test, y_test, verbose=0)[1]
    print(f"Test accuracy: float {float_accuracy:.1%}, QAT (int8 simulation) "
          f"{qat_accuracy:.1%}")

    # The RNNPool layer in integers (docs/int8_rnnpool.md) on the int8 tensor
    # that feeds it, against what QAT simulated.
    wrapper = qat.get_layer("quant_rnnpool")
    producer = wrapper.inbound_nodes[0].inbound_layers
    feed = tf_keras.Model(qat.input, wrapper.input)(x_test[:32])
    s_in, zp_in = from_keras.asymmetric_int8(*from_keras.output_range(producer))
    s_out, zp_out = from_keras.asymmetric_int8(*from_keras.output_range(wrapper))
    params = from_keras.int8_params_of_layer(wrapper.layer, s_in, zp_in, s_out, zp_out)
    x_q = np.clip(np.round(np.asarray(feed) / s_in) + zp_in, -128, 127).astype(np.int8)
    y_int8 = int8_reference.rnnpool_int8(x_q, params).astype(np.int64)
    y_qat = np.round(np.asarray(wrapper(feed)) / s_out).astype(np.int64) + zp_out
    difference = np.abs(y_int8 - y_qat)
    print(f"int8 RNNPool (NumPy integer reference) vs QAT: {np.mean(difference == 0):.2%} "
          f"identical, {np.mean(difference <= 1):.2%} within 1 LSB, max {difference.max()} "
          f"LSB over {difference.size:,} values")
    return qat, {"float_accuracy": float_accuracy, "qat_accuracy": qat_accuracy,
                 "max_lsb_difference": int(difference.max())}


def deploy(qat, output_dir, test_count=256, seed=0):
    """int8 .tflite of `qat`, its accuracy on the host, and its C array."""
    from converters import convert, export_c_array, run_tflite, tflite_model

    x_test, y_test = synthetic.quadrant_images(test_count, seed=seed + 1)
    print("Converting the QAT model to a full-int8 TFLite model")
    start = time.time()
    model_bytes = convert(qat, quantize="int8")
    print(f"  {len(model_bytes):,} bytes, ops {tflite_model.op_names(model_bytes)} "
          f"({time.time() - start:.1f} s)")
    print(f"Running it on the host (TFLM reference kernels + our RNNPool kernel), "
          f"{test_count} test images")
    start = time.time()
    int8_logits = run_tflite(model_bytes, x_test)[0]
    int8_accuracy = float(np.mean(int8_logits.argmax(1) == y_test))
    qat_agreement = float(np.mean(int8_logits.argmax(1)
                                  == np.asarray(qat(x_test)).argmax(1)))
    print(f"  int8 TFLite test accuracy {int8_accuracy:.1%}; same class as QAT on "
          f"{qat_agreement:.1%} of images ({time.time() - start:.1f} s)")
    os.makedirs(output_dir, exist_ok=True)
    model_path = os.path.join(output_dir, "rnnpool_demo_int8.tflite")
    with open(model_path, "wb") as file:
        file.write(model_bytes)
    files = export_c_array(model_bytes, "rnnpool_demo_int8")
    for name, text in ((files.header_name, files.header), (files.source_name, files.source)):
        with open(os.path.join(output_dir, name), "w") as file:
            file.write(text)
    print(f"Wrote {model_path} and its C array {files.header_name} / {files.source_name} "
          f"in {output_dir}")
    return model_bytes, {"int8_accuracy": int8_accuracy, "qat_agreement": qat_agreement,
                         "model_bytes": len(model_bytes)}


def main(epochs=5, output_dir="rnnpool_demo"):
    """`rnnpool demo`: train, QAT, int8 conversion, host run, C array."""
    model, float_results = run(epochs=epochs)
    qat, qat_results = run_quantized(model)
    _, int8_results = deploy(qat, output_dir)
    print("Summary: test accuracy float {:.1%}, QAT {:.1%}, int8 TFLite {:.1%}; "
          "int8 model {:,} bytes".format(qat_results["float_accuracy"],
                                         qat_results["qat_accuracy"],
                                         int8_results["int8_accuracy"],
                                         int8_results["model_bytes"]))
    return {**float_results, **qat_results, **int8_results}
