"""Every malformed .tflite made from the project's converted models is rejected
with a ValueError / TypeError that says why; valid ones run bit-exact. The
RNNPool delegate (LiteRT) and, with TFLM_ROOT, TFLM accept the same files.

The cases (tests/converters/malformed_models.py) run in a child process that records each
result as it finishes: a segfault fails this test and names its case instead
of killing the test run. The counts are printed (pytest -s) for the record.
"""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import malformed_models
from model_cases import randomize_rnnpool_weights

# Runs hundreds of malformed files in child processes: the slow set.
pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent  # tests/converters
TESTS = HERE.parent


def _float_model():
    import tf_keras
    from rnnpool_keras import RNNPool2D

    # Seeded: the flipped-byte cases land where the file's bytes put them, so an
    # unseeded model would test different files on every run.
    tf_keras.utils.set_random_seed(5)
    inputs = tf_keras.Input((8, 8, 2))
    x = tf_keras.layers.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    x = RNNPool2D(3, 2, pool_size=4, strides=4)(x)
    x = tf_keras.layers.Flatten()(x)
    outputs = tf_keras.layers.Dense(2)(x)
    return randomize_rnnpool_weights(tf_keras.Model(inputs, outputs), seed=5)


# The plain op (version 1) and the fused form (version 2, the convolution in
# front of RNNPool folded into the op), each float and int8.
DTYPES = ["float", "int8", "float_fused", "int8_fused"]


class _Converted(dict):
    """{dtype: (bytes, x)} for DTYPES, each converted when first asked for: the
    module's tests may be shared between pytest-xdist workers, and each worker
    then converts only the forms its tests use."""

    def __init__(self):
        super().__init__()
        self._model = _float_model()
        rng = np.random.default_rng(0)
        self._calibration = rng.uniform(-1, 1, (16, 8, 8, 2)).astype(np.float32)
        self._x = rng.uniform(-1, 1, (2, 8, 8, 2)).astype(np.float32)

    def __missing__(self, dtype):
        from converters import convert

        options = dict(fuse_stem=dtype.endswith("_fused"))
        if dtype.startswith("int8"):
            options.update(quantize="int8", representative_data=self._calibration)
        self[dtype] = (convert(self._model, **options), self._x)
        return self[dtype]


@pytest.fixture(scope="module")
def converted():
    """One small model, both dtypes, both forms (DTYPES), converted lazily."""
    return _Converted()


def _run_all(directory, count, mode=()):
    """Results by case index; a case whose child died is recorded as 'crash'.
    mode ("delegate",): the RNNPool delegate's results instead of the host's."""
    results, start = {}, 0
    log = directory / ("delegate.jsonl" if mode else "results.jsonl")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(TESTS.parent), str(TESTS), str(HERE), os.environ.get("PYTHONPATH", "")]))
    while start < count:
        child = subprocess.run([sys.executable, str(HERE / "malformed_models.py"),
                                str(directory), str(start), *mode], env=env,
                               capture_output=True, text=True, timeout=1800)
        started = None
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry["status"] == "started":
                started = entry["index"]
            else:
                results[entry["index"]] = (entry["status"], entry["detail"])
        if started is not None and started not in results:  # the child died running it
            results[started] = ("crash", f"exit {child.returncode}: {child.stderr[-300:]}")
        start = max(results) + 1 if results else count
        if child.returncode != 0 and started is None:
            pytest.fail(f"case runner failed before any case:\n{child.stderr[-2000:]}")
    return results


_CASES = {}  # dtype -> (directory, manifest, results): the host runs, also for TFLM's test


def _host_results(converted, dtype, tmp_path_factory):
    if dtype not in _CASES:
        directory = tmp_path_factory.mktemp(f"malformed_{dtype}")
        model_bytes, x = converted[dtype]
        manifest = []
        for index, (name, data, valid) in enumerate(malformed_models.cases(model_bytes)):
            (directory / f"{index:04d}.tflite").write_bytes(data)
            manifest.append({"index": index, "name": name, "valid": valid,
                             "file": f"{index:04d}.tflite"})
        (directory / "manifest.json").write_text(json.dumps(manifest))
        np.save(directory / "x.npy", x)
        _CASES[dtype] = (directory, manifest, _run_all(directory, len(manifest)))
    return _CASES[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_malformed_model_is_a_clear_error_on_the_host_and_in_the_delegate(
        converted, dtype, tmp_path_factory):
    """On the host (run_tflite and memory_report) valid files run bit-exact and
    the others are clear errors; the RNNPool delegate of LiteRT decides as the
    host on the cases made on an RNNPool op. One test, so the delegate is
    compared with this run's host results (two tests split across pytest-xdist
    workers each ran the host cases)."""
    directory, manifest, results = _host_results(converted, dtype, tmp_path_factory)
    _assert_host_results(dtype, manifest, results)
    _assert_delegate_agrees_with_host(converted, dtype, directory, manifest, results)


def _assert_host_results(dtype, manifest, results):
    counts = collections.Counter()
    failures = []
    for entry in manifest:
        status, detail = results[entry["index"]]
        name, valid = entry["name"], entry["valid"]
        if status == "ok" and detail == "bit-exact" and valid is not False:
            counts["valid accepted, bit-exact"] += 1
        elif status == "ok" and valid is None:
            counts["accepted (either outcome allowed)"] += 1
        elif status == "error" and valid is not True:
            # A clear error names something: more than the exception type.
            message = detail.split(": ", 1)[-1]
            if len(message) < 12:
                failures.append(f"{name}: unclear message {detail!r}")
            counts["clear errors"] += 1
        else:
            failures.append(f"{name}: expected {'valid' if valid else 'rejected'}, got "
                            f"{status}: {detail}")
            counts[status if status != "ok" else "silently wrong"] += 1
    print(f"\n{dtype}: {len(manifest)} cases: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"
    assert counts["valid accepted, bit-exact"] >= 2  # the model and its re-encoding


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_file_cut_short_in_its_last_bytes_is_refused(converted, dtype):
    # The converter's files end with strings (names, signature keys). A cut
    # there once left a file the host read with shorter names while TFLM's
    # verifier refused it (the fused float file cut to 3,368-3,375 of 3,376 bytes).
    from converters.tflite_io import tflite_model

    model_bytes, _ = converted[dtype]
    for length in range(len(model_bytes) - 64, len(model_bytes)):
        with pytest.raises(ValueError, match="truncated or corrupt"):
            tflite_model.load(model_bytes[:length])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_int8_model_input_that_is_not_finite_is_rejected(converted, bad):
    from converters import run_tflite

    model_bytes, x = converted["int8"]
    x = x.copy()
    x[1, 3, 3, 1] = bad
    with pytest.raises(ValueError, match=r"inputs\[0\] holds NaN or infinite"):
        run_tflite(model_bytes, x)


def test_no_samples_is_named_as_the_problem(converted):
    from converters import run_tflite

    model_bytes, x = converted["float"]
    with pytest.raises(ValueError, match=r"no sample \(N = 0\)"):
        run_tflite(model_bytes, x[:0])


def test_validated_parameters_are_those_of_the_kernel_reference(converted):
    """The validator's int8 multipliers equal int8_params.cell_constants' (the
    NumPy oracle's), so run_tflite computes what the spec says."""
    from converters.tflite_io import rnnpool_params, rnnpool_validation, tflite_model
    from rnnpool_keras.spec import int8_params

    model_bytes, _ = converted["int8"]
    model = tflite_model.load(model_bytes)
    graph = model.subgraphs[0]
    index = next(i for i, op in enumerate(graph.operators)
                 if tflite_model.op_name(model, op) == "RNNPool")
    validated = rnnpool_validation.validated_rnnpool_op(model, graph, graph.operators[index])
    params = rnnpool_params.int8_params_of_op(model_bytes, index)
    gate, update = params.gate_activation, params.update_activation
    for name, input_scale in (("rnn1", params.input_scale),
                              ("rnn2", params.rnn1.state_scale)):
        expected = int8_params.cell_constants(getattr(params, name), input_scale, gate, update)
        for key in ("input_multiplier", "recurrent_multiplier", "update_multiplier",
                    "gate_activation_multiplier", "update_activation_multiplier"):
            want = getattr(expected, key)
            want = (0, 0) if want is None else tuple(want)  # relu has no M_a
            assert tuple(validated[name][key]) == want, (name, key)


@pytest.mark.tflm
@pytest.mark.skipif(not os.environ.get("TFLM_ROOT"), reason="TFLM_ROOT is not set "
                    "(see tests/tflm_build.py)")
@pytest.mark.parametrize("dtype", DTYPES)
def test_tflm_kernel_accepts_and_rejects_the_same_files(converted, dtype, tmp_path_factory):
    """With TFLM_ROOT: every case through MicroInterpreter (rnnpool_run_model,
    RNNPool registered from tflm_kernels/tflm) is accepted exactly when the
    host accepts it, never crashes, and valid ones match run_tflite. Flipped
    bytes may break the flatbuffer in ways only one side's parser notices:
    their disagreements are printed, not asserted."""
    import tflm_build

    work = tmp_path_factory.mktemp(f"tflm_{dtype}")
    binary = tflm_build.build_run_model(work)
    directory, manifest, results = _host_results(converted, dtype, tmp_path_factory)
    model_bytes, x = converted[dtype]
    _, input_bin, expected_bin = tflm_build.write_model_case(work / "reference", model_bytes, x[:1])
    failures, noted, counts = [], [], collections.Counter()
    for entry in manifest:
        run = subprocess.run([str(binary), str(directory / entry["file"]), str(input_bin),
                              str(expected_bin)], capture_output=True, text=True,
                             errors="replace", timeout=120)  # names may be garbage bytes
        output = run.stdout + run.stderr
        tflm_accepts = "\nMicroInterpreter arena_used_bytes" in "\n" + output
        host_accepts = results[entry["index"]][0] == "ok"
        name = entry["name"]
        if run.returncode < 0:
            failures.append(f"{name}: TFLM crashed (signal {-run.returncode})")
        elif tflm_accepts != host_accepts:
            line = f"{name}: host {'accepts' if host_accepts else 'rejects'}, TFLM " \
                   f"{'accepts' if tflm_accepts else 'rejects'}: {output.strip()[-200:]}"
            (noted if name.startswith("4 bytes flipped") else failures).append(line)
        elif entry["valid"] is True and run.returncode != 0:
            failures.append(f"{name}: valid, but TFLM's output differs:\n{output[-500:]}")
        counts["agree, accepted" if tflm_accepts else "agree, rejected"] += \
            tflm_accepts == host_accepts
    print(f"\n{dtype}: TFLM vs host over {len(manifest)} cases: {dict(counts)}; "
          f"flipped-bytes disagreements {len(noted)}")
    for line in noted:
        print("  " + line)
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"


def _assert_delegate_agrees_with_host(converted, dtype, directory, manifest, results):
    """Every case made on an RNNPool op (its options, tensor indices, tensors)
    through the delegate in LiteRT (converters.tflite_interpreter, Prepare and
    one invoke): it accepts exactly the files run_tflite accepts, and never
    crashes. That includes a changed shape of the op's input (CONV_2D's
    output here), which the runtime alone would re-derive before the delegate's
    Prepare sees it: tflite_interpreter checks the file as written first."""
    from converters.tflite_io import tflite_model

    model = tflite_model.load(converted[dtype][0])
    tags = tuple(f"op{index} " for index in malformed_models._rnnpool_ops(model))
    chosen = [entry for entry in manifest if entry["name"].startswith(tags)]
    subset = directory / "delegate"
    subset.mkdir(exist_ok=True)
    (subset / "manifest.json").write_text(json.dumps(
        [{**entry, "index": position, "file": str(directory / entry["file"])}
         for position, entry in enumerate(chosen)]))
    np.save(subset / "x.npy", converted[dtype][1])
    delegate = _run_all(subset, len(chosen), ("delegate",))

    failures, counts = [], collections.Counter()
    for position, entry in enumerate(chosen):
        status, detail = delegate[position]
        host_status, host_detail = results[entry["index"]]
        line = (f"{entry['name']}: host {host_status} ({host_detail[:120]}), "
                f"delegate {status} ({detail[:120]})")
        if status not in ("ok", "error") or (status == "ok") != (host_status == "ok"):
            failures.append(line)
        else:
            counts["agree, accepted" if status == "ok" else "agree, rejected"] += 1
    print(f"\n{dtype}: delegate vs host over {len(chosen)} RNNPool op cases: {dict(counts)}")
    assert not failures, "\n".join(failures[:40]) + f"\n({len(failures)} failures)"
    assert counts["agree, accepted"] >= 1 and counts["agree, rejected"] >= 10


def test_a_zero_point_outside_its_type_or_an_arena_past_2_gib_is_named(converted):
    """Two files that once crashed the tflite-micro interpreter (found by the
    flipped-byte cases): a bias zero point beyond int32, and an intermediate
    tensor whose shape needs more arena than the interpreter's int can hold."""
    from converters import run_tflite
    from converters.tflite_io import tflite_model

    model_bytes, x = converted["int8"]
    model = tflite_model.load(model_bytes)
    graph = model.subgraphs[0]
    conv = next(op for op in graph.operators if tflite_model.op_name(model, op) == "CONV_2D")
    bias = graph.tensors[conv.inputs[2]]
    bias.quantization.zeroPoint = np.full(len(bias.quantization.scale), -2 ** 56, np.int64)
    with pytest.raises(ValueError, match="zero point outside"):
        run_tflite(tflite_model.save(model), x)

    model = tflite_model.load(model_bytes)
    graph = model.subgraphs[0]
    conv = next(op for op in graph.operators if tflite_model.op_name(model, op) == "CONV_2D")
    output = graph.tensors[conv.outputs[0]]
    output.shape = np.array([16711681] + list(output.shape[1:]), np.int32)
    with pytest.raises(ValueError, match="bytes of TFLM arena"):
        run_tflite(tflite_model.save(model), x)
