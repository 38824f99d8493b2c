"""The two Keras flavours every layer test runs on: tf_keras and Keras 3."""
import keras
import pytest
import tf_keras

import rnnpool_keras
from rnnpool_keras import keras3

FLAVOURS = [
    pytest.param((tf_keras, rnnpool_keras.RNNPool2D), id="tf_keras"),
    pytest.param((keras, keras3.RNNPool2D), id="keras3"),
]
