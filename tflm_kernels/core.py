"""Python face of the C++ RNNPool kernel core (tflm_kernels/rnnpool_core.{h,cc}).

The same call shapes as the NumPy references, so tests can compare directly:

- `rnnpool_int8(x, params)`: int8 NHWC map and an
  `rnnpool_keras.spec.int8_params.QuantizedRNNPool`, bit-exact with
  `int8_reference.rnnpool_int8(x, params)` (docs/int8_rnnpool.md).
- `rnnpool_float(x, params, pool_size, strides, padding, gate_activation,
  update_activation)`: float32, `params` keyed like rnnpool_keras/spec/float_reference.py
  (rnn1_kernel, rnn1_recurrent_kernel, rnn1_gate_bias, rnn1_update_bias,
  rnn1_zeta, rnn1_nu, rnn2_...; full-rank matrices only, raw zeta / nu).
- `*_patch(image, ..., top, left)`: one patch of one HWC image whose top-left
  corner is (top, left); rows / columns outside the image are padding.
- `scratch_bytes_*`: the scratch the C++ kernel needs (the caller of the C++
  API supplies it; these wrappers allocate it).
- `int8_fast_path(params)`: whether the int8 kernels take their fast path for
  these parameters (same results; for tests that must exercise it).
- `int8_simd_stages(params)`: which int8 stages run AVX2 code on this machine;
  `portable=True` on the int8 functions keeps them on the portable C++.

The multipliers of spec section 3 are computed in Python by
`int8_params.cell_constants`, exactly as the NumPy oracle computes them.
"""
import math

import numpy as np

from rnnpool_keras.spec import fixed_point, int8_params, stem_conv
from rnnpool_keras.spec.contract import ACTIVATION_CODES
from tflm_kernels import _rnnpool_core as _core

# The op contract's activation codes, which the C++ enum uses too.
ACTIVATIONS = tuple(sorted(ACTIVATION_CODES, key=ACTIVATION_CODES.get))
PADDINGS = ("valid", "same")

quantize_multiplier = _core.quantize_multiplier
output_size = _core.output_size


def _pair(value):
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def _corner(name, value):
    """A patch corner coordinate as the kernel takes it: an int32 (any value;
    a patch wholly outside the image is all padding)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not fixed_point.INT32_MIN <= int(value) <= fixed_point.INT32_MAX:
        raise ValueError(f"{name} must be in [-2^31, 2^31 - 1], got {int(value)}")
    return int(value)


def _activation_code(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {list(ACTIVATIONS)}")
    return ACTIVATIONS.index(name)


def _padding_code(padding):
    if padding not in PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return PADDINGS.index(padding)


# ---------------------------------------------------------------------------
# int8
# ---------------------------------------------------------------------------
def _int8_cell_dict(cell, constants):
    def table(values):
        return None if values is None else np.ascontiguousarray(values, dtype=np.int16)

    return {
        "kernel": np.ascontiguousarray(cell.kernel, dtype=np.int8),
        "recurrent_kernel": np.ascontiguousarray(cell.recurrent_kernel, dtype=np.int8),
        "gate_bias": np.ascontiguousarray(cell.gate_bias, dtype=np.int32).reshape(-1),
        "update_bias": np.ascontiguousarray(cell.update_bias, dtype=np.int32).reshape(-1),
        "zeta_q14": int(cell.zeta_q14),
        "nu_q14": int(cell.nu_q14),
        "gate_table": table(cell.gate_table),
        "update_table": table(cell.update_table),
        "input_multiplier": tuple(constants.input_multiplier),
        "recurrent_multiplier": tuple(constants.recurrent_multiplier),
        "update_multiplier": tuple(constants.update_multiplier),
        "gate_activation_multiplier": constants.gate_activation_multiplier,
        "update_activation_multiplier": constants.update_activation_multiplier,
    }


def int8_kernel_params(params):
    """The dict the C++ binding takes, from a QuantizedRNNPool (Prepare's work).

    RNN1's input scale is the input scale, RNN2's is RNN1's state scale, and the
    output multiplier is quantize_multiplier(rnn2.state_scale / output_scale),
    as in int8_reference.rnnpool_int8.
    """
    gate, update = params.gate_activation, params.update_activation
    rnn1 = int8_params.cell_constants(params.rnn1, params.input_scale, gate, update)
    rnn2 = int8_params.cell_constants(params.rnn2, params.rnn1.state_scale, gate, update)
    return {
        "pool_size": _pair(params.pool_size),
        "strides": _pair(params.strides),
        "padding": _padding_code(params.padding),
        "gate_activation": _activation_code(gate),
        "update_activation": _activation_code(update),
        "rnn1": _int8_cell_dict(params.rnn1, rnn1),
        "rnn2": _int8_cell_dict(params.rnn2, rnn2),
        "input_zero_point": int(params.input_zero_point),
        "output_zero_point": int(params.output_zero_point),
        "output_multiplier": fixed_point.quantize_multiplier(
            params.rnn2.state_scale / params.output_scale),
    }


def _as_kernel_params_int8(params):
    return params if isinstance(params, dict) else int8_kernel_params(params)


def rnnpool_int8(x, params, portable=False):
    """int8 RNNPool of an int8 NHWC map [B, H, W, k] -> int8 [B, H', W', 4*h2].

    `params`: a QuantizedRNNPool, or the dict from `int8_kernel_params`
    (to skip recomputing the multipliers on repeated calls). `portable`: run
    the portable C++ only, never the SIMD (AVX2) stages (same results; for
    tests comparing the two).
    """
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim != 4:
        raise ValueError(f"x must be an int8 NHWC array, got {x.dtype} {x.shape}")
    return _core.rnnpool_int8(_as_kernel_params_int8(params), np.ascontiguousarray(x),
                              portable=bool(portable))


def rnnpool_int8_patch(image, params, top=0, left=0, portable=False):
    """One int8 patch summary [4*h2] of an int8 HWC image, corner (top, left)."""
    image = np.asarray(image)
    if image.dtype != np.int8 or image.ndim != 3:
        raise ValueError(f"image must be an int8 HWC array, got {image.dtype} {image.shape}")
    return _core.rnnpool_int8_patch(_as_kernel_params_int8(params),
                                    np.ascontiguousarray(image), _corner("top", top),
                                    _corner("left", left), portable=bool(portable))


def int8_simd_stages(params, portable=False):
    """Which stages the int8 plan runs as SIMD code on this machine: a dict
    rnn1_sweep, rnn2_sweep, rnn1_projection, rnn2_projection -> bool (all False
    off x86-64, without AVX2, or with `portable`). See Int8PlanSimdStages."""
    return _core.int8_simd_stages(_as_kernel_params_int8(params), portable=bool(portable))


def validate_int8(params):
    """(status code, message) of the C++ ValidateInt8Params; code 0 is ok."""
    return _core.validate_int8(_as_kernel_params_int8(params))


def int8_fast_path(params):
    """Whether the C++ int8 kernels take their fast path for a QuantizedRNNPool
    (or its dict): builtin sigmoid / tanh numbers and multipliers in range (see
    Int8FastPathApplies in rnnpool_core.h). The results are the same either way."""
    return _core.int8_fast_path(_as_kernel_params_int8(params))


def scratch_bytes_int8(params):
    """Scratch bytes of the int8 kernel for a QuantizedRNNPool (or its dict)."""
    return _core.scratch_bytes_int8(_as_kernel_params_int8(params))


# ---------------------------------------------------------------------------
# float
# ---------------------------------------------------------------------------
def _sigmoid(raw):
    raw = float(np.asarray(raw, dtype=np.float64).reshape(()))
    if raw >= 0:
        return 1.0 / (1.0 + math.exp(-raw))
    e = math.exp(raw)
    return e / (1.0 + e)


def _float_cell_dict(params, prefix):
    for name in ("kernel", "recurrent_kernel"):
        if params.get(prefix + name) is None:
            raise ValueError(f"{prefix}{name} missing: the C++ kernel takes full-rank "
                             f"matrices only (fold {prefix}{name}_left @ _right first)")

    def array(name, flat=False):
        value = np.asarray(params[prefix + name], dtype=np.float32)
        return np.ascontiguousarray(value.reshape(-1) if flat else value)

    return {
        "kernel": array("kernel"),
        "recurrent_kernel": array("recurrent_kernel"),
        "gate_bias": array("gate_bias", flat=True),
        "update_bias": array("update_bias", flat=True),
        "zeta_sigmoid": _sigmoid(params[prefix + "zeta"]),
        "nu_sigmoid": _sigmoid(params[prefix + "nu"]),
    }


def float_kernel_params(params, pool_size, strides=None, padding="valid",
                        gate_activation="sigmoid", update_activation="tanh"):
    """The dict the C++ binding takes, from numpy_reference-style float params."""
    pool = _pair(pool_size)
    return {
        "pool_size": pool,
        "strides": _pair(strides) if strides is not None else pool,
        "padding": _padding_code(padding),
        "gate_activation": _activation_code(gate_activation),
        "update_activation": _activation_code(update_activation),
        "rnn1": _float_cell_dict(params, "rnn1_"),
        "rnn2": _float_cell_dict(params, "rnn2_"),
    }


def rnnpool_float(x, params, pool_size, strides=None, padding="valid",
                  gate_activation="sigmoid", update_activation="tanh"):
    """float32 RNNPool of an NHWC map [B, H, W, k] -> [B, H', W', 4*h2]."""
    kernel_params = float_kernel_params(params, pool_size, strides, padding,
                                        gate_activation, update_activation)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be NHWC, got shape {x.shape}")
    return _core.rnnpool_float(kernel_params, x)


def rnnpool_float_patch(image, params, pool_size, top=0, left=0,
                        gate_activation="sigmoid", update_activation="tanh"):
    """One float32 patch summary [4*h2] of an HWC image, corner (top, left)."""
    kernel_params = float_kernel_params(params, pool_size, None, "valid",
                                        gate_activation, update_activation)
    image = np.ascontiguousarray(image, dtype=np.float32)
    return _core.rnnpool_float_patch(kernel_params, image, _corner("top", top),
                                     _corner("left", left))


def scratch_bytes_float(in_channels, rnn1_units, rnn2_units, pool_size):
    """Scratch bytes of the float kernel."""
    pool = _pair(pool_size)
    dummy = {
        "pool_size": pool, "strides": (1, 1), "padding": 0,
        "gate_activation": 0, "update_activation": 1,
        "rnn1": {"kernel": np.zeros((in_channels, rnn1_units), np.float32)},
        "rnn2": {"kernel": np.zeros((rnn1_units, rnn2_units), np.float32)},
    }
    return _core.scratch_bytes_float(dummy)


# ---------------------------------------------------------------------------
# The fused stem convolution (contract version 2, rnnpool_stem.h)
# ---------------------------------------------------------------------------
def stem_kernel_params_int8(stem):
    """The binding's "stem" dict from a description of an int8 CONV_2D:
    filter int8 [k, kh, kw, C], bias int32 [k], strides, padding, activation
    (rnnpool_keras.spec.stem_conv.ACTIVATION_CODES names), input_scale,
    input_zero_point, filter_scales ([k] or one), output_scale,
    output_zero_point. Multipliers and the clamp as TFLM's Prepare computes them."""
    filters = np.ascontiguousarray(stem["filter"], dtype=np.int8)
    scales = np.broadcast_to(np.asarray(stem["filter_scales"], np.float32).reshape(-1),
                             (filters.shape[0],))
    multipliers = stem_conv.channel_multipliers(stem["input_scale"], scales,
                                                stem["output_scale"])
    low, high = stem_conv.activation_range_int8(stem["activation"], stem["output_scale"],
                                                stem["output_zero_point"])
    return {
        "kernel_size": filters.shape[1:3], "strides": _pair(stem["strides"]),
        "padding": _padding_code(stem["padding"]),
        "filter": filters, "bias": np.ascontiguousarray(stem["bias"], dtype=np.int32),
        "multiplier": np.array([q for q, _ in multipliers], np.int32),
        "shift": np.array([shift for _, shift in multipliers], np.int32),
        "input_offset": -int(stem["input_zero_point"]),
        "output_offset": int(stem["output_zero_point"]),
        "activation_min": low, "activation_max": high,
    }


def stem_rnnpool_int8(x, params, stem, portable=False, conv_only=False):
    """The fused op on an int8 image batch [B, H0, W0, C]: the int8 CONV_2D
    `stem` (a dict for stem_kernel_params_int8, or its result) then RNNPool with
    `params` (as rnnpool_int8; its input scale / zero point must be the
    convolution's output ones). conv_only: the convolution's map only."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim != 4:
        raise ValueError(f"x must be an int8 NHWC array, got {x.dtype} {x.shape}")
    kernel_params = dict(_as_kernel_params_int8(params))
    kernel_params["stem"] = stem if "multiplier" in stem else stem_kernel_params_int8(stem)
    return _core.stem_rnnpool_int8(kernel_params, np.ascontiguousarray(x),
                                   portable=bool(portable), conv_only=bool(conv_only))


def stem_int8_simd(x, params, stem):
    """Whether stem_rnnpool_int8 (portable=False) runs the convolution in its
    AVX2 form on this machine (PrepareStemInt8Simd): False off x86-64, without
    AVX2, or where a bias or multiplier is outside the form's bounds."""
    kernel_params = dict(_as_kernel_params_int8(params))
    kernel_params["stem"] = stem if "multiplier" in stem else stem_kernel_params_int8(stem)
    return bool(_core.stem_int8_simd(kernel_params, np.ascontiguousarray(x)))


def stem_rnnpool_float(x, params, stem, pool_size, strides=None, padding="valid",
                       gate_activation="sigmoid", update_activation="tanh", conv_only=False):
    """The fused op in float32: `stem` holds filter [k, kh, kw, C], bias [k],
    strides, padding, activation; the rest as rnnpool_float."""
    kernel_params = float_kernel_params(params, pool_size, strides, padding,
                                        gate_activation, update_activation)
    low, high = stem_conv.activation_range_float(stem["activation"])
    kernel_params["stem"] = {
        "kernel_size": np.shape(stem["filter"])[1:3], "strides": _pair(stem["strides"]),
        "padding": _padding_code(stem["padding"]),
        "filter": np.ascontiguousarray(stem["filter"], dtype=np.float32),
        "bias": np.ascontiguousarray(stem["bias"], dtype=np.float32),
        "activation_min": -np.inf if low is None else low,
        "activation_max": np.inf if high is None else high,
    }
    return _core.stem_rnnpool_float(kernel_params, np.ascontiguousarray(x, dtype=np.float32),
                                    conv_only=bool(conv_only))
