"""What a converted model costs: memory (paper convention and TFLM arena),
per-operator MAdds and scratch, and the memory plot."""
