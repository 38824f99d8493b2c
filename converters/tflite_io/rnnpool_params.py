"""The parameters of an RNNPool op, read back from a .tflite file alone.

What the host runner feeds the C++ kernel and the memory report sizes its
scratch from: the float weights, or the int8 `QuantizedRNNPool` of
docs/int8_rnnpool.md, from the op's tensors and contract options
(docs/rnnpool_custom_op.md).
"""

from converters.tflite_io import schema
from converters.tflite_io import tflite_model
from rnnpool_keras.spec import contract
from rnnpool_keras.spec import int8_params as quantized
from rnnpool_keras.spec import integer_activations


def float_params(model, subgraph, op, options):
    """The float weights of a float RNNPool op, keyed like the float reference's
    params (full matrices, zeta / nu raw), from its tensors and decoded options."""
    params = {}
    for position, (_, name) in enumerate(contract.WEIGHT_INPUTS, start=1):
        params[name] = tflite_model.constant_value(model, subgraph.tensors[op.inputs[position]])
    for cell in contract.CELLS:
        params[cell + "_zeta"] = options[cell + "_zeta"]
        params[cell + "_nu"] = options[cell + "_nu"]
    return params


def int8_params_of_op(model_bytes_or_model, op_index=None):
    """QuantizedRNNPool of an int8 RNNPool op, read from the flatbuffer only.

    `op_index` is the op's position in the main subgraph; None means the only
    (or first) RNNPool op. Tests compare this with what the converter meant.
    """
    model = model_bytes_or_model
    if isinstance(model, (bytes, bytearray)):
        model = tflite_model.load(model)
    subgraph = model.subgraphs[0]
    if op_index is None:
        op_index = next(i for i, op in enumerate(subgraph.operators)
                        if tflite_model.op_name(model, op) == contract.CUSTOM_CODE)
    return int8_params(model, subgraph, subgraph.operators[op_index],
                        contract.decode(subgraph.operators[op_index].customOptions))


def int8_params(model, subgraph, op, options):
    """QuantizedRNNPool of an int8 RNNPool op, from its tensors and decoded options."""
    tensors = [subgraph.tensors[t] for t in op.inputs]
    gate, update = options["gate_activation_name"], options["update_activation_name"]

    def cell(name, first):
        kernel, recurrent, gate_bias, update_bias = tensors[first:first + 4]
        return quantized.QuantizedCell(
            kernel=tflite_model.constant_value(model, kernel),
            kernel_scale=tflite_model.quantization_of(kernel)[0],
            recurrent_kernel=tflite_model.constant_value(model, recurrent),
            recurrent_scale=tflite_model.quantization_of(recurrent)[0],
            gate_bias=tflite_model.constant_value(model, gate_bias),
            update_bias=tflite_model.constant_value(model, update_bias),
            preactivation_scale=options[name + "_preactivation_scale"],
            state_scale=options[name + "_state_scale"],
            zeta_q14=options[name + "_zeta_q14"], nu_q14=options[name + "_nu_q14"],
            gate_table=integer_activations.table_for(gate),
            update_table=integer_activations.table_for(update))

    if options["version"] == contract.FUSED_STEM_VERSION:  # RNNPool reads the stem's map
        input_scale = options["stem_output_scale"]
        input_zero_point = options["stem_output_zero_point"]
    else:
        input_scale, input_zero_point = tflite_model.quantization_of(tensors[0])
    output_scale, output_zero_point = tflite_model.quantization_of(
        subgraph.tensors[op.outputs[0]])
    return quantized.QuantizedRNNPool(
        rnn1=cell("rnn1", 1), rnn2=cell("rnn2", 5),
        input_scale=input_scale, input_zero_point=input_zero_point,
        output_scale=output_scale, output_zero_point=output_zero_point,
        pool_size=options["pool_size"], strides=options["strides"],
        padding=options["padding_name"], gate_activation=gate, update_activation=update)


def stem_of_op(model, subgraph, op, options):
    """The fused convolution of a version-2 RNNPool op as the description dict
    rnnpool_keras.spec.stem_conv.conv_int8_of and tflm_kernels.core take
    (filter, bias, strides, padding, activation names; int8: the scales and
    zero points); None for a version-1 op."""
    if options["version"] != contract.FUSED_STEM_VERSION:
        return None
    from rnnpool_keras.spec import stem_conv

    image, filters, bias = (subgraph.tensors[op.inputs[i]] for i in (0, 9, 10))
    stem = {
        "filter": tflite_model.constant_value(model, filters),
        "bias": tflite_model.constant_value(model, bias),
        "strides": (options["stem_stride_h"], options["stem_stride_w"]),
        "padding": contract.padding_name(options["stem_padding"]),
        "activation": next(name for name, code in stem_conv.ACTIVATION_CODES.items()
                           if code == options["stem_activation"]),
    }
    if bias.type != schema.TensorType.INT32:  # float
        return stem
    stem["input_scale"], stem["input_zero_point"] = tflite_model.quantization_of(image)
    stem["filter_scales"] = [float(s) for s in filters.quantization.scale]
    stem["output_scale"] = options["stem_output_scale"]
    stem["output_zero_point"] = options["stem_output_zero_point"]
    return stem
