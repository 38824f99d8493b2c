"""Fused stem convolution + RNNPool (contract version 2) against the unfused pair.

The paper's VWW stem: a 224x224x3 int8 image, Conv2D 3x3 stride 2 "same", 8
channels, ReLU6 (int8 per channel), then RNNPool 6x6 stride 4 "valid", h1 = h2
= 8, sigmoid / tanh; random weights, the RNNPool input quantisation being the
convolution's output one. The fused op computes the convolution a band of
pool_h rows at a time, keeping the rows consecutive patch rows share; the
unfused pair computes the whole 112x112x8 map, then RNNPool on it. Prints:

1. MAdds counted from the shapes (the convolution's rows each form computes,
   rnnpool_keras.spec.cost.madds_per_patch for RNNPool) and the recompute
   factor: stem pixels computed over the distinct ones among them.
2. x86-64 time of the kernel core through tflm_kernels.core (rounds
   interleaved, median process CPU and wall time per call): fused; unfused (conv_only, then
   rnnpool_int8); and the unfused pair with TFLM's own int8 CONV_2D (the
   tflite-micro Python interpreter, a one-op model written here), each output
   checked bit for bit against the fused op.
3. Emulated Cortex-M4 (QEMU mps2-an386, arm-none-eabi-g++ -O2): executed
   instructions between markers (instructions, not cycles) of
   bench/stem_bench_m4.cc in each mode, the buffers each needs (image, map,
   output, the core's *ScratchBytes scratch) and the measured stack; beside
   them the same program's x86-64 instructions (g++ -O2, callgrind, where
   valgrind exists). Every output's checksum must be the x86 core's.

    python bench/bench_stem.py [--rounds 21] [--calls 3] [--no-tflm] [--no-m4]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import machine  # noqa: E402  (bench/machine.py)
from rnnpool_keras.spec import geometry, stem_conv  # noqa: E402
from rnnpool_keras.spec.cost import madds_per_patch  # noqa: E402
from rnnpool_keras.spec.random_params import quantize, random_float_params  # noqa: E402
from tflm_kernels import core  # noqa: E402
from tflm_kernels.core_sources import CORE_SOURCES  # noqa: E402

IMAGE = (224, 224, 3)
STEM = dict(k=8, kernel=(3, 3), strides=(2, 2), padding="same", activation="relu6")
POOL = dict(pool=(6, 6), strides=(4, 4), padding="valid", h1=8, h2=8,
            gate="sigmoid", update="tanh")
IMAGE_SEED = 20201206  # the program's LCG seed (stem_bench_m4.cc FillImage)
TARGET = "cortex-m4"


# ---------------------------------------------------------------------------
# The case: parameters and image
# ---------------------------------------------------------------------------
def vww_case(seed=15):
    """(stem dict for core.stem_rnnpool_int8, QuantizedRNNPool): random weights,
    biases and input / filter scales drawn as tests/kernels/test_stem_conv.py
    draws them (random_stem, make_case); RNNPool's input quantisation is the
    convolution's output one."""
    rng = np.random.default_rng(seed)
    log_uniform = lambda lo, hi: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    k, channels = STEM["k"], IMAGE[2]
    stem = {
        "filter": rng.integers(-127, 128, size=(k, *STEM["kernel"], channels)).astype(np.int8),
        "bias": rng.integers(-3000, 3000, size=k).astype(np.int32),
        "strides": STEM["strides"], "padding": STEM["padding"],
        "activation": STEM["activation"],
        "input_scale": log_uniform(1e-3, 0.1),
        "input_zero_point": int(rng.integers(-128, 128)),
        "filter_scales": [log_uniform(1e-3, 0.05) for _ in range(k)],
        # A calibrated ReLU6's range [0, 6]: the whole int8 range (a random one
        # leaves RNNPool a few dozen levels).
        "output_scale": 6.0 / 255, "output_zero_point": -128,
    }
    weights = random_float_params(rng, k, POOL["h1"], POOL["h2"], scale=0.3, zeta_nu=4.0)
    params, _ = quantize(weights, POOL["gate"], POOL["update"], pre_max=8.0, state_max=2.0,
                         input_scale=stem["output_scale"],
                         input_zero_point=stem["output_zero_point"],
                         output_scale=0.02, output_zero_point=0, pool_size=POOL["pool"],
                         strides=POOL["strides"], padding=POOL["padding"])
    return stem, params


def lcg_image(shape=IMAGE, seed=IMAGE_SEED):
    """The image stem_bench_m4.cc generates: the top byte of a 32-bit LCG."""
    values = np.empty(int(np.prod(shape)), np.uint8)
    state = seed
    for i in range(values.size):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        values[i] = state >> 24
    return values.view(np.int8).reshape(1, *shape)


def fnv1a(data):
    """32-bit FNV-1a of an array's bytes (stem_bench_m4.cc Checksum)."""
    value = 2166136261
    for byte in np.ascontiguousarray(data).view(np.uint8).reshape(-1).tolist():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


# ---------------------------------------------------------------------------
# 1. MAdds from the shapes
# ---------------------------------------------------------------------------
def stem_rows_computed(height, pool, stride, padding, keep_rows=True):
    """Stem rows a banded op computes (rnnpool_stem.cc BandedWholeMap): each
    row of patches needs rows [top, top + pool) clipped to the map; with
    keep_rows the rows shared with the previous patch row are kept."""
    out = geometry.output_length(height, pool, stride, padding)
    pad = stem_conv.padding_before(height, pool, stride, padding)
    computed, first, count = 0, 0, 0
    for oy in range(out):
        top = oy * stride - pad
        lo, hi = max(top, 0), min(top + pool, height)
        hi = max(hi, lo)
        kept = 0
        if keep_rows and first <= lo < first + count:
            kept = min(first + count - lo, hi - lo)
        computed += hi - lo - kept
        first, count = lo, hi - lo
    return computed


def madds_table():
    kh, kw = STEM["kernel"]
    k = STEM["k"]
    map_h = stem_conv.output_size(IMAGE[0], kh, STEM["strides"][0], STEM["padding"])
    map_w = stem_conv.output_size(IMAGE[1], kw, STEM["strides"][1], STEM["padding"])
    (r, c), (sr, sc), padding = POOL["pool"], POOL["strides"], POOL["padding"]
    out_h = geometry.output_length(map_h, r, sr, padding)
    out_w = geometry.output_length(map_w, c, sc, padding)
    per_pixel = kh * kw * IMAGE[2] * k  # MAdds of one stem pixel (all k channels)
    rnnpool = out_h * out_w * madds_per_patch((r, c), k, POOL["h1"], POOL["h2"])
    rows_fused = stem_rows_computed(map_h, r, sr, padding)
    rows_band = stem_rows_computed(map_h, r, sr, padding, keep_rows=False)
    pad = stem_conv.padding_before(map_h, r, sr, padding)
    rows_read = len({y for oy in range(out_h) for y in range(oy * sr - pad, oy * sr - pad + r)
                     if 0 <= y < map_h})  # distinct stem rows the patches read
    pad_w = stem_conv.padding_before(map_w, c, sc, padding)
    conv_unfused = map_h * map_w * per_pixel
    print(f"### 1. MAdds (from the shapes; image {IMAGE[0]}x{IMAGE[1]}x{IMAGE[2]}, stem map "
          f"{map_h}x{map_w}x{k}, RNNPool output {out_h}x{out_w}x{4 * POOL['h2']})")
    print()
    print("| form | stem convolution | RNNPool | total | stem pixels computed | "
          "recompute factor | convolution x unfused |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    read_cols = len({x for ox in range(out_w) for x in range(ox * sc - pad_w, ox * sc - pad_w + c)
                     if 0 <= x < map_w})
    forms = [  # name, stem pixels computed, distinct ones among them
        ("unfused: CONV_2D map, then RNNPool", map_h * map_w, map_h * map_w),
        ("fused op (rows kept, as implemented)", rows_fused * map_w, rows_read * map_w),
        ("(fused, rows not kept: pool_h rows per patch row)", rows_band * map_w,
         rows_read * map_w),
        ("(fused per patch: each patch its own r x c window)", out_h * out_w * r * c,
         rows_read * read_cols),
    ]
    for name, pixels, distinct in forms:
        conv = pixels * per_pixel
        print(f"| {name} | {conv:,} | {rnnpool:,} | {conv + rnnpool:,} | {pixels:,} | "
              f"{pixels / distinct:.2f} | {conv / conv_unfused:.2f} |")
    print()
    print(f"Convolution: {per_pixel} MAdds per stem pixel ({kh}x{kw}x{IMAGE[2]} taps x {k} "
          f"channels); RNNPool: {out_h * out_w} patches x "
          f"{madds_per_patch((r, c), k, POOL['h1'], POOL['h2']):,} MAdds (madds_per_patch), "
          "the same in every form. Recompute factor: stem pixels computed over the distinct "
          "ones among them (1.00: none computed twice). The fused op keeps the "
          f"{r - sr} rows consecutive patch rows share (stride {sr} <= pool {r}), so it "
          f"computes each of the {rows_read} rows the patches read once; it never computes "
          f"the last {map_h - rows_read} rows of the {map_h}, which no patch reads and the "
          f"CONV_2D computes, hence {rows_fused / map_h:.2f} of the unfused convolution. The "
          "bracketed rows are "
          "what keeping the rows saves: without it every patch row computes its "
          f"{r} rows, and a per-patch fusion every patch's {r}x{c} window.")
    print()


# ---------------------------------------------------------------------------
# 2. x86 time
# ---------------------------------------------------------------------------
def conv2d_tflite(stem):
    """A .tflite holding the one int8 CONV_2D `stem` (TFLite's per-channel form),
    written with tflite-micro's copy of the schema."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    filters = np.asarray(stem["filter"], np.int8)
    k = filters.shape[0]
    scales = np.asarray(stem["filter_scales"], np.float32)
    map_shape = [1, stem_conv.output_size(IMAGE[0], filters.shape[1], stem["strides"][0],
                                          stem["padding"]),
                 stem_conv.output_size(IMAGE[1], filters.shape[2], stem["strides"][1],
                                       stem["padding"]), k]

    def buffer(data=None):
        b = schema.BufferT()
        b.data = None if data is None else np.frombuffer(data.tobytes(), np.uint8)
        return b

    def tensor(name, shape, kind, index, scale, zero_point, axis=0):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.array(shape, np.int32), kind, index
        q = schema.QuantizationParametersT()
        q.scale = np.asarray(scale, np.float32).reshape(-1)
        q.zeroPoint = np.asarray(zero_point, np.int64).reshape(-1)
        q.quantizedDimension = axis
        t.quantization = q
        return t

    input_scale = np.float32(stem["input_scale"])
    tensors = [
        tensor("image", [1, *IMAGE], schema.TensorType.INT8, 0, input_scale,
               stem["input_zero_point"]),
        tensor("filter", filters.shape, schema.TensorType.INT8, 1, scales, np.zeros(k)),
        tensor("bias", [k], schema.TensorType.INT32, 2,
               input_scale.astype(np.float64) * scales, np.zeros(k)),
        tensor("map", map_shape, schema.TensorType.INT8, 0, stem["output_scale"],
               stem["output_zero_point"]),
    ]
    options = schema.Conv2DOptionsT()
    options.padding = (schema.Padding.SAME if stem["padding"] == "same"
                       else schema.Padding.VALID)
    options.strideH, options.strideW = stem["strides"]
    options.dilationHFactor = options.dilationWFactor = 1
    options.fusedActivationFunction = stem_conv.ACTIVATION_CODES[stem["activation"]]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1, 2], np.int32), np.array([3])
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.Conv2DOptions, options
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CONV_2D
    code.version = 3  # per-channel int8
    graph = schema.SubGraphT()
    graph.tensors, graph.operators = tensors, [op]
    graph.inputs, graph.outputs = np.array([0], np.int32), np.array([3], np.int32)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [buffer(), buffer(filters), buffer(np.asarray(stem["bias"], np.int32))]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), map_shape


def tflm_conv2d(stem):
    """A function image -> map running the stem on TFLM's reference CONV_2D."""
    from tflite_micro.python.tflite_micro import runtime

    model_bytes, map_shape = conv2d_tflite(stem)
    arena = int(np.prod(IMAGE)) + int(np.prod(map_shape)) + 64 * 1024
    interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=arena)

    def run(x):
        interpreter.set_input(x, 0)
        interpreter.invoke()
        return interpreter.get_output(0)
    return run


def time_table(x, stem, params, rounds, calls, use_tflm):
    kernel_params = core.int8_kernel_params(params)
    stem_params = core.stem_kernel_params_int8(stem)
    fused = core.stem_rnnpool_int8(x, kernel_params, stem_params)
    conv_map = core.stem_rnnpool_int8(x, kernel_params, stem_params, conv_only=True)
    # The fused op is RNNPool of the unfused map, bit for bit, on both paths.
    np.testing.assert_array_equal(core.rnnpool_int8(conv_map, kernel_params), fused)
    np.testing.assert_array_equal(
        core.stem_rnnpool_int8(x, kernel_params, stem_params, portable=True), fused)
    np.testing.assert_array_equal(conv_map, stem_conv.conv_int8_of(x, stem))  # the oracle
    # Both int8 paths where the CPU has AVX2 (the portable one is the Cortex-M code).
    simd = any(core.int8_simd_stages(kernel_params).values())
    paths = ((False, "AVX2"), (True, "portable")) if simd else ((True, "portable"),)
    variants = {}
    for portable, label in paths:
        variants[f"fused op ({label})"] = (
            lambda p=portable: core.stem_rnnpool_int8(x, kernel_params, stem_params, portable=p))
        variants[f"unfused: conv_only + rnnpool_int8 ({label})"] = (
            lambda p=portable: core.rnnpool_int8(
                core.stem_rnnpool_int8(x, kernel_params, stem_params, portable=p,
                                       conv_only=True),
                kernel_params, portable=p))
        variants[f"of which rnnpool_int8 alone ({label})"] = (
            lambda p=portable: core.rnnpool_int8(conv_map, kernel_params, portable=p))
        variants[f"of which conv_only alone, StemRowInt8 per row ({label})"] = (
            lambda p=portable: core.stem_rnnpool_int8(x, kernel_params, stem_params,
                                                      portable=p, conv_only=True))
    if use_tflm:
        conv = tflm_conv2d(stem)
        np.testing.assert_array_equal(conv(x), conv_map)  # TFLM's CONV_2D, bit for bit
        variants[f"unfused: TFLM CONV_2D + rnnpool_int8 ({paths[0][1]})"] = (
            lambda: core.rnnpool_int8(conv(x), kernel_params, portable=not simd))
        variants["of which TFLM CONV_2D alone (tflite-micro interpreter)"] = lambda: conv(x)
    # Wall and CPU time (the process's: on a shared machine the time it was
    # not scheduled counts in the first only).
    wall, cpu = ({name: [] for name in variants} for _ in range(2))
    for _ in range(rounds):
        for name, run in variants.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                run()
            cpu[name].append((time.process_time() - start_cpu) / calls)
            wall[name].append((time.perf_counter() - start) / calls)
    load = os.getloadavg()
    median = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"### 2. x86-64 time per image (tflm_kernels.core, extension built with g++ -O2; rounds "
          f"interleaved, median of {rounds} rounds x {calls} calls)")
    print()
    print(f"{machine.describe()}; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
          "(1 / 5 / 15 min; the machine is shared). int8 SIMD stages: "
          + (", ".join(name for name, on in core.int8_simd_stages(kernel_params).items() if on)
             or "none"))
    print()
    print("| computation | CPU ms per image (median) | CPU ms (min) | wall ms (median) | "
          "x fused (same path, CPU medians) |")
    print("|---|--:|--:|--:|--:|")
    for name, value in median.items():
        label = "AVX2" if "AVX2" in name else "portable" if "portable" in name else None
        base = median.get(f"fused op ({label})") if label else None
        ratio = f"{value / base:.2f}" if base and not name.startswith("of which") else ""
        print(f"| {name} | {value * 1e3:.2f} | {min(cpu[name]) * 1e3:.2f} | "
              f"{statistics.median(wall[name]) * 1e3:.2f} | {ratio} |")
    print()
    print("Outputs checked bit for bit: fused == rnnpool_int8(conv_only map) on every path; "
          "conv_only map == rnnpool_keras.spec.stem_conv"
          + (" == TFLM's CONV_2D (set_input, invoke, get_output timed)." if use_tflm else "."))
    print()
    return fused, conv_map


# ---------------------------------------------------------------------------
# 3. Emulated Cortex-M4
# ---------------------------------------------------------------------------
def _c_array(kind, name, values, static=False):
    values = np.asarray(values).reshape(-1)
    body = ", ".join(str(int(v)) for v in values)
    prefix = "static constexpr" if static else "constexpr"
    return f"{prefix} {kind} {name}[{values.size}] = {{{body}}};"


def case_header(stem, params):
    """stem_bench_case.h: the constants stem_bench_m4.cc reads (the int8
    parameters as TFLM's Prepare derives them, from tflm_kernels.core)."""
    s = core.stem_kernel_params_int8(stem)
    p = core.int8_kernel_params(params)
    codes = core.ACTIVATIONS
    lines = ["// Written by bench/bench_stem.py: the case of stem_bench_m4.cc.",
             "#include <cstdint>", "namespace stem_case {",
             f"constexpr uint32_t kImageSeed = {IMAGE_SEED}u;",
             "constexpr int32_t kImageHeight = {}, kImageWidth = {}, kImageChannels = {};"
             .format(*IMAGE),
             f"constexpr int32_t kStemChannels = {s['filter'].shape[0]};",
             "constexpr int32_t kStemKernelH = {}, kStemKernelW = {};".format(*s["kernel_size"]),
             "constexpr int32_t kStemStrideH = {}, kStemStrideW = {};".format(*s["strides"]),
             f"constexpr int32_t kStemPadding = {s['padding']};",
             f"constexpr int32_t kStemInputOffset = {s['input_offset']};",
             f"constexpr int32_t kStemOutputOffset = {s['output_offset']};",
             f"constexpr int32_t kStemActivationMin = {s['activation_min']};",
             f"constexpr int32_t kStemActivationMax = {s['activation_max']};",
             _c_array("int8_t", "kStemFilter", s["filter"]),
             _c_array("int32_t", "kStemBias", s["bias"]),
             _c_array("int32_t", "kStemMultiplier", s["multiplier"]),
             _c_array("int32_t", "kStemShift", s["shift"]),
             f"constexpr int32_t kRnn1Units = {params.rnn1.units}, "
             f"kRnn2Units = {params.rnn2.units};",
             "constexpr int32_t kPoolH = {}, kPoolW = {};".format(*p["pool_size"]),
             "constexpr int32_t kStrideH = {}, kStrideW = {};".format(*p["strides"]),
             f"constexpr int32_t kPadding = {p['padding']};",
             f"constexpr int32_t kGateActivation = {p['gate_activation']};  "
             f"// {codes[p['gate_activation']]}",
             f"constexpr int32_t kUpdateActivation = {p['update_activation']};  "
             f"// {codes[p['update_activation']]}",
             f"constexpr int32_t kInputZeroPoint = {p['input_zero_point']};",
             f"constexpr int32_t kOutputZeroPoint = {p['output_zero_point']};",
             _c_array("int32_t", "kOutputMultiplier", p["output_multiplier"])]
    for name in ("rnn1", "rnn2"):
        cell = p[name]
        lines.append(f"struct {name.capitalize()} {{")
        lines += ["  " + _c_array("int8_t", "kKernel", cell["kernel"], static=True),
                  "  " + _c_array("int8_t", "kRecurrentKernel", cell["recurrent_kernel"],
                                  static=True),
                  "  " + _c_array("int32_t", "kGateBias", cell["gate_bias"], static=True),
                  "  " + _c_array("int32_t", "kUpdateBias", cell["update_bias"], static=True),
                  f"  static constexpr int32_t kZetaQ14 = {cell['zeta_q14']};",
                  f"  static constexpr int32_t kNuQ14 = {cell['nu_q14']};"]
        for table in ("gate_table", "update_table"):
            member = "kGateTable" if table == "gate_table" else "kUpdateTable"
            if cell[table] is None:
                lines.append(f"  static constexpr const int16_t* {member} = nullptr;")
            else:
                lines.append("  " + _c_array("int16_t", member, cell[table], static=True))
        for key, member in (("input_multiplier", "kInputMultiplier"),
                            ("recurrent_multiplier", "kRecurrentMultiplier"),
                            ("update_multiplier", "kUpdateMultiplier"),
                            ("gate_activation_multiplier", "kGateActivationMultiplier"),
                            ("update_activation_multiplier", "kUpdateActivationMultiplier")):
            value = cell[key] if cell[key] is not None else (0, 0)
            lines.append("  " + _c_array("int32_t", member, value, static=True))
        lines.append("};")
    lines.append("}  // namespace stem_case")
    return "\n".join(lines) + "\n"


MODES = {  # mode: what runs between the markers
    "fused": "fused op: StemRnnPoolInt8 (pool_h stem rows held)",
    "unfused": "unfused: StemRowInt8 x all rows into the map, then RnnPoolInt8",
    "conv": "of which the convolution (StemRowInt8 x all rows)",
    "pool": "of which RnnPoolInt8 on the map",
}


HOST_FLAGS = ("-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti")  # as bench_kernel.py


def callgrind_counts(workdir, checksums):
    """{(mode, path): x86-64 instructions inside RunCounted} of the host build
    of stem_bench_m4.cc (callgrind), checking each output's checksum; empty
    without g++ or valgrind."""
    if shutil.which("g++") is None or shutil.which("valgrind") is None:
        return {}
    binary = workdir / "stem_bench_host"
    subprocess.run(["g++", *HOST_FLAGS, f"-I{ROOT / 'tflm_kernels'}", f"-I{workdir}",
                    str(ROOT / "bench" / "stem_bench_m4.cc"), *map(str, CORE_SOURCES),
                    "-o", str(binary)], check=True)
    counts = {}
    for mode in MODES:
        for path in ("AVX2", "portable"):
            result = subprocess.run(
                ["valgrind", "--tool=callgrind", "--collect-atstart=no",
                 "--toggle-collect=*RunCounted*",
                 f"--callgrind-out-file={workdir / 'callgrind.out'}", str(binary), mode,
                 *(["portable"] if path == "portable" else [])],
                capture_output=True, text=True, check=True)
            if int(re.search(r"checksum ([0-9a-f]+)", result.stdout).group(1), 16) \
                    != checksums[mode]:
                sys.exit(f"x86-64 host build, mode {mode} {path}: not the core's output")
            counts[mode, path] = int(re.search(r"Collected\s*:\s*(\d+)", result.stderr).group(1))
    return counts


def m4_table(stem, params, expected, expected_map):
    from tflm_kernels.cortex_m import emulator
    missing = emulator.missing_tools()
    if missing:
        print(f"### 3. Cortex-M4: skipped ({', '.join(missing)} not found)")
        return
    results = {}
    checksums = {"fused": fnv1a(expected), "unfused": fnv1a(expected),
                 "pool": fnv1a(expected), "conv": fnv1a(expected_map)}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "stem_bench_case.h").write_text(case_header(stem, params))
        x86 = callgrind_counts(workdir, checksums)
        elf = emulator.build(TARGET, [ROOT / "bench" / "stem_bench_m4.cc", *CORE_SOURCES],
                             workdir / "stem_bench_m4.elf", include_dirs=[workdir])
        plugin = emulator.build_plugin(workdir)
        for mode in MODES:
            start = time.perf_counter()
            status, text, count = emulator.run(TARGET, elf, [mode], cwd=workdir, plugin=plugin)
            if status != 0 or count is None:
                sys.exit(f"{TARGET} run of mode {mode} failed:\n{text}")
            sizes = dict(re.findall(r"(\w+_bytes) (\d+)", text))
            checksum = int(re.search(r"checksum ([0-9a-f]+)", text).group(1), 16)
            results[mode] = (count, {key: int(v) for key, v in sizes.items()}, checksum,
                             time.perf_counter() - start)
    for mode, checksum in checksums.items():
        if results[mode][2] != checksum:
            sys.exit(f"{TARGET}, mode {mode}: the output is not the x86 core's")
    machine_name = emulator.TARGETS[TARGET][0]
    print(f"### 3. Executed instructions and RAM: emulated {TARGET} ({machine_name}, "
          f"arm-none-eabi-g++ -O2) and x86-64 (callgrind), bench/stem_bench_m4.cc, whole "
          f"{IMAGE[0]}x{IMAGE[1]} image")
    print()
    print("Executed instructions between the markers (QEMU TCG plugin): instructions, not "
          "cycles. x86-64: the same program built for the host (g++ -O2), instructions "
          "callgrind collects in the measured function, AVX2 / portable int8 core. Buffers in "
          "bytes; scratch from StemRnnPoolInt8ScratchBytes (fused) or RnnPoolInt8ScratchBytes; "
          "stack measured (painted) on the board.")
    print()
    print(f"| mode | {TARGET} instructions | x fused | x86-64 AVX2 | x86-64 portable | image | "
          "map | output | scratch | stack | all buffers + stack |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    base = results["fused"][0]
    for mode, label in MODES.items():
        count, b, _, _ = results[mode]
        ratio = f"{count / base:.3f}" if mode in ("fused", "unfused") else ""
        host = [f"{x86[mode, path]:,}" if x86 else "n/a" for path in ("AVX2", "portable")]
        total = sum(b.values())
        print(f"| {label} | {count:,} | {ratio} | {host[0]} | {host[1]} | "
              f"{b['image_bytes']:,} | {b['map_bytes']:,} | {b['output_bytes']:,} | "
              f"{b['scratch_bytes']:,} | {b['stack_bytes']:,} | {total:,} |")
    fused_b, unfused_b, pool_b = (results[m][1] for m in ("fused", "unfused", "pool"))
    fused_peak = (fused_b["image_bytes"] + fused_b["output_bytes"]
                  + fused_b["scratch_bytes"])
    # Unfused as TFLM plans it: the image is dead once the map exists.
    unfused_peak = max(unfused_b["image_bytes"] + unfused_b["map_bytes"],
                       unfused_b["map_bytes"] + unfused_b["output_bytes"]
                       + pool_b["scratch_bytes"])
    print()
    print(f"Peak of the tensors live at once (no stack): fused {fused_peak:,} B (image + "
          f"output + scratch); unfused {unfused_peak:,} B (max of image + map during CONV_2D, "
          f"map + output + scratch during RNNPool), {unfused_peak / fused_peak:.2f}x. "
          f"Checksums (FNV-1a of the output): fused = unfused = pool = x86 core "
          f"{checksums['fused']:08x}; conv = the x86 map's; the x86-64 build's the same. QEMU wall time per run: "
          + ", ".join(f"{mode} {results[mode][3]:.1f} s" for mode in MODES) + ".")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="x86 rounds (default 21)")
    parser.add_argument("--calls", type=int, default=3, help="x86 calls per round (default 3)")
    parser.add_argument("--no-tflm", action="store_true",
                        help="leave out TFLM's CONV_2D (the tflite-micro interpreter)")
    parser.add_argument("--no-m4", action="store_true", help="leave out the Cortex-M4 runs")
    args = parser.parse_args()
    stem, params = vww_case()
    assert core.int8_fast_path(params), "the case should take the int8 fast path"
    x = lcg_image()
    print(f"## Fused stem convolution + RNNPool, VWW stem (image {IMAGE[0]}x{IMAGE[1]}x"
          f"{IMAGE[2]} int8; Conv2D {STEM['kernel'][0]}x{STEM['kernel'][1]} stride "
          f"{STEM['strides'][0]} {STEM['padding']}, {STEM['k']} channels, "
          f"{STEM['activation']}; RNNPool {POOL['pool'][0]}x{POOL['pool'][1]} stride "
          f"{POOL['strides'][0]} {POOL['padding']}, h1 = h2 = {POOL['h1']}, "
          f"{POOL['gate']}/{POOL['update']})")
    print()
    madds_table()
    fused, conv_map = time_table(x, stem, params, args.rounds, args.calls, not args.no_tflm)
    if not args.no_m4:
        m4_table(stem, params, fused, conv_map)


if __name__ == "__main__":
    main()
