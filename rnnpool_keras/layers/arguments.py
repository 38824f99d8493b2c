"""Validation of RNNPool2D's constructor arguments, all reported at once."""
import numbers

from rnnpool_keras.layers import activations

PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(name, value, problems):
    if not _is_int(value) or value < 1:
        problems.append(f"`{name}` must be a positive integer, got {value!r}")
        return None
    return int(value)


def _int_pair(name, value, problems):
    """An int or a pair of ints, each >= 1, as a tuple of two ints."""
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or not all(_is_int(v) and v >= 1 for v in pair):
        problems.append(f"`{name}` must be a positive integer or a tuple of two "
                        f"positive integers (rows, columns), got {value!r}")
        return None
    return tuple(int(v) for v in pair)


def _choice(name, value, choices, problems):
    if value not in choices:
        problems.append(f"`{name}` must be one of {list(choices)}, got {value!r}")
    return value


def _optional_rank(name, value, problems):
    if value is None:
        return None
    return _positive_int(name, value, problems)


def _number(name, value, problems):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        problems.append(f"`{name}` must be a real number, got {value!r}")
        return None
    return float(value)


def validate(*, rnn1_units, rnn2_units, pool_size, strides, padding,
             data_format, gate_activation, update_activation, ranks,
             zeta_init, nu_init):
    """Normalises the arguments; raises one ValueError that lists every problem.

    `ranks` maps argument names (e.g. "rnn1_kernel_rank") to None or a rank.
    Returns a dict of normalised values under the same names.
    """
    problems = []
    out = {
        "rnn1_units": _positive_int("rnn1_units", rnn1_units, problems),
        "rnn2_units": _positive_int("rnn2_units", rnn2_units, problems),
        "pool_size": _int_pair("pool_size", pool_size, problems),
        "padding": _choice("padding", padding, PADDINGS, problems),
        "data_format": _choice("data_format", data_format, DATA_FORMATS, problems),
        "gate_activation": _choice("gate_activation", gate_activation,
                                   activations.NONLINEARITIES, problems),
        "update_activation": _choice("update_activation", update_activation,
                                     activations.NONLINEARITIES, problems),
        "zeta_init": _number("zeta_init", zeta_init, problems),
        "nu_init": _number("nu_init", nu_init, problems),
    }
    out["strides"] = (out["pool_size"] if strides is None
                      else _int_pair("strides", strides, problems))
    for name, rank in ranks.items():
        out[name] = _optional_rank(name, rank, problems)
    if problems:
        raise ValueError("Invalid RNNPool2D arguments:\n  " + "\n  ".join(problems))
    return out
