"""The convolution a fused RNNPool op computes in front of RNNPool (contract
version 2, docs/rnnpool_custom_op.md "Fused stem convolution").

TFLite's CONV_2D, written as TFLM's reference kernels compute it, so the fused
op and the unfused CONV_2D -> RNNPool pair give the same bits:
- int8 (`reference_integer_ops::ConvPerChannel`): accumulate
  (x - zp_x) * w over the window in int32 (padding contributes nothing), add
  the bias, requantise per output channel with
  MultiplyByQuantizedMultiplier(acc, M_c) where M_c = s_x * s_w[c] / s_y is
  formed in double from the float32 scales, add zp_y, clamp to the fused
  activation's range (`CalculateActivationRangeQuantized`: float32 division,
  std::round);
- float (`reference_ops::Conv`): the window's products summed in (ky, kx, ci)
  order, plus the bias, clamped to the activation's range.
Filters are TFLite's [out, kh, kw, in]; dilation is 1; padding "same" or
"valid" with TFLite's rule (the extra row / column of an odd total after).
"""
import numpy as np

from rnnpool_keras.spec import fixed_point, geometry

# TFLite's ActivationFunctionType codes, which the contract's `stem_activation`
# uses: the fused activation of the CONV_2D the op replaces.
ACTIVATION_CODES = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
_REAL_RANGES = {0: (None, None), 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}


def output_size(n, kernel, stride, padding):
    """Conv output length along one axis (TFLite: same ceil(n/s), valid floor)."""
    return geometry.output_length(n, kernel, stride, padding)


def padding_before(n, kernel, stride, padding):
    """Zero rows / columns before the first pixel (TFLite / Keras rule)."""
    if padding == "valid":
        return 0
    return geometry.same_padding(n, kernel, stride)[0]


def channel_multipliers(input_scale, filter_scales, output_scale):
    """[(q, shift)] per output channel: M_c = s_x * s_w[c] / s_y in double from
    the float32 scales, as TFLM's PopulateConvolutionQuantizationParams."""
    s_x = np.float64(np.float32(input_scale))
    s_y = np.float64(np.float32(output_scale))
    return [fixed_point.quantize_multiplier(s_x * np.float64(np.float32(s)) / s_y)
            for s in np.asarray(filter_scales, np.float32).reshape(-1)]


def activation_range_int8(activation, output_scale, output_zero_point):
    """(low, high) int8 clamp of a fused activation, as TFLM computes it."""
    low_real, high_real = _REAL_RANGES[ACTIVATION_CODES[activation]]
    scale = np.float32(output_scale)

    def quantize(real):  # zp + (int32)std::round(f / scale), in float32
        q = np.float32(real) / scale
        return int(output_zero_point) + int(fixed_point.round_half_away(np.float32(q)))

    low = -128 if low_real is None else max(-128, quantize(low_real))
    high = 127 if high_real is None else min(127, quantize(high_real))
    return low, high


def _windows(x, kernel_size, strides, padding, fill):
    """x [H, W, C] padded with `fill` -> [OH, OW, kh, kw, C] windows and (OH, OW)."""
    (kh, kw), (sh, sw) = kernel_size, strides
    height, width, _ = x.shape
    out_h = output_size(height, kh, sh, padding)
    out_w = output_size(width, kw, sw, padding)
    top = padding_before(height, kh, sh, padding)
    left = padding_before(width, kw, sw, padding)
    bottom = max((out_h - 1) * sh + kh - height - top, 0)
    right = max((out_w - 1) * sw + kw - width - left, 0)
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=fill)
    rows = (np.arange(out_h) * sh)[:, None] + np.arange(kh)[None, :]
    cols = (np.arange(out_w) * sw)[:, None] + np.arange(kw)[None, :]
    windows = padded[rows[:, None, :, None], cols[None, :, None, :]]
    return windows, (out_h, out_w)


def conv_int8(x, filters, bias, strides, padding, input_zero_point, multipliers,
              output_zero_point, activation_range):
    """int8 CONV_2D of a batch x [B, H, W, C] -> int8 [B, OH, OW, out].

    filters int8 [out, kh, kw, C] (zero point 0), bias int32 [out],
    multipliers [(q, shift)] per output channel (channel_multipliers),
    activation_range (low, high) (activation_range_int8)."""
    filters = np.asarray(filters, np.int64)
    low, high = activation_range
    results = []
    for image in np.asarray(x, np.int64):
        # Padding holds zp_x, so (x - zp_x) is 0 there: it adds nothing.
        windows, (out_h, out_w) = _windows(image - input_zero_point, filters.shape[1:3],
                                           strides, padding, 0)
        acc = np.einsum("yxijc,oijc->yxo", windows, filters) + np.asarray(bias, np.int64)
        out = np.empty_like(acc)
        for channel, multiplier in enumerate(multipliers):
            out[..., channel] = fixed_point.multiply_by_quantized_multiplier(
                acc[..., channel], multiplier)
        results.append(np.clip(out + output_zero_point, low, high).reshape(out_h, out_w, -1))
    return np.stack(results).astype(np.int8)


def activation_range_float(activation):
    """(low, high) float clamp of a fused activation (None: unbounded)."""
    return _REAL_RANGES[ACTIVATION_CODES[activation]]


def conv_float(x, filters, bias, strides, padding, activation):
    """float64 CONV_2D of x [B, H, W, C] -> [B, OH, OW, out] (the tests' oracle)."""
    filters = np.asarray(filters, np.float64)
    low, high = activation_range_float(activation)
    results = []
    for image in np.asarray(x, np.float64):
        windows, _ = _windows(image, filters.shape[1:3], strides, padding, 0.0)
        out = np.einsum("yxijc,oijc->yxo", windows, filters) + np.asarray(bias, np.float64)
        results.append(np.clip(out, low, high))
    return np.stack(results)


def conv_int8_of(x, stem):
    """conv_int8 from a description dict: filter, bias, strides, padding,
    activation, input_scale, input_zero_point, filter_scales ([out] or one),
    output_scale, output_zero_point (the keys tflm_kernels.core takes too)."""
    filters = np.asarray(stem["filter"])
    scales = np.broadcast_to(np.asarray(stem["filter_scales"], np.float32).reshape(-1),
                             (filters.shape[0],))
    strides = stem["strides"]
    strides = (strides, strides) if np.isscalar(strides) else tuple(strides)
    return conv_int8(
        x, filters, stem["bias"], strides, stem["padding"], int(stem["input_zero_point"]),
        channel_multipliers(stem["input_scale"], scales, stem["output_scale"]),
        int(stem["output_zero_point"]),
        activation_range_int8(stem["activation"], stem["output_scale"],
                              stem["output_zero_point"]))
