"""What wrote a saved Keras model file: tf_keras or Keras 3 (which load differently)."""
import json
import zipfile


def written_by_keras3(path):
    """True for a `.keras` archive whose metadata.json names Keras 3.x.

    Both tf_keras and Keras 3 write `.keras` zip archives with a
    metadata.json; only Keras 3 can read its own (`keras.saving.load_model`).
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        try:
            metadata = json.loads(archive.read("metadata.json"))
        except (KeyError, ValueError):
            return False
    return str(metadata.get("keras_version", "")).startswith("3.")
