"""RNNPool for Keras: the RNNPool2D layer and its cost model.

`rnnpool_keras.RNNPool2D` is the tf_keras (Keras 2) layer, the one that
tensorflow-model-optimization and the TFLite converter path work with.
Keras 3 users import `rnnpool_keras.keras3.RNNPool2D`; both share one implementation.
"""
from rnnpool_keras.cost import madds_per_patch
from rnnpool_keras.layer import RNNPool2D

__all__ = ["RNNPool2D", "madds_per_patch"]
__version__ = "0.1.0"
