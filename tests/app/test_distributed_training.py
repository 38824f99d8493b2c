"""Training under tf.distribute: the replica count does not change the result.

Each run happens in a fresh process (tests/app/distributed_runs.py): logical devices
and TF_CONFIG are fixed per process and must not leak into the other tests.
"""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from rnnpool_keras.app import training

RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_runs.py")


def _run(*args):
    result = subprocess.run([sys.executable, RUNS, *args], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def replica_runs(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("replicas")
    _run("replicas", str(out_dir))
    return out_dir


def _weights(path):
    with np.load(path) as data:
        return dict(data.items())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float", "qat"])
def test_two_replicas_train_the_same_weights_as_one_device(replica_runs, kind):
    one = _weights(replica_runs / f"{kind}_one_device.npz")
    two = _weights(replica_runs / f"{kind}_mirrored.npz")
    assert list(one) == list(two)
    for name in one:
        # SGD on the same global batches; the replicas' gradient sum differs from
        # one device's only in float rounding.
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.slow
def test_qat_ranges_are_the_global_batch_ranges_on_every_replica_count(replica_runs):
    # The per-replica ranges the issue reported differ by 1e-3 relative (means of
    # the halves' extremes); the global batch's agree to float rounding.
    one = _weights(replica_runs / "qat_one_device.npz")
    two = _weights(replica_runs / "qat_mirrored.npz")
    ranges = [name for name in one if not name.startswith("calibrated:")
              and name.endswith(("_range:0", "_min:0", "_max:0")) and "kernel" not in name]
    assert len(ranges) == 4 + 2 * 4, ranges  # RNNPool's four; input, stem, rnnpool, classifier min / max
    for name in ranges:
        assert np.all(one[name] != 0), f"{name} was never updated"
        np.testing.assert_allclose(two[name], one[name], rtol=1e-6, err_msg=name)


@pytest.mark.slow
def test_calibration_under_mirrored_strategy_sets_the_one_device_ranges(replica_runs):
    one = _weights(replica_runs / "qat_one_device.npz")
    two = _weights(replica_runs / "qat_mirrored.npz")
    calibrated = [name for name in one
                  if name.startswith("calibrated:") and name.endswith("_range:0")]
    assert len(calibrated) == 4
    for name in calibrated:
        trained = name[len("calibrated:"):]
        # Calibration replaces the QAT averages by the maxima over its data.
        assert one[name] > 0 and one[name] != one[trained], name
        np.testing.assert_allclose(two[name], one[name], rtol=1e-6, err_msg=name)


def _steps(out_dir, task):
    return [int(line) for line in (out_dir / f"steps_{task}.txt").read_text().split()]


def _cluster(out_dir, epochs, kill_at_step=None):
    """Runs a two-worker cluster on localhost (distributed_runs.py worker) to
    the end; returns each worker's (exit status, stderr)."""
    configs = training.localhost_tf_configs(2)
    args = [str(epochs)] + ([str(kill_at_step)] if kill_at_step is not None else [])
    # The killed workers cannot remove their temporary files (the non-chief's
    # work directory, autograph's modules): they go to out_dir, not to /tmp.
    temp_dir = out_dir / "tmp"
    temp_dir.mkdir(exist_ok=True)
    workers = [subprocess.Popen(
        [sys.executable, RUNS, "worker", str(out_dir), *args], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=config,
                 TMPDIR=str(temp_dir)))
        for config in configs]
    try:
        errors = [worker.communicate(timeout=1200)[1] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    return [(worker.returncode, error) for worker, error in zip(workers, errors)]


@pytest.mark.slow
def test_two_workers_killed_mid_epoch_resume_from_their_backups_to_identical_weights(
        tmp_path):
    # 3 float epochs of 4 steps, backups every 2 steps; both workers kill
    # themselves after step 6, in the middle of epoch 2, as preempted machines.
    for status, error in _cluster(tmp_path, epochs=3, kill_at_step=6):
        assert status == -signal.SIGKILL, error[-3000:]
    for task in (0, 1):
        assert _steps(tmp_path, task) == list(range(1, 7))
        assert not (tmp_path / f"weights_{task}.npz").exists()
    # Restarted, the cluster continues at step 7 (not 1): optimizer and weights
    # came from the step-6 backup; then the QAT epoch of 4 steps.
    for status, error in _cluster(tmp_path, epochs=3):
        assert status == 0, error[-3000:]
    for task in (0, 1):
        assert _steps(tmp_path, task) == list(range(1, 13)) + list(range(1, 5))
    first = _weights(tmp_path / "weights_0.npz")
    second = _weights(tmp_path / "weights_1.npz")
    assert list(first) == list(second)
    for name in first:
        np.testing.assert_array_equal(second[name], first[name], err_msg=name)
    ranges = [name for name in first if name.endswith("_range:0")]
    assert len(ranges) == 4 and all(first[name] > 0 for name in ranges)
