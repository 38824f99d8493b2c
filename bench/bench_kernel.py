"""Per-patch cost of the C++ RNNPool kernel core: time and x86 instruction counts.

Builds bench/bench_kernel.cc with the core (g++ -O2 -std=c++17 -fno-exceptions
-fno-rtti) and measures, on the paper's VWW (6x6 patch, k=8, h1=h2=8) and
Face (8x8, k=4, h1=h2=16) configurations:
- int8:  RnnPoolPatchInt8 (docs/int8_rnnpool.md, bit-exact with the oracle);
- float: RnnPoolPatchFloat (same structure: projection once, float32);
- naive: a straightforward float patch as the authors' C reference is written
  (x @ W recomputed at every RNN1 step, expf / tanhf per element),
each with the RNNPool default activations (sigmoid gate, tanh update) and with
the authors' quantised-model ones (quantSigm, quantTanh). Prints ns per patch
(best of 5, this machine), and, where `valgrind` exists, instructions per patch
(callgrind: Ir of N patches minus Ir of 0 patches, divided by N), instructions
per MAdd (MAdds from rnnpool_keras.madds_per_patch) and naive / kernel ratios.
Also prints the scratch sizes and the core's stack use (g++ -fstack-usage).

With --target cortex-m4|cortex-m7|cortex-m55 it cross-compiles the same
program (arm-none-eabi-g++ -O2, the flags of tflm_kernels/cortex_m/emulator.py)
and prints, per patch on QEMU's emulated core, the executed instructions
(counted by the TCG plugin tflm_kernels/cortex_m/insn_count_plugin.c between
markers around the patch loop: instructions, not cycles), beside the x86
callgrind figures; the measured stack of the patch loop; the core's code size
(arm-none-eabi-size, split by role from the symbol sizes) and its deepest
-fstack-usage chains.

    python bench/bench_kernel.py [--patches 200] [--no-callgrind]
    python bench/bench_kernel.py --target cortex-m4 [--no-callgrind]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tflm_kernels.core_sources import CORE_SOURCES, compile_core  # noqa: E402

KERNELS = ROOT / "tflm_kernels"
FLAGS = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti"]
CONFIGS = {  # name: (pool, k, h1, h2)
    "vww": ((6, 6), 8, 8, 8),
    "face": ((8, 8), 4, 16, 16),
    "q15": ((8, 8), 4, 8, 8),  # the authors' q15_rnnpool_block benchmark shape
}
ACTIVATION_SETS = {"table": "sigmoid/tanh", "quant": "quantSigm/quantTanh"}
KINDS = ("int8", "float", "naive")


def madds(pool, k, h1, h2):
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from rnnpool_keras.spec.cost import madds_per_patch
        return madds_per_patch(pool, k, h1, h2)
    except ImportError:  # the formula of docs/rnnpool_float.md, section 6
        r, c = pool
        return 2 * r * c * (k * h1 + h1 * h1) + 2 * (r + c) * (h1 * h2 + h2 * h2)


def build(workdir):
    binary = workdir / "bench_kernel"
    subprocess.run(["g++", *FLAGS, f"-I{KERNELS}", str(ROOT / "bench" / "bench_kernel.cc"),
                    *map(str, CORE_SOURCES), "-o", str(binary)], check=True)
    return binary


def time_per_patch(binary, config, acts):
    out = subprocess.run([str(binary), "time", config, acts], check=True,
                         capture_output=True, text=True).stdout
    times, scratch = {}, None
    for line in out.splitlines():
        parts = line.split()
        if parts[0] in KINDS:
            times[parts[0]] = float(parts[1])
        elif parts[0] == "scratch_bytes":
            scratch = (int(parts[2]), int(parts[4]))
    return times, scratch


def callgrind_instructions(binary, config, acts, kind, patches, workdir):
    def collected(n):
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir / 'cg.out'}",
             str(binary), "run", config, acts, kind, str(n)],
            capture_output=True, text=True, check=True)
        match = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
        return int(match.group(1))
    return (collected(patches) - collected(0)) / patches


def stack_usage(workdir, compiler="g++", flags=FLAGS):
    """{function: bytes} from -fstack-usage of the core at -O2."""
    compile_core(compiler, [*flags, f"-I{KERNELS}", "-fstack-usage"],
                 workdir / "rnnpool_core.o", cwd=workdir)
    usage = {}
    lines = [line for source in CORE_SOURCES
             for line in (workdir / f"rnnpool_core_{source.stem}.su").read_text().splitlines()]
    for line in lines:
        location, size, _kind = line.rsplit("\t", 2)
        name = location.split(":", 3)[-1]
        usage[name] = max(usage.get(name, 0), int(size))
    return usage


def deepest_chain(usage, path):
    """Sum of the largest frame matching each step of `path` (a call chain);
    a step is a substring of the function name, a tuple of substrings that
    must all occur in it, or a list of such alternatives."""
    total, frames = 0, []
    for step in path:
        alternatives = step if isinstance(step, list) else [step]
        best, best_name = 0, None
        for alternative in alternatives:
            parts = (alternative,) if isinstance(alternative, str) else alternative
            size = max((v for k, v in usage.items() if all(p in k for p in parts)), default=0)
            if best_name is None or size > best:
                best, best_name = size, parts[0]
        frames.append(f"{best_name} {best}")
        total += best
    return total, frames


def int8_chain(usage):
    # RnnPoolInt8 (or RnnPoolPatchInt8) -> the per-patch body (which takes the
    # plan) -> Sweep -> SweepInt8 (portable fast path) or SweepInt8Spec, the
    # products inlined; on DSP targets (Cortex-M4 and later) also -> SweepDsp
    # -> one pass of a step -> DotStates.
    entry = max(("RnnPoolInt8(", "rnnpool::RnnPoolPatchInt8("),
                key=lambda name: deepest_chain(usage, [name])[0])
    chains = [deepest_chain(usage, [entry, "PatchInt8(", "::Sweep(", "SweepInt8"])]
    if any("SweepDsp(" in name for name in usage):
        chains.append(deepest_chain(usage, [entry, "PatchInt8(", "::Sweep(", "SweepDsp(",
                                            ["PreActivationsDsp", "UnitsDsp"], "DotStates("]))
    return max(chains, key=lambda chain: chain[0])


def float_chain(usage):
    return deepest_chain(usage, ["RnnPoolFloat(", "RnnPoolPatchFloat(", "SweepFloat(",
                                 "ActivationFloat("])


def code_size_by_role(obj):
    """{role: bytes} of the core's code and constants, from arm-none-eabi-nm -S:
    float (names with Float), prepare (validation, multipliers, plan, tables
    of the plan), int8 (the rest: the int8 Eval paths and their tables)."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", "-C", str(obj)], check=True,
                         capture_output=True, text=True).stdout
    prepare = ("Validate", "StatusMessage", "QuantizeMultiplier", "ComputeCellMultipliers",
               "MakeInt8Plan", "MakeFast", "MakeCellCtx", "PrepareInt8Plan", "MaxAbs",
               "RequantBound", "FindInterpolationTable", "Int8FastPathApplies",
               "ReorderPairs", "MultiplierOk", "IsKnownActivation", "BuiltinTable",
               "ScratchBytes", "OutputSize", "PaddingBefore", "MakeProjectionRequant",
               "ActivationInt16", "SelectSweep", "KindOf", "Int8PlanIsFast",
               "MakeDsp", "PutColumns", "StateChunks", "SmallestGate", "SelectActivateDsp",
               "SelectPreActivateDsp", "Int8PlanSimdStages")
    sizes = {"int8": 0, "float": 0, "prepare": 0}
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4 or parts[2].lower() not in ("t", "r"):
            continue
        size, name = int(parts[1], 16), parts[3]
        if "Float" in name or "float" in name.split("(")[0]:
            sizes["float"] += size
        elif any(p in name for p in prepare):
            sizes["prepare"] += size
        else:
            sizes["int8"] += size
    return sizes


def target_report(target, args):
    """The --target table: emulated instructions per patch beside x86 callgrind."""
    from tflm_kernels.cortex_m import emulator
    missing = emulator.missing_tools()
    if missing:
        sys.exit(f"--target needs {', '.join(missing)} (apt-get install gcc-arm-none-eabi "
                 "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm)")
    use_callgrind = not args.no_callgrind and shutil.which("valgrind") is not None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        elf = emulator.build(target, [ROOT / "bench" / "bench_kernel.cc", *CORE_SOURCES],
                             workdir / "bench_kernel.elf", defines=["RNNPOOL_COUNT_MARKERS"])
        plugin = emulator.build_plugin(workdir)
        host = build(workdir) if use_callgrind else None
        rows = []
        for config in CONFIGS:
            for acts in ACTIVATION_SETS:
                for kind in KINDS:
                    n = 1 if kind == "naive" else 2
                    status, text, count = emulator.run(
                        target, elf, ["run", config, acts, kind, str(n)], cwd=workdir,
                        plugin=plugin)
                    if status != 0 or count is None:
                        sys.exit(f"{target} run failed:\n{text}")
                    stack = int(re.search(r"stack_bytes (\d+)", text).group(1))
                    x86 = (callgrind_instructions(host, config, acts, kind, 20, workdir)
                           if use_callgrind and kind != "naive" else None)
                    rows.append((config, acts, kind, count / n, x86, stack))
        flags = emulator.compile_flags(target)
        obj = workdir / "core.o"
        compile_core("arm-none-eabi-g++", [*flags, f"-I{KERNELS}"], obj)
        total_text = emulator.text_bytes(obj)
        roles = code_size_by_role(obj)
        usage = stack_usage(workdir, "arm-none-eabi-g++", flags)

    print(f"RNNPool kernel core per patch on emulated {target} "
          f"({emulator.TARGETS[target][0]}, arm-none-eabi-g++ -O2); executed instructions "
          "(QEMU TCG plugin; not cycles) beside x86-64 callgrind (g++ -O2)")
    print()
    print(f"| config | activations | kind | {target} instructions | x86 instructions "
          "| stack bytes (measured) |")
    print("|---|---|---|--:|--:|--:|")
    for config, acts, kind, count, x86, stack in rows:
        x86_text = f"{x86:,.0f}" if x86 is not None else "n/a"
        print(f"| {config} | {ACTIVATION_SETS[acts]} | {kind} | {count:,.0f} | {x86_text} "
              f"| {stack} |")
    print()
    print(f"core .text + .rodata ({target}, -O2): {total_text:,} bytes; by role: "
          + ", ".join(f"{role} {size:,}" for role, size in roles.items()))
    total, frames = int8_chain(usage)
    print(f"stack, deepest int8 chain ({target} -O2 -fstack-usage): {total} bytes = "
          + " + ".join(frames))
    total, frames = float_chain(usage)
    print(f"stack, deepest float chain ({target} -O2 -fstack-usage): {total} bytes = "
          + " + ".join(frames))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=200,
                        help="patches per callgrind run (default 200)")
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument("--target", choices=("cortex-m4", "cortex-m7", "cortex-m55"),
                        help="count instructions on this emulated Cortex-M core instead")
    args = parser.parse_args()
    if args.target:
        target_report(args.target, args)
        return
    if shutil.which("g++") is None:
        sys.exit("g++ is needed")
    use_callgrind = not args.no_callgrind and shutil.which("valgrind") is not None

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        binary = build(workdir)
        rows = []
        for config, (pool, k, h1, h2) in CONFIGS.items():
            count = madds(pool, k, h1, h2)
            for acts in ACTIVATION_SETS:
                times, scratch = time_per_patch(binary, config, acts)
                instructions = {kind: (callgrind_instructions(binary, config, acts, kind,
                                                              args.patches, workdir)
                                       if use_callgrind else None) for kind in KINDS}
                rows.append((config, acts, count, times, instructions, scratch))
        usage = stack_usage(workdir)

    print("RNNPool kernel core, per patch (g++ -O2, x86-64; naive = straightforward float)")
    header = (f"{'config':<6} {'activations':<20} {'kind':<6} {'MAdds':>6} {'ns':>9} "
              f"{'instructions':>12} {'instr/MAdd':>10} {'naive/this':>10}")
    print(header)
    print("-" * len(header))
    for config, acts, count, times, instructions, _ in rows:
        for kind in KINDS:
            ir = instructions[kind]
            ratio = (instructions["naive"] / ir) if ir else None
            print(f"{config:<6} {ACTIVATION_SETS[acts]:<20} {kind:<6} {count:>6} "
                  f"{times[kind]:>9.0f} "
                  f"{(f'{ir:,.0f}' if ir else 'n/a'):>12} "
                  f"{(f'{ir / count:.2f}' if ir else 'n/a'):>10} "
                  f"{(f'{ratio:.2f}x' if ratio else 'n/a'):>10}")
    if not use_callgrind:
        print("(valgrind not found or --no-callgrind: no instruction counts)")
    print()
    for config, acts, _, _, _, scratch in rows:
        if acts == "table":
            print(f"scratch bytes {config}: int8 {scratch[0]}, float {scratch[1]}")
    total, frames = int8_chain(usage)
    print(f"stack, deepest int8 chain (x86-64 -O2): {total} bytes = " + " + ".join(frames))
    total, frames = float_chain(usage)
    print(f"stack, deepest float chain (x86-64 -O2): {total} bytes = " + " + ".join(frames))


if __name__ == "__main__":
    main()
