"""Import of RNNPool parameters trained with the authors' EdgeML PyTorch code.

EdgeML's `RNNPool(nRows, nCols, nHiddenDims, nHiddenDimsBiDir, inputDims)` keeps
RNN1 under `cell_rnn.cell.*` and RNN2 under `cell_bidirrnn.cell.*` (names and
shapes in docs/rnnpool_float.md, section 8). Its matrices are already [in, out], as ours are.
"""
import numpy as np

# EdgeML cell prefix -> our weight prefix.
_CELLS = {"cell_rnn.cell.": "rnn1", "cell_bidirrnn.cell.": "rnn2"}
# EdgeML parameter name -> our weight suffix.
_PARAMETERS = {
    "W": "_kernel", "W1": "_kernel_left", "W2": "_kernel_right",
    "U": "_recurrent_kernel", "U1": "_recurrent_kernel_left",
    "U2": "_recurrent_kernel_right",
    "bias_gate": "_gate_bias", "bias_update": "_update_bias",
    "zeta": "_zeta", "nu": "_nu",
}
# Our 1-D biases and scalars are stored by EdgeML as [1, h] and [1, 1].
_EDGEML_SHAPE = {
    "_gate_bias": lambda shape: (1,) + shape,
    "_update_bias": lambda shape: (1,) + shape,
    "_zeta": lambda shape: (1, 1),
    "_nu": lambda shape: (1, 1),
}


def expected_keys(layer):
    """{EdgeML key: (EdgeML shape, our weight variable)} for a built RNNPool2D."""
    if not layer.built:
        raise ValueError("load_state_dict needs a built RNNPool2D: call the layer "
                         "on an input (or build it) first")
    expected = {}
    for edgeml_prefix, ours in _CELLS.items():
        for edgeml_name, suffix in _PARAMETERS.items():
            variable = getattr(layer, ours + suffix)
            if variable is None:  # e.g. `W` of a low-rank layer
                continue
            shape = tuple(variable.shape)
            shape = _EDGEML_SHAPE.get(suffix, lambda s: s)(shape)
            expected[edgeml_prefix + edgeml_name] = (shape, variable)
    return expected


def load_state_dict(layer, state_dict, prefix=""):
    """Loads an EdgeML RNNPool state_dict into a built RNNPool2D.

    Args:
      layer: a built `RNNPool2D` (tf_keras or Keras 3) whose sizes and ranks
        match the EdgeML model (full-rank `W`/`U` or low-rank `W1`,`W2`/`U1`,`U2`).
      state_dict: mapping of EdgeML key -> array-like (NumPy arrays, or CPU
        torch tensors), e.g. `{k: v.numpy() for k, v in model.state_dict().items()}`.
      prefix: where the RNNPool module sits in a larger EdgeML model (e.g.
        "rnn_model."); only keys under it are read, with it removed.
    Raises:
      ValueError listing every missing, unexpected and mis-shaped key; nothing
      is assigned unless all keys match.
    """
    import collections.abc

    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError("state_dict must be a mapping of EdgeML key -> array, got "
                        f"{type(state_dict).__name__}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    expected = expected_keys(layer)
    values = {key[len(prefix):]: np.asarray(value)
              for key, value in state_dict.items()
              if isinstance(key, str) and key.startswith(prefix)}
    problems = []
    for key in sorted(set(expected) - set(values)):
        problems.append(f"missing key {key!r} (shape {expected[key][0]})")
    for key in sorted(set(values) - set(expected)):
        problems.append(f"unexpected key {key!r} (shape {values[key].shape}); "
                        "check the layer's sizes and *_rank arguments")
    for key in sorted(set(values) & set(expected)):
        shape = expected[key][0]
        value = values[key]
        if value.dtype.kind not in "fiu":  # strings, objects (None), bools, complex
            problems.append(f"key {key!r} has dtype {value.dtype}, expected real numbers")
        elif value.shape != shape:
            problems.append(f"key {key!r} has shape {value.shape}, expected {shape}")
        elif not np.all(np.isfinite(value)):
            problems.append(f"key {key!r} holds NaN or infinite values")
    if problems:
        raise ValueError("EdgeML state_dict does not match the RNNPool2D layer "
                         f"{layer.name!r}:\n  " + "\n  ".join(problems))
    # Everything converted before anything is assigned; a failing assign
    # puts the earlier ones back, so the layer is never half-loaded.
    previous = {key: np.array(variable.numpy()) for key, (_, variable) in expected.items()}
    new = {key: values[key].reshape(previous[key].shape).astype(previous[key].dtype)
           for key in expected}
    done = []
    try:
        for key, (_, variable) in expected.items():
            variable.assign(new[key])
            done.append(key)
    except Exception:
        for key in done:
            expected[key][1].assign(previous[key])
        raise
