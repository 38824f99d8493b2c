"""Checks of the NumPy oracle itself (rnnpool_keras/spec/float_reference.py).

Every expected value here is derived by hand from the equations in
docs/rnnpool_float.md with `math`, not by calling the reference's own helpers, so
the oracle used by the layer tests is itself verified.
"""

import math

import numpy as np
import pytest

from rnnpool_keras.spec import geometry
from rnnpool_keras.spec.float_reference import (
    ACTIVATIONS,
    edgeml_state_dict_to_params,
    output_size,
    rnnpool_patch,
    rnnpool_reference,
    same_padding)


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def scalar_params(w1, u1, bg1, bu1, zeta1, nu1, w2, u2, bg2, bu2, zeta2, nu2):
    """params for k = h1 = h2 = 1."""
    m = lambda v: np.array([[v]], dtype=np.float64)
    v = lambda t: np.array([t], dtype=np.float64)
    return {
        "rnn1_kernel": m(w1), "rnn1_recurrent_kernel": m(u1),
        "rnn1_gate_bias": v(bg1), "rnn1_update_bias": v(bu1),
        "rnn1_zeta": zeta1, "rnn1_nu": nu1,
        "rnn2_kernel": m(w2), "rnn2_recurrent_kernel": m(u2),
        "rnn2_gate_bias": v(bg2), "rnn2_update_bias": v(bu2),
        "rnn2_zeta": zeta2, "rnn2_nu": nu2,
    }


def random_params(rng, k, h1, h2, scale=0.5):
    p = {}
    for prefix, n_in, h in (("rnn1_", k, h1), ("rnn2_", h1, h2)):
        p[prefix + "kernel"] = rng.normal(size=(n_in, h)) * scale
        p[prefix + "recurrent_kernel"] = rng.normal(size=(h, h)) * scale
        p[prefix + "gate_bias"] = rng.normal(size=h) * scale
        p[prefix + "update_bias"] = rng.normal(size=h) * scale
        p[prefix + "zeta"] = rng.uniform(-2, 2)
        p[prefix + "nu"] = rng.uniform(-2, 2)
    return p


# ---------------------------------------------------------------------------
# Hand-computed single cells
# ---------------------------------------------------------------------------

def test_1x1_patch_scalar_cell_matches_hand_computation_and_all_four_outputs_equal():
    x = 0.7
    w1, u1, bg1, bu1, zeta1, nu1 = 0.8, -0.3, 0.2, -0.1, 0.5, -1.5
    w2, u2, bg2, bu2, zeta2, nu2 = -1.2, 0.4, -0.3, 0.25, -0.7, 0.9
    p = scalar_params(w1, u1, bg1, bu1, zeta1, nu1, w2, u2, bg2, bu2, zeta2, nu2)

    # RNN1, one step from h0 = 0 (U does not matter).
    pre = w1 * x
    z = _sig(pre + bg1)
    c = math.tanh(pre + bu1)
    s1 = (_sig(zeta1) * (1 - z) + _sig(nu1)) * c
    # RNN2, one step on the single row (== single column) summary.
    pre = w2 * s1
    z = _sig(pre + bg2)
    c = math.tanh(pre + bu2)
    s2 = (_sig(zeta2) * (1 - z) + _sig(nu2)) * c

    out = rnnpool_reference(np.full((1, 1, 1, 1), x), p, pool_size=1)
    assert out.shape == (1, 1, 1, 4)
    np.testing.assert_allclose(out.ravel(), [s2, s2, s2, s2], rtol=0, atol=1e-15)


def test_two_step_row_with_zero_recurrence_and_zeta_nu_zero_matches_hand_computation():
    # U = 0, zeta = nu = 0 so sigmoid(zeta) = sigmoid(nu) = 1/2:
    #   h' = z*h + (0.5*(1-z) + 0.5) * c
    x0, x1 = 0.4, -0.9
    w, bg, bu = 1.5, 0.3, -0.2
    p = scalar_params(w, 0.0, bg, bu, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    patch = np.array([[[x0], [x1]]])  # r = 1, c = 2

    def step(h, xv):
        z = _sig(w * xv + bg)
        c = math.tanh(w * xv + bu)
        return z * h + (0.5 * (1 - z) + 0.5) * c

    row = step(step(0.0, x0), x1)
    col0, col1 = step(0.0, x0), step(0.0, x1)

    def step2(h, xv):  # RNN2: W = 1, U = 0, biases 0, zeta = nu = 0
        z = _sig(xv)
        c = math.tanh(xv)
        return z * h + (0.5 * (1 - z) + 0.5) * c

    a = step2(0.0, row)
    b = a  # a single row: forward and backward sweeps coincide
    c_fwd = step2(step2(0.0, col0), col1)
    d = step2(step2(0.0, col1), col0)
    out = rnnpool_patch(patch, p)
    np.testing.assert_allclose(out, [a, b, c_fwd, d], rtol=0, atol=1e-15)
    assert abs(c_fwd - d) > 1e-3  # the two column sweeps really differ here


def test_recurrent_kernel_is_applied_to_previous_state():
    # Two-step sequence where only U differs: hand-computed second step.
    x0, x1 = 0.5, 0.25
    w, u, bg, bu = 0.9, -0.6, 0.1, 0.05
    p = scalar_params(w, u, bg, bu, 100.0, -100.0, 1.0, 0.0, 0.0, 0.0, 100.0, -100.0)
    # sigmoid(100) == 1 and sigmoid(-100) ~ 4e-44: h' = z*h + (1 - z)*c
    z0 = _sig(w * x0 + bg)
    h0 = (1 - z0) * math.tanh(w * x0 + bu)
    pre1 = w * x1 + u * h0
    z1 = _sig(pre1 + bg)
    h1 = z1 * h0 + (1 - z1) * math.tanh(pre1 + bu)
    # RNN2 with W = 1, U = 0, zero biases: one step on the single row.
    expected_a = (1 - _sig(h1)) * math.tanh(h1)
    out = rnnpool_patch(np.array([[[x0], [x1]]]), p)
    np.testing.assert_allclose(out[0], expected_a, rtol=0, atol=1e-15)


def test_state_is_multiplied_as_row_vector_h_at_U_and_x_at_W():
    """pre = x @ W + h @ U with W [in, h], U [h, h]: checks the orientation."""
    from rnnpool_keras.spec.float_reference import fastgrnn_sequence
    # linear cell: quantSigm gate with bias -10 -> z = 0, quantTanh = identity on [-1, 1],
    # sigmoid(100) = 1, sigmoid(-100) = 0  =>  h' = x @ W + h @ U
    W = np.array([[1.0, 0.0], [0.0, 0.0]])        # in = 2: only x[0] feeds unit 0
    U = np.array([[0.0, 0.5], [0.0, 0.0]])        # unit 0 feeds unit 1, not vice versa
    weights = (W, U, np.full(2, -10.0), np.zeros(2), 100.0, -100.0)
    xs = [np.array([0.2, 0.9]), np.array([0.4, -0.7])]
    h = fastgrnn_sequence(xs, weights, ACTIVATIONS["quantSigm"], ACTIVATIONS["quantTanh"])
    # step 1: h = [0.2, 0];  step 2: h = [0.4, 0.5 * 0.2]
    np.testing.assert_allclose(h, [0.4, 0.1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "quantSigm", "quantTanh"])
def test_activation_definitions_match_rnnpool_md(name):
    xs = np.array([-3.0, -1.0, -0.4, 0.0, 0.3, 1.0, 2.5])
    hand = {
        "sigmoid": [1 / (1 + math.exp(-v)) for v in xs],
        "tanh": [math.tanh(v) for v in xs],
        "relu": [max(v, 0.0) for v in xs],
        "quantSigm": [min(max((v + 1) / 2, 0.0), 1.0) for v in xs],
        "quantTanh": [min(max(v, -1.0), 1.0) for v in xs],
    }[name]
    np.testing.assert_allclose(ACTIVATIONS[name](xs), hand, rtol=0, atol=1e-15)


@pytest.mark.parametrize("gate", ["sigmoid", "tanh", "relu", "quantSigm", "quantTanh"])
@pytest.mark.parametrize("update", ["sigmoid", "tanh", "relu", "quantSigm", "quantTanh"])
def test_1x1_patch_uses_requested_gate_and_update_activations(gate, update):
    hand = {
        "sigmoid": _sig,
        "tanh": math.tanh,
        "relu": lambda v: max(v, 0.0),
        "quantSigm": lambda v: min(max((v + 1) / 2, 0.0), 1.0),
        "quantTanh": lambda v: min(max(v, -1.0), 1.0),
    }
    x = 0.6
    w1, bg1, bu1, zeta1, nu1 = 1.1, -0.2, 0.4, 0.3, -0.8
    w2, bg2, bu2, zeta2, nu2 = -0.9, 0.5, 0.1, 1.2, 0.2
    p = scalar_params(w1, 0.7, bg1, bu1, zeta1, nu1, w2, -0.4, bg2, bu2, zeta2, nu2)
    g, f = hand[gate], hand[update]
    z = g(w1 * x + bg1)
    s1 = (_sig(zeta1) * (1 - z) + _sig(nu1)) * f(w1 * x + bu1)
    z = g(w2 * s1 + bg2)
    s2 = (_sig(zeta2) * (1 - z) + _sig(nu2)) * f(w2 * s1 + bu2)
    out = rnnpool_patch(np.array([[[x]]]), p, gate, update)
    np.testing.assert_allclose(out, [s2] * 4, rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------
# Ordering of the four outputs, with an asymmetric patch
# ---------------------------------------------------------------------------

def _linear_cell_params(u1, u2):
    """Cells that reduce to the linear recurrence h' = x*W + h*U (k = h = 1).

    gate quantSigm with gate bias -10 gives z = 0; update quantTanh is the
    identity on [-1, 1]; zeta = 100, nu = -100 give sigmoid 1 / 0 (to 1e-43).
    """
    return scalar_params(1.0, u1, -10.0, 0.0, 100.0, -100.0,
                         1.0, u2, -10.0, 0.0, 100.0, -100.0)


def test_output_order_is_rowfwd_rowbwd_colfwd_colbwd_on_2x3_patch():
    P = np.array([[0.01, 0.02, 0.03],
                  [0.10, 0.20, 0.30]])  # r = 2 rows, c = 3 columns
    u1, u2 = 0.1, 0.5
    # Linear RNN: final state = sum_t x_t * u^(T-1-t)
    rows = [P[i, 2] + u1 * P[i, 1] + u1 ** 2 * P[i, 0] for i in range(2)]
    cols = [P[1, j] + u1 * P[0, j] for j in range(3)]
    a = rows[1] + u2 * rows[0]
    b = rows[0] + u2 * rows[1]
    c_fwd = cols[2] + u2 * cols[1] + u2 ** 2 * cols[0]
    d = cols[0] + u2 * cols[1] + u2 ** 2 * cols[2]
    expected = [a, b, c_fwd, d]
    assert len(set(np.round(expected, 12))) == 4  # all distinguishable

    out = rnnpool_patch(P[:, :, None], _linear_cell_params(u1, u2),
                        "quantSigm", "quantTanh")
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-14)

    # Same through the map-level function, in both data formats.
    x = P[None, :, :, None]
    out_map = rnnpool_reference(x, _linear_cell_params(u1, u2), (2, 3),
                                gate_activation="quantSigm",
                                update_activation="quantTanh")
    assert out_map.shape == (1, 1, 1, 4)
    np.testing.assert_allclose(out_map.ravel(), expected, rtol=0, atol=1e-14)
    out_cf = rnnpool_reference(np.transpose(x, (0, 3, 1, 2)), _linear_cell_params(u1, u2),
                               (2, 3), data_format="channels_first",
                               gate_activation="quantSigm", update_activation="quantTanh")
    assert out_cf.shape == (1, 4, 1, 1)
    np.testing.assert_allclose(out_cf.ravel(), expected, rtol=0, atol=1e-14)


def test_output_blocks_of_h2_values_keep_order_with_h2_greater_than_1():
    # h2 = 2: output is [a(2), b(2), c'(2), d(2)], not interleaved.
    rng = np.random.default_rng(3)
    p = random_params(rng, k=2, h1=3, h2=2)
    P = rng.normal(size=(3, 2, 2))
    out = rnnpool_patch(P, p)
    out_t = rnnpool_patch(np.transpose(P, (1, 0, 2)), p)
    # Transposing the patch swaps the row and column sweeps: (a,b,c',d) -> (c',d,a,b)
    np.testing.assert_allclose(out_t, np.concatenate([out[4:], out[:4]]), rtol=0, atol=1e-14)
    # Reversing the row order swaps a/b and reverses every column (no symmetry in c', d).
    out_f = rnnpool_patch(P[::-1], p)
    np.testing.assert_allclose(out_f[:2], out[2:4], rtol=0, atol=1e-14)
    np.testing.assert_allclose(out_f[2:4], out[:2], rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------
# Low rank, data format, batching
# ---------------------------------------------------------------------------

def test_low_rank_factors_equal_full_matrix_left_times_right():
    rng = np.random.default_rng(0)
    p = random_params(rng, k=3, h1=4, h2=3)
    low = dict(p)
    for prefix, n_in, h in (("rnn1_", 3, 4), ("rnn2_", 4, 3)):
        for name, rows in (("kernel", n_in), ("recurrent_kernel", h)):
            left = rng.normal(size=(rows, 2))
            right = rng.normal(size=(2, h))
            del low[prefix + name]
            low[prefix + name + "_left"] = left
            low[prefix + name + "_right"] = right
            p[prefix + name] = left @ right
    x = rng.normal(size=(2, 4, 5, 3))
    np.testing.assert_allclose(rnnpool_reference(x, low, (2, 3), (1, 2)),
                               rnnpool_reference(x, p, (2, 3), (1, 2)),
                               rtol=0, atol=1e-13)


def test_channels_first_is_transpose_of_channels_last():
    rng = np.random.default_rng(1)
    p = random_params(rng, k=2, h1=3, h2=2)
    x = rng.normal(size=(2, 5, 6, 2))
    cl = rnnpool_reference(x, p, (2, 3), (2, 1), "same", "channels_last")
    cf = rnnpool_reference(np.transpose(x, (0, 3, 1, 2)), p, (2, 3), (2, 1), "same",
                           "channels_first")
    assert cl.shape == (2, 3, 6, 8) and cf.shape == (2, 8, 3, 6)
    np.testing.assert_allclose(cf, np.transpose(cl, (0, 3, 1, 2)), rtol=0, atol=0)


def test_each_output_pixel_is_rnnpool_of_its_window_and_batch_items_independent():
    rng = np.random.default_rng(2)
    p = random_params(rng, k=2, h1=2, h2=2)
    x = rng.normal(size=(3, 7, 8, 2))
    out = rnnpool_reference(x, p, (3, 2), (2, 3))
    assert out.shape == (3, 3, 3, 8)  # floor((7-3)/2)+1, floor((8-2)/3)+1
    for n in range(3):
        for i in range(3):
            for j in range(3):
                win = x[n, 2 * i:2 * i + 3, 3 * j:3 * j + 2]
                np.testing.assert_array_equal(out[n, i, j], rnnpool_patch(win, p))
    np.testing.assert_array_equal(out[1:2], rnnpool_reference(x[1:2], p, (3, 2), (2, 3)))


def test_default_zeta_nu_100_do_not_overflow():
    rng = np.random.default_rng(4)
    p = random_params(rng, 2, 2, 2)
    for prefix in ("rnn1_", "rnn2_"):
        p[prefix + "zeta"], p[prefix + "nu"] = 100.0, -100.0
    with np.errstate(all="raise"):
        out = rnnpool_reference(rng.normal(size=(1, 3, 3, 2)), p, 3)
    assert np.all(np.isfinite(out))


# ---------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------

# (n, window, stride, valid size, same size, same padding), derived by hand:
# valid floor((n - w) / s) + 1, same ceil(n / s), total pad (same - 1) s + w - n.
GEOMETRY_CASES = [
    (9, 3, 2, 4, 5, (1, 1)),
    (4, 3, 2, 1, 2, (0, 1)),   # odd total: the extra zero goes after
    (5, 1, 5, 1, 1, (0, 0)),
    (7, 4, 3, 2, 3, (1, 2)),
    (2, 4, 1, None, 2, (1, 2)),  # window larger than the input: "same" only
]


@pytest.mark.parametrize("n, window, stride, valid, same, pads", GEOMETRY_CASES)
def test_output_size_and_same_padding_of_reference_and_spec(n, window, stride, valid,
                                                             same, pads):
    for output_length, padding in ((output_size, same_padding),
                                   (geometry.output_length, geometry.same_padding)):
        if valid is not None:
            assert output_length(n, window, stride, "valid") == valid
        assert output_length(n, window, stride, "same") == same
        assert padding(n, window, stride) == pads


def test_same_padding_asymmetric_puts_extra_zero_row_at_bottom_and_right():
    # H = W = 4, window 3, stride 2: H' = 2, total pad 1 -> (0 before, 1 after).
    rng = np.random.default_rng(5)
    p = random_params(rng, 2, 2, 2)
    x = rng.normal(size=(1, 4, 4, 2))
    out = rnnpool_reference(x, p, 3, 2, "same")
    assert out.shape == (1, 2, 2, 8)
    win = np.zeros((3, 3, 2))
    win[:2, :2] = x[0, 2:4, 2:4]
    np.testing.assert_array_equal(out[0, 1, 1], rnnpool_patch(win, p))
    np.testing.assert_array_equal(out[0, 0, 0], rnnpool_patch(x[0, 0:3, 0:3], p))


def test_same_padding_with_pad_on_both_sides_non_square():
    # H = 5, r = 4, s = 2: H' = 3, total 3 -> 1 top, 2 bottom.
    # W = 6, c = 3, s = 3: W' = 2, total 0 -> no width padding.
    rng = np.random.default_rng(6)
    p = random_params(rng, 1, 2, 2)
    x = rng.normal(size=(1, 5, 6, 1))
    out = rnnpool_reference(x, p, (4, 3), (2, 3), "same")
    assert out.shape == (1, 3, 2, 8)
    top = np.zeros((4, 3, 1))
    top[1:] = x[0, 0:3, 3:6]
    np.testing.assert_array_equal(out[0, 0, 1], rnnpool_patch(top, p))
    bottom = np.zeros((4, 3, 1))
    bottom[:2] = x[0, 3:5, 0:3]
    np.testing.assert_array_equal(out[0, 2, 0], rnnpool_patch(bottom, p))


@pytest.mark.parametrize("hw,pool,stride", [
    ((4, 4), (3, 3), (2, 2)),
    ((5, 7), (4, 3), (2, 3)),
    ((6, 5), (2, 3), (4, 1)),
    ((3, 8), (3, 2), (1, 3)),
])
def test_same_padding_windows_match_tensorflow_extract_patches(hw, pool, stride):
    """TF's SAME convention (extract_patches) gives the windows the reference uses."""
    tf = pytest.importorskip("tensorflow")
    H, W = hw
    x = np.arange(1, H * W + 1, dtype=np.float64).reshape(1, H, W, 1)  # 0 = padding
    patches = tf.image.extract_patches(
        tf.constant(x), sizes=[1, pool[0], pool[1], 1], strides=[1, stride[0], stride[1], 1],
        rates=[1, 1, 1, 1], padding="SAME").numpy()
    oh, ow = output_size(H, pool[0], stride[0], "same"), output_size(W, pool[1], stride[1], "same")
    assert patches.shape[1:3] == (oh, ow)
    pt, pb = same_padding(H, pool[0], stride[0])
    pl, pr = same_padding(W, pool[1], stride[1])
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    for i in range(oh):
        for j in range(ow):
            win = xp[0, i * stride[0]:i * stride[0] + pool[0], j * stride[1]:j * stride[1] + pool[1], 0]
            np.testing.assert_array_equal(patches[0, i, j], win.ravel())


# ---------------------------------------------------------------------------
# Parity with the authors' C reference (EdgeML VWW patch)
# ---------------------------------------------------------------------------

def test_reference_reproduces_edgeml_c_reference_golden_patch(golden):
    params = edgeml_state_dict_to_params(golden)
    assert params["rnn1_kernel"].shape == (8, 8) and params["rnn2_kernel"].shape == (8, 8)
    out = rnnpool_reference(golden["patch"][None], params, pool_size=6, strides=4)
    assert out.shape == (1, 1, 1, 32)
    np.testing.assert_allclose(out.ravel(), golden["output"].astype(np.float64),
                               rtol=0, atol=1e-6)
    # also channels_first (EdgeML itself feeds NCHW)
    out_cf = rnnpool_reference(np.transpose(golden["patch"], (2, 0, 1))[None], params, 6,
                               data_format="channels_first")
    np.testing.assert_allclose(out_cf.ravel(), out.ravel(), rtol=0, atol=0)
