"""The quantised parameters of one int8 RNNPool op (docs/int8_rnnpool.md, section 3).

`quantize_rnnpool` turns float weights plus calibrated ranges into exactly the
integers and scales the converter writes into the model; `cell_constants`
derives the multipliers a kernel precomputes in Prepare.
"""
import dataclasses
import math
from typing import Optional, Tuple

import numpy as np

from rnnpool_keras.spec import fixed_point as fp
from rnnpool_keras.spec import integer_activations

# The largest sizes the spec supports; section 5 proves no int32 overflow within them.
MAX_INPUT_CHANNELS = 1024
MAX_UNITS = 256
MAX_POOL = 64


@dataclasses.dataclass
class QuantizedCell:
    """One FastGRNN cell in integers. Scales are real numbers (float64)."""
    kernel: np.ndarray             # int8 [in, units], symmetric, scale kernel_scale
    kernel_scale: float
    recurrent_kernel: np.ndarray   # int8 [units, units], scale recurrent_scale
    recurrent_scale: float
    gate_bias: np.ndarray          # int32 [units], scale preactivation_scale
    update_bias: np.ndarray        # int32 [units], scale preactivation_scale
    preactivation_scale: float     # int16 pre-activations, zero point 0
    state_scale: float             # int16 hidden state, zero point 0
    zeta_q14: int                  # round(sigmoid(zeta) * 2^14)
    nu_q14: int                    # round(sigmoid(nu) * 2^14)
    gate_table: Optional[np.ndarray] = None    # int16 [513] for sigmoid / tanh
    update_table: Optional[np.ndarray] = None

    @property
    def units(self):
        return self.kernel.shape[1]


@dataclasses.dataclass
class QuantizedRNNPool:
    """Everything an int8 RNNPool kernel needs, besides the input tensor."""
    rnn1: QuantizedCell
    rnn2: QuantizedCell
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    pool_size: Tuple[int, int]
    strides: Tuple[int, int]
    padding: str
    gate_activation: str
    update_activation: str


@dataclasses.dataclass
class CellConstants:
    """Multipliers (q, shift) of one cell, derived from scales (spec 3.3)."""
    input_multiplier: tuple        # s_in * s_W / s_pre
    recurrent_multiplier: tuple    # s_h * s_U / s_pre
    update_multiplier: tuple       # 2^-14 * s_c / s_h
    gate_activation_multiplier: Optional[tuple]
    update_activation_multiplier: Optional[tuple]


def symmetric_scale(max_abs, levels):
    """Scale of a symmetric range [-max_abs, max_abs] over +-levels steps."""
    max_abs = float(max_abs)
    return (max_abs if max_abs > 0 else 1.0) / levels


def quantize_symmetric_int8(values):
    """(int8 values, scale), per tensor, narrow range [-127, 127]."""
    values = np.asarray(values, dtype=np.float64)
    scale = symmetric_scale(np.max(np.abs(values)), 127)
    return fp.saturate(fp.round_half_away(values / scale), -127, 127).astype(np.int8), scale


def _sigmoid_q14(raw):
    return int(fp.round_half_away(fp.ONE_Q14 / (1.0 + math.exp(-float(raw)))))


def quantize_cell(kernel, recurrent_kernel, gate_bias, update_bias, zeta, nu,
                  preactivation_max, state_max, gate_activation, update_activation):
    """A QuantizedCell from float weights (W [in, units] full rank) and ranges.

    preactivation_max: largest |gate or update pre-activation| to represent.
    state_max: largest |hidden state| to represent.
    """
    kernel_q, kernel_scale = quantize_symmetric_int8(kernel)
    recurrent_q, recurrent_scale = quantize_symmetric_int8(recurrent_kernel)
    pre_scale = symmetric_scale(preactivation_max, fp.INT16_MAX)

    def bias(values):
        scaled = fp.round_half_away(np.asarray(values, np.float64).reshape(-1) / pre_scale)
        return fp.saturate(scaled, fp.INT32_MIN, fp.INT32_MAX).astype(np.int32)

    return QuantizedCell(
        kernel=kernel_q, kernel_scale=kernel_scale,
        recurrent_kernel=recurrent_q, recurrent_scale=recurrent_scale,
        gate_bias=bias(gate_bias), update_bias=bias(update_bias),
        preactivation_scale=pre_scale,
        state_scale=symmetric_scale(state_max, fp.INT16_MAX),
        zeta_q14=_sigmoid_q14(zeta), nu_q14=_sigmoid_q14(nu),
        gate_table=integer_activations.table_for(gate_activation),
        update_table=integer_activations.table_for(update_activation))


def cell_constants(cell, input_scale, gate_activation, update_activation):
    """The multipliers of `cell` whose inputs have scale `input_scale`."""
    pre = cell.preactivation_scale
    c_scale = integer_activations.output_scale(update_activation, pre)
    return CellConstants(
        input_multiplier=fp.quantize_multiplier(input_scale * cell.kernel_scale / pre),
        recurrent_multiplier=fp.quantize_multiplier(
            cell.state_scale * cell.recurrent_scale / pre),
        update_multiplier=fp.quantize_multiplier(c_scale / fp.ONE_Q14 / cell.state_scale),
        gate_activation_multiplier=integer_activations.activation_multiplier(
            gate_activation, pre),
        update_activation_multiplier=integer_activations.activation_multiplier(
            update_activation, pre))


def validate(params):
    """Raises ValueError if `params` is outside what the spec supports."""
    problems = []
    k, h1 = params.rnn1.kernel.shape
    h1b, h2 = params.rnn2.kernel.shape
    if not 1 <= k <= MAX_INPUT_CHANNELS:
        problems.append(f"input channels {k} not in [1, {MAX_INPUT_CHANNELS}]")
    for name, units in (("rnn1_units", h1), ("rnn2_units", h2)):
        if not 1 <= units <= MAX_UNITS:
            problems.append(f"{name} {units} not in [1, {MAX_UNITS}]")
    if h1b != h1:
        problems.append(f"rnn2 kernel has {h1b} inputs, expected rnn1_units {h1}")
    for cell_name, cell in (("rnn1", params.rnn1), ("rnn2", params.rnn2)):
        units = cell.kernel.shape[1]
        if cell.recurrent_kernel.shape != (units, units):
            problems.append(f"{cell_name} recurrent kernel shape "
                            f"{cell.recurrent_kernel.shape}, expected {(units, units)}")
    if not all(1 <= p <= MAX_POOL for p in params.pool_size):
        problems.append(f"pool_size {params.pool_size} not in [1, {MAX_POOL}]")
    if params.gate_activation not in integer_activations.GATE_ACTIVATIONS:
        problems.append(f"gate_activation {params.gate_activation!r} has no int8 form; "
                        f"expected one of {list(integer_activations.GATE_ACTIVATIONS)}")
    if params.update_activation not in integer_activations.UPDATE_ACTIVATIONS:
        problems.append(f"update_activation {params.update_activation!r} has no int8 "
                        f"form; expected one of {list(integer_activations.UPDATE_ACTIVATIONS)}")
    if problems:
        raise ValueError("RNNPool int8 parameters out of spec:\n  " + "\n  ".join(problems))
