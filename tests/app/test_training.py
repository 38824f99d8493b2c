"""The demo (README's main job): a tiny RNNPool CNN learns the synthetic quadrant
task, survives QAT, and its int8 RNNPool layer matches the QAT simulation."""
import numpy as np
import pytest

from rnnpool_keras.app import demo, synthetic

# Trains, converts or compiles: deselected by -m "not slow".
pytestmark = pytest.mark.slow


def test_synthetic_labels_follow_the_bright_square():
    images, labels = synthetic.quadrant_images(64, size=16, channels=1, seed=1)
    for image, label in zip(images[..., 0], labels):
        quadrants = [image[:8, :8], image[:8, 8:], image[8:, :8], image[8:, 8:]]
        assert int(np.argmax([q.mean() for q in quadrants])) == label


def test_demo_stages_learn_then_keep_the_accuracy_and_layer_in_int8(trained_tiny_cnn,
                                                                  qat_tiny_cnn):
    # The session's tiny CNN went through the demo's float stage, then its QAT
    # stage. Chance-level loss is ln 4 = 1.39; the model must get well below a
    # tenth of it.
    _, _, result = trained_tiny_cnn
    assert result["final_loss"] < result["initial_loss"] / 10
    assert result["test_accuracy"] > 0.9
    _, quantized = qat_tiny_cnn
    assert quantized["qat_accuracy"] >= quantized["float_accuracy"] - 0.05
    assert quantized["max_lsb_difference"] <= 2


def test_demo_main_job_runs_end_to_end_and_writes_its_files(tmp_path):
    # The README's main job on a tiny synthetic budget: every stage runs and
    # what it writes is usable (accuracy is tested above and in test_converter).
    from converters.tflite_io import tflite_model

    results = demo.main(epochs=1, output_dir=str(tmp_path), source="synthetic",
                        train_count=96, test_count=16, size=32)
    model_bytes = (tmp_path / "rnnpool_demo_int8.tflite").read_bytes()
    assert "RNNPool" in tflite_model.op_names(model_bytes)
    assert results["model_bytes"] == len(model_bytes)
    assert (tmp_path / "rnnpool_demo_int8.h").is_file()
    assert (tmp_path / "rnnpool_demo_int8.cc").is_file()
    assert (tmp_path / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The point of RNNPool: less RAM than the strided-convolution network.
    assert results["peak_activation_bytes"] < results["baseline_peak_activation_bytes"]
