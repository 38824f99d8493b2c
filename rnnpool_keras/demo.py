"""The main job, end to end: a tiny RNNPool CNN trained on synthetic data.

Run with `rnnpool demo`. Later stages of the pipeline (QAT, int8 conversion,
the device kernels) extend this script as they land.
"""
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
