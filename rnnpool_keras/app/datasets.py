"""Fashion-MNIST for demos and benchmarks: the Debian package, else Keras' copy.

`apt-get install dataset-fashion-mnist` puts the original IDX files under
/usr/share/datasets/fashion-mnist/, read offline. Without them,
`load_fashion_mnist(..., allow_keras=True)` takes Keras' own copy
(`keras.datasets.fashion_mnist`: its cache in ~/.keras/datasets, or a download
where the network allows). The images are 28x28 grey;
`load_fashion_mnist(size=...)` resizes them so RNNPool has patches worth pooling.
"""
import gzip
import os
import socket

import numpy as np

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
               "Shirt", "Sneaker", "Bag", "Ankle boot")


# Seconds a Keras download may wait on the network before giving up.
_DOWNLOAD_TIMEOUT = 30
_keras_splits = {}  # Keras' arrays, loaded once per process


def fashion_mnist_available(root=DEFAULT_ROOT):
    """True when the Debian package's IDX files are under `root`."""
    return all(os.path.isfile(os.path.join(root, name))
               for files in _FILES.values() for name in files)


def fashion_mnist_origin(root=DEFAULT_ROOT):
    """Where `load_fashion_mnist(..., allow_keras=True)` takes the data from."""
    if fashion_mnist_available(root):
        return f"the Debian package dataset-fashion-mnist ({root})"
    return "Keras' copy (keras.datasets.fashion_mnist, cached in ~/.keras/datasets)"


def _keras_split(split):
    """(uint8 images [N, 28, 28], uint8 labels [N]) of a split, via Keras' loader."""
    if not _keras_splits:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT)  # no network: fail, do not hang
        try:
            import keras

            train, test = keras.datasets.fashion_mnist.load_data()
        except Exception as error:  # no cache and no network, or a broken download
            raise FileNotFoundError(
                f"Fashion-MNIST is neither installed in {DEFAULT_ROOT} "
                "(`apt-get install dataset-fashion-mnist`) nor downloadable by Keras "
                f"({type(error).__name__}: {error})") from None
        finally:
            socket.setdefaulttimeout(previous)
        _keras_splits.update(train=train, test=test)
    return _keras_splits[split]


def read_idx(path):
    """An IDX file (the MNIST format: big-endian dims, then uint8 data) as an array."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    rank = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * rank)
    if values.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, file holds {values.size} values")
    return values.reshape(dims)


def load_fashion_mnist(split="train", count=None, size=None, root=DEFAULT_ROOT,
                       allow_keras=False):
    """(images [N, size, size, 1] float32 in [0, 1], labels [N] int32).

    Args:
      split: "train" (60,000 images) or "test" (10,000).
      count: keep the first `count` images (None: all).
      size: resize the 28x28 images to size x size (bilinear); None keeps 28.
      root: directory of the Debian package's IDX files.
      allow_keras: without those files, take Keras' copy (see the module).
    Raises:
      FileNotFoundError: no data (the message says how to get it).
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if fashion_mnist_available(root):
        image_file, label_file = (os.path.join(root, name) for name in _FILES[split])
        images, labels = read_idx(image_file), read_idx(label_file)
    elif allow_keras:
        images, labels = _keras_split(split)
    else:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {root}: `apt-get install dataset-fashion-mnist`")
    if count is not None:
        images, labels = images[:count], labels[:count]
    images = images[..., None].astype(np.float32) / 255.0
    if size is not None and size != images.shape[1]:
        import tensorflow as tf
        images = tf.image.resize(images, (size, size)).numpy()
    return images, labels.astype(np.int32)
