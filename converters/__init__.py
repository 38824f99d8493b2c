"""Tools that move RNNPool models between frameworks and towards the device."""
