"""The demo (README's main job): a tiny RNNPool CNN learns the synthetic quadrant
task, survives QAT, and its int8 RNNPool layer matches the QAT simulation."""
import numpy as np

from rnnpool_keras import demo, synthetic


def test_synthetic_labels_follow_the_bright_square():
    images, labels = synthetic.quadrant_images(64, size=16, channels=1, seed=1)
    for image, label in zip(images[..., 0], labels):
        quadrants = [image[:8, :8], image[:8, 8:], image[8:, :8], image[8:, 8:]]
        assert int(np.argmax([q.mean() for q in quadrants])) == label


def test_demo_learns_then_keeps_its_accuracy_and_layer_in_int8():
    # Chance-level loss is ln 4 = 1.39; the model must get well below a tenth of it.
    model, result = demo.run(epochs=5, train_count=1024, test_count=256, seed=0)
    assert result["final_loss"] < result["initial_loss"] / 10
    assert result["test_accuracy"] > 0.9
    _, quantized = demo.run_quantized(model, epochs=1, train_count=512, test_count=256)
    assert quantized["qat_accuracy"] >= quantized["float_accuracy"] - 0.05
    assert quantized["max_lsb_difference"] <= 2
