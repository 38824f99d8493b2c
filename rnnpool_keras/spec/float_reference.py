"""Float64 NumPy reference of RNNPool (the tests' oracle, the golden generators' source).

Written directly from the equations in docs/rnnpool_float.md; it deliberately
imports nothing else from ``rnnpool_keras`` and favours plain loops over speed.

FastGRNN cell (both RNNs)::

    pre = x @ W + h @ U
    z   = gate(pre + gate_bias)
    c   = update(pre + update_bias)
    h'  = z * h + (sigmoid(zeta) * (1 - z) + sigmoid(nu)) * c        h0 = 0

One patch P[r, c, k] (HWC)::

    row_i = RNN1(P[i, 0..c-1])          col_j = RNN1(P[0..r-1, j])
    a  = RNN2(row_0 .. row_{r-1})       b = RNN2(row_{r-1} .. row_0)
    c' = RNN2(col_0 .. col_{c-1})       d = RNN2(col_{c-1} .. col_0)
    out = concat(a, b, c', d)                                   # 4 * h2

``params`` keys, per prefix ``rnn1_`` / ``rnn2_``:
``kernel`` [in, h] or ``kernel_left`` [in, rank] + ``kernel_right`` [rank, h];
``recurrent_kernel`` [h, h] or ``recurrent_kernel_left`` + ``recurrent_kernel_right``;
``gate_bias`` [h]; ``update_bias`` [h]; ``zeta`` scalar; ``nu`` scalar.
"""

import math

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "sigmoid",
    "fastgrnn_sequence",
    "rnnpool_patch",
    "output_size",
    "same_padding",
    "rnnpool_reference",
    "edgeml_state_dict_to_params",
]


def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    # Numerically safe for large |x| (zeta = 100 / nu = -100 are the defaults).
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))),
                    np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


ACTIVATIONS = {
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "quantSigm": lambda x: np.clip((x + 1.0) / 2.0, 0.0, 1.0),
    "quantTanh": lambda x: np.clip(x, -1.0, 1.0),
}


def _matrix(params, prefix, name):
    """Full matrix `name` ("kernel" / "recurrent_kernel"), composing low rank."""
    full = params.get(prefix + name)
    left = params.get(prefix + name + "_left")
    right = params.get(prefix + name + "_right")
    if full is not None:
        if left is not None or right is not None:
            raise ValueError("both full and low-rank %s%s given" % (prefix, name))
        return np.asarray(full, dtype=np.float64)
    if left is None or right is None:
        raise ValueError("missing %s%s (or its _left/_right factors)" % (prefix, name))
    return np.asarray(left, dtype=np.float64) @ np.asarray(right, dtype=np.float64)


def _cell_weights(params, prefix):
    W = _matrix(params, prefix, "kernel")
    U = _matrix(params, prefix, "recurrent_kernel")
    bg = np.asarray(params[prefix + "gate_bias"], dtype=np.float64).reshape(-1)
    bu = np.asarray(params[prefix + "update_bias"], dtype=np.float64).reshape(-1)
    zeta = float(np.asarray(params[prefix + "zeta"], dtype=np.float64).reshape(()))
    nu = float(np.asarray(params[prefix + "nu"], dtype=np.float64).reshape(()))
    h = W.shape[1]
    assert U.shape == (h, h), (U.shape, h)
    assert bg.shape == (h,) and bu.shape == (h,)
    return W, U, bg, bu, zeta, nu


def _record(ranges, key, values):
    if ranges is not None:
        ranges[key] = max(ranges.get(key, 0.0), float(np.max(np.abs(values))))


def fastgrnn_sequence(xs, weights, gate, update, ranges=None, prefix=""):
    """Run one FastGRNN over the sequence xs [T, in] from h0 = 0; final state [h].

    `ranges`, if a dict, collects the largest |pre-activation| (gate or update)
    under prefix + "pre" and the largest |state| under prefix + "state".
    """
    W, U, bg, bu, zeta, nu = weights
    h = np.zeros(W.shape[1], dtype=np.float64)
    s_zeta = float(sigmoid(zeta))
    s_nu = float(sigmoid(nu))
    for x in xs:
        pre = np.asarray(x, dtype=np.float64) @ W + h @ U
        z = gate(pre + bg)
        c = update(pre + bu)
        h = z * h + (s_zeta * (1.0 - z) + s_nu) * c
        _record(ranges, prefix + "pre", np.concatenate([pre + bg, pre + bu]))
        _record(ranges, prefix + "state", h)
    return h


def rnnpool_patch(patch, params, gate_activation="sigmoid", update_activation="tanh",
                  ranges=None):
    """RNNPool of one HWC patch [r, c, k] -> [4 * h2] = concat(a, b, c', d).

    `ranges`: see fastgrnn_sequence; keys rnn1_pre, rnn1_state, rnn2_pre, rnn2_state.
    """
    patch = np.asarray(patch, dtype=np.float64)
    gate = ACTIVATIONS[gate_activation]
    update = ACTIVATIONS[update_activation]
    w1 = _cell_weights(params, "rnn1_")
    w2 = _cell_weights(params, "rnn2_")
    r, c, _ = patch.shape

    rows = [fastgrnn_sequence(patch[i, :, :], w1, gate, update, ranges, "rnn1_")
            for i in range(r)]
    cols = [fastgrnn_sequence(patch[:, j, :], w1, gate, update, ranges, "rnn1_")
            for j in range(c)]

    a = fastgrnn_sequence(rows, w2, gate, update, ranges, "rnn2_")
    b = fastgrnn_sequence(rows[::-1], w2, gate, update, ranges, "rnn2_")
    c_fwd = fastgrnn_sequence(cols, w2, gate, update, ranges, "rnn2_")
    d = fastgrnn_sequence(cols[::-1], w2, gate, update, ranges, "rnn2_")
    return np.concatenate([a, b, c_fwd, d])


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(t) for t in v)
    if len(v) != 2:
        raise ValueError("%s must be an int or a pair, got %r" % (name, v))
    return v


def output_size(n, window, stride, padding):
    """Output length along one axis."""
    if padding == "valid":
        if n < window:
            return 0
        return (n - window) // stride + 1
    if padding == "same":
        return int(math.ceil(n / stride))
    raise ValueError("padding must be 'valid' or 'same', got %r" % (padding,))


def same_padding(n, window, stride):
    """(before, after) zero padding along one axis for 'same'."""
    out = output_size(n, window, stride, "same")
    total = max((out - 1) * stride + window - n, 0)
    return total // 2, total - total // 2


def rnnpool_reference(x, params, pool_size, strides=None, padding="valid",
                      data_format="channels_last", gate_activation="sigmoid",
                      update_activation="tanh", ranges=None):
    """RNNPool over a batch of feature maps, in float64.

    x: [B, H, W, k] (channels_last) or [B, k, H, W] (channels_first).
    Returns [B, H', W', 4*h2] (channels_last) or [B, 4*h2, H', W'] (channels_first).
    ranges: optional dict filled with the largest |pre-activation| and |state| of
    each cell (see rnnpool_patch), e.g. to calibrate an int8 test case.
    """
    if data_format is None:
        data_format = "channels_last"
    x = np.asarray(x, dtype=np.float64)
    if data_format == "channels_first":
        x = np.transpose(x, (0, 2, 3, 1))
    elif data_format != "channels_last":
        raise ValueError("bad data_format %r" % (data_format,))
    r, c = _pair(pool_size, "pool_size")
    sr, sc = _pair(strides if strides is not None else (r, c), "strides")
    batch, height, width, _ = x.shape

    out_h = output_size(height, r, sr, padding)
    out_w = output_size(width, c, sc, padding)
    if padding == "same":
        pt, pb = same_padding(height, r, sr)
        pl, pr = same_padding(width, c, sc)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))  # zeros in input space

    h2 = _cell_weights(params, "rnn2_")[0].shape[1]
    out = np.zeros((batch, out_h, out_w, 4 * h2), dtype=np.float64)
    for n in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                patch = x[n, i * sr:i * sr + r, j * sc:j * sc + c, :]
                assert patch.shape[:2] == (r, c)
                out[n, i, j] = rnnpool_patch(patch, params, gate_activation,
                                             update_activation, ranges)
    if data_format == "channels_first":
        out = np.transpose(out, (0, 3, 1, 2))
    return out


def edgeml_state_dict_to_params(sd):
    """Map EdgeML PyTorch state_dict names (W as [in, hidden]) to ``params``."""
    params = {}
    for src, dst in (("cell_rnn.cell.", "rnn1_"), ("cell_bidirrnn.cell.", "rnn2_")):
        for e_name, name in (("W", "kernel"), ("U", "recurrent_kernel"),
                             ("W1", "kernel_left"), ("W2", "kernel_right"),
                             ("U1", "recurrent_kernel_left"),
                             ("U2", "recurrent_kernel_right")):
            if src + e_name in sd:
                params[dst + name] = np.asarray(sd[src + e_name], dtype=np.float64)
        params[dst + "gate_bias"] = np.asarray(sd[src + "bias_gate"], np.float64).reshape(-1)
        params[dst + "update_bias"] = np.asarray(sd[src + "bias_update"], np.float64).reshape(-1)
        params[dst + "zeta"] = float(np.asarray(sd[src + "zeta"]).reshape(()))
        params[dst + "nu"] = float(np.asarray(sd[src + "nu"]).reshape(()))
    return params

