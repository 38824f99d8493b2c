"""The Keras layer RNNPool2D: arguments, activations, the FastGRNN step, the
batched RNNPool maths and the int16-point simulation it runs for QAT."""
