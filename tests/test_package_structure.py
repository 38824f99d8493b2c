"""The layout's rules (docs/architecture.md): no import cycle, arrows only point
down the pipeline, and the spec, the kernel binding and the .tflite tools
(host runner, memory report, C array) run without TensorFlow."""
import ast
import re
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rnnpool_keras", "converters", "tflm_kernels")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """{module name: path} of every Python file of the three packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "build" not in path.relative_to(ROOT).parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name):
    """The longest known module that `name` (a module or module.attribute) names."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path):
    """Internal modules a file imports anywhere in it (functions included), and
    module names given to importlib as strings (the lazy package attributes)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.split(".")[0] in PACKAGES and "." in node.value
              and " " not in node.value):
            found.add(node.value)
    return {resolved for resolved in map(_resolve, found) if resolved}


def _ancestors(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


# A module's own packages are imported before it anyway: not edges.
GRAPH = {name: _imports(path) - _ancestors(name) for name, path in MODULES.items()}


def _external_roots(path):
    """Top-level names of the non-project modules a file imports."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots - set(PACKAGES)


def _find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_walk_sees_the_packages_and_their_imports():
    # Guards the walk itself: a broken parser would find no cycle in nothing.
    assert len(MODULES) > 40
    assert "converters.conversion.stock_converter" in GRAPH["converters.conversion.builtin_lowering"]
    assert "rnnpool_keras.layers.rnnpool2d" in GRAPH["rnnpool_keras"]  # lazy attribute


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = dict(GRAPH)
    graph["rnnpool_keras.spec.cost"] = GRAPH["rnnpool_keras.spec.cost"] | {"converters.analysis.memory"}
    assert _find_cycle(graph) is not None


def test_no_import_cycle():
    cycle = _find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("lower, allowed", [
    ("rnnpool_keras.spec", ("rnnpool_keras.spec",)),
    ("tflm_kernels", ("tflm_kernels", "rnnpool_keras.spec")),
    ("rnnpool_keras.layers", ("rnnpool_keras.layers", "rnnpool_keras.spec")),
    # The flat rebuild sits between the layer and QAT: both QAT and conversion start from it.
    ("rnnpool_keras.flat_model", ("rnnpool_keras.flat_model", "rnnpool_keras.layers",
                                  "rnnpool_keras.spec")),
    ("rnnpool_keras.quantization", ("rnnpool_keras.quantization", "rnnpool_keras.flat_model",
                                    "rnnpool_keras.layers", "rnnpool_keras.spec")),
    ("converters", ("converters", "rnnpool_keras.spec", "rnnpool_keras.layers",
                    "rnnpool_keras.flat_model", "rnnpool_keras.quantization", "tflm_kernels")),
])
def test_arrows_only_point_down(lower, allowed):
    wrong = sorted(f"{module} -> {target}" for module, targets in GRAPH.items()
                   if module == lower or module.startswith(lower + ".")
                   for target in targets
                   if not any(target == a or target.startswith(a + ".") for a in allowed))
    assert not wrong, "imports above their stage:\n" + "\n".join(wrong)


def test_nothing_in_the_library_imports_the_application_layer():
    wrong = sorted(f"{module} -> {target}" for module, targets in GRAPH.items()
                   if not module.startswith("rnnpool_keras.app") for target in targets
                   if target.startswith("rnnpool_keras.app"))
    assert not wrong, "\n".join(wrong)


def test_the_spec_imports_only_numpy_flatbuffers_and_the_standard_library():
    allowed = {"numpy", "flatbuffers"} | set(sys.stdlib_module_names)
    wrong = {name: sorted(_external_roots(path) - allowed) for name, path in MODULES.items()
             if name.startswith("rnnpool_keras.spec")}
    assert not {name: roots for name, roots in wrong.items() if roots}


_WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"):
    sys.modules[name] = None  # any import of them now raises ImportError
import numpy as np
import rnnpool_keras
from rnnpool_keras.spec import (contract, cost, fixed_point, float_reference, geometry,
                                int8_params, int8_reference, integer_activations,
                                random_params)
from tflm_kernels import core
assert rnnpool_keras.madds_per_patch is cost.madds_per_patch  # the lazy public name
rng = np.random.default_rng(0)
params = random_params.random_float_params(rng, 2, 3, 2)
x = rng.normal(size=(1, 4, 4, 2))
expected = float_reference.rnnpool_reference(x, params, (2, 2))
got = core.rnnpool_float(x.astype(np.float32), params, (2, 2))
assert np.allclose(got, expected, atol=1e-4), abs(got - expected).max()
assert contract.decode_layer_index(contract.encode({"layer_index": 3})) == 3
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("tflm_kernels._rnnpool_core") is None,
                    reason="the C++ extension is not built")
def test_spec_and_kernel_binding_run_with_tensorflow_blocked():
    result = subprocess.run([sys.executable, "-c", _WITHOUT_TENSORFLOW], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


_TFLITE_TOOLS_WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"):
    sys.modules[name] = None
import numpy as np
from converters import export_c_array, memory_report, run_tflite
model_bytes = open(sys.argv[1], "rb").read()
x = np.load(sys.argv[2])
np.testing.assert_array_equal(run_tflite(model_bytes, x)[0], np.load(sys.argv[3]))
assert [op["op"] for op in memory_report(model_bytes)["operators"]] == ["RNNPool"]
assert f"model_len = {len(model_bytes)};" in export_c_array(model_bytes, "model").source
print("ok")
"""


@pytest.mark.slow  # converts a model, runs a child process
def test_host_runner_memory_report_and_c_array_run_with_tensorflow_blocked(tmp_path):
    # On a build machine or in a firmware CI the .tflite is all there is: the
    # deployment tools read it with the flatbuffer schema alone.
    import tf_keras

    from converters import convert, run_tflite
    from rnnpool_keras import RNNPool2D

    inputs = tf_keras.Input((8, 8, 2))
    model = tf_keras.Model(inputs, RNNPool2D(3, 2, pool_size=4, strides=4)(inputs))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 2)).astype(np.float32)
    model_bytes = convert(model)
    paths = [tmp_path / "model.tflite", tmp_path / "x.npy", tmp_path / "y.npy"]
    paths[0].write_bytes(model_bytes)
    np.save(paths[1], x)
    np.save(paths[2], run_tflite(model_bytes, x)[0])
    result = subprocess.run([sys.executable, "-c", _TFLITE_TOOLS_WITHOUT_TENSORFLOW,
                             *map(str, paths)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_architecture_doc_names_every_module_and_only_existing_ones():
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = {name for name in re.findall(
        r"`((?:rnnpool_keras|converters|tflm_kernels)/[\w/]+\.py)`", text)
        if not name.endswith("__init__.py")}
    files = {path.relative_to(ROOT).as_posix() for path in MODULES.values()
             if path.name != "__init__.py"}
    assert sorted(named - files) == [], "named in docs/architecture.md but missing"
    assert sorted(files - named) == [], "modules docs/architecture.md does not name"


def _scripts():
    """The scripts outside the packages that import them: benchmarks, examples,
    tools (not run by the tests, so a moved module would only show there)."""
    folders = [ROOT / "bench", ROOT / "examples", ROOT / "tflm_kernels" / "tflm",
               ROOT / "tflm_kernels" / "cortex_m", ROOT / "tflm_kernels" / "fuzz"]
    return sorted(path for folder in folders if folder.is_dir() for path in folder.glob("*.py"))


def test_scripts_import_only_modules_that_exist():
    assert any(path.parent.name == "bench" for path in _scripts())
    missing = []
    for path in _scripts():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                modules = [node.module]
            elif isinstance(node, ast.Import):
                names, modules = [], [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.split(".")[0] in PACKAGES and module not in MODULES:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}")
            for name in names:  # `from package import module` must name a module or attribute
                module, _, attribute = name.rpartition(".")
                if (module in MODULES and name not in MODULES
                        and not re.search(rf"\b{re.escape(attribute)}\b",
                                          MODULES[module].read_text())):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not missing, "imports of modules or names that do not exist:\n" + "\n".join(missing)
