"""Random RNNPool parameters (float, and quantised to int8) for tests and the
TFLM test-vector generator."""
from rnnpool_keras.spec import int8_params


def random_float_params(rng, k, h1, h2, scale=0.5, zeta_nu=2.0):
    """Float weights keyed like float_reference's params (full rank)."""
    params = {}
    for prefix, inputs, units in (("rnn1_", k, h1), ("rnn2_", h1, h2)):
        params[prefix + "kernel"] = rng.normal(0, scale, (inputs, units))
        params[prefix + "recurrent_kernel"] = rng.normal(0, scale, (units, units))
        params[prefix + "gate_bias"] = rng.normal(0, scale, units)
        params[prefix + "update_bias"] = rng.normal(0, scale, units)
        params[prefix + "zeta"] = float(rng.uniform(-zeta_nu, zeta_nu))
        params[prefix + "nu"] = float(rng.uniform(-zeta_nu, zeta_nu))
    return params


def quantize(params, gate, update, pre_max, state_max, input_scale, input_zero_point,
             output_scale, output_zero_point, pool_size, strides, padding):
    """(QuantizedRNNPool, float params with W/U replaced by their int8 grid values)."""
    cells, on_grid = {}, dict(params)
    for prefix in ("rnn1_", "rnn2_"):
        cell = int8_params.quantize_cell(
            params[prefix + "kernel"], params[prefix + "recurrent_kernel"],
            params[prefix + "gate_bias"], params[prefix + "update_bias"],
            params[prefix + "zeta"], params[prefix + "nu"], pre_max, state_max, gate, update)
        cells[prefix] = cell
        on_grid[prefix + "kernel"] = cell.kernel * cell.kernel_scale
        on_grid[prefix + "recurrent_kernel"] = cell.recurrent_kernel * cell.recurrent_scale
    quantized = int8_params.QuantizedRNNPool(
        rnn1=cells["rnn1_"], rnn2=cells["rnn2_"], input_scale=input_scale,
        input_zero_point=input_zero_point, output_scale=output_scale,
        output_zero_point=output_zero_point, pool_size=pool_size, strides=strides,
        padding=padding, gate_activation=gate, update_activation=update)
    return quantized, on_grid
