"""Every bad argument or input gets a ValueError that names it and what was expected."""
import numpy as np
import pytest



@pytest.mark.parametrize("kwargs, names, expected", [
    (dict(rnn1_units=0), ["rnn1_units"], "positive integer"),
    (dict(rnn2_units=-3), ["rnn2_units"], "positive integer"),
    (dict(rnn1_units=2.5), ["rnn1_units"], "positive integer"),
    (dict(rnn2_units=True), ["rnn2_units"], "positive integer"),
    (dict(pool_size=0), ["pool_size"], "positive integer"),
    (dict(pool_size=(2, -1)), ["pool_size"], "two positive integers"),
    (dict(pool_size=(2, 2, 2)), ["pool_size"], "two positive integers"),
    (dict(pool_size=2.0), ["pool_size"], "positive integer"),
    (dict(strides=0), ["strides"], "positive integer"),
    (dict(strides=(1, 1.5)), ["strides"], "two positive integers"),
    (dict(padding="full"), ["padding"], "['valid', 'same']"),
    (dict(data_format="NHWC"), ["data_format"], "['channels_last', 'channels_first']"),
    (dict(gate_activation="softmax"), ["gate_activation"], "quantSigm"),
    (dict(update_activation="gelu"), ["update_activation"], "quantTanh"),
    (dict(rnn1_kernel_rank=0), ["rnn1_kernel_rank"], "positive integer"),
    (dict(rnn2_recurrent_rank=1.5), ["rnn2_recurrent_rank"], "positive integer"),
    (dict(zeta_init="big"), ["zeta_init"], "real number"),
    # Several problems are all reported at once.
    (dict(rnn1_units=0, padding="full", strides=-1),
     ["rnn1_units", "padding", "strides"], "must be"),
])
def test_bad_constructor_argument_is_named_in_a_value_error(framework, kwargs, names, expected):
    _, RNNPool2D = framework
    arguments = dict(rnn1_units=4, rnn2_units=4, pool_size=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError) as error:
        RNNPool2D(**arguments)
    message = str(error.value)
    for name in names:
        assert f"`{name}`" in message
    assert expected in message


def test_pool_larger_than_a_valid_padded_input_is_rejected(framework):
    _, RNNPool2D = framework
    with pytest.raises(ValueError, match=r"`pool_size` \(6, 3\) is larger than the input height 5"):
        RNNPool2D(4, 4, (6, 3))(np.zeros((1, 5, 8, 2), np.float32))
    with pytest.raises(ValueError, match="larger than the input width 2"):
        RNNPool2D(4, 4, 3, data_format="channels_first")(np.zeros((1, 2, 5, 2), np.float32))
    # The same pool is fine with "same" padding.
    out = RNNPool2D(4, 4, (6, 3), padding="same")(np.zeros((1, 5, 8, 2), np.float32))
    assert tuple(out.shape) == (1, 1, 3, 16)  # ceil(5 / 6), ceil(8 / 3)


@pytest.mark.parametrize("shape", [(5, 5, 2), (1, 5, 5, 2, 1)])
def test_input_of_wrong_rank_is_rejected(framework, shape):
    _, RNNPool2D = framework
    with pytest.raises(ValueError, match="expected ndim=4"):
        RNNPool2D(4, 4, 2)(np.zeros(shape, np.float32))


def test_channel_count_changing_between_calls_is_rejected(framework):
    _, RNNPool2D = framework
    layer = RNNPool2D(4, 4, 2)
    layer(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="axis -1 of input shape to have value 3"):
        layer(np.zeros((1, 4, 4, 5), np.float32))
    with pytest.raises(ValueError, match="ndim=4"):
        layer(np.zeros((4, 4, 3), np.float32))


def test_unknown_channel_count_is_rejected_at_build(framework):
    keras_module, RNNPool2D = framework
    with pytest.raises(ValueError, match="known channel count"):
        RNNPool2D(4, 4, 2)(keras_module.Input((8, 8, None)))


def test_madds_before_build_is_a_clear_error(framework):
    _, RNNPool2D = framework
    with pytest.raises(ValueError, match="needs a built layer"):
        RNNPool2D(4, 4, 2).madds_per_patch()
