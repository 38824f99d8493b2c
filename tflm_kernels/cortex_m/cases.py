"""Kernel cases as files for kernel_runner.cc (read on the board via semihosting).

A case is the dict the Python extension takes (`tflm_kernels.core.
int8_kernel_params` / `float_kernel_params`) plus the input map, serialised
little-endian in the order kernel_runner.cc reads it: int32 header fields,
then each array padded to 4 bytes.
"""
import struct

import numpy as np

MAGIC = 0x43504E52  # "RNPC"
# The header's mode field: the whole map, one patch, or the fused stem
# convolution + RNNPool (rnnpool_stem.h) over an image batch.
MODE_MAP, MODE_PATCH, MODE_STEM = 0, 1, 2
MULTIPLIERS = ("input_multiplier", "recurrent_multiplier", "update_multiplier",
               "gate_activation_multiplier", "update_activation_multiplier")


def _ints(*values):
    return struct.pack(f"<{len(values)}i", *(int(v) for v in values))


def _array(values, dtype):
    data = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return data + b"\0" * (-len(data) % 4)


def _header(params, x, int8, patch, mode=None):
    rnn1, rnn2 = params["rnn1"]["kernel"], params["rnn2"]["kernel"]
    k, h1 = rnn1.shape
    h2 = rnn2.shape[1]
    if mode is None:
        mode = MODE_MAP if patch is None else MODE_PATCH
    if patch is None:
        batch, height, width, channels = x.shape
        top = left = 0
    else:
        (height, width, channels), batch = x.shape, 1
        top, left = patch
    if channels != k and mode != MODE_STEM:
        raise ValueError(f"x has {channels} channels, the kernel takes {k}")
    return _ints(MAGIC, int(int8), mode, k, h1, h2, *params["pool_size"],
                 *params["strides"], params["padding"], params["gate_activation"],
                 params["update_activation"], batch, height, width, top, left)


def _cell_arrays(cell, weight_dtype, bias_dtype):
    return b"".join([_array(cell["kernel"], weight_dtype),
                     _array(cell["recurrent_kernel"], weight_dtype),
                     _array(cell["gate_bias"], bias_dtype),
                     _array(cell["update_bias"], bias_dtype)])


def int8_case(params, x, patch=None, stem=None):
    """The bytes of an int8 case: `params` from core.int8_kernel_params, `x` an
    int8 NHWC map (whole-map run) or, with `patch` = (top, left), one HWC image;
    with `stem` (core.stem_kernel_params_int8's dict) x is the image batch of
    the fused stem convolution + RNNPool."""
    parts = [_header(params, x, True, patch, MODE_STEM if stem is not None else None),
             _ints(params["input_zero_point"], params["output_zero_point"],
                   *params["output_multiplier"])]
    cells = (params["rnn1"], params["rnn2"])
    for cell in cells:
        multipliers = [v for name in MULTIPLIERS for v in (cell[name] or (0, 0))]
        parts.append(_ints(cell["zeta_q14"], cell["nu_q14"], *multipliers,
                           cell["gate_table"] is not None, cell["update_table"] is not None))
    parts += [_cell_arrays(cell, np.int8, np.int32) for cell in cells]
    for cell in cells:
        for name in ("gate_table", "update_table"):
            if cell[name] is not None:
                parts.append(_array(cell[name], np.int16))
    if stem is not None:
        filters = np.asarray(stem["filter"])
        parts += [_ints(*filters.shape[1:], *stem["strides"], stem["padding"],
                        stem["input_offset"], stem["output_offset"], stem["activation_min"],
                        stem["activation_max"]),
                  _array(filters, np.int8), _array(stem["bias"], np.int32),
                  _array(stem["multiplier"], np.int32), _array(stem["shift"], np.int32)]
    parts.append(_array(x, np.int8))
    return b"".join(parts)


def float_case(params, x, patch=None):
    """The bytes of a float case: `params` from core.float_kernel_params, `x` as
    for int8_case but float32."""
    parts = [_header(params, x, False, patch)]
    cells = (params["rnn1"], params["rnn2"])
    for cell in cells:
        parts.append(struct.pack("<2f", cell["zeta_sigmoid"], cell["nu_sigmoid"]))
    parts += [_cell_arrays(cell, np.float32, np.float32) for cell in cells]
    parts.append(_array(x, np.float32))
    return b"".join(parts)


def write_cases(path, cases):
    """Writes case bytes (int8_case / float_case), run in order by kernel_runner."""
    with open(path, "wb") as f:
        f.write(b"".join(cases))


def split_output(path, layouts):
    """The runner's output file as one array per case; `layouts` lists each
    case's (dtype, shape) in order."""
    data = open(path, "rb").read()
    arrays, offset = [], 0
    for dtype, shape in layouts:
        dtype = np.dtype(dtype).newbyteorder("<")
        count = int(np.prod(shape))
        arrays.append(np.frombuffer(data, dtype, count, offset).reshape(shape))
        offset += count * dtype.itemsize
    if offset != len(data):
        raise ValueError(f"{path}: {len(data)} bytes, the cases account for {offset}")
    return arrays
