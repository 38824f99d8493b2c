"""flat_tf_keras_model: nested and Keras 3 models as one flat tf_keras model.

The flat model must compute what the user's model computes (checked on
random inputs against the user's own model), keep shared layers shared,
keep the input / output order, and leave the user's model as it was.
"""
import numpy as np
import pytest
import tf_keras

from model_cases import load_framework
from rnnpool_keras import RNNPool2D
from rnnpool_keras.flat_model import flat_tf_keras_model, is_flat_tf_keras_model


def _inputs(shape, count=3, seed=1):
    return np.random.default_rng(seed).normal(size=(count,) + shape).astype(np.float32)


def _randomize(model, seed=0):
    """Random weights everywhere (BatchNorm statistics too), so a weight that
    is not copied, or copied to the wrong place, changes the output."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        layer.set_weights([np.abs(rng.normal(0.5, 0.3, np.shape(w))) + 0.1
                           if "variance" in getattr(v, "path", v.name)
                           else rng.normal(0, 0.5, np.shape(w))
                           for w, v in zip(layer.get_weights(), layer.weights)])
    return model


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        elif layer.weights:
            yield layer


def _nested_model(keras, rnnpool, depth):
    """Input -> conv -> `depth` levels of functional / Sequential models, the
    innermost holding RNNPool2D -> a shared dense layer applied twice."""
    def level(d, channels):
        inputs = keras.Input((8, 8, channels))
        if d == 0:
            x = rnnpool(3, 2, pool_size=2, strides=1, padding="same", name="pool")(inputs)
            x = keras.layers.Conv2D(4, 1, name="conv")(x)
            return keras.Model(inputs, x, name=f"level{d}")
        inner = level(d - 1, 4)
        if d % 2:
            return keras.Sequential([inputs, keras.layers.Conv2D(4, 1, name="conv"),
                                     inner], name=f"level{d}")
        return keras.Model(inputs, inner(keras.layers.ReLU(name="relu")(inputs)),
                           name=f"level{d}")

    image = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(image)
    x = level(depth, 4)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    shared = keras.layers.Dense(5, name="shared")
    return keras.Model(image, [shared(x), shared(keras.layers.ReLU()(x))])


@pytest.mark.slow
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_nested_models_inline_to_the_same_function(framework, depth):
    keras, rnnpool = framework
    model = _randomize(_nested_model(keras, rnnpool, depth), seed=depth)
    flat = flat_tf_keras_model(model)
    assert isinstance(flat, tf_keras.Model) and is_flat_tf_keras_model(flat)
    assert not any(isinstance(layer, tf_keras.Model) for layer in flat.layers)
    assert sum(isinstance(layer, RNNPool2D) for layer in flat.layers) == 1
    x = _inputs((8, 8, 3))
    for got, want in zip(flat(x), model(x)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


@pytest.mark.slow
def test_shared_layers_stay_shared_and_names_stay_unique(framework):
    keras, rnnpool = framework
    model = _randomize(_nested_model(keras, rnnpool, 2))
    flat = flat_tf_keras_model(model)
    shared = flat.get_layer("shared")
    assert len(shared._inbound_nodes) == 2  # one Dense, called twice
    names = [layer.name for layer in flat.layers]
    assert len(names) == len(set(names))
    # The user's names where unique, else prefixed with the enclosing models'.
    assert {"conv", "level2/level1/conv", "level2/level1/level0/conv"} <= set(names)
    assert [t.name.split(":")[0] for t in flat.inputs] == ["image"]


def test_a_backbone_used_twice_keeps_one_set_of_weights():
    inputs = tf_keras.Input((6, 6, 2))
    backbone_in = tf_keras.Input((6, 6, 2))
    backbone = tf_keras.Model(
        backbone_in, tf_keras.layers.Conv2D(3, 3, padding="same")(backbone_in))
    model = tf_keras.Model(inputs, tf_keras.layers.Add()(
        [backbone(inputs), backbone(tf_keras.layers.ReLU()(inputs))]))
    _randomize(model)
    flat = flat_tf_keras_model(model)
    assert len(flat.trainable_weights) == 2  # one kernel, one bias
    x = _inputs((6, 6, 2))
    np.testing.assert_allclose(flat(x), model(x), atol=1e-6)


@pytest.mark.slow
def test_the_user_model_is_left_untouched(framework):
    keras, rnnpool = framework
    model = _randomize(_nested_model(keras, rnnpool, 2))
    before = [np.copy(w) for w in model.get_weights()]
    layers_before = [layer.name for layer in model.layers]
    flat = flat_tf_keras_model(model)
    for variable in flat.trainable_weights:
        variable.assign(variable + 1.0)
    assert [layer.name for layer in model.layers] == layers_before
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_several_inputs_and_outputs_keep_the_user_order(framework):
    keras, rnnpool = framework
    image = keras.Input((8, 8, 2), name="image")
    side = keras.Input((3,), name="a_side")
    pooled = keras.layers.Flatten()(rnnpool(3, 2, pool_size=4, strides=4)(image))
    head_in = keras.Input((35,))
    head = keras.Model(head_in, keras.layers.Dense(4)(head_in), name="head")
    logits = head(keras.layers.Concatenate()([pooled, side]))
    model = _randomize(keras.Model([image, side], [pooled, logits]))
    flat = flat_tf_keras_model(model)
    assert [t.name.split(":")[0] for t in flat.inputs] == ["image", "a_side"]
    x, s = _inputs((8, 8, 2)), _inputs((3,), seed=2)
    got, want = flat([x, s]), model([x, s])
    assert [tuple(g.shape) for g in got] == [(3, 32), (3, 4)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-6)


def test_a_flat_tf_keras_model_is_used_as_is():
    inputs = tf_keras.Input((8, 8, 2))
    model = tf_keras.Model(inputs, RNNPool2D(2, 2, 4)(inputs))
    assert flat_tf_keras_model(model) is model


@pytest.mark.parametrize("activation", ["hard_sigmoid", "hard_silu", "silu"])
def test_keras3_activations_keep_keras3_meaning(activation):
    # tf_keras' "hard_sigmoid" is clip(0.2 x + 0.5); Keras 3's is relu6(x + 3) / 6.
    keras, _ = load_framework("keras3")
    inputs = keras.Input((7,))
    x = keras.layers.Dense(7, activation=activation)(inputs)
    model = _randomize(keras.Model(inputs, keras.layers.Activation(activation)(x)))
    flat = flat_tf_keras_model(model)
    x = np.linspace(-8, 8, 21 * 7, dtype=np.float32).reshape(21, 7)
    np.testing.assert_allclose(flat(x), model(x), atol=1e-6)


def test_keras3_arithmetic_with_constants_becomes_layers():
    keras, _ = load_framework("keras3")
    inputs = keras.Input((4,))
    y = (2.0 - keras.layers.ReLU(6.0)(inputs + 3.0) * (1.0 / 6.0)) / 4.0 - 1.0
    model = keras.Model(inputs, y)
    flat = flat_tf_keras_model(model)
    assert {type(layer).__name__ for layer in flat.layers} == {
        "InputLayer", "Rescaling", "ReLU"}
    x = np.linspace(-5, 5, 40, dtype=np.float32).reshape(10, 4)
    np.testing.assert_allclose(flat(x), model(x), atol=1e-6)


# -- errors ---------------------------------------------------------------------

@pytest.mark.slow
def test_subclassed_models_get_an_error_saying_what_to_do(framework):
    keras, rnnpool = framework

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.pool = rnnpool(2, 2, 2)

        def call(self, x):
            return self.pool(x)

    model = Subclassed()
    model(np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(TypeError, match="subclassed model.*functional model"):
        flat_tf_keras_model(model)
    inputs = keras.Input((4, 4, 2))
    outer = keras.Model(inputs, model(inputs))
    with pytest.raises(TypeError, match="subclassed"):
        flat_tf_keras_model(outer)


def test_a_keras3_layer_with_no_twin_is_named():
    keras, _ = load_framework("keras3")

    class Doubling(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Doubling(name="doubling")(inputs))
    with pytest.raises(ValueError, match="'doubling' \\(Doubling\\) has no tf_keras "
                                         "twin.*custom_twins"):
        flat_tf_keras_model(model)

    class TfKerasDoubling(tf_keras.layers.Layer):
        def call(self, x):
            return 2 * x

    flat = flat_tf_keras_model(model, custom_twins={Doubling: TfKerasDoubling})
    np.testing.assert_allclose(flat(np.ones((1, 4), np.float32)), 2.0)


def test_a_keras3_op_with_no_twin_is_named():
    keras, _ = load_framework("keras3")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.ops.sin(inputs))
    with pytest.raises(ValueError, match="keras.ops Sin.*write it as a Keras layer"):
        flat_tf_keras_model(model)


def test_a_keras3_option_tf_keras_lacks_is_named_unless_default():
    keras, _ = load_framework("keras3")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense", lora_rank=2)(inputs))
    with pytest.raises(ValueError, match="'dense' \\(Dense\\): option `lora_rank`=2"):
        flat_tf_keras_model(model)


def test_not_a_model_and_unbuilt_models_are_refused():
    with pytest.raises(TypeError, match="expects a tf_keras or Keras 3"):
        flat_tf_keras_model("model.keras")
    with pytest.raises(ValueError, match="needs a built model"):
        flat_tf_keras_model(tf_keras.Sequential([tf_keras.layers.Dense(2)]))
