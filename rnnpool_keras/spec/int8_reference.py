"""The NumPy integer reference of int8 RNNPool: docs/int8_rnnpool.md, section 4.

Vectorised over whole feature maps (every patch, row, column and sweep at once;
only the time steps loop). It is the oracle the C++ kernel must match bit for
bit, so it uses nothing but integer arithmetic on int64 arrays.
"""
import numpy as np

from rnnpool_keras.spec import geometry
from rnnpool_keras.spec import fixed_point as fp
from rnnpool_keras.spec import integer_activations
from rnnpool_keras.spec import int8_params


def _patches(x, pool, strides, padding, pad_value):
    """[B, H', W', r, c, k] patches of an NHWC map (spec 4.1)."""
    (r, c), (sr, sc) = pool, strides
    if padding == "same":
        pads = [geometry.same_padding(n, p, s)
                for n, p, s in zip(x.shape[1:3], pool, strides)]
        x = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(x, (r, c), axis=(1, 2))
    return np.moveaxis(windows[:, ::sr, ::sc], 3, 5)  # k after (r, c)


def _matmul(x, matrix):
    """Exact integer x @ W with int32 accumulators (asserts the spec's bound)."""
    acc = np.asarray(x, np.int64) @ np.asarray(matrix, np.int64)
    assert np.all(np.abs(acc) <= fp.INT32_MAX), "int32 accumulator overflow"
    return acc


def final_states(projected, cell, constants, gate_activation, update_activation):
    """Runs one integer cell over sequences; returns the final int16 states.

    projected: int64 [T, ..., units], MBQM(x_t @ W, input_multiplier) per step.
    """
    state = np.zeros(projected.shape[1:], dtype=np.int64)
    for step in projected:
        recurrent = fp.multiply_by_quantized_multiplier(
            _matmul(state, cell.recurrent_kernel), constants.recurrent_multiplier)
        gate_pre = fp.saturate(step + recurrent + cell.gate_bias.astype(np.int64),
                               fp.INT16_MIN, fp.INT16_MAX)
        update_pre = fp.saturate(step + recurrent + cell.update_bias.astype(np.int64),
                                 fp.INT16_MIN, fp.INT16_MAX)
        z = integer_activations.apply(gate_activation, gate_pre, cell.gate_table,
                                      constants.gate_activation_multiplier)
        c = integer_activations.apply(update_activation, update_pre, cell.update_table,
                                      constants.update_activation_multiplier)
        # h' = z*h + (sigmoid(zeta)*(1 - z) + sigmoid(nu))*c, spec 4.3.
        coefficient = fp.rounding_divide_by_pot(
            cell.zeta_q14 * (fp.ONE_Q15 - z), 15) + cell.nu_q14   # Q14, <= 3 * 2^14
        kept = fp.rounding_divide_by_pot(z * state, 15)
        updated = fp.multiply_by_quantized_multiplier(coefficient * c,
                                                      constants.update_multiplier)
        state = fp.saturate(kept + updated, fp.INT16_MIN, fp.INT16_MAX)
    return state


def rnnpool_int8(x, params):
    """int8 RNNPool of an NHWC int8 map.

    Args:
      x: int8 [B, H, W, k], quantised with params.input_scale / input_zero_point.
      params: int8_params.QuantizedRNNPool.
    Returns:
      int8 [B, H', W', 4 * h2], quantised with params.output_scale / output_zero_point.
    """
    int8_params.validate(params)
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim != 4:
        raise ValueError(f"x must be an int8 NHWC array, got {x.dtype} {x.shape}")
    if x.shape[3] != params.rnn1.kernel.shape[0]:
        raise ValueError(f"x has {x.shape[3]} channels, the kernel expects "
                         f"{params.rnn1.kernel.shape[0]}")
    gate, update = params.gate_activation, params.update_activation
    rnn1 = int8_params.cell_constants(params.rnn1, params.input_scale, gate, update)
    rnn2 = int8_params.cell_constants(params.rnn2, params.rnn1.state_scale, gate, update)

    # RNN1 input projections, once per pixel of every patch (spec 4.2); padded
    # pixels hold the zero point, i.e. real zero.
    centred = x.astype(np.int64) - params.input_zero_point
    patches = _patches(centred, params.pool_size, params.strides, params.padding, 0)
    projected = fp.multiply_by_quantized_multiplier(
        _matmul(patches, params.rnn1.kernel), rnn1.input_multiplier)  # [B,H',W',r,c,h1]

    # Rows run along columns (axis 4), columns along rows (axis 3): time first.
    row_states = final_states(np.moveaxis(projected, 4, 0), params.rnn1, rnn1, gate, update)
    col_states = final_states(np.moveaxis(projected, 3, 0), params.rnn1, rnn1, gate, update)

    outputs = []
    for states in (row_states, col_states):  # [B, H', W', r or c, h1]
        sequence = np.moveaxis(fp.multiply_by_quantized_multiplier(
            _matmul(states, params.rnn2.kernel), rnn2.input_multiplier), 3, 0)
        for direction in (sequence, sequence[::-1]):
            outputs.append(final_states(direction, params.rnn2, rnn2, gate, update))
    summary = np.concatenate(outputs, axis=-1)  # [B, H', W', 4 * h2]

    output_multiplier = fp.quantize_multiplier(
        params.rnn2.state_scale / params.output_scale)
    y = fp.multiply_by_quantized_multiplier(summary, output_multiplier)
    return fp.saturate(y + params.output_zero_point, -128, 127).astype(np.int8)
