"""`rnnpool train` and the training input pipelines: an image folder trains end
to end into an int8 .tflite; bad arguments end in one line naming them."""
import json

import numpy as np
import pytest
import tensorflow as tf

from rnnpool_keras.app import cli, synthetic, training, training_data


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """96 PNGs of the synthetic quadrant task, one sub-folder per quadrant."""
    root = tmp_path_factory.mktemp("images")
    images, labels = synthetic.quadrant_images(96, size=16, channels=3, seed=0)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"quadrant_{label}"
        folder.mkdir(exist_ok=True)
        pixels = tf.cast(tf.clip_by_value(image * 160 + 40, 0, 255), tf.uint8)
        tf.io.write_file(str(folder / f"{i}.png"), tf.io.encode_png(pixels))
    return root, labels


def _error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "expected an error message on stderr"
    return lines[-1]


@pytest.mark.slow
def test_image_folder_reads_classes_and_scales_pixels(image_folder):
    root, labels = image_folder
    data = training_data.image_folder(str(root), 16, channels=3, validation_fraction=0.25)
    assert data.class_names == tuple(f"quadrant_{q}" for q in range(4))
    assert data.input_shape == (16, 16, 3)
    assert data.train.count + data.validation.count == len(labels)
    assert data.validation.count == 24
    x, y = training_data.as_arrays(data.train, 8)
    assert x.shape == (8, 16, 16, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # The bright square decides the label: the folder's class must match it.
    for image, label in zip(x[..., 0], y):
        quadrants = [image[:8, :8], image[:8, 8:], image[8:, :8], image[8:, 8:]]
        assert int(np.argmax([q.mean() for q in quadrants])) == label


def test_training_batches_are_full_and_augmentation_keeps_shape_and_range(image_folder):
    root, _ = image_folder
    data = training_data.image_folder(str(root), 16, validation_fraction=0)
    batches = training_data.batched(data.train, 32, True, ("flip", "crop", "brightness"),
                                    data.input_shape)
    # drop_remainder: a static batch dimension, 96 // 32 full batches.
    assert batches.element_spec[0].shape.as_list() == [32, 16, 16, 3]
    shapes = [x.shape for x, _ in batches]
    assert shapes == [(32, 16, 16, 3)] * 3
    x, _ = next(iter(batches))
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    validation = training_data.batched(data.train, 64, False)
    assert [len(y) for _, y in validation] == [64, 32]  # every image, unaugmented


def test_flip_augmentation_mirrors_left_right_at_random():
    image = np.arange(12, dtype=np.float32).reshape(2, 6, 1) / 12
    flip = training_data.augmenter(("flip",), image.shape)
    outputs = [flip(tf.constant(image), 0)[0].numpy() for _ in range(32)]
    mirrored = [np.array_equal(output, image[:, ::-1]) for output in outputs]
    assert all(m or np.array_equal(output, image) for m, output in zip(mirrored, outputs))
    assert 0 < sum(mirrored) < 32  # P(all the same) = 2 ** -31


def test_train_reports_every_bad_argument_at_once(image_folder):
    root, _ = image_folder
    data = training_data.image_folder(str(root), 16)
    with pytest.raises(ValueError) as error:
        training.train(data, "tiny_rnnpool_cnn", epochs=0, batch_size=-1,
                       learning_rate=0.0, backup_every="never")
    for name in ("`epochs`", "`batch_size`", "`learning_rate`", "`backup_every`"):
        assert name in str(error.value)
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        training.make_strategy("tpu-pod")
    with pytest.raises(ValueError, match="`augment` accepts"):
        training_data.batched(data.train, 8, True, ("rotate",), data.input_shape)


def test_train_refuses_a_model_whose_input_does_not_match_the_images(image_folder):
    root, _ = image_folder
    data = training_data.image_folder(str(root), 16)
    with pytest.raises(ValueError, match="inputs of shape"):
        training.train(data, lambda shape, classes: training.MODELS["tiny_rnnpool_cnn"](
            (32, 32, 3), classes), epochs=1)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")),
                    reason="mixed precision is accepted on a GPU")
def test_mixed_precision_is_refused_on_a_cpu_with_a_clear_message(image_folder, capsys,
                                                                   tmp_path):
    root, _ = image_folder
    status = cli.main(["train", "--data", str(root), "--model", "tiny_rnnpool_cnn",
                       "--image-size", "16", "--mixed-precision",
                       "--output-dir", str(tmp_path)])
    assert status == 1
    assert "needs a GPU" in _error_line(capsys)
    assert not (tmp_path / training.FLOAT_MODEL_FILE).exists()


def test_train_names_a_missing_folder_or_model(image_folder, capsys, tmp_path):
    root, _ = image_folder
    assert cli.main(["train", "--data", str(tmp_path / "nowhere")]) == 1
    assert "is not a directory of class sub-folders" in _error_line(capsys)
    assert cli.main(["train", "--data", str(root), "--model", str(tmp_path / "m.h5"),
                     "--image-size", "16", "--output-dir", str(tmp_path)]) == 1
    assert "model file not found" in _error_line(capsys)


@pytest.mark.slow
def test_rnnpool_train_on_an_image_folder_writes_a_working_int8_model(image_folder,
                                                                     tmp_path, capsys):
    from converters import memory_report
    from converters.tflite_io import tflite_model

    root, _ = image_folder
    out = tmp_path / "run"
    # In this process, as `rnnpool train` would run (the console entry point
    # itself is tested in test_cli): a child would pay TensorFlow's start again.
    code = cli.main(["train", "--data", str(root), "--model", "tiny_rnnpool_cnn",
                     "--image-size", "16", "--epochs", "2", "--qat-epochs", "1",
                     "--batch-size", "16", "--augment", "flip,crop",
                     "--strategy", "mirrored", "--output-dir", str(out)])
    result = capsys.readouterr()
    assert code == 0, result.err[-3000:]
    assert "Epoch 2/2" in result.out  # progress per epoch
    for name in (training.FLOAT_MODEL_FILE, training.QAT_MODEL_FILE, "model_int8.tflite",
                 "model_int8.h", "model_int8.cc", "memory_report.json"):
        assert (out / name).is_file(), name
    model_bytes = (out / "model_int8.tflite").read_bytes()
    assert "RNNPool" in tflite_model.op_names(model_bytes)
    assert json.loads((out / "memory_report.json").read_text()) == \
        json.loads(json.dumps(memory_report(model_bytes)))
    for phase in ("float", "qat"):
        assert list((out / "logs" / phase / "train").glob("events.out.tfevents.*"))
    done = next(line for line in result.out.splitlines() if line.startswith("Done:"))
    # The int8 file gives the QAT model's class on (nearly) every validation image.
    agreement = float(done.split("qat_agreement ")[1].split(",")[0])
    assert agreement >= 0.9
