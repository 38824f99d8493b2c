"""The .tflite flatbuffer schema (generated object API: ModelT, BuiltinOperator...)
that every module here reads and writes with.

TFLM's generated copy, from the tflite-micro package the host runner already
needs: the same tables as TensorFlow's, plus TFLM's newer fields, and importing
it does not load TensorFlow (0.5 s instead of 7 s), so the host runner, the
memory report and the C array export start without it.
"""
from tflite_micro.tensorflow.lite.micro.python.schema_py_generated import *  # noqa: F401,F403
