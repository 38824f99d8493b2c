"""Peak RAM as the RNNPool paper counts it (Appendix E), from a .tflite graph.

The graph is cut into blocks, each run on its own with its input and output
in RAM; the peak is the largest block working set. Sizes are the tensors'
own bytes (1 per value in an int8 model, as in the paper's VWW and face
figures; 4 in a float model, as in its ImageNet figures). Three kinds:

- "mbconv": [CONV_2D 1x1 expand ->] [PAD ->] DEPTHWISE_CONV_2D -> CONV_2D 1x1
  project [-> ADD of the block input]. Working set: block input + block
  output, both whole as in the layer-by-layer convention of E.2, plus the
  rows of the expanded tensor that E.1's row-by-row schedule (Claim 4)
  carries from one output row to the next: (kh - s) W C_expanded for a
  kh x kw depthwise of stride s. The expanded tensor is never whole; the
  few columns in flight are not counted (nor in E.1). Without an expand conv
  the depthwise reads the block input, so nothing is added.
  An expansion split into channel groups (converters.conversion.channel_groups:
  expand_g -> depthwise_g pairs joined by a CONCATENATION) is the same block,
  C_expanded the sum of the groups'.
- "rnnpool": the RNNPool op, the edge padding / slicing after it (written in
  place into its output buffer), and, when a chain of convolutions, pooling
  and padding leads to it from the model input, that chain: the block is
  then computed patch by patch straight from the image, which is read one
  receptive field at a time (E.3) and not held (the paper's 225 KB for
  RNNPool-Face-Quant is less than its 921,600-byte VGA image; a layer that
  reads the image whole counts it, as the baseline's first convolution
  does). Working set: block output +
  one patch's window of each tensor of the chain + RNNPool scratch; when the
  input is computed by an earlier block instead, that input is held whole.
- "layer": any other operator, layer by layer: its activation inputs and
  outputs, plus the scratch its kernel requests. A PAD read only by a
  convolution is part of that convolution's block (padding is added on the
  fly, E.1), so the padded copy is not counted.

KB = 1024 bytes, as in the paper (80 x 60 x 48 bytes = "225 KB"). What these
rules give for the paper's VWW pair: bench/RESULTS.md, "Model zoo".
"""
import collections

from rnnpool_keras.spec import contract
from converters.tflite_io import tflite_model

Block = collections.namedtuple(
    "Block", ["kind", "operators", "input_bytes", "output_bytes", "extra_bytes"])
Block.__doc__ = ("Operators run as one unit: kind, operator indices, bytes of the "
                 "inputs and outputs it holds, bytes of its partial buffers.")

_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
_PADS = ("PAD", "PADV2")
# Operators whose output patch depends on a bounded window of their input.
_STEM_OPS = _CONVS + _PADS + ("AVERAGE_POOL_2D", "MAX_POOL_2D")
# Operators that only move values of the RNNPool output around.
_LAYOUT_OPS = _PADS + ("STRIDED_SLICE", "SLICE", "CONCATENATION", "RESHAPE")


def block_bytes(block):
    """Working set of a block in bytes."""
    return block.input_bytes + block.output_bytes + block.extra_bytes


class _Graph:
    """The subgraph with the look-ups the block rules need."""

    def __init__(self, model, scratch):
        self.model = model
        self.subgraph = model.subgraphs[0]
        self.ops = self.subgraph.operators
        self.names = [tflite_model.op_name(model, op) for op in self.ops]
        self.scratch = scratch
        self.producer = tflite_model.producers(self.subgraph)
        self.readers = tflite_model.consumers(self.subgraph)
        self.model_inputs = {int(t) for t in self.subgraph.inputs}
        self.model_outputs = {int(t) for t in self.subgraph.outputs}
        self.folded_pads = {}  # PAD op -> the convolution that pads on the fly
        for index, name in enumerate(self.names):
            reader = self.only_reader(self.output(index))
            if name in _PADS and reader is not None and self.names[reader] in _CONVS:
                self.folded_pads[index] = reader

    def tensor(self, index):
        return self.subgraph.tensors[index]

    def nbytes(self, tensor):
        return tflite_model.tensor_bytes(self.tensor(tensor))

    def output(self, op):
        return int(self.ops[op].outputs[0])

    def activations(self, op):
        """Non-constant inputs of an op, a folded PAD looked through."""
        result = []
        for t in self.ops[op].inputs:
            if t < 0 or tflite_model.is_constant(self.model, self.tensor(t)):
                continue
            producer = self.producer.get(int(t))
            if producer in self.folded_pads:
                t = self.ops[producer].inputs[0]
            result.append(int(t))
        return result

    def only_reader(self, tensor):
        """The one op reading `tensor`, None if it has several or is a model output."""
        readers = self.readers.get(tensor, [])
        if len(readers) == 1 and tensor not in self.model_outputs:
            return readers[0]
        return None

    def is_pointwise_conv(self, op):
        if self.names[op] != "CONV_2D":
            return False
        options = self.ops[op].builtinOptions
        _, kh, kw, _ = tflite_model.shape_of(self.tensor(self.ops[op].inputs[1]))
        return (kh, kw, options.strideH, options.strideW) == (1, 1, 1, 1)


def _mbconv(graph, start):
    """The MBConv block starting at op `start`, or None."""
    ops = []
    expand = start if graph.is_pointwise_conv(start) else None
    op = start
    if expand is not None:
        ops.append(expand)
        op = graph.only_reader(graph.output(expand))
        if op is None:
            return None
    if op in graph.folded_pads:
        ops.append(op)
        op = graph.folded_pads[op]
    if graph.names[op] != "DEPTHWISE_CONV_2D":
        return None
    depthwise = op
    expanded_channels = None if expand is None else \
        tflite_model.shape_of(graph.tensor(graph.output(expand)))[-1]
    project = graph.only_reader(graph.output(depthwise))
    groups = None if expand is None or project is None else \
        _channel_groups(graph, project, expand)
    if groups is not None:
        ops, project = groups[0], graph.only_reader(graph.output(project))
        expanded_channels = groups[1]
    else:
        ops.append(depthwise)
    if project is None or not graph.is_pointwise_conv(project):
        return None
    ops.append(project)
    block_input = graph.activations(expand if expand is not None else depthwise)[0]
    block_output = graph.output(project)
    add = graph.only_reader(block_output)
    if add is not None and graph.names[add] == "ADD" and \
            sorted(graph.activations(add)) == sorted([block_input, block_output]):
        ops.append(add)
        block_output = graph.output(add)
    extra = 0
    if expand is not None:
        expanded = graph.tensor(graph.output(expand))
        _, _, width, _ = tflite_model.shape_of(expanded)
        _, kh, _, _ = tflite_model.shape_of(graph.tensor(graph.ops[depthwise].inputs[1]))
        rows = max(kh - graph.ops[depthwise].builtinOptions.strideH, 0)
        extra = rows * width * expanded_channels * tflite_model.ITEM_BYTES[expanded.type]
    return Block("mbconv", ops, graph.nbytes(block_input), graph.nbytes(block_output),
                 extra)


def _channel_groups(graph, concatenation, first_expand):
    """(ops, expanded channels) of an expansion split into channel groups whose
    CONCATENATION is op `concatenation` and first expand conv `first_expand`;
    None if that op does not join such groups."""
    if graph.names[concatenation] != "CONCATENATION" or \
            graph.ops[concatenation].builtinOptions.axis not in (3, -1):
        return None
    block_input = graph.activations(first_expand)[0]
    ops, channels = [], 0
    for piece in graph.ops[concatenation].inputs:
        depthwise = graph.producer.get(int(piece))
        if depthwise is None or graph.names[depthwise] != "DEPTHWISE_CONV_2D":
            return None
        expand = graph.producer.get(graph.activations(depthwise)[0])
        if expand is None or not graph.is_pointwise_conv(expand) or \
                graph.only_reader(graph.output(expand)) != depthwise or \
                graph.activations(expand) != [block_input]:
            return None
        ops += [expand, depthwise]
        channels += tflite_model.shape_of(graph.tensor(graph.output(expand)))[-1]
    if ops[0] != first_expand:
        return None
    return ops + [concatenation], channels


def _stem(graph, tensor, reader):
    """Ops computing `tensor` patch by patch from the model input, or None."""
    chain = []
    while tensor not in graph.model_inputs:
        producer = graph.producer.get(tensor)
        if producer is None or graph.names[producer] not in _STEM_OPS or \
                graph.only_reader(tensor) != reader:
            return None
        inputs = [int(t) for t in graph.ops[producer].inputs
                  if t >= 0 and not tflite_model.is_constant(graph.model, graph.tensor(t))]
        if len(inputs) != 1:
            return None
        chain.insert(0, producer)
        tensor, reader = inputs[0], producer
    return chain


def _window(size, op, graph):
    """Rows, columns of an op's input that one (rows, columns) output window reads."""
    if graph.names[op] in _PADS:
        return size  # padding is virtual: the window shrinks, if anything
    options = graph.ops[op].builtinOptions
    if graph.names[op] in _CONVS:
        _, kh, kw, _ = tflite_model.shape_of(graph.tensor(graph.ops[op].inputs[1]))
        kh = (kh - 1) * options.dilationHFactor + 1
        kw = (kw - 1) * options.dilationWFactor + 1
    else:
        kh, kw = options.filterHeight, options.filterWidth
    return ((size[0] - 1) * options.strideH + kh, (size[1] - 1) * options.strideW + kw)


def _window_bytes(graph, tensor, size):
    tensor = graph.tensor(tensor)
    _, height, width, channels = tflite_model.shape_of(tensor)
    return (min(size[0], height) * min(size[1], width) * channels
            * tflite_model.ITEM_BYTES[tensor.type])


def _rnnpool(graph, index):
    """The RNNPool block around op `index`."""
    op = graph.ops[index]
    rnnpool_input = int(op.inputs[0])
    stem = _stem(graph, rnnpool_input, index)
    ops, extra, input_bytes = [index], graph.scratch[index], 0
    if stem is None:
        input_bytes = graph.nbytes(rnnpool_input)  # made whole by an earlier block
    else:
        ops = stem + ops
        options = contract.decode(op.customOptions)
        size = tuple(options["pool_size"])
        if options["version"] == contract.FUSED_STEM_VERSION:
            # The op's own convolution: its rows are in the op's scratch (the
            # band); the image window one patch reads comes in as below.
            _, kh, kw, _ = tflite_model.shape_of(graph.tensor(op.inputs[9]))
            size = ((size[0] - 1) * options["stem_stride_h"] + kh,
                    (size[1] - 1) * options["stem_stride_w"] + kw)
        extra += _window_bytes(graph, rnnpool_input, size)
        for stem_op in reversed(stem):
            size = _window(size, stem_op, graph)
            source = int(graph.ops[stem_op].inputs[0])
            producer = graph.producer.get(source)
            # A padded window is never stored: its reader pads on the fly.
            if producer is None or graph.names[producer] not in _PADS:
                extra += _window_bytes(graph, source, size)
    # Edge padding and slicing that only rearrange the RNNPool output.
    written = {graph.output(index)}
    for later in range(index + 1, len(graph.ops)):
        activations = graph.activations(later)
        if graph.names[later] not in _LAYOUT_OPS or later in graph.folded_pads or \
                not activations or not set(activations) <= written:
            break
        ops.append(later)
        written.update(int(t) for t in graph.ops[later].outputs)
    inside = set(ops)
    outputs = [t for t in sorted(written) if t in graph.model_outputs or
               any(reader not in inside for reader in graph.readers.get(t, []))]
    return Block("rnnpool", sorted(ops), input_bytes,
                 sum(graph.nbytes(t) for t in outputs), extra)


def _layer(graph, index):
    """One operator (with the PAD it folds in) run layer by layer."""
    ops = [pad for pad, conv in graph.folded_pads.items() if conv == index] + [index]
    tensors = set(graph.activations(index))
    outputs = {int(t) for t in graph.ops[index].outputs} - tensors
    return Block("layer", sorted(ops), sum(graph.nbytes(t) for t in tensors),
                 sum(graph.nbytes(t) for t in outputs), graph.scratch[index])


def find_blocks(model, scratch):
    """The blocks of a model's main subgraph, in execution order.

    Args:
      model: a schema ModelT with one subgraph.
      scratch: per operator, the scratch bytes its kernel requests.

    Returns:
      A list of Block; every operator is in exactly one.
    """
    graph = _Graph(model, scratch)
    blocks, taken = [], set()

    def take(block):
        blocks.append(block)
        taken.update(block.operators)

    # RNNPool first: its stem would otherwise be claimed as plain layers.
    for index, name in enumerate(graph.names):
        if name == contract.CUSTOM_CODE:
            take(_rnnpool(graph, index))
    for index in range(len(graph.ops)):
        if index in taken:
            continue
        block = _mbconv(graph, index)
        if block is not None and not taken & set(block.operators):
            take(block)
    for index in range(len(graph.ops)):
        conv = graph.folded_pads.get(index)
        if index in taken or (conv is not None and conv not in taken):
            continue  # a folded PAD joins its convolution's block below
        take(_layer(graph, index))
    return sorted(blocks, key=lambda block: block.operators[0])
