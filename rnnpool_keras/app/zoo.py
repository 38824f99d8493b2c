"""The paper's networks as tf_keras functional models, and their MAdds.

- `vww_mobilenetv2`: the Visual Wake Words baseline, MobileNetV2-0.35x with an
  8-channel first convolution and a 320-channel last convolution.
- `vww_mobilenetv2_rnnpool`: the same network with RNNPool replacing its first
  stages (paper Table 10 at width 0.35, Table 9 last row, Section 5.2).
- `rnnpool_face_m4`: RNNPool-Face-M4 (paper Table 15), the QVGA face detector
  built for Cortex-M4 devices, with S3FD-style detection heads.

The layers are those the TFLite converter turns into builtins (Conv2D,
DepthwiseConv2D, BatchNormalization, ReLU(6), Add, ZeroPadding2D, Cropping2D,
Concatenate, GlobalAveragePooling2D, Flatten, Reshape, Dropout, Dense) plus
RNNPool2D. Layer names depend only on position, so builds at any input size
share them and weights load by name. Padding and BatchNorm epsilon follow the
authors' PyTorch code (edge replication after RNNPool; with
`pytorch_padding=True` symmetric zero padding of strided convolutions too), so
weights trained there can be carried over layer by layer.

Every builder takes `framework`: None builds with tf_keras (and
`rnnpool_keras.RNNPool2D`), `framework=keras` with Keras 3 (and
`rnnpool_keras.keras3.RNNPool2D`); the two builds have the same layers and names.
"""
import tf_keras as keras

from rnnpool_keras.layers.rnnpool2d import RNNPool2D

# MobileNetV2's stages (expansion t, output channels c, repeats n, first stride s)
# at width 0.35, c rounded to a multiple of 8 as in MobileNetV2: 16, 24, 32, 64,
# 96, 160, 320 become 8, 8, 16, 24, 32, 56, 112.
_VWW_STAGES = ((1, 8, 1, 1), (6, 8, 2, 2), (6, 16, 3, 2), (6, 24, 4, 2),
               (6, 32, 3, 1), (6, 56, 3, 2), (6, 112, 1, 1))
# RNNPool (stride 4 after a stride-2 convolution) does the work of the stages that
# bring 224 down to 28; the network continues with the 28x28 stages (Table 10).
_VWW_RNNPOOL_STAGES = _VWW_STAGES[3:]
_VWW_STEM_CHANNELS = 8
_VWW_LAST_CHANNELS = 320
# RNNPool-Face-M4 (Table 15): four MBConv blocks, a detection head after each.
_FACE_M4_BLOCKS = ((2, 32, 1), (2, 32, 1), (2, 64, 2), (2, 64, 1))  # (t, c, s)


# -- building blocks ---------------------------------------------------------------

def _conv_bn(x, filters, kernel_size, strides, name, relu=True, depthwise=False,
             pytorch_padding=False):
    """Conv (or depthwise conv) + BatchNorm (+ ReLU6).

    With `pytorch_padding`, a strided convolution gets explicit symmetric
    padding, as in the authors' PyTorch models (Keras' "same" pads only after,
    which shifts every window by one pixel): needed to carry their weights
    over. Otherwise "same": the convolution pads on the fly, while a separate
    PAD op would hold a padded copy of its input in RAM beside the original.
    """
    layers = _framework(x)[0].layers
    padding = "same"
    if strides > 1 and pytorch_padding:
        x = layers.ZeroPadding2D(kernel_size // 2, name=name + "_pad")(x)
        padding = "valid"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel_size, strides, padding,
                                   use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel_size, strides, padding,
                          use_bias=False, name=name)(x)
    # BatchNorm after every convolution (the TFLite converter folds it away),
    # with PyTorch's epsilon so the authors' trained statistics mean the same.
    x = layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, name=name + "_bn")(x)
    if relu:
        x = layers.ReLU(6.0, name=name + "_relu")(x)
    return x


def _inverted_residual(x, expansion, filters, strides, name, pytorch_padding=False):
    """MobileNetV2's MBConv: 1x1 expand, 3x3 depthwise, linear 1x1 project."""
    layers = _framework(x)[0].layers
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn(y, round(in_channels * expansion), 1, 1, name + "_expand")
    y = _conv_bn(y, None, 3, strides, name + "_depthwise", depthwise=True,
                 pytorch_padding=pytorch_padding)
    y = _conv_bn(y, filters, 1, 1, name + "_project", relu=False)
    if strides == 1 and in_channels == filters:
        y = layers.Add(name=name + "_add")([x, y])
    return y


def _stages(x, stages, name, pytorch_padding=False):
    """Runs (t, c, n, s) stages; blocks are numbered `name`_0, `name`_1, ..."""
    index = 0
    for expansion, filters, repeats, strides in stages:
        for i in range(repeats):
            x = _inverted_residual(x, expansion, filters, strides if i == 0 else 1,
                                   f"{name}_{index}", pytorch_padding)
            index += 1
    return x


def _replicate_bottom_right(x, name):
    """Repeats the last row and the last column once (H, W -> H + 1, W + 1).

    The authors pad RNNPool's 27x27 VWW output to 28x28 this way (PyTorch
    'replicate' padding) so the strided stages after it halve it exactly.
    Cropping2D + Concatenate become TFLite STRIDED_SLICE + CONCATENATION.
    """
    layers = _framework(x)[0].layers
    height, width = x.shape[1], x.shape[2]
    last_row = layers.Cropping2D(((height - 1, 0), (0, 0)),
                                 name=name + "_last_row")(x)
    x = layers.Concatenate(axis=1, name=name + "_rows")([x, last_row])
    last_column = layers.Cropping2D(((0, 0), (width - 1, 0)),
                                    name=name + "_last_column")(x)
    return layers.Concatenate(axis=2, name=name + "_columns")([x, last_column])


def _rnnpool_stem(x, stem_channels, units, pool_size, activations, pytorch_padding):
    """Stride-2 3x3 conv, then RNNPool (stride 4, valid) and edge replication."""
    _, rnnpool = _framework(x)
    x = _conv_bn(x, stem_channels, 3, 2, "stem_conv", pytorch_padding=pytorch_padding)
    x = rnnpool(units, units, pool_size=pool_size, strides=4, padding="valid",
                name="rnnpool", **activations)(x)
    return _replicate_bottom_right(x, "rnnpool_replicate")


def _classifier(x, num_classes, last_rnnpool_activations=None):
    """Pools the final map to a vector (by RNNPool if given its activations)
    and maps it to `num_classes` logits."""
    framework, rnnpool = _framework(x)
    layers = framework.layers
    if last_rnnpool_activations is not None:
        # Paper F.1.2: one RNNPool patch over the whole map, h1 = h2 = channels / 4,
        # so the pooled vector keeps the channel count of average pooling.
        units = x.shape[-1] // 4
        x = rnnpool(units, units, pool_size=(x.shape[1], x.shape[2]),
                    name="last_rnnpool", **last_rnnpool_activations)(x)
        x = layers.Flatten(name="last_rnnpool_flatten")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    # Dropout as in the authors' classifier; it vanishes at conversion.
    x = layers.Dropout(0.2, name="dropout")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _check_input_shape(input_shape, minimum, builder):
    """Refuses an input too small for the builder's first RNNPool patch."""
    if len(input_shape) != 3 or min(input_shape[:2]) < minimum:
        raise ValueError(f"{builder} needs input_shape (height, width, channels) "
                         f"with height and width >= {minimum}, got {input_shape}")


def _framework(x):
    """(Keras module, RNNPool2D class) of the tensor `x`: the builders make
    tf_keras or Keras 3 layers, whichever made their input."""
    if type(x).__module__.startswith("tf_keras"):
        return keras, RNNPool2D
    import keras as keras3
    from rnnpool_keras.keras3 import RNNPool2D as Keras3RNNPool2D

    return keras3, Keras3RNNPool2D


def _input(input_shape, framework):
    """The model input: `framework` is tf_keras (None) or Keras 3's `keras`."""
    return (framework or keras).Input(input_shape, name="image")


# -- Visual Wake Words -------------------------------------------------------------

def vww_mobilenetv2(input_shape=(224, 224, 3), num_classes=2, pytorch_padding=False,
                    name="vww_mobilenetv2", framework=None):
    """Visual Wake Words baseline: MobileNetV2-0.35x, 8-channel stem, 320-channel head.

    The network the paper compares against (Section 5.2, Table 2 "Base Network"):
    3x3 stride-2 conv to 8 channels, MobileNetV2's 17 inverted-residual blocks at
    width 0.35, a 1x1 conv to 320 channels, global average pooling, dense logits.

    Args:
      input_shape: (height, width, channels) of the image, any size.
      num_classes: number of output logits (2 for Visual Wake Words).
      pytorch_padding: pad strided convolutions symmetrically with explicit
        ZeroPadding2D layers, as the authors' PyTorch code does (to carry their
        weights over); default False: Keras "same", no PAD op in the .tflite
        and a smaller TFLM arena.
      name: the model's name.
      framework: None for tf_keras, or the Keras 3 `keras` module.

    Returns:
      A tf_keras Model from [batch, H, W, C] images to [batch, num_classes] logits
      (no softmax); the last feature map is H/32 x W/32 (rounded up). Its cost
      against the paper's: bench/RESULTS.md, "Model zoo".
    """
    _check_input_shape(input_shape, 1, "vww_mobilenetv2")
    inputs = _input(input_shape, framework)
    x = _conv_bn(inputs, _VWW_STEM_CHANNELS, 3, 2, "stem_conv",
                 pytorch_padding=pytorch_padding)
    x = _stages(x, _VWW_STAGES, "block", pytorch_padding)
    x = _conv_bn(x, _VWW_LAST_CHANNELS, 1, 1, "last_conv")
    outputs = _classifier(x, num_classes)
    return _framework(inputs)[0].Model(inputs, outputs, name=name)


def vww_mobilenetv2_rnnpool(input_shape=(224, 224, 3), num_classes=2,
                            last_rnnpool=False, gate_activation="sigmoid",
                            update_activation="tanh", pytorch_padding=False,
                            name="vww_mobilenetv2_rnnpool", framework=None):
    """MobileNetV2-RNNPool (0.35x) for Visual Wake Words (paper Section 5.2).

    3x3 stride-2 conv to 8 channels (224 -> 112), RNNPool with 6x6 patches,
    stride 4, h1 = h2 = 8 (112 -> 27, 32 channels; Table 9 last row), the last
    row and column repeated (27 -> 28, as the authors' code does), then the
    baseline's 28x28-and-smaller stages (11 inverted residuals at width 0.35),
    a 1x1 conv to 320 channels, pooling and dense logits. This is the authors'
    `model_mobilenet_rnnpool.py` (Table 2 "RNNPoolLayer": 89.57%).

    Args:
      input_shape: (height, width, channels); height, width >= 11 (the 6x6
        RNNPool patch must fit in the stem's output).
      num_classes: number of output logits.
      last_rnnpool: if True, an RNNPool over the whole final map (h1 = h2 = 80)
        replaces average pooling, as in the authors' `model_mobilenet_2rnnpool.py`
        (Table 2 "RNNPoolLayer + Last layer RNNPool").
      gate_activation, update_activation: the non-linearities of every RNNPool;
        the paper's quantised VWW models use "quantSigm" and "quantTanh"
        (Appendix G), the authors' released code sigmoid and tanh.
      pytorch_padding: pad strided convolutions symmetrically with explicit
        ZeroPadding2D layers, as the authors' PyTorch code does (to carry their
        weights over); default False: Keras "same", no PAD op in the .tflite
        and a smaller TFLM arena.
      name: the model's name.
      framework: None for tf_keras, or the Keras 3 `keras` module.

    Returns:
      A tf_keras Model from [batch, H, W, C] images to [batch, num_classes] logits.
      Its cost against the paper's: bench/RESULTS.md, "Model zoo".
    """
    _check_input_shape(input_shape, 11, "vww_mobilenetv2_rnnpool")  # stem output >= 6
    activations = {"gate_activation": gate_activation,
                   "update_activation": update_activation}
    inputs = _input(input_shape, framework)
    x = _rnnpool_stem(inputs, _VWW_STEM_CHANNELS, 8, 6, activations, pytorch_padding)
    x = _stages(x, _VWW_RNNPOOL_STAGES, "block", pytorch_padding)
    x = _conv_bn(x, _VWW_LAST_CHANNELS, 1, 1, "last_conv")
    outputs = _classifier(x, num_classes, activations if last_rnnpool else None)
    return _framework(inputs)[0].Model(inputs, outputs, name=name)


# -- small models for Fashion-MNIST (bench/bench_accuracy.py, `rnnpool demo`) ------

# After the stem (stride 2), the baseline brings the map down 4x more with
# MobileNetV2 blocks, the RNNPool model with one RNNPool; both then share the tail.
_SMALL_BASELINE_STAGES = ((1, 8, 1, 1), (6, 16, 2, 2), (6, 32, 2, 2))
_SMALL_TAIL_STAGES = ((6, 32, 1, 1), (6, 48, 2, 2))
_SMALL_LAST_CHANNELS = 128


def small_mobilenetv2(input_shape=(64, 64, 1), num_classes=10,
                      name="small_mobilenetv2", framework=None):
    """A small MobileNetV2 (the strided-convolution baseline of the RNNPool one).

    3x3 stride-2 conv to 8 channels, inverted residuals (8 ch; 16 ch stride 2
    x2; 32 ch stride 2 x2) to 1/8 of the input, then the tail shared with
    `small_mobilenetv2_rnnpool`: 32 ch, 48 ch stride 2 x2, a 1x1 conv to 128,
    average pooling, dense logits.
    """
    _check_input_shape(input_shape, 1, "small_mobilenetv2")
    inputs = _input(input_shape, framework)
    x = _conv_bn(inputs, 8, 3, 2, "stem_conv")
    x = _stages(x, _SMALL_BASELINE_STAGES, "head_block")
    return _small_tail(inputs, x, num_classes, name)


def small_mobilenetv2_rnnpool(input_shape=(64, 64, 1), num_classes=10,
                              gate_activation="sigmoid", update_activation="tanh",
                              name="small_mobilenetv2_rnnpool", framework=None):
    """`small_mobilenetv2` with its downsampling blocks replaced by one RNNPool.

    3x3 stride-2 conv to 8 channels, RNNPool with 6x6 patches, stride 4,
    "same" padding, h1 = h2 = 8 (the paper's VWW RNNPool; 32 channels at 1/8
    of the input), then the shared tail.
    """
    _check_input_shape(input_shape, 2, "small_mobilenetv2_rnnpool")
    inputs = _input(input_shape, framework)
    x = _conv_bn(inputs, 8, 3, 2, "stem_conv")
    x = _framework(x)[1](8, 8, pool_size=6, strides=4, padding="same", name="rnnpool",
                         gate_activation=gate_activation,
                         update_activation=update_activation)(x)
    return _small_tail(inputs, x, num_classes, name)


def _small_tail(inputs, x, num_classes, name):
    x = _stages(x, _SMALL_TAIL_STAGES, "block")
    x = _conv_bn(x, _SMALL_LAST_CHANNELS, 1, 1, "last_conv")
    return _framework(inputs)[0].Model(inputs, _classifier(x, num_classes), name=name)


# -- face detection ----------------------------------------------------------------

def rnnpool_face_m4(input_shape=(240, 320, 1), num_classes=2, rnn_units=16,
                    gate_activation="sigmoid", update_activation="tanh",
                    pytorch_padding=False, name="rnnpool_face_m4", framework=None):
    """RNNPool-Face-M4 (paper Table 15, Section 5.4): a QVGA face detector.

    3x3 stride-2 conv to 4 channels, RNNPool with 8x8 patches, stride 4 and
    h1 = h2 = `rnn_units` (64 channels at stride 8 for 16 units), the last row
    and column repeated, four MBConv blocks (t = 2; 32, 32, 64, 64 channels; the
    third has stride 2), and after each block an S3FD-style head: a 3x3 conv
    to `num_classes` logits and a 3x3 conv to 4 box offsets per location (one
    anchor per location). Heads at output strides 8, 8, 16, 16.

    Unlike the authors' `RPool_Face_M4.py`, the heads read the blocks' outputs
    directly (no learnt-scale L2 normalisation) and the first head has no
    max-out background channels; anchors, decoding and NMS are left to the caller.

    Args:
      input_shape: (height, width, channels), e.g. (240, 320, 1) for monochrome
        QVGA or (480, 640, 3) for VGA; height, width >= 15 (the 8x8 RNNPool
        patch must fit in the stem's output).
      num_classes: classes per location, background included (2 for faces).
      rnn_units: h1 = h2 of RNNPool (16 in the paper; 8 halves RNNPool's cost).
      gate_activation, update_activation: the RNNPool non-linearities.
      pytorch_padding: pad strided convolutions symmetrically with explicit
        ZeroPadding2D layers, as the authors' PyTorch code does (to carry their
        weights over); default False: Keras "same", no PAD op in the .tflite
        and a smaller TFLM arena.
      name: the model's name.
      framework: None for tf_keras, or the Keras 3 `keras` module.

    Returns:
      A tf_keras Model with outputs `class_logits` [batch, N, num_classes] and
      `box_offsets` [batch, N, 4], N = locations summed over the four heads
      (head by head, row-major within a head): 3,000 at 240x320. Its cost
      against the paper's: bench/RESULTS.md, "Model zoo".
    """
    _check_input_shape(input_shape, 15, "rnnpool_face_m4")  # stem output >= 8
    inputs = _input(input_shape, framework)
    layers = _framework(inputs)[0].layers
    x = _rnnpool_stem(inputs, 4, rnn_units, 8, {"gate_activation": gate_activation,
                                                "update_activation": update_activation},
                      pytorch_padding)
    class_logits, box_offsets = [], []
    for index, (expansion, filters, strides) in enumerate(_FACE_M4_BLOCKS):
        x = _inverted_residual(x, expansion, filters, strides, f"block_{index}",
                               pytorch_padding)
        head = f"head_{index}"
        logits = layers.Conv2D(num_classes, 3, padding="same",
                               name=head + "_class")(x)
        class_logits.append(layers.Reshape(
            (-1, num_classes), name=head + "_class_flat")(logits))
        boxes = layers.Conv2D(4, 3, padding="same", name=head + "_box")(x)
        box_offsets.append(layers.Reshape((-1, 4), name=head + "_box_flat")(boxes))
    outputs = [layers.Concatenate(axis=1, name="class_logits")(class_logits),
               layers.Concatenate(axis=1, name="box_offsets")(box_offsets)]
    return _framework(inputs)[0].Model(inputs, outputs, name=name)


# -- cost --------------------------------------------------------------------------

def count_madds(model):
    """Multiply-adds of one image at the model's built input size.

    Counts what the paper counts ("MAdds as in MobileNetV2", p. 2): the
    multiply-adds of Conv2D (H' W' kh kw k_in/groups k_out), DepthwiseConv2D
    (H' W' kh kw k_in m), Dense (k_in k_out per position) and RNNPool2D
    (`RNNPool2D.madds()`: patches x the paper's per-patch count). Not counted:
    biases, BatchNormalization (folded into the convolutions by the converter),
    activations, additions, pooling, padding, slicing and reshapes. Layers of
    nested models are counted too.

    Args:
      model: a built tf_keras model with a known input height and width, whose
        counted layers are each called once.

    Returns:
      int, multiply-adds per image (batch size 1).

    Raises:
      ValueError: for a layer with weights that this function cannot count
        (it refuses rather than undercount).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_madds(layer)
        elif isinstance(layer, RNNPool2D):
            total += layer.madds()
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            positions, channels = _positions_and_channels(layer, layer.output_shape)
            total += positions * channels * _product(layer.kernel_size)
        elif type(layer) is keras.layers.Conv2D:  # not its subclass Conv2DTranspose
            positions, out_channels = _positions_and_channels(layer, layer.output_shape)
            _, in_channels = _positions_and_channels(layer, layer.input_shape)
            total += (positions * out_channels * in_channels // layer.groups
                      * _product(layer.kernel_size))
        elif isinstance(layer, keras.layers.Dense):
            positions = _product(layer.input_shape[1:-1])
            total += positions * layer.input_shape[-1] * layer.units
        elif layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            raise ValueError(f"count_madds cannot count layer {layer.name!r} "
                             f"({type(layer).__name__})")
    return total


def _positions_and_channels(layer, shape):
    """(H x W, channels) of a conv layer's 4D input or output shape."""
    if layer.data_format == "channels_first":
        return shape[2] * shape[3], shape[1]
    return shape[1] * shape[2], shape[3]


def _product(values):
    result = 1
    for value in values:
        result *= value
    return result
