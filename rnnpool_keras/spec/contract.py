"""The RNNPool custom op contract (docs/rnnpool_custom_op.md), Python side.

The converter writes these options and tensors; the host runner and the TFLM
kernel read them. Keep this file and the document in step.
"""
from flatbuffers import flexbuffers

CUSTOM_CODE = "RNNPool"
VERSION = 1
# The fused form: the op also computes the convolution that feeds RNNPool
# (inputs 9, 10: its filter and bias; the stem_* keys of
# converters/conversion/stem_fusion.py, docs/rnnpool_custom_op.md).
FUSED_STEM_VERSION = 2
ACTIVATION_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "quantSigm": 3, "quantTanh": 4}
PADDING_CODES = {"valid": 0, "same": 1}
# Inputs 1..8 in contract order: (cell, weight name as in RNNPool2D).
WEIGHT_INPUTS = tuple((cell, f"{cell}_{name}") for cell in ("rnn1", "rnn2")
                      for name in ("kernel", "recurrent_kernel", "gate_bias",
                                   "update_bias"))
NUM_INPUTS = 1 + len(WEIGHT_INPUTS)
NUM_FUSED_STEM_INPUTS = NUM_INPUTS + 2
CELLS = ("rnn1", "rnn2")


def _name_of(codes, code, what):
    for name, value in codes.items():
        if value == code:
            return name
    raise ValueError(f"RNNPool op: unknown {what} code {code}; expected one of "
                     f"{sorted(codes.values())}")


def padding_name(code):
    """"valid" / "same" of a contract padding code."""
    return _name_of(PADDING_CODES, code, "padding")


def geometry_options(pool_size, strides, padding, gate_activation, update_activation):
    """The keys every RNNPool op carries, float or int8."""
    return {
        "version": VERSION,
        "pool_h": int(pool_size[0]), "pool_w": int(pool_size[1]),
        "stride_h": int(strides[0]), "stride_w": int(strides[1]),
        "padding": PADDING_CODES[padding],
        "gate_activation": ACTIVATION_CODES[gate_activation],
        "update_activation": ACTIVATION_CODES[update_activation],
    }


def float_options(layer):
    """Options of a float op for an RNNPool2D layer: geometry and raw zeta / nu."""
    options = geometry_options(layer.pool_size, layer.strides, layer.padding,
                               layer.gate_activation, layer.update_activation)
    for cell in CELLS:
        for scalar in ("zeta", "nu"):
            options[f"{cell}_{scalar}"] = float(getattr(layer, f"{cell}_{scalar}").numpy())
    return options


def int8_options(params):
    """Options of an int8 op from a quantization.int8_params.QuantizedRNNPool."""
    options = geometry_options(params.pool_size, params.strides, params.padding,
                               params.gate_activation, params.update_activation)
    for cell_name in CELLS:
        cell = getattr(params, cell_name)
        options[f"{cell_name}_zeta_q14"] = int(cell.zeta_q14)
        options[f"{cell_name}_nu_q14"] = int(cell.nu_q14)
        # float64: the kernel derives its multipliers from exactly these values.
        options[f"{cell_name}_preactivation_scale"] = float(cell.preactivation_scale)
        options[f"{cell_name}_state_scale"] = float(cell.state_scale)
    return options


def encode(options):
    """Flexbuffer map bytes for an operator's custom_options."""
    return bytes(flexbuffers.Dumps(options))


def decode(custom_options):
    """Options dict of an RNNPool op, with pool / strides / names decoded.

    Raises ValueError on a version this code does not know."""
    options = flexbuffers.Loads(bytes(custom_options))
    if options.get("version") not in (VERSION, FUSED_STEM_VERSION):
        raise ValueError(f"RNNPool op options version {options.get('version')!r}; "
                         f"this converter reads versions {VERSION} and {FUSED_STEM_VERSION}")
    options["pool_size"] = (options["pool_h"], options["pool_w"])
    options["strides"] = (options["stride_h"], options["stride_w"])
    options["padding_name"] = _name_of(PADDING_CODES, options["padding"], "padding")
    for key in ("gate_activation", "update_activation"):
        options[key + "_name"] = _name_of(ACTIVATION_CODES, options[key], key)
    return options


def decode_layer_index(custom_options):
    """The `layer_index` the composite passed through the converter."""
    return int(flexbuffers.Loads(bytes(custom_options))["layer_index"])
