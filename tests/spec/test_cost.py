"""MAdds counting, against the paper's figures and hand-derived counts."""
from rnnpool_keras import madds_per_patch


def test_vww_configuration_costs_12288_madds_per_patch_as_in_the_paper():
    assert madds_per_patch((6, 6), 8, 8, 8) == 12288


def test_face_configuration_by_hand():
    # 2*8*8*(4*16 + 16*16) + 2*(8+8)*(16*16 + 16*16) = 40960 + 16384
    assert madds_per_patch((8, 8), 4, 16, 16) == 57344


def test_non_square_patch_by_hand():
    # r=2, c=3, k=1, h1=2, h2=3: 2*6*(2 + 4) + 2*5*(6 + 9) = 72 + 150
    assert madds_per_patch((2, 3), 1, 2, 3) == 222


def test_low_rank_counts_both_factors():
    # RNN1 W [8, 8] at rank 2 costs 2*(8+8) = 32 instead of 64 per step.
    full = madds_per_patch((6, 6), 8, 8, 8)
    low = madds_per_patch((6, 6), 8, 8, 8, rnn1_kernel_rank=2)
    assert full - low == 2 * 36 * (64 - 32)
