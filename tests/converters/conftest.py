"""Fixtures shared by the converter tests."""
import numpy as np
import pytest

from model_cases import TWO_RNNPOOL_SIZE, two_rnnpool_model


class _TwoRNNPoolFiles(dict):
    """{"float" | "int8": .tflite bytes} of `model` (two_rnnpool_model at
    TWO_RNNPOOL_SIZE), each converted when first asked for; int8 calibrated on
    16 uniform images."""

    def __init__(self):
        super().__init__()
        self.model = two_rnnpool_model(TWO_RNNPOOL_SIZE)

    def __missing__(self, kind):
        from converters import convert

        if kind == "float":
            self[kind] = convert(self.model)
        elif kind == "int8":
            calibration = np.random.default_rng(0).uniform(
                -1, 1, (16, TWO_RNNPOOL_SIZE, TWO_RNNPOOL_SIZE, 3)).astype(np.float32)
            self[kind] = convert(self.model, quantize="int8", representative_data=calibration)
        else:
            raise KeyError(kind)
        return self[kind]


@pytest.fixture(scope="session")
def two_rnnpool_files():
    """The conv -> RNNPool -> conv -> RNNPool -> dense model of
    tests/model_cases.py and its float and int8 files, converted once per
    process for the modules that read them."""
    return _TwoRNNPoolFiles()
