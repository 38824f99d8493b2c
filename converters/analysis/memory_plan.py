"""The tensor arena TFLM plans for a model: lifetimes, then greedy offsets.

Follows the rules of tflite-micro's `micro_allocation_info.cc` (which tensors
the planner places and when each is live) and
`memory_planner/greedy_memory_planner.cc` (where each goes), so the planned
(non-persistent) part of the arena is known on the host, for any op set,
custom ops included:

- Planned: every tensor with no constant data that is not a variable and has
  a non-zero size; variables get persistent memory instead (not planned here).
- Time is counted in allocation scopes: 0 before the first operator, i + 1
  while operator i runs. A tensor lives from the scope of the op that writes
  it (0 for a model input) to the last scope that reads or writes it; model
  outputs live to the end. A scratch buffer lives for its op's scope only.
- Every size is rounded up to 16 bytes (MicroArenaBufferAlignment).
- Buffers are placed largest first (ties in reverse order of adding, as
  TFLM lists them from the tail before its stable sort; added: tensors by
  index, then scratch buffers in request order), each at the
  lowest offset whose gap fits it among the already placed buffers that are
  live at the same time. The arena is the highest end offset.
"""
import bisect
import collections

from converters.tflite_io import tflite_model

ALIGNMENT = 16  # tflite::MicroArenaBufferAlignment()
NEVER_USED = -1  # the lifetime TFLM leaves on a planned tensor no operator touches

Buffer = collections.namedtuple("Buffer", ["size", "first", "last"])
Buffer.__doc__ = "A planned buffer: aligned size in bytes, first and last scope it is live."


def align(size):
    """`size` bytes rounded up to the arena alignment."""
    return -(-int(size) // ALIGNMENT) * ALIGNMENT


def planned_tensor_bytes(model, subgraph):
    """{tensor index: bytes} of the tensors TFLM places in the arena (ModelT, SubGraphT)."""
    planned = {}
    for index, tensor in enumerate(subgraph.tensors):
        if tflite_model.is_constant(model, tensor) or tensor.isVariable:
            continue
        size = tflite_model.tensor_bytes(tensor)
        if size:
            planned[index] = size
    return planned


def tensor_lifetimes(subgraph, planned):
    """{tensor index: (first scope, last scope)} for the tensors in `planned`.

    `subgraph` is a schema SubGraphT; `planned` the indices of its planned
    tensors. A planned tensor no operator touches gets (-1, -1), as in TFLM.
    """
    first, last = {}, {}

    def create(tensor, scope):
        if tensor in planned:
            first.setdefault(tensor, scope)

    def use(tensor, scope):
        if tensor in planned:
            last[tensor] = scope

    for tensor in subgraph.inputs:
        create(int(tensor), 0)
        use(int(tensor), 0)
    scope = 0
    for op in subgraph.operators:
        scope += 1
        for tensor in op.outputs:
            create(int(tensor), scope)
        for tensor in op.inputs:
            if tensor >= 0:  # -1 marks an omitted optional input
                use(int(tensor), scope)
        for tensor in op.outputs:
            use(int(tensor), scope)
    for tensor in subgraph.outputs:
        create(int(tensor), scope)
        use(int(tensor), scope)
    return {tensor: (first.get(tensor, NEVER_USED), last.get(tensor, NEVER_USED))
            for tensor in planned}


def _overlap(a, b):
    return not (a.first > b.last or b.first > a.last)


def greedy_offsets(buffers):
    """Offsets (bytes) TFLM's GreedyMemoryPlanner gives `buffers`, in their order.

    `buffers`: Buffer tuples in the order the allocator adds them.
    """
    # TFLM lists online buffers from the tail (last added first), then bubble-
    # sorts by size, which is stable: equal sizes go last added first.
    order = sorted(reversed(range(len(buffers))), key=lambda i: -buffers[i].size)
    offsets = [None] * len(buffers)
    placed_offsets, placed = [], []  # placed buffers in offset order
    for index in order:
        wanted = buffers[index]
        candidate = 0
        for offset, other in zip(placed_offsets, placed):
            if not _overlap(buffers[other], wanted):
                continue
            if offset - candidate >= wanted.size:
                break  # the gap before this live buffer is big enough
            candidate = max(candidate, offset + buffers[other].size)
        offsets[index] = candidate
        # After any buffer already at the same offset, as TFLM's list insert does.
        position = bisect.bisect_right(placed_offsets, candidate)
        placed_offsets.insert(position, candidate)
        placed.insert(position, index)
    return offsets


def arena_bytes(buffers):
    """Bytes of arena the greedy plan of `buffers` needs (0 for no buffers)."""
    offsets = greedy_offsets(buffers)
    return max((offset + buffer.size for offset, buffer in zip(offsets, buffers)),
               default=0)


def plan_buffers(subgraph, tensor_bytes, planned, scratch_requests):
    """The Buffer list TFLM's allocator hands its planner for one subgraph.

    Args:
      subgraph: a schema SubGraphT (the model's only subgraph).
      tensor_bytes: {tensor index: bytes} of every tensor in `planned`.
      planned: indices of the tensors TFLM plans (see the module docstring).
      scratch_requests: per operator, the list of scratch sizes (bytes) its
        Prepare requests, in request order.

    Returns:
      Buffers: the planned tensors by index, then the scratch buffers.
    """
    lifetimes = tensor_lifetimes(subgraph, planned)
    buffers = [Buffer(align(tensor_bytes[t]), *lifetimes[t]) for t in sorted(planned)]
    for op_index, sizes in enumerate(scratch_requests):
        buffers.extend(Buffer(align(size), op_index + 1, op_index + 1) for size in sizes)
    return buffers
