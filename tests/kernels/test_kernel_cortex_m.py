"""The C++ kernel core cross-compiled for Cortex-M and run on QEMU's emulated
Cortex-M4F (mps2-an386), Cortex-M7 (mps2-an500) and Cortex-M55 (mps3-an547).

int8 outputs must equal the NumPy integer oracle (docs/int8_rnnpool.md) bit
for bit on every core, float outputs the float64 NumPy reference within 1e-5;
the VWW patch must stay within its instruction and stack budgets on the M4
(executed instructions counted by tflm_kernels/cortex_m/insn_count_plugin.c:
deterministic, but not cycles). The programs are built and run by
tflm_kernels/cortex_m/emulator.py; skipped only where the cross toolchain or
QEMU is absent.
"""
import numpy as np
import pytest

import rnnpool_keras.spec.float_reference as nr
from rnnpool_keras.spec import int8_reference, integer_activations, stem_conv
from rnnpool_keras.spec.random_params import random_float_params
from test_kernel_core_int8 import make_case, random_input
from test_stem_conv import random_stem
from tflm_kernels import core
from tflm_kernels.cortex_m import cases, emulator

MISSING = emulator.missing_tools()
# Slow: cross-compiles the core for three cores and runs it under QEMU.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not found (apt-get install gcc-arm-none-eabi "
           "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm)")]

TARGETS = tuple(emulator.TARGETS)
GATES = integer_activations.GATE_ACTIVATIONS
UPDATES = integer_activations.UPDATE_ACTIVATIONS
FLOAT_ACTIVATIONS = ("sigmoid", "tanh", "relu", "quantSigm", "quantTanh")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cortex_m")


@pytest.fixture(scope="module")
def runners(workdir):
    return {}


def runner(runners, workdir, target):
    if target not in runners:
        runners[target] = emulator.build_kernel_runner(target, workdir)
    return runners[target]


def run_cases(runners, workdir, target, case_bytes, layouts, plugin=None):
    """Runs the cases on `target`; returns (outputs, runner text, instructions)."""
    elf = runner(runners, workdir, target)
    case_file, out_file = f"{target}.cases", f"{target}.out"
    cases.write_cases(workdir / case_file, case_bytes)
    status, text, instructions = emulator.run(target, elf, [case_file, out_file],
                                              cwd=workdir, plugin=plugin)
    assert status == 0, text
    assert f"cases {len(case_bytes)}" in text
    return cases.split_output(workdir / out_file, layouts), text, instructions


def int8_cases(rng):
    """(kernel params dict, input, patch corner or None, expected output)."""
    items = []
    for gate in GATES:  # every pair, valid and same padding
        for update in UPDATES:
            padding = str(rng.choice(["valid", "same"]))
            params = make_case(rng, 3, 5, 4, (3, 4), (2, 3), padding, gate, update)
            x = random_input(rng, (1, 7, 9, 3))
            items.append((params, x, None))
    for _ in range(8):  # random shapes, strides, scales
        r, c = (int(v) for v in rng.integers(1, 7, size=2))
        k, h1, h2 = (int(v) for v in rng.integers(1, 17, size=3))
        padding = str(rng.choice(["valid", "same"]))
        params = make_case(rng, k, h1, h2, (r, c), (int(rng.integers(1, 4)),) * 2, padding,
                           str(rng.choice(GATES)), str(rng.choice(UPDATES)),
                           extreme_weights=bool(rng.random() < 0.3))
        items.append((params, random_input(rng, (1, r + 3, c + 2, k)), None))
    # Saturating and vanishing scales (some take the spec's generic arithmetic
    # rather than the fast path).
    for pre_max, state_max, out_scale in ((1e-3, 1e-3, 1e-5), (1e3, 1e3, 50.0),
                                          (0.01, 100.0, 1e-4), (500.0, 0.01, 1.0)):
        params = make_case(rng, 4, 6, 5, (3, 3), (2, 2), "same", "sigmoid", "tanh",
                           weight_scale=3.0, pre_max=pre_max, state_max=state_max,
                           input_scale=0.5, output_scale=out_scale, extreme_weights=True)
        items.append((params, random_input(rng, (1, 7, 7, 4)), None))
    # The per-patch entry point, a patch running over the image's corner.
    vww = make_case(rng, 8, 8, 8, (6, 6), (6, 6), "valid", "sigmoid", "tanh")
    items.append((vww, random_input(rng, (10, 10, 8)), (-2, 7)))
    out = []
    for params, x, patch in items:
        if patch is None:
            expected = int8_reference.rnnpool_int8(x, params)
        else:  # the oracle on the zero-point-padded map holding the patch alone
            top, left = patch
            pool = params.pool_size
            padded = np.full((1, pool[0], pool[1], x.shape[2]), params.input_zero_point,
                             np.int8)
            for i in range(pool[0]):
                for j in range(pool[1]):
                    y, xx = top + i, left + j
                    if 0 <= y < x.shape[0] and 0 <= xx < x.shape[1]:
                        padded[0, i, j] = x[y, xx]
            expected = int8_reference.rnnpool_int8(padded, params).reshape(-1)
        out.append((core.int8_kernel_params(params), x, patch, expected))
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_int8_is_bit_exact_with_the_oracle_on_the_emulated_core(target, runners, workdir):
    items = int8_cases(np.random.default_rng(20))
    paths = {bool(core.int8_fast_path(params)) for params, _, _, _ in items}
    assert paths == {True, False}  # both kernel paths are exercised
    outputs, _, _ = run_cases(runners, workdir, target,
                              [cases.int8_case(p, x, patch) for p, x, patch, _ in items],
                              [(np.int8, e.shape) for _, _, _, e in items])
    for (_, _, _, expected), got in zip(items, outputs):
        np.testing.assert_array_equal(got, expected)


def stem_cases(rng):
    """(kernel params, stem dict, image batch, expected) of the fused stem
    convolution + RNNPool: the VWW shape (3x3 stride 2 to 8 channels, 6x6
    patches, stride 4) on a small image, and odd shapes (tap counts 2 and 1
    past a multiple of 4, same padding, gaps between patch rows)."""
    items = []
    for kernel, strides, padding, channels, pool, pool_strides, pool_padding, activation in (
            ((3, 3), (2, 2), "same", 3, (6, 6), (4, 4), "valid", "relu6"),
            ((2, 3), (1, 2), "valid", 2, (3, 2), (4, 1), "same", "relu6"),
            ((1, 1), (1, 1), "same", 5, (2, 2), (2, 2), "valid", "relu6"),
            # 18 taps (2 past a multiple of 4), padded at every border: the DSP
            # layout's last group lies partly past the window's taps. No
            # activation and an output scale of about 1/30 of the
            # accumulator's spread, so one wrong tap shows in the output.
            ((3, 3), (1, 1), "same", 2, (4, 4), (3, 3), "same", "none")):
        stem = random_stem(rng, 8, channels, kernel, strides, padding, activation,
                           per_channel=activation != "none")
        if activation == "none":  # std of sum((x - zp) w) over 18 taps: ~sqrt(18) * 74 * 73
            stem["output_scale"] = 23000 / 30 * stem["input_scale"] * stem["filter_scales"]
        params = make_case(rng, 8, 8, 8, pool, pool_strides, pool_padding, "sigmoid", "tanh",
                           input_scale=stem["output_scale"],
                           input_zero_point=stem["output_zero_point"])
        x = random_input(rng, (2, 21, 19, channels))
        expected = int8_reference.rnnpool_int8(stem_conv.conv_int8_of(x, stem), params)
        items.append((core.int8_kernel_params(params), core.stem_kernel_params_int8(stem), x,
                      expected))
    return items


@pytest.mark.parametrize("target", TARGETS)
def test_fused_stem_is_bit_exact_with_the_oracle_on_the_emulated_core(target, runners,
                                                                      workdir):
    """The fused op's convolution (SMLAD window products on these cores) and
    RNNPool, against NumPy's convolution then the integer reference."""
    items = stem_cases(np.random.default_rng(23))
    outputs, _, _ = run_cases(runners, workdir, target,
                              [cases.int8_case(p, x, stem=stem) for p, stem, x, _ in items],
                              [(np.int8, e.shape) for _, _, _, e in items])
    for (_, _, _, expected), got in zip(items, outputs):
        np.testing.assert_array_equal(got, expected)


def dsp_step_cases(rng):
    """Cases for each step form of the DSP fast path (rnnpool_int8.cc), which
    the cores above run: every gate / update pair at h = 8 (one chunk, fused
    pre-activations) with the activations' M_a needing their rounding
    corrections (small pre-activation range) and not (large), M_h >= 1/2
    (large state range: no correction in M_h), and cells of 12 and 16 units
    (several chunks) with 12 and 4 channels (the pixel projection's chunked
    and half-chunk forms); then the shapes where RNN1's rows and columns do
    not fit the spare buffer together (h1 > max(r, c) h2) and where RNN2's
    two directions do not (2 h2 > r h1)."""
    items = []
    for gate in GATES:
        for update in UPDATES:
            for pre_max in (0.3, 60.0):
                items.append((make_case(rng, 8, 8, 8, (4, 5), (2, 3), "valid", gate, update,
                                        weight_scale=0.3, pre_max=pre_max, state_max=2.0),
                              random_input(rng, (1, 6, 8, 8))))
    for gate, update in (("sigmoid", "tanh"), ("quantSigm", "quantTanh")):
        items.append((make_case(rng, 8, 8, 8, (5, 4), (2, 2), "same", gate, update,
                                weight_scale=1.0, pre_max=0.5, state_max=50.0),
                      random_input(rng, (1, 7, 6, 8))))
        items.append((make_case(rng, 12, 12, 16, (3, 4), (2, 2), "valid", gate, update),
                      random_input(rng, (1, 5, 6, 12))))
        items.append((make_case(rng, 4, 16, 12, (4, 3), (3, 2), "same", gate, update),
                      random_input(rng, (1, 6, 5, 4))))
        items.append((make_case(rng, 4, 16, 2, (1, 3), (1, 1), "valid", gate, update),
                      random_input(rng, (1, 2, 5, 4))))
        items.append((make_case(rng, 8, 2, 8, (1, 4), (1, 2), "valid", gate, update),
                      random_input(rng, (1, 2, 7, 8))))
    return [(core.int8_kernel_params(p), x, int8_reference.rnnpool_int8(x, p)) for p, x in items]


@pytest.mark.parametrize("target", TARGETS)
def test_int8_dsp_step_forms_are_bit_exact_with_the_oracle_on_the_emulated_core(target,
                                                                                 runners,
                                                                                 workdir):
    items = dsp_step_cases(np.random.default_rng(23))
    outputs, _, _ = run_cases(runners, workdir, target,
                              [cases.int8_case(p, x, None) for p, x, _ in items],
                              [(np.int8, e.shape) for _, _, e in items])
    for (_, _, expected), got in zip(items, outputs):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("target", TARGETS)
def test_float_matches_the_reference_within_1e_5_on_the_emulated_core(target, runners,
                                                                        workdir):
    rng = np.random.default_rng(21)
    items = []
    for gate in ("sigmoid", "tanh", "quantSigm", "quantTanh"):
        for update in FLOAT_ACTIVATIONS:
            params = random_float_params(rng, 3, 5, 4, scale=0.3, zeta_nu=3.0)
            padding = str(rng.choice(["valid", "same"]))
            x = rng.normal(size=(1, 7, 9, 3))
            expected = nr.rnnpool_reference(x, params, (3, 4), (2, 3), padding,
                                            gate_activation=gate, update_activation=update)
            kernel = core.float_kernel_params(params, (3, 4), (2, 3), padding, gate, update)
            items.append((kernel, x.astype(np.float32), expected))
    outputs, _, _ = run_cases(runners, workdir, target,
                              [cases.float_case(k, x) for k, x, _ in items],
                              [(np.float32, e.shape) for _, _, e in items])
    for (_, _, expected), got in zip(items, outputs):
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


# Ceilings for one VWW patch (6x6x8, h1 = h2 = 8) on the emulated Cortex-M4,
# arm-none-eabi-g++ -O2; measured here 57,967 / 51,079 int8 (bench/RESULTS.md:
# 57,987 / 51,099 int8, 183,655 / 72,672 float). Emulated instruction counts
# are deterministic; the ceilings leave 5% for compiler and data differences.
VWW_CEILINGS = {("sigmoid", "tanh"): 61_000, ("quantSigm", "quantTanh"): 54_000}
STACK_BUDGET = 2048  # bytes, rnnpool_core.h


@pytest.mark.parametrize("gate, update", list(VWW_CEILINGS))
def test_vww_patch_stays_within_its_m4_instruction_and_stack_budget(gate, update, runners,
                                                                     workdir):
    rng = np.random.default_rng(22)
    params = make_case(rng, 8, 8, 8, (6, 6), (6, 6), "valid", gate, update)
    image = random_input(rng, (6, 6, 8))
    kernel = core.int8_kernel_params(params)
    assert core.int8_fast_path(kernel)
    expected = int8_reference.rnnpool_int8(image[None], params).reshape(-1)
    plugin = emulator.build_plugin(workdir)
    (got,), text, instructions = run_cases(runners, workdir, "cortex-m4",
                                           [cases.int8_case(kernel, image, (0, 0))],
                                           [(np.int8, expected.shape)], plugin=plugin)
    np.testing.assert_array_equal(got, expected)
    # The patch loop is never a handful of instructions: the markers worked.
    assert 20_000 < instructions <= VWW_CEILINGS[(gate, update)]
    stack = int(text.split("stack_bytes ")[1].split()[0])
    assert 0 < stack <= STACK_BUDGET
