"""The C++ float kernel core (tflm_kernels) against the float64 NumPy reference.

float32 arithmetic, so agreement is within 1e-5 (absolute, plus 1e-5 relative
for the few cases whose states grow large), not bit for bit.
"""
import numpy as np
import pytest

import rnnpool_keras.spec.float_reference as nr
from rnnpool_keras.spec.random_params import random_float_params
from tflm_kernels import core

ACTIVATIONS = ("sigmoid", "tanh", "relu", "quantSigm", "quantTanh")
TOLERANCE = dict(atol=1e-5, rtol=1e-5)


def check(x, params, pool, strides, padding, gate, update):
    expected = nr.rnnpool_reference(x, params, pool, strides, padding,
                                    gate_activation=gate, update_activation=update)
    got = core.rnnpool_float(x, params, pool, strides, padding, gate, update)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOLERANCE)
    return got


@pytest.mark.slow
@pytest.mark.parametrize("gate", ACTIVATIONS)
@pytest.mark.parametrize("update", ACTIVATIONS)
def test_every_activation_pair_matches_the_reference(gate, update):
    rng = np.random.default_rng(10 * ACTIVATIONS.index(gate) + ACTIVATIONS.index(update))
    # Small weights keep a relu gate's states (which can grow geometrically) O(1).
    scale = 0.2 if gate == "relu" else 0.5
    params = random_float_params(rng, 3, 5, 4, scale=scale, zeta_nu=3.0)
    for padding in ("valid", "same"):
        x = rng.normal(size=(2, 8, 9, 3))
        check(x, params, (3, 4), (2, 3), padding, gate, update)


def test_random_shapes_match_the_reference():
    rng = np.random.default_rng(1)
    for _ in range(25):
        r, c = (int(v) for v in rng.integers(1, 6, size=2))
        sr, sc = (int(v) for v in rng.integers(1, 4, size=2))
        k, h1, h2 = (int(v) for v in rng.integers(1, 9, size=3))
        padding = str(rng.choice(["valid", "same"]))
        gate = str(rng.choice(["sigmoid", "tanh", "quantSigm", "quantTanh"]))
        update = str(rng.choice(ACTIVATIONS))
        height = int(rng.integers(r if padding == "valid" else 1, r + 6))
        width = int(rng.integers(c if padding == "valid" else 1, c + 6))
        # Weights ~ N(0, 0.3^2): a quantTanh gate (z in [-1, 1]) multiplies the
        # update by up to 2 sigmoid(zeta) + sigmoid(nu), so larger weights make
        # float32 rounding grow past 1e-5 over a 5-step sweep.
        params = random_float_params(rng, k, h1, h2, scale=0.3, zeta_nu=3.0)
        x = rng.normal(size=(1, height, width, k))
        check(x, params, (r, c), (sr, sc), padding, gate, update)


def test_default_zeta_nu_and_large_patches():
    """zeta = 100, nu = -100 (sigmoid 1 and 0, the RNNPool defaults); k and h up to 32."""
    rng = np.random.default_rng(2)
    params = random_float_params(rng, 32, 32, 16, scale=0.1)
    for prefix in ("rnn1_", "rnn2_"):
        params[prefix + "zeta"], params[prefix + "nu"] = 100.0, -100.0
    check(rng.normal(size=(1, 12, 12, 32)), params, (12, 12), (1, 1), "valid",
          "sigmoid", "tanh")


def test_authors_vww_patch_reproduces_their_c_reference(golden):
    params = nr.edgeml_state_dict_to_params(
        {k: v for k, v in golden.items() if k.startswith("cell_")})
    got = core.rnnpool_float_patch(golden["patch"], params, (6, 6))
    np.testing.assert_allclose(got, golden["output"], rtol=0, atol=1e-5)


def test_patch_entry_point_equals_the_whole_map():
    rng = np.random.default_rng(3)
    params = random_float_params(rng, 3, 4, 5, scale=0.5)
    x = rng.normal(size=(1, 10, 9, 3)).astype(np.float32)
    whole = core.rnnpool_float(x, params, (4, 3), (3, 2), "same")
    # same: rows ceil(10/3) = 4, total pad (4-1)*3+4-10 = 3 -> 1 before;
    # columns ceil(9/2) = 5, total pad (5-1)*2+3-9 = 2 -> 1 before.
    for i in range(whole.shape[1]):
        for j in range(whole.shape[2]):
            got = core.rnnpool_float_patch(x[0], params, (4, 3), top=i * 3 - 1, left=j * 2 - 1)
            np.testing.assert_array_equal(got, whole[0, i, j])


@pytest.mark.parametrize("top,left", [(2**31 - 1, 0), (-2**31, 5), (1, 2**31 - 1),
                                      (2**31 - 1, -2**31)])
def test_patch_corner_at_the_ends_of_int32_is_all_padding(top, left):
    """No overflow of top + row: a patch wholly outside is zero padding only."""
    rng = np.random.default_rng(7)
    params = random_float_params(rng, 3, 4, 5)
    image = rng.normal(size=(4, 6, 3)).astype(np.float32)
    expected = nr.rnnpool_reference(np.zeros((1, 3, 2, 3)), params, (3, 2), (1, 1), "valid")
    got = core.rnnpool_float_patch(image, params, (3, 2), top=top, left=left)
    np.testing.assert_allclose(got, expected[0, 0, 0], **TOLERANCE)


def test_scratch_bytes_float():
    # proj1 36*8*4 + proj2 6*8*4 + acc 32 + states1 96*4 + state2 32 + gate, update 32 each.
    assert core.scratch_bytes_float(8, 8, 8, (6, 6)) == 1152 + 192 + 32 + 384 + 32 + 64


def test_low_rank_params_are_refused():
    rng = np.random.default_rng(4)
    params = random_float_params(rng, 3, 4, 5)
    params["rnn1_kernel_left"] = params.pop("rnn1_kernel")[:, :2]
    params["rnn1_kernel_right"] = np.zeros((2, 4))
    with pytest.raises(ValueError, match="full-rank"):
        core.rnnpool_float(np.zeros((1, 4, 4, 3)), params, 2)


def test_bad_sizes_are_refused():
    rng = np.random.default_rng(5)
    params = random_float_params(rng, 3, 4, 5)
    with pytest.raises(ValueError, match="pool"):
        core.rnnpool_float(np.zeros((1, 80, 80, 3)), params, 65)
    with pytest.raises(ValueError, match="strides"):
        core.rnnpool_float(np.zeros((1, 8, 8, 3)), params, 2, strides=(0, 1))
    with pytest.raises(ValueError, match="channels"):
        core.rnnpool_float(np.zeros((1, 8, 8, 2)), params, 2)
