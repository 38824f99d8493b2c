"""run_tflite plans a model once and runs each RNNPool op over the whole batch,
with the numbers of running the samples one by one."""
import numpy as np
import pytest

from converters import run_tflite
from converters.runtime import host_runner
from model_cases import TWO_RNNPOOL_SIZE as SIZE

# Every test reads the shared float and int8 files (tests/converters/conftest.py,
# converted on first use): the slow set.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_a_batch_gives_the_outputs_of_its_samples_run_alone(two_rnnpool_files, kind):
    x = np.random.default_rng(7).uniform(-1, 1, (5, SIZE, SIZE, 3)).astype(np.float32)
    model_bytes = two_rnnpool_files[kind]
    batch = run_tflite(model_bytes, x)[0]
    alone = np.concatenate([run_tflite(model_bytes, sample[None])[0] for sample in x])
    assert batch.shape == (5, 3)
    np.testing.assert_array_equal(batch, alone)


def test_the_plan_is_built_once_per_model_file(two_rnnpool_files, monkeypatch):
    built = []
    monkeypatch.setattr(host_runner, "_PLANS", type(host_runner._PLANS)())
    real_plan = host_runner.plan
    monkeypatch.setattr(host_runner, "plan", lambda model: built.append(1) or real_plan(model))
    x = np.zeros((1, SIZE, SIZE, 3), np.float32)
    for _ in range(3):
        run_tflite(two_rnnpool_files["int8"], x)
    run_tflite(bytearray(two_rnnpool_files["int8"]), x)
    assert len(built) == 1
    run_tflite(two_rnnpool_files["float"], x)
    assert len(built) == 2
