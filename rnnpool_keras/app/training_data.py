"""tf.data input pipelines for `rnnpool train`: an image folder or Fashion-MNIST.

Images are float32 in [0, 1], [H, W, channels]; labels int32 class indices.
An image folder has one sub-folder per class (the layout Keras'
`image_dataset_from_directory` reads); classes are the sorted folder names.
"""
import collections
import os

import numpy as np
import tensorflow as tf

from rnnpool_keras.app import datasets

AUGMENTATIONS = ("flip", "crop", "brightness")
_CROP_PADDING = 0.125  # of the image side, padded then cropped back at random
_BRIGHTNESS_DELTA = 0.1

# dataset: unbatched (image, label); count: its number of examples.
Split = collections.namedtuple("Split", ["dataset", "count"])
TrainingData = collections.namedtuple(
    "TrainingData", ["train", "validation", "class_names", "input_shape", "name"])


def image_folder(directory, image_size, channels=3, validation_fraction=0.1, seed=0):
    """Splits of an image folder, decoded in parallel and resized to
    image_size x image_size (pixels), `channels` 1 (grey) or 3 (RGB)."""
    import tf_keras

    if not os.path.isdir(directory):
        raise ValueError(f"`data` {directory!r} is not a directory of class sub-folders")
    if not any(entry.is_dir() for entry in os.scandir(directory)):
        raise ValueError(f"`data` {directory!r} has no class sub-folders "
                         "(expected DIR/<class name>/<image files>)")
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3, got {channels!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError("`validation_fraction` must be in [0, 1), "
                         f"got {validation_fraction!r}")
    options = dict(labels="inferred", label_mode="int", batch_size=None,
                   color_mode="grayscale" if channels == 1 else "rgb",
                   image_size=(image_size, image_size), shuffle=True, seed=seed)
    if validation_fraction:
        train, validation = tf_keras.utils.image_dataset_from_directory(
            directory, validation_split=validation_fraction, subset="both", **options)
    else:
        train, validation = tf_keras.utils.image_dataset_from_directory(
            directory, **options), None
    class_names = tuple(train.class_names)

    def split(dataset):
        if dataset is None:
            return None
        scaled = dataset.map(lambda image, label: (image / 255.0, tf.cast(label, tf.int32)),
                             num_parallel_calls=tf.data.AUTOTUNE)
        return Split(scaled, len(dataset.file_paths))

    return TrainingData(split(train), split(validation), class_names,
                        (image_size, image_size, channels), f"image folder {directory}")


def fashion_mnist(image_size, train_count=None, validation_count=1000):
    """Fashion-MNIST (the Debian package) resized to image_size, grey; its test
    split (first `validation_count` images) as the validation split."""
    x_train, y_train = datasets.load_fashion_mnist("train", train_count, image_size)
    x_val, y_val = datasets.load_fashion_mnist("test", validation_count, image_size)
    return TrainingData(
        Split(tf.data.Dataset.from_tensor_slices((x_train, y_train)), len(x_train)),
        Split(tf.data.Dataset.from_tensor_slices((x_val, y_val)), len(x_val)),
        datasets.CLASS_NAMES, tuple(x_train.shape[1:]), "Fashion-MNIST")


def augmenter(augment, image_shape):
    """(image, label) -> (augmented image, label) applying `augment` (names in
    AUGMENTATIONS) to one image of `image_shape` [H, W, C], values in [0, 1]."""
    unknown = sorted(set(augment) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"`augment` accepts {list(AUGMENTATIONS)}, got {unknown}")
    height, width, _ = image_shape
    pad = int(round(_CROP_PADDING * min(height, width)))

    def apply(image, label):
        if "flip" in augment:
            image = tf.image.random_flip_left_right(image)
        if "crop" in augment and pad:
            image = tf.image.resize_with_crop_or_pad(image, height + 2 * pad, width + 2 * pad)
            image = tf.image.random_crop(image, image_shape)
        if "brightness" in augment:
            image = tf.clip_by_value(
                tf.image.random_brightness(image, _BRIGHTNESS_DELTA), 0.0, 1.0)
        return image, label
    return apply


def batched(split, global_batch, training, augment=(), image_shape=None, seed=0):
    """The input pipeline of one split: cache of the decoded images, then (in
    training) shuffle and augmentation in parallel, global batches, prefetch.

    Training batches all have `global_batch` examples (drop_remainder): static
    shapes for XLA / TPUs, and an even split across replicas. Multi-worker
    training shards by example (every worker reads the whole, cached source).
    """
    dataset = split.dataset.cache()
    if training:
        dataset = dataset.shuffle(min(split.count, 10_000), seed=seed,
                                  reshuffle_each_iteration=True)
        if augment:
            dataset = dataset.map(augmenter(augment, image_shape),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(global_batch, drop_remainder=training)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = \
        tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def as_arrays(split, limit):
    """(images, labels) NumPy arrays of the first `limit` examples of a split."""
    images, labels = [], []
    for image, label in split.dataset.take(limit).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return np.stack(images).astype(np.float32), np.asarray(labels, np.int32)
