"""Multiply-adds of RNNPool, counted as in the paper (docs/rnnpool_float.md, section 6)."""


def _matmul_madds(rows, cols, rank):
    """MAdds of x @ W for W [rows, cols], full or as a rank-`rank` product."""
    return rows * cols if rank is None else rank * (rows + cols)


def madds_per_patch(pool_size, in_channels, rnn1_units, rnn2_units,
                    rnn1_kernel_rank=None, rnn1_recurrent_rank=None,
                    rnn2_kernel_rank=None, rnn2_recurrent_rank=None):
    """MAdds of one patch: 2*r*c RNN1 steps plus 2*(r + c) RNN2 steps.

    With full-rank matrices this is 2rc(k h1 + h1^2) + 2(r + c)(h1 h2 + h2^2),
    the paper's count: each step's input projection is counted, and element-wise
    gate work is not.
    """
    r, c = pool_size
    k, h1, h2 = in_channels, rnn1_units, rnn2_units
    rnn1_step = (_matmul_madds(k, h1, rnn1_kernel_rank)
                 + _matmul_madds(h1, h1, rnn1_recurrent_rank))
    rnn2_step = (_matmul_madds(h1, h2, rnn2_kernel_rank)
                 + _matmul_madds(h2, h2, rnn2_recurrent_rank))
    return 2 * r * c * rnn1_step + 2 * (r + c) * rnn2_step
