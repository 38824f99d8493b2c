"""converters.analysis.memory: what a .tflite model costs in RAM, flash and MAdds.

- `memory_report(model_bytes)`: a dict (JSON-ready) with a per-operator table,
  the paper's peak RAM, TFLM's planned arena, MAdds, parameters, RNNPool ops.
- `format_table(report)`: the table and totals as markdown text.
- `plot_memory(reports, path, labels=None)`: live memory per operator as a PNG
  (needs matplotlib; see converters.analysis.memory_plot).

Three RAM figures, for three questions:
- `peak_activation_bytes`: the paper's convention (Appendix E), blocks run
  row by row / patch by patch; converters.analysis.paper_memory says what is counted.
- `tflm_arena_bytes`: the planned part of the tensor arena TFLM's greedy
  planner lays out when the model runs layer by layer (converters.analysis.memory_plan),
  alignment and fragmentation included. The arena a device needs is this plus
  TFLM's persistent section (tensor structs, op data, variables).
- `peak_live_bytes`: layer by layer, the largest sum of tensors live at once
  plus the op's scratch, without alignment: the floor under any planner.
"""
from converters.analysis import memory_plan
from converters.analysis import op_costs
from converters.analysis import paper_memory
from converters.tflite_io import model_checks
from converters.tflite_io import tflite_model
from converters.analysis.memory_plot import KB, plot_memory

__all__ = ["memory_report", "format_table", "plot_memory", "KB"]
_OFFLINE_PLAN = b"OfflineMemoryAllocation"


def _checked_model(model_bytes):
    model = model_checks.load_checked(model_bytes, "the memory report")
    for entry in model.metadata or []:
        if entry.name == _OFFLINE_PLAN:
            raise ValueError("model_bytes carries an offline memory plan "
                             "('OfflineMemoryAllocation' metadata), which TFLM uses "
                             "instead of its greedy planner; not supported here")
    # What the device's Prepare would reject is rejected here too: TFLM's
    # builtin kernels and the RNNPool validator see the model as run_tflite does.
    from converters.runtime import host_runner
    host_runner.plan(model)
    return model


def _parameter_bytes(model, subgraph):
    """Bytes of the constant data the tensors point to, each buffer once."""
    buffers = {tensor.buffer for tensor in subgraph.tensors
               if tflite_model.is_constant(model, tensor)}
    return sum(len(model.buffers[b].data) if model.buffers[b].data is not None
               else int(model.buffers[b].size) for b in buffers)


def _rnnpool_ops(model, subgraph, operators):
    found = []
    for row in operators:
        if row["op"] == "RNNPool":
            op = subgraph.operators[row["index"]]
            entry = {"index": row["index"]}
            entry.update(op_costs.rnnpool_geometry(model, subgraph, op))
            entry.update(type=tflite_model.type_name(subgraph.tensors[op.inputs[0]]),
                         madds=row["madds"], scratch_bytes=row["scratch_bytes"])
            found.append(entry)
    return found


def memory_report(model_bytes):
    """RAM, flash and compute of a .tflite model, operator by operator.

    Args:
      model_bytes: a .tflite flatbuffer (bytes, bytearray or memoryview) with
        one subgraph: builtins and "RNNPool" custom ops, float or int8.

    Returns:
      A dict of plain ints, strings and lists (json.dumps-ready):
      - "operators": one dict per operator in execution order: "index", "op"
        (builtin name or custom code), "output_shapes" (lists of ints),
        "live_bytes" (every tensor TFLM holds while the op runs: its inputs,
        outputs and anything kept for later, unaligned), "scratch_bytes"
        (kernel scratch, converters.analysis.op_costs), "madds", "block" (index into
        "blocks").
      - "blocks": the paper-convention blocks (converters.analysis.paper_memory):
        "kind", "operators", "input_bytes", "output_bytes", "extra_bytes",
        "bytes" (the block's working set).
      - "peak_activation_bytes", "peak_block": the largest block working set
        (the paper's peak RAM) and its index.
      - "tflm_arena_bytes": bytes TFLM's greedy planner needs for the
        activations and scratch buffers (converters.analysis.memory_plan).
      - "peak_live_bytes": max over operators of live_bytes + scratch_bytes.
      - "variable_bytes": variable tensors (TFLM keeps them persistently).
      - "total_madds", "parameter_bytes" (constant buffers), "model_bytes".
      - "activation_types": element types of the planned tensors.
      - "rnnpool_ops": per RNNPool op its "index", shapes, pool_size,
        strides, padding, in_channels, rnn1_units, rnn2_units, patches,
        "type", "madds" and "scratch_bytes".

    Raises:
      TypeError: if model_bytes is not bytes-like.
      ValueError: if model_bytes is not a TFLite model, has several
        subgraphs or an offline memory plan, or has a tensor type of unknown size.
    """
    model = _checked_model(model_bytes)
    model_bytes = bytes(model_bytes)
    subgraph = model.subgraphs[0]
    planned = memory_plan.planned_tensor_bytes(model, subgraph)
    requests = [op_costs.scratch_requests(model, subgraph, index)
                for index in range(len(subgraph.operators))]
    scratch = [sum(sizes) for sizes in requests]
    lifetimes = memory_plan.tensor_lifetimes(subgraph, set(planned))
    blocks = paper_memory.find_blocks(model, scratch)
    block_of = {op: b for b, block in enumerate(blocks) for op in block.operators}

    operators = []
    for index, op in enumerate(subgraph.operators):
        scope = index + 1  # TFLM's allocation scope of operator `index`
        operators.append({
            "index": index,
            "op": tflite_model.op_name(model, op),
            "output_shapes": [tflite_model.shape_of(subgraph.tensors[t]) for t in op.outputs],
            "live_bytes": sum(size for t, size in planned.items()
                              if lifetimes[t][0] <= scope <= lifetimes[t][1]),
            "scratch_bytes": scratch[index],
            "madds": op_costs.madds(model, subgraph, op),
            "block": block_of[index],
        })
    block_rows = [{"kind": block.kind, "operators": list(block.operators),
                   "input_bytes": block.input_bytes, "output_bytes": block.output_bytes,
                   "extra_bytes": block.extra_bytes,
                   "bytes": paper_memory.block_bytes(block)} for block in blocks]
    peak_block = max(range(len(block_rows)), key=lambda b: block_rows[b]["bytes"],
                     default=None)
    buffers = memory_plan.plan_buffers(subgraph, planned, set(planned), requests)
    return {
        "model_bytes": len(model_bytes),
        "parameter_bytes": _parameter_bytes(model, subgraph),
        "total_madds": sum(row["madds"] for row in operators),
        "peak_activation_bytes": block_rows[peak_block]["bytes"] if block_rows else 0,
        "peak_block": peak_block,
        "tflm_arena_bytes": memory_plan.arena_bytes(buffers),
        "peak_live_bytes": max((row["live_bytes"] + row["scratch_bytes"]
                                for row in operators), default=0),
        "variable_bytes": sum(tflite_model.tensor_bytes(t) for t in subgraph.tensors
                              if t.isVariable),
        "activation_types": sorted({tflite_model.type_name(subgraph.tensors[t])
                                    for t in planned}),
        "operators": operators,
        "blocks": block_rows,
        "rnnpool_ops": _rnnpool_ops(model, subgraph, operators),
    }


def _check_report(report):
    if not isinstance(report, dict):
        raise TypeError(f"report must be a dict from memory_report, got "
                        f"{type(report).__name__}")
    missing = [key for key in ("operators", "blocks", "peak_activation_bytes",
                               "tflm_arena_bytes") if key not in report]
    if missing:
        raise ValueError(f"report is missing {missing}: pass the dict memory_report returns")


def _kb(size):
    return f"{size / KB:,.2f}"


def format_table(report):
    """The report as markdown: the operator table, then the totals.

    KB are the paper's (1024 bytes). The block column names the paper-
    convention block of each operator; the block that sets the peak is starred.
    """
    _check_report(report)
    peak_block = report.get("peak_block")
    lines = ["| # | operator | output shape | live KB | scratch B | MAdds | block |",
             "|--:|---|---|--:|--:|--:|---|"]
    for row in report["operators"]:
        shapes = ", ".join("x".join(str(n) for n in shape) or "scalar"
                           for shape in row["output_shapes"])
        block = report["blocks"][row["block"]]
        star = "*" if row["block"] == peak_block else ""
        lines.append(f"| {row['index']} | {row['op']} | {shapes} | {_kb(row['live_bytes'])}"
                     f" | {row['scratch_bytes']:,} | {row['madds']:,} |"
                     f" {row['block']} {block['kind']}{star} |")
    lines.append("")
    if peak_block is not None:
        peak = report["blocks"][peak_block]
        ops = peak["operators"]
        lines.append(f"- peak RAM, paper convention: {report['peak_activation_bytes']:,} B "
                     f"({_kb(report['peak_activation_bytes'])} KB), block {peak_block} "
                     f"({peak['kind']}, operators {ops[0]}-{ops[-1]}: in "
                     f"{peak['input_bytes']:,} + out {peak['output_bytes']:,} + partial "
                     f"{peak['extra_bytes']:,} B)")
    lines.append(f"- TFLM planned arena: {report['tflm_arena_bytes']:,} B "
                 f"({_kb(report['tflm_arena_bytes'])} KB); largest live set "
                 f"{report.get('peak_live_bytes', 0):,} B")
    for key, label in (("total_madds", "MAdds"), ("parameter_bytes", "parameters, B"),
                       ("model_bytes", "model, B")):
        if key in report:
            lines.append(f"- {label}: {report[key]:,}")
    for op in report.get("rnnpool_ops", []):
        lines.append(f"- RNNPool op {op['index']} ({op['type']}): "
                     f"{op['pool_size'][0]}x{op['pool_size'][1]} patches, stride "
                     f"{op['strides'][0]}x{op['strides'][1]}, k={op['in_channels']}, "
                     f"h1={op['rnn1_units']}, h2={op['rnn2_units']}, {op['patches']:,} "
                     f"patches, {op['madds']:,} MAdds, scratch {op['scratch_bytes']:,} B")
    return "\n".join(lines) + "\n"
