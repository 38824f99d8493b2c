"""A small synthetic image task for demos and tests (no download needed).

Each image is noise plus one bright square in one of four quadrants; the label
is the quadrant. Telling quadrants apart needs spatial information to survive
the pooling, which is what RNNPool must keep.
"""
import numpy as np


def quadrant_images(count, size=32, channels=3, seed=0):
    """Returns (images [count, size, size, channels] float32, labels [count] int32)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, (count, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, 4, count).astype(np.int32)
    half, side = size // 2, size // 4
    for image, label in zip(images, labels):
        top = (label // 2) * half + rng.integers(0, half - side + 1)
        left = (label % 2) * half + rng.integers(0, half - side + 1)
        image[top:top + side, left:left + side, :] += 1.5
    return images, labels
