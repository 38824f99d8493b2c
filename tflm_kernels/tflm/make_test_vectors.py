"""Writes rnnpool_test_vectors.h, the golden data of rnnpool_test.cc.

    python tflm_kernels/tflm/make_test_vectors.py   # from the repository root

Three small cases (input 1x5x5x2, pool 3x3, stride 2, h1=3, h2=2):
- `float_case`: float32, padding valid, sigmoid / tanh. Expected output from
  rnnpool_keras/spec/float_reference.py (float64; the kernel is compared with a tolerance).
- `int8_case`: int8, padding same (exercises zp_x padding), sigmoid / tanh.
- `int8_relu_case`: int8, padding valid, quantSigm gate / relu update.
  int8 expected outputs from rnnpool_keras.spec.int8_reference
  (the kernel must match bit for bit).

Every scale is rounded to float32 before the oracle runs, because a .tflite
stores tensor scales (and the kernel reads its option scales) as float32; the
oracle then computes exactly the doubles the kernel's Prepare computes.
Activation codes are the custom-op contract's (docs/rnnpool_custom_op.md:
0 sigmoid, 1 tanh, 2 relu, 3 quantSigm, 4 quantTanh), not the core's enum.
Deterministic (fixed seed): rerunning rewrites the same file.
"""
import dataclasses
from pathlib import Path

import numpy as np

from rnnpool_keras.spec import contract
from rnnpool_keras.spec import float_reference
from rnnpool_keras.spec import int8_reference
from rnnpool_keras.spec.random_params import quantize, random_float_params

OUT = Path(__file__).resolve().parent / "rnnpool_test_vectors.h"
K, H1, H2 = 2, 3, 2
SHAPE = (1, 5, 5, K)
POOL, STRIDE = (3, 3), (2, 2)


def f32(x):
    return float(np.float32(x))


def c_array(ctype, name, values, fmt):
    values = np.asarray(values).reshape(-1)
    body = ", ".join(fmt(v) for v in values)
    return f"constexpr {ctype} {name}[{values.size}] = {{{body}}};\n"


def c_float(v):
    return f"{float(np.float32(v))!r}f".replace("inff", "INFINITY")


def c_int(v):
    return str(int(v))


def dims(name, shape):
    return c_array("int", name, [len(shape), *shape], c_int)


def float_case(rng):
    params = random_float_params(rng, K, H1, H2, scale=0.7, zeta_nu=2.0)
    params = {k: (np.float32(v).astype(np.float64) if np.ndim(v) else f32(v))
              for k, v in params.items()}
    x = rng.uniform(-1.0, 1.0, SHAPE).astype(np.float32)
    y = float_reference.rnnpool_reference(x, params, POOL, STRIDE, "valid",
                                          gate_activation="sigmoid", update_activation="tanh")
    out = ["namespace float_case {\n",
           f"constexpr int kPoolH = {POOL[0]}, kPoolW = {POOL[1]};\n",
           f"constexpr int kStrideH = {STRIDE[0]}, kStrideW = {STRIDE[1]};\n",
           "constexpr int kPadding = 0;  // valid\n",
           "constexpr int kGate = 0, kUpdate = 1;  // sigmoid, tanh (contract codes)\n",
           dims("kInputDims", x.shape), c_array("float", "kInput", x, c_float),
           dims("kOutputDims", y.shape), c_array("float", "kExpected", y, c_float)]
    for i in (1, 2):
        p = f"rnn{i}_"
        for key, cname in (("kernel", "Kernel"), ("recurrent_kernel", "Recurrent"),
                           ("gate_bias", "GateBias"), ("update_bias", "UpdateBias")):
            v = params[p + key]
            out.append(dims(f"kRnn{i}{cname}Dims", v.shape))
            out.append(c_array("float", f"kRnn{i}{cname}", v, c_float))
        out.append(f"constexpr float kRnn{i}Zeta = {c_float(params[p + 'zeta'])};\n")
        out.append(f"constexpr float kRnn{i}Nu = {c_float(params[p + 'nu'])};\n")
    out.append("}  // namespace float_case\n")
    return "".join(out)


def round_scales(q):
    def cell(c):
        return dataclasses.replace(
            c, kernel_scale=f32(c.kernel_scale), recurrent_scale=f32(c.recurrent_scale),
            preactivation_scale=f32(c.preactivation_scale), state_scale=f32(c.state_scale))
    return dataclasses.replace(q, rnn1=cell(q.rnn1), rnn2=cell(q.rnn2),
                               input_scale=f32(q.input_scale),
                               output_scale=f32(q.output_scale))


def int8_case(rng, name, padding, gate, update, state_max=1.5, output_scale=1.5 / 128):
    params = random_float_params(rng, K, H1, H2, scale=0.7, zeta_nu=2.0)
    q, _ = quantize(params, gate, update, pre_max=4.0, state_max=state_max, input_scale=1.0 / 128,
                    input_zero_point=-7, output_scale=output_scale, output_zero_point=3,
                    pool_size=POOL, strides=STRIDE, padding=padding)
    q = round_scales(q)
    x = rng.integers(-128, 128, size=SHAPE).astype(np.int8)
    y = int8_reference.rnnpool_int8(x, q)
    assert y.dtype == np.int8
    out = [f"namespace {name} {{\n",
           f"constexpr int kPoolH = {POOL[0]}, kPoolW = {POOL[1]};\n",
           f"constexpr int kStrideH = {STRIDE[0]}, kStrideW = {STRIDE[1]};\n",
           f"constexpr int kPadding = {0 if padding == 'valid' else 1};  // {padding}\n",
           f"constexpr int kGate = {contract.ACTIVATION_CODES[gate]};  // {gate}\n",
           f"constexpr int kUpdate = {contract.ACTIVATION_CODES[update]};  // {update}\n",
           f"constexpr float kInputScale = {c_float(q.input_scale)};\n",
           f"constexpr int kInputZeroPoint = {q.input_zero_point};\n",
           f"constexpr float kOutputScale = {c_float(q.output_scale)};\n",
           f"constexpr int kOutputZeroPoint = {q.output_zero_point};\n",
           dims("kInputDims", x.shape), c_array("int8_t", "kInput", x, c_int),
           dims("kOutputDims", y.shape), c_array("int8_t", "kExpected", y, c_int)]
    for i, c in ((1, q.rnn1), (2, q.rnn2)):
        for attr, cname, ctype in (("kernel", "Kernel", "int8_t"),
                                   ("recurrent_kernel", "Recurrent", "int8_t"),
                                   ("gate_bias", "GateBias", "int32_t"),
                                   ("update_bias", "UpdateBias", "int32_t")):
            v = np.asarray(getattr(c, attr))
            out.append(dims(f"kRnn{i}{cname}Dims", v.shape))
            out.append(c_array(ctype, f"kRnn{i}{cname}", v, c_int))
        out.append(f"constexpr float kRnn{i}KernelScale = {c_float(c.kernel_scale)};\n")
        out.append(f"constexpr float kRnn{i}RecurrentScale = {c_float(c.recurrent_scale)};\n")
        out.append(f"constexpr float kRnn{i}PreScale = {c_float(c.preactivation_scale)};\n")
        out.append(f"constexpr float kRnn{i}StateScale = {c_float(c.state_scale)};\n")
        out.append(f"constexpr int kRnn{i}ZetaQ14 = {int(c.zeta_q14)};\n")
        out.append(f"constexpr int kRnn{i}NuQ14 = {int(c.nu_q14)};\n")
    out.append(f"}}  // namespace {name}\n")
    return "".join(out)


def main():
    rng = np.random.default_rng(20261127)
    text = ["// Generated by tflm_kernels/tflm/make_test_vectors.py; do not edit.\n",
            "#ifndef TFLM_KERNELS_TFLM_RNNPOOL_TEST_VECTORS_H_\n",
            "#define TFLM_KERNELS_TFLM_RNNPOOL_TEST_VECTORS_H_\n\n",
            "#include <cstdint>\n\n",
            "namespace rnnpool_test_vectors {\n\n",
            float_case(rng), "\n",
            int8_case(rng, "int8_case", "same", "sigmoid", "tanh"), "\n",
            int8_case(rng, "int8_relu_case", "valid", "quantSigm", "relu",
                      state_max=8.0, output_scale=16.0 / 128), "\n",
            "}  // namespace rnnpool_test_vectors\n\n",
            "#endif  // TFLM_KERNELS_TFLM_RNNPOOL_TEST_VECTORS_H_\n"]
    OUT.write_text("".join(text))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
