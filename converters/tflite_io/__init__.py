"""Reading, editing and writing .tflite flatbuffers."""
