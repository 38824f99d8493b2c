"""Cross-compile programs for Cortex-M and run them on QEMU's emulated boards.

Used by tests/test_kernel_cortex_m.py, bench/bench_kernel.py --target, and
tests/tflm_build.py's Cortex-M4 build of rnnpool_run_model against TFLM.
Three targets, each an Arm FPGA image QEMU emulates (semihosting for I/O):

    cortex-m4   mps2-an386   -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard
    cortex-m7   mps2-an500   -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard
    cortex-m55  mps3-an547   -mcpu=cortex-m55 -mfloat-abi=hard

Instructions are counted by insn_count_plugin.c (a QEMU TCG plugin built here
with the host gcc) between the program's CountBegin and CountEnd markers. An
emulator's executed-instruction count is deterministic but is not a cycle
count: QEMU models no pipeline, memory wait states or instruction latencies.
"""
import re
import shutil
import subprocess
from pathlib import Path

from tflm_kernels.core_sources import CORE_SOURCES

HERE = Path(__file__).resolve().parent
KERNELS = HERE.parent
TARGETS = {  # name: (QEMU machine, compiler flags selecting the core and its FPU)
    "cortex-m4": ("mps2-an386", ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")),
    "cortex-m7": ("mps2-an500", ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard")),
    "cortex-m55": ("mps3-an547", ("-mcpu=cortex-m55", "-mfloat-abi=hard")),
}
# As a TFLM Cortex-M build compiles kernels (no exceptions, RTTI or unwind
# tables, one section per function).
CXXFLAGS = ("-std=c++17", "-mthumb", "-fno-exceptions", "-fno-rtti",
            "-fno-threadsafe-statics", "-fno-unwind-tables", "-ffunction-sections",
            "-fdata-sections", "-funsigned-char", "-Wall", "-Wextra")
LINKFLAGS = ("-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs",
             "-Wl,--gc-sections")
TOOLS = ("arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm", "gcc")


def missing_tools():
    """Names of the cross toolchain / emulator programs not on PATH (empty if all are).

    Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi
    libstdc++-arm-none-eabi-newlib qemu-system-arm.
    """
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def compile_flags(target, optimization="-O2"):
    """The arm-none-eabi-g++ flags of one target (a TARGETS key)."""
    return [optimization, *TARGETS[target][1], *CXXFLAGS]


def build(target, sources, output, optimization="-O2", include_dirs=(), defines=(),
          libraries=(), memory_map="cortex_m.ld", link_flags=()):
    """Compiles and links `sources` with the board start-up into the ELF `output`.

    `libraries` (static archives) link after the sources; `memory_map` is a
    linker script of this folder: cortex_m.ld (512 KB code, 512 KB data: every
    board) or mps2_4m.ld (4 MB each: the M4 and M7 boards, for whole models).
    """
    command = ["arm-none-eabi-g++", *compile_flags(target, optimization),
               f"-I{KERNELS}", f"-I{HERE}", *(f"-I{d}" for d in include_dirs),
               *(f"-D{d}" for d in defines),
               *map(str, sources), str(HERE / "startup.cc"), *map(str, libraries),
               f"-L{HERE}", f"-T{HERE / memory_map}", *LINKFLAGS, *link_flags,
               "-o", str(output)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return Path(output)


def build_kernel_runner(target, workdir, optimization="-O2"):
    """kernel_runner.cc with the kernel core, for `target`; returns the ELF path."""
    output = Path(workdir) / f"kernel_runner_{target}{optimization}.elf"
    return build(target, [HERE / "kernel_runner.cc", *CORE_SOURCES], output, optimization)


def build_plugin(workdir):
    """The instruction-counting TCG plugin (host gcc); returns the .so path."""
    output = Path(workdir) / "insn_count_plugin.so"
    if not output.exists():
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden",
                        str(HERE / "insn_count_plugin.c"), "-o", str(output)],
                       check=True, capture_output=True, text=True)
    return output


def symbol_address(elf, name):
    """Address of a symbol of `elf` (arm-none-eabi-nm)."""
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise ValueError(f"{elf} has no symbol {name}")


def run(target, elf, args=(), cwd=None, plugin=None, timeout=600,
        markers=("CountBegin", "CountEnd")):
    """Runs `elf` on the target's emulated board, with `args` as its argv[1:].

    Returns (exit status, stdout + stderr text, instructions between the
    markers or None). Pass `plugin` (from build_plugin) to count instructions
    from each call of the function `markers[0]` to the next of `markers[1]`.
    """
    machine = TARGETS[target][0]
    semihosting = ",".join(["enable=on", "target=native", f"arg={Path(elf).name}",
                            *(f"arg={a}" for a in args)])
    command = ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none",
               "-serial", "none", "-semihosting-config", semihosting, "-kernel", str(elf)]
    if plugin is not None:
        begin, end = (symbol_address(elf, name) for name in markers)
        command += ["-plugin", f"{plugin},begin={begin:#x},end={end:#x}", "-d", "plugin"]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    text = result.stdout + result.stderr
    match = re.search(r"instructions_between_markers (\d+)", text)
    return result.returncode, text, int(match.group(1)) if match else None


def text_bytes(obj):
    """The .text size of an object or ELF file (arm-none-eabi-size, Berkeley format)."""
    out = subprocess.run(["arm-none-eabi-size", str(obj)], check=True, capture_output=True,
                         text=True).stdout
    return int(out.splitlines()[1].split()[0])
