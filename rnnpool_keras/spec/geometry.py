"""Where RNNPool's patches sit on a feature map: output size and padding.

The rule is the one of Keras pooling layers, so RNNPool2D can replace a pooling
or strided-convolution layer without changing the shapes around it.
"""
import math


def output_length(input_length, pool, stride, padding):
    """Number of patch positions along one axis (None when the input is unknown).

    valid: floor((n - pool) / stride) + 1;  same: ceil(n / stride).
    """
    if input_length is None:
        return None
    if padding == "valid":
        return (input_length - pool) // stride + 1
    return math.ceil(input_length / stride)


def output_size(spatial, pool, strides, padding):
    """(H', W') of an input (H, W) for pool (r, c) and strides (sr, sc); None
    where the input's is unknown."""
    return tuple(output_length(n, p, s, padding) for n, p, s in zip(spatial, pool, strides))


def same_padding(input_length, pool, stride):
    """(before, after) zero rows/columns for "same" padding, Keras/TF convention.

    The extra pixel of an odd total goes after, as in `tf.nn.max_pool2d`.
    """
    out = math.ceil(input_length / stride)
    total = max((out - 1) * stride + pool - input_length, 0)
    return total // 2, total - total // 2
