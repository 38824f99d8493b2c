"""Running a converted model on the host (converters.run_tflite)."""
