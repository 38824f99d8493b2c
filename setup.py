"""Installs rnnpool_keras (Keras layer, QAT), converters and the TFLM kernels."""
from setuptools import find_packages, setup

setup(
    name="rnnpool-keras",
    version="0.1.0",
    description="RNNPool (NeurIPS 2020) for Keras, TFLite and TensorFlow Lite Micro",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["rnnpool_keras*", "converters*", "tflm_kernels*"]),
    install_requires=[
        "tensorflow>=2.16",
        "tf-keras",
        "tensorflow-model-optimization",
        "numpy",
    ],
    extras_require={"test": ["pytest", "tflite-micro"]},
    # The C++ kernel core is added here as an extension by the kernels work.
    ext_modules=[],
    entry_points={"console_scripts": ["rnnpool=rnnpool_keras.cli:main"]},
)
