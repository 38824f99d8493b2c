"""converters.edgeml.load_state_dict: EdgeML-trained RNNPool weights in RNNPool2D."""
import numpy as np
import pytest

from converters import edgeml
from rnnpool_keras.spec.float_reference import edgeml_state_dict_to_params, rnnpool_patch

PREFIXES = {"rnn1": "cell_rnn.cell.", "rnn2": "cell_bidirrnn.cell."}


def _random_state_dict(rng, k, h1, h2, low_rank=None):
    """An EdgeML-named state_dict; `low_rank` = (rank W, rank U) uses W1/W2/U1/U2."""
    state = {}
    for prefix, inputs, units in (("cell_rnn.cell.", k, h1), ("cell_bidirrnn.cell.", h1, h2)):
        if low_rank is None:
            state[prefix + "W"] = rng.normal(0, 0.5, (inputs, units))
            state[prefix + "U"] = rng.normal(0, 0.5, (units, units))
        else:
            rank_w, rank_u = low_rank
            state[prefix + "W1"] = rng.normal(0, 0.5, (inputs, rank_w))
            state[prefix + "W2"] = rng.normal(0, 0.5, (rank_w, units))
            state[prefix + "U1"] = rng.normal(0, 0.5, (units, rank_u))
            state[prefix + "U2"] = rng.normal(0, 0.5, (rank_u, units))
        state[prefix + "bias_gate"] = rng.normal(0, 0.5, (1, units))
        state[prefix + "bias_update"] = rng.normal(0, 0.5, (1, units))
        state[prefix + "zeta"] = rng.uniform(-2, 2, (1, 1))
        state[prefix + "nu"] = rng.uniform(-2, 2, (1, 1))
    return {key: value.astype(np.float32) for key, value in state.items()}


def test_authors_vww_weights_reproduce_their_c_reference_output(framework, golden_path):
    _, RNNPool2D = framework
    golden = dict(np.load(golden_path))
    layer = RNNPool2D(8, 8, 6)
    layer.build((None, 6, 6, 8))
    edgeml.load_state_dict(layer, {k: v for k, v in golden.items() if k.startswith("cell_")})
    output = np.asarray(layer(golden["patch"][None])).reshape(-1)
    np.testing.assert_allclose(output, golden["output"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("low_rank", [None, (2, 3)])
def test_loaded_layer_matches_the_reference_run_on_the_same_numbers(framework, low_rank):
    _, RNNPool2D = framework
    rng = np.random.default_rng(3)
    state = _random_state_dict(rng, k=3, h1=5, h2=4, low_rank=low_rank)
    ranks = {} if low_rank is None else dict(
        rnn1_kernel_rank=2, rnn1_recurrent_rank=3, rnn2_kernel_rank=2, rnn2_recurrent_rank=3)
    layer = RNNPool2D(5, 4, (3, 4), **ranks)
    layer.build((None, 3, 4, 3))
    edgeml.load_state_dict(layer, state)
    patch = rng.normal(size=(3, 4, 3)).astype(np.float32)
    expected = rnnpool_patch(patch, edgeml_state_dict_to_params(state))
    np.testing.assert_allclose(np.asarray(layer(patch[None])).reshape(-1), expected,
                               rtol=0, atol=1e-5)


def test_prefix_selects_the_rnnpool_module_of_a_larger_model():
    from rnnpool_keras import RNNPool2D
    state = _random_state_dict(np.random.default_rng(4), k=2, h1=3, h2=2)
    whole_model = {"rnn_model." + key: value for key, value in state.items()}
    whole_model["conv.weight"] = np.zeros((8, 3, 3, 3), np.float32)
    layer = RNNPool2D(3, 2, 2)
    layer.build((None, 4, 4, 2))
    edgeml.load_state_dict(layer, whole_model, prefix="rnn_model.")
    np.testing.assert_array_equal(np.asarray(layer.rnn2_recurrent_kernel),
                                  state["cell_bidirrnn.cell.U"])
    assert float(np.asarray(layer.rnn1_zeta)) == pytest.approx(
        float(state["cell_rnn.cell.zeta"][0, 0]))


def test_every_mismatch_is_reported_in_one_error_and_nothing_is_loaded():
    from rnnpool_keras import RNNPool2D
    state = _random_state_dict(np.random.default_rng(5), k=2, h1=3, h2=2)
    del state["cell_rnn.cell.U"]                                  # missing
    state["cell_rnn.cell.W1"] = np.zeros((2, 1), np.float32)      # unexpected (low rank)
    state["cell_bidirrnn.cell.bias_gate"] = np.zeros((1, 5), np.float32)  # wrong shape
    layer = RNNPool2D(3, 2, 2)
    layer.build((None, 4, 4, 2))
    before = [np.asarray(w).copy() for w in layer.weights]
    with pytest.raises(ValueError) as error:
        edgeml.load_state_dict(layer, state)
    message = str(error.value)
    assert "missing key 'cell_rnn.cell.U' (shape (3, 3))" in message
    assert "unexpected key 'cell_rnn.cell.W1'" in message
    assert "'cell_bidirrnn.cell.bias_gate' has shape (1, 5), expected (1, 2)" in message
    for old, weight in zip(before, layer.weights):
        np.testing.assert_array_equal(np.asarray(weight), old)


def test_low_rank_layer_asks_for_low_rank_keys():
    from rnnpool_keras import RNNPool2D
    state = _random_state_dict(np.random.default_rng(6), k=2, h1=3, h2=2)
    layer = RNNPool2D(3, 2, 2, rnn1_kernel_rank=1)
    layer.build((None, 4, 4, 2))
    with pytest.raises(ValueError, match=r"missing key 'cell_rnn.cell.W1' \(shape \(2, 1\)\)"):
        edgeml.load_state_dict(layer, state)


def test_unbuilt_layer_is_a_clear_error():
    from rnnpool_keras import RNNPool2D
    with pytest.raises(ValueError, match="needs a built RNNPool2D"):
        edgeml.load_state_dict(RNNPool2D(3, 2, 2), {})
