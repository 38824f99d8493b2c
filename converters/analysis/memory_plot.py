"""plot_memory: live activation memory per operator as a PNG, one or two models.

matplotlib is optional (`pip install matplotlib`, or the package's `plot`
extra): it is imported only when a plot is asked for.
"""
import os

KB = 1024  # the paper's kilobyte
_INSTALL_HINT = ("plot_memory needs matplotlib, which is not installed: "
                 "pip install matplotlib (or pip install 'rnnpool-keras[plot]')")


def _pyplot_free_figure(columns):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    # Figure + Agg canvas, not pyplot: no GUI backend, no global state touched.
    figure = Figure(figsize=(6.5 * columns, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _checked(reports, path, labels):
    if isinstance(reports, dict):
        reports = [reports]
    if not isinstance(reports, (list, tuple)) or not all(isinstance(r, dict)
                                                          for r in reports):
        raise TypeError("reports must be a memory_report dict or a list of one or two")
    if not 1 <= len(reports) <= 2:
        raise ValueError(f"reports: plot_memory draws one or two models, got {len(reports)}")
    for report in reports:
        if "operators" not in report or "peak_activation_bytes" not in report:
            raise ValueError("reports: each must be a dict returned by memory_report")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    if labels is None:
        labels = [f"model {i + 1}" for i in range(len(reports))] if len(reports) > 1 \
            else ["model"]
    if isinstance(labels, str) or len(labels) != len(reports):
        raise ValueError(f"labels must be a list of {len(reports)} name(s), one per report")
    return list(reports), [str(label) for label in labels]


def _draw(axes, report, label):
    rows = report["operators"]
    index = [row["index"] for row in rows]
    live = [row["live_bytes"] / KB for row in rows]
    scratch = [row["scratch_bytes"] / KB for row in rows]
    axes.bar(index, live, width=0.8, color="tab:blue", label="live tensors")
    axes.bar(index, scratch, width=0.8, bottom=live, color="tab:orange", label="scratch")
    totals = [a + b for a, b in zip(live, scratch)]
    if rows:
        top = max(range(len(rows)), key=totals.__getitem__)
        axes.annotate(f"peak {totals[top]:,.1f} KB\nop {top} {rows[top]['op']}",
                      xy=(index[top], totals[top]), xytext=(0.55, 0.93),
                      textcoords="axes fraction", ha="left", va="top", fontsize=8,
                      arrowprops={"arrowstyle": "->", "color": "tab:red"})
        axes.plot([index[top]], [totals[top]], "v", color="tab:red", markersize=7)
    axes.axhline(report["peak_activation_bytes"] / KB, color="tab:green",
                 linestyle="--", linewidth=1,
                 label=f"paper-convention peak {report['peak_activation_bytes'] / KB:,.1f} KB")
    if "tflm_arena_bytes" in report:
        axes.axhline(report["tflm_arena_bytes"] / KB, color="tab:gray", linestyle=":",
                     linewidth=1,
                     label=f"TFLM planned arena {report['tflm_arena_bytes'] / KB:,.1f} KB")
    types = "/".join(report.get("activation_types", []))
    axes.set_title(f"{label} ({types})" if types else label, fontsize=10)
    axes.set_xlabel("operator index (execution order)")
    axes.legend(fontsize=7, loc="center right")
    axes.grid(axis="y", alpha=0.3)


def plot_memory(reports, path, labels=None):
    """Writes a PNG of live activation memory per operator, peak marked.

    Args:
      reports: a dict from `memory_report`, or a list of one or two (e.g.
        baseline and RNNPool model), drawn side by side on one KB scale.
      path: where to write the PNG.
      labels: one title per report (default "model 1", "model 2").

    Bars are the bytes TFLM holds while each operator runs (tensors, then
    kernel scratch on top), in KB of 1024 bytes; dashed and dotted lines are
    the paper-convention peak and TFLM's planned arena.

    Raises:
      ImportError: matplotlib is not installed (the message says how to get it).
      TypeError / ValueError: for reports, path or labels of the wrong kind.
    """
    reports, labels = _checked(reports, path, labels)
    figure = _pyplot_free_figure(len(reports))
    axes = figure.subplots(1, len(reports), sharey=True, squeeze=False)[0]
    for ax, report, label in zip(axes, reports, labels):
        _draw(ax, report, label)
    axes[0].set_ylabel("live activation memory (KB)")
    # Headroom above the tallest bar so the peak marker is not clipped.
    tallest = max(max([row["live_bytes"] + row["scratch_bytes"] for row in r["operators"]]
                      + [r["peak_activation_bytes"], r.get("tflm_arena_bytes", 0)])
                  for r in reports)
    axes[0].set_ylim(0, 1.12 * tallest / KB or 1)
    figure.savefig(path, dpi=120)
    return path
