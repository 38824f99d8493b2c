"""rnnpool_keras.app.datasets: the offline Fashion-MNIST reader."""
import gzip

import numpy as np
import pytest

from rnnpool_keras.app import datasets


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as file:
        file.write(header + array.astype(np.uint8).tobytes())


def _fake_root(tmp_path, train=5, test=3):
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("t10k", test)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, (count, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(count) % 10)
    return tmp_path


def test_read_idx_returns_the_written_array(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(datasets.read_idx(str(tmp_path / "a.gz")), array)


def test_read_idx_rejects_other_files(tmp_path):
    with gzip.open(tmp_path / "bad.gz", "wb") as file:
        file.write(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00")  # float IDX
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        datasets.read_idx(str(tmp_path / "bad.gz"))


def test_load_scales_resizes_and_counts(tmp_path):
    root = _fake_root(tmp_path)
    raw = datasets.read_idx(str(root / "train-images-idx3-ubyte.gz"))
    images, labels = datasets.load_fashion_mnist("train", count=4, root=str(root))
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[..., 0], raw[:4] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    resized, _ = datasets.load_fashion_mnist("test", size=32, root=str(root))
    assert resized.shape == (3, 32, 32, 1)
    assert 0.0 <= resized.min() and resized.max() <= 1.0


def test_missing_files_and_bad_split_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist(root=str(tmp_path))
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        datasets.load_fashion_mnist("validation", root=str(_fake_root(tmp_path)))


@pytest.mark.skipif(not datasets.fashion_mnist_available(),
                    reason="dataset-fashion-mnist is not installed")
def test_installed_fashion_mnist_has_its_published_sizes():
    images, labels = datasets.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28, 1)
    assert np.bincount(labels).tolist() == [1000] * 10
