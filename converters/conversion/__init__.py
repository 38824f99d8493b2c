"""Keras model -> .tflite: the stock converter run, RNNPool as one custom op
(float and int8) or lowered to builtin ops."""
