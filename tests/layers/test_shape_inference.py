"""Building a model asks RNNPool2D for its output's shape, not for its graph.

tf_keras calls a layer in a scratch graph to learn its output's shape
(rnnpool_keras/layers/shape_inference.py), Keras 3 calls compute_output_shape:
neither may build the recurrences. Calling the model still computes them.
"""
import numpy as np
import pytest

import rnnpool_keras
from rnnpool_keras.layers import rnnpool_math


@pytest.fixture
def rnnpool_graphs(monkeypatch):
    """Counts the RNNPool computations the layers build (rnnpool_math.rnnpool)."""
    built = []
    real = rnnpool_math.rnnpool

    def counted(*args, **kwargs):
        built.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(rnnpool_math, "rnnpool", counted)
    return built


@pytest.mark.parametrize("data_format, input_shape, batch, expected", [
    ("channels_last", (9, 7, 3), None, (None, 4, 3, 8)),
    ("channels_first", (3, 9, 7), None, (None, 8, 4, 3)),
    ("channels_last", (9, 7, 3), 2, (2, 4, 3, 8)),
])
def test_building_a_model_builds_no_recurrence_and_calling_it_does(
        framework, rnnpool_graphs, data_format, input_shape, batch, expected):
    keras, RNNPool2D = framework
    inputs = keras.Input(input_shape, batch_size=batch)
    layer = RNNPool2D(4, 2, pool_size=3, strides=2, data_format=data_format)
    model = keras.Model(inputs, layer(inputs))
    assert tuple(model.output_shape) == expected
    assert rnnpool_graphs == []
    x = np.random.default_rng(0).uniform(-1, 1, (batch or 2,) + input_shape).astype(np.float32)
    y = np.asarray(model(x))
    assert rnnpool_graphs != []
    assert y.shape == (len(x),) + expected[1:]
    assert np.all(y != 0)  # computed, not the shape's stand-in


def test_quantize_model_clones_build_no_recurrence(rnnpool_graphs):
    import tf_keras

    inputs = tf_keras.Input((9, 7, 3))
    x = tf_keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = tf_keras.Model(inputs, rnnpool_keras.RNNPool2D(4, 2, pool_size=3, strides=2)(x))
    qat = rnnpool_keras.quantize_model(model)  # its own clone, then tfmot's wrappers
    assert rnnpool_graphs == []
    assert qat.output_shape == model.output_shape == (None, 4, 3, 8)


def test_an_unknown_height_or_width_builds_the_graph_for_its_shape(rnnpool_graphs):
    import tf_keras

    inputs = tf_keras.Input((None, 7, 3))
    model = tf_keras.Model(inputs, rnnpool_keras.RNNPool2D(4, 2, pool_size=3, strides=2)(inputs))
    assert model.output_shape == (None, None, 3, 8)
    assert len(rnnpool_graphs) == 1
    y = model(np.ones((1, 11, 7, 3), np.float32))
    assert y.shape == (1, 5, 3, 8)
