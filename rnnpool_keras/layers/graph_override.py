"""Lets a converter choose the graph an RNNPool2D layer builds when traced.

The TFLite converter traces the Keras model; inside `override(build)` every
RNNPool2D call returns `build(layer, x)` (x and the result NHWC) instead of the
training graph. The custom-op converter builds a fusable composite there, the
builtin lowering a graph of TFLite builtins; training never enters it.
"""
import contextlib
import threading

_state = threading.local()


@contextlib.contextmanager
def override(build):
    """Within this block RNNPool2D.call computes `build(layer, x_nhwc)`."""
    previous = getattr(_state, "build", None)
    _state.build = build
    try:
        yield
    finally:
        _state.build = previous


def current():
    """The active `build` function, or None outside `override`."""
    return getattr(_state, "build", None)
