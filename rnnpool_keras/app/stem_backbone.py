"""An RNNPool stem in front of a Keras Applications backbone, and the backbone alone.

The pattern of README "RNNPool stem + Keras Applications backbone":
image -> Conv2D / BatchNorm / ReLU6 -> RNNPool2D (4x4 patches, stride 2) ->
1x1 Conv2D to 3 channels -> backbone (weights=None, include_top=False),
called as a layer (`nested=True`) or built on the tensor (`input_tensor=`)
-> global average pooling -> Dense logits. tf_keras or Keras 3. The layers
around the backbone have prefixed names ("rnnpool_stem_conv", "head_pool"):
a flat build shares one namespace with the backbone's own ("stem_conv" in
EfficientNet).
"""
# family: (keras.applications builder, its arguments). Widths for microcontrollers.
FAMILIES = {
    "MobileNet": ("MobileNet", {"alpha": 0.25}),
    "MobileNetV2": ("MobileNetV2", {"alpha": 0.35}),
    "MobileNetV3Small": ("MobileNetV3Small", {"alpha": 0.75}),
    "MobileNetV3Small-minimalistic": ("MobileNetV3Small",
                                      {"alpha": 0.75, "minimalistic": True}),
    "MobileNetV3Large": ("MobileNetV3Large", {"alpha": 0.75}),
    "MobileNetV3Large-minimalistic": ("MobileNetV3Large",
                                      {"alpha": 0.75, "minimalistic": True}),
    "EfficientNetB0": ("EfficientNetB0", {}),
}


def _framework(framework):
    if framework is None:
        import tf_keras
        from rnnpool_keras.layers.rnnpool2d import RNNPool2D
        return tf_keras, RNNPool2D
    from rnnpool_keras.keras3 import RNNPool2D
    return framework, RNNPool2D


def _backbone(keras, family, x, nested, preprocessing=True):
    """The family's backbone applied to `x` (nested: as one layer)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    builder, arguments = FAMILIES[family]
    build = getattr(keras.applications, builder)
    if not preprocessing and builder.startswith("MobileNetV3"):
        arguments = {**arguments, "include_preprocessing": False}
    if nested:
        backbone = build(input_shape=tuple(x.shape[1:]), weights=None,
                         include_top=False, **arguments)
        return backbone(x)
    return build(input_tensor=x, weights=None, include_top=False, **arguments).output


def rnnpool_stem_backbone(family, input_shape=(160, 160, 3), num_classes=2,
                          nested=True, stem_strides=2, rnn_units=8, framework=None,
                          backbone_preprocessing=True):
    """Classifier: RNNPool stem, then the `family` backbone, pooling, Dense.

    Args:
      family: a key of FAMILIES (e.g. "MobileNetV3Small-minimalistic").
      input_shape: (height, width, 3); the backbone sees
        floor((ceil(H / stem_strides) - 4) / 2) + 1 rows, which Keras
        Applications want >= 32.
      num_classes: logits.
      nested: the backbone as one layer (a model in the model), else flat.
      stem_strides: stride of the first convolution.
      rnn_units: h1 = h2 of RNNPool2D (4 * rnn_units channels out).
      framework: None for tf_keras, or Keras 3's `keras` module.
      backbone_preprocessing: False drops MobileNetV3's Rescaling (x / 127.5 - 1,
        made for pixels in [0, 255]): it squeezes the stem's features into a
        band about 0.01 wide next to -1, which an int8 range (it must hold 0)
        resolves in a few steps. EfficientNet's cannot be dropped.
    Returns:
      A functional model [batch, H, W, 3] -> [batch, num_classes].
    """
    keras, rnnpool = _framework(framework)
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(8, 3, strides=stem_strides, padding="same", use_bias=False,
                            name="rnnpool_stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="rnnpool_stem_bn")(x)
    x = keras.layers.ReLU(6.0, name="rnnpool_stem_relu")(x)
    x = rnnpool(rnn_units, rnn_units, pool_size=4, strides=2, name="rnnpool")(x)
    x = keras.layers.Conv2D(3, 1, name="rnnpool_to_backbone")(x)
    x = _backbone(keras, family, x, nested, backbone_preprocessing)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="head_logits")(x)
    return keras.Model(inputs, outputs, name=f"rnnpool_{family}")


def backbone_classifier(family, input_shape=(160, 160, 3), num_classes=2,
                        framework=None):
    """The same classifier with the family's own stem: image -> backbone
    (flat) -> pooling -> Dense; the baseline of the RNNPool stem."""
    keras, _ = _framework(framework)
    inputs = keras.Input(input_shape, name="image")
    x = _backbone(keras, family, inputs, nested=False)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="head_logits")(x)
    return keras.Model(inputs, outputs, name=family)
