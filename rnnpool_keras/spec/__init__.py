"""The RNNPool operator written down in NumPy: what every other stage follows.

Patch geometry, the MAdds count, the float64 reference, the int8 fixed-point
arithmetic (docs/int8_rnnpool.md) and its integer reference, and the custom-op
contract (docs/rnnpool_custom_op.md). Imports only NumPy (and flatbuffers for
the contract's options), never TensorFlow.
"""
