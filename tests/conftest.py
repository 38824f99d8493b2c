"""Shared pytest fixtures for the rnnpool_keras test-suite."""

import gc
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
# Make the helper modules here (model_cases, layer_weights) importable from
# the test subfolders, whatever the rootdir / import mode is.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import model_cases  # noqa: E402  (after the path above)


def pytest_collection_finish(session):
    """Cheaper garbage collection for the long-lived test process.

    A worker holds ~650,000 Python objects (TensorFlow, Keras, session-scoped
    models), and each full collection walks them all: about 7% of a worker's
    CPU went to the collector. Modules imported by now live until exit, so
    their objects are frozen out of its scans; the youngest generation is
    collected every 5,000 net allocations instead of 700, the oldest after
    100 collections of the middle one instead of 10. Reference cycles are
    still collected, later: a worker's peak memory grows from 1.5 to 2.2 GB
    (bench/RESULTS.md, "Test suite").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, 10, 100)


GOLDEN_NAME = "edgeml_vww_patch.npz"
# The EdgeML golden patch (docs/rnnpool_float.md, section 8).
GOLDEN_COPY = TESTS_DIR / "data" / GOLDEN_NAME


@pytest.fixture(scope="session")
def golden_path():
    """Path of the in-repo copy of the EdgeML golden patch (must exist)."""
    if not GOLDEN_COPY.is_file():
        pytest.fail(
            "golden file %s is missing: it is part of the project's test contract "
            "(the authors' VWW weights, one patch and their C reference's output)"
            % GOLDEN_COPY,
            pytrace=False,
        )
    return GOLDEN_COPY


@pytest.fixture(scope="session")
def golden(golden_path):
    """The golden npz as a plain dict of arrays."""
    with np.load(golden_path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session", params=model_cases.FRAMEWORKS)
def framework(request):
    """(keras module, RNNPool2D class), once for tf_keras and once for Keras 3."""
    return model_cases.load_framework(request.param)


@pytest.fixture(scope="session")
def trained_tiny_cnn():
    """demo.tiny_rnnpool_cnn trained once per session by the demo's float stage
    (demo.train_float, constant rate) on the synthetic quadrant task:
    (float model, its demo.Data, the stage's results). Tests that fine-tune it
    work on a copy (quantize_model clones), never on this model."""
    import tf_keras
    from rnnpool_keras.app import demo

    data = demo.synthetic_data(512, 256, seed=5)
    tf_keras.utils.set_random_seed(5)
    model = demo.tiny_rnnpool_cnn()
    results = demo.train_float(model, data, epochs=5, decay=False)
    return model, data, results


@pytest.fixture(scope="session")
def qat_tiny_cnn(trained_tiny_cnn):
    """The session's tiny CNN through the demo's QAT stage (demo.train_qat, one
    epoch): (QAT model, the stage's results)."""
    from rnnpool_keras.app import demo

    model, data, _ = trained_tiny_cnn
    return demo.train_qat(model, data, epochs=1)
