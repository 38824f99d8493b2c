"""Integer primitives of the int8 RNNPool spec (docs/int8_rnnpool.md, section 2).

NumPy, on int64 arrays holding int32 values, so every result is exact. The C++
kernel implements the same functions; they follow TFLite's reference
`QuantizeMultiplier` / `MultiplyByQuantizedMultiplier` (double rounding), with
one difference the spec states: the left shift saturates instead of overflowing.
"""
import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
ONE_Q15 = 1 << 15  # 1.0 in Q15; the activation outputs have scale 2^-15
ONE_Q14 = 1 << 14  # 1.0 in Q14; sigmoid(zeta), sigmoid(nu), the update coefficient


def round_half_away(x):
    """std::round: halves go away from zero (np.round would go to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real_multiplier):
    """(q, shift) with real_multiplier ~= q * 2^(shift - 31), q in [2^30, 2^31).

    Spec 2.1. Raises ValueError for a multiplier that is not positive and finite,
    or not below 2^30 (no RNNPool scale ratio comes near that).
    """
    m = float(real_multiplier)
    if not (m > 0.0 and math.isfinite(m)):
        raise ValueError(f"quantized multiplier must be positive and finite, got {m!r}")
    fraction, shift = math.frexp(m)
    q = int(round_half_away(fraction * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:  # smaller than 2^-32: flushes to zero, as in TFLite
        return 0, 0
    if shift > 30:
        raise ValueError(f"quantized multiplier {m!r} is too large (>= 2^30)")
    return q, shift


def saturating_rounding_doubling_high_mul(a, b):
    """(a * b * 2 + 2^31 rounding) >> 32 for int32 a, b, saturating INT32_MIN^2."""
    a = np.asarray(a, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * np.int64(b)
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    total = ab + nudge
    # C++ integer division truncates toward zero.
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent):
    """x / 2^exponent rounded to nearest, halves away from zero."""
    x = np.asarray(x, dtype=np.int64)
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier):
    """round(x * q * 2^(shift - 31)) for int32 x and `multiplier` = (q, shift).

    The left shift saturates to int32 (TFLite leaves that overflow undefined).
    """
    q, shift = multiplier
    left, right = max(shift, 0), max(-shift, 0)
    x = np.clip(np.asarray(x, dtype=np.int64) << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, q), right)


def saturate(x, low, high):
    """Clamps integer values to [low, high] (as int64)."""
    return np.clip(np.asarray(x, dtype=np.int64), low, high)
