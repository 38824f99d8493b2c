"""Quantisation-aware training of RNNPool2D with tfmot, and the int8 parameters
of a trained layer."""
