"""rnnpool_keras.app.datasets: the offline Fashion-MNIST reader, Keras' copy as the
fallback, and the demo's choice between them and synthetic images."""
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


class _FakeKerasFashionMnist:
    """Stands in for keras.datasets.fashion_mnist: arrays, or the error of a
    machine with neither a cached copy nor a network."""

    def __init__(self, error=None):
        rng = np.random.default_rng(1)
        self.train = (rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
                      np.arange(6, dtype=np.uint8) % 10)
        self.test = (rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
                     np.arange(4, dtype=np.uint8) % 10)
        self.error = error

    def load_data(self):
        if self.error is not None:
            raise self.error
        return self.train, self.test


@pytest.fixture
def keras_copy(monkeypatch):
    """Installs a fake Keras loader; returns a function that sets it up."""
    keras = pytest.importorskip("keras")

    def install(error=None):
        fake = _FakeKerasFashionMnist(error)
        monkeypatch.setattr(keras.datasets, "fashion_mnist", fake)
        monkeypatch.setattr(datasets, "_keras_splits", {})
        monkeypatch.setattr(datasets, "fashion_mnist_available", lambda root=None: False)
        return fake
    return install


def test_without_the_debian_package_keras_copy_is_used_when_allowed(keras_copy, tmp_path):
    fake = keras_copy()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist("test", root=str(tmp_path))
    images, labels = datasets.load_fashion_mnist("test", count=3, root=str(tmp_path),
                                                 allow_keras=True)
    np.testing.assert_allclose(images[..., 0], fake.test[0][:3] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels, fake.test[1][:3])
    assert "Keras" in datasets.fashion_mnist_origin(str(tmp_path))


def test_no_package_and_no_keras_copy_says_both(keras_copy, tmp_path):
    keras_copy(OSError("network is unreachable"))
    with pytest.raises(FileNotFoundError) as error:
        datasets.load_fashion_mnist("train", root=str(tmp_path), allow_keras=True)
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "network is unreachable" in message


def test_demo_falls_back_to_synthetic_images_and_says_so(keras_copy, capsys):
    from rnnpool_keras.app import demo

    keras_copy(OSError("network is unreachable"))
    data = demo.demo_data(8, 4, 16, source="auto")
    assert data.name == "synthetic quadrants" and data.x_train.shape == (8, 16, 16, 1)
    out = capsys.readouterr().out
    assert "network is unreachable" in out and "using synthetic images" in out
    with pytest.raises(FileNotFoundError):
        demo.demo_data(8, 4, 16, source="fashion-mnist")


def test_demo_says_where_fashion_mnist_came_from(keras_copy, capsys):
    from rnnpool_keras.app import demo

    keras_copy()
    data = demo.demo_data(6, 4, 28, source="auto")
    assert data.name == "Fashion-MNIST" and data.x_test.shape == (4, 28, 28, 1)
    assert "Data: Fashion-MNIST from Keras' copy" in capsys.readouterr().out
