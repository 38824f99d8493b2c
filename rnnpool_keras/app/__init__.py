"""The application layer: the `rnnpool` CLI, the demo, data sets and the model
zoo. Nothing in the library (rnnpool_keras.spec / layers / quantization,
converters, tflm_kernels) imports it."""
