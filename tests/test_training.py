"""A tiny RNNPool CNN learns the synthetic quadrant task (the demo's model)."""
import numpy as np

from rnnpool_keras import demo, synthetic


def test_synthetic_labels_follow_the_bright_square():
    images, labels = synthetic.quadrant_images(64, size=16, channels=1, seed=1)
    for image, label in zip(images[..., 0], labels):
        quadrants = [image[:8, :8], image[:8, 8:], image[8:, :8], image[8:, 8:]]
        assert int(np.argmax([q.mean() for q in quadrants])) == label


def test_tiny_rnnpool_cnn_loss_falls_tenfold_and_beats_chance():
    # Chance-level loss is ln 4 = 1.39; the model must get well below a tenth of it.
    _, result = demo.run(epochs=5, train_count=1024, test_count=256, seed=0)
    assert result["final_loss"] < result["initial_loss"] / 10
    assert result["test_accuracy"] > 0.9
