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

    python bench/bench_kernel.py [--patches 200] [--no-callgrind]
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
KERNELS = ROOT / "tflm_kernels"
FLAGS = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti"]
CONFIGS = {  # name: (pool, k, h1, h2)
    "vww": ((6, 6), 8, 8, 8),
    "face": ((8, 8), 4, 16, 16),
}
ACTIVATION_SETS = {"table": "sigmoid/tanh", "quant": "quantSigm/quantTanh"}
KINDS = ("int8", "float", "naive")


def madds(pool, k, h1, h2):
    try:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from rnnpool_keras.spec.cost import madds_per_patch
        return madds_per_patch(pool, k, h1, h2)
    except ImportError:  # the formula of docs/rnnpool_float.md, section 6
        r, c = pool
        return 2 * r * c * (k * h1 + h1 * h1) + 2 * (r + c) * (h1 * h2 + h2 * h2)


def build(workdir):
    binary = workdir / "bench_kernel"
    subprocess.run(["g++", *FLAGS, f"-I{KERNELS}", str(ROOT / "bench" / "bench_kernel.cc"),
                    str(KERNELS / "rnnpool_core.cc"), "-o", str(binary)], check=True)
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


def stack_usage(workdir):
    """{function: bytes} from -fstack-usage of the core at -O2."""
    obj = workdir / "rnnpool_core.o"
    subprocess.run(["g++", *FLAGS, "-fstack-usage", "-c", str(KERNELS / "rnnpool_core.cc"),
                    "-o", str(obj)], check=True, cwd=workdir)
    usage = {}
    for line in (workdir / "rnnpool_core.su").read_text().splitlines():
        location, size, _kind = line.rsplit("\t", 2)
        name = location.split(":", 3)[-1]
        usage[name] = max(usage.get(name, 0), int(size))
    return usage


def deepest_chain(usage, path):
    """Sum of the largest frame matching each step of `path` (a call chain);
    a step is a substring of the function name, or a tuple of substrings that
    must all occur in it."""
    total, frames = 0, []
    for step in path:
        parts = (step,) if isinstance(step, str) else step
        size = max((v for k, v in usage.items() if all(p in k for p in parts)), default=0)
        frames.append(f"{parts[0]} {size}")
        total += size
    return total, frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=200,
                        help="patches per callgrind run (default 200)")
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
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
    # RnnPoolInt8 (or RnnPoolPatchInt8) -> the per-patch body (which takes the
    # plan) -> Sweep -> SweepInt8; the matrix products are inlined.
    entry = max(("RnnPoolInt8(", "rnnpool::RnnPoolPatchInt8("),
                key=lambda name: deepest_chain(usage, [name])[0])
    total, frames = deepest_chain(usage, [entry, ("RnnPoolPatchInt8(", "Int8Plan&"),
                                          "::Sweep(", "SweepInt8("])
    print(f"stack, deepest int8 chain (x86-64 -O2): {total} bytes = " + " + ".join(frames))
    total, frames = deepest_chain(usage, ["RnnPoolFloat(", "RnnPoolPatchFloat(", "SweepFloat(",
                                          "ActivationFloat("])
    print(f"stack, deepest float chain (x86-64 -O2): {total} bytes = " + " + ".join(frames))


if __name__ == "__main__":
    main()
