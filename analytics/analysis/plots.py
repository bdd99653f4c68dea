"""Charts of the notebooks, as bare matplotlib figures (no pyplot state): ``display(fig)`` in a notebook,
``fig.savefig(path)`` elsewhere. Each function reads the frames built by the other modules of this package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

_COLOURS = {"precision": "#4c72b0", "recall": "#55a868", "f1": "#c44e52", "volume": "#8c8c8c"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _mark(ax: Any, rows: pl.DataFrame, x: str, y: str) -> None:
    """Circle the configured setting, star the chosen one."""
    for flag, style in (("original", {"marker": "s", "s": 160, "facecolors": "none", "edgecolors": "black",
                                      "label": "as configured"}),
                        ("chosen", {"marker": "*", "s": 220, "color": "#d62728", "label": "chosen"})):
        sel = rows.filter(pl.col(flag))
        if len(sel):
            ax.scatter(sel[x].to_list(), sel[y].to_list(), zorder=3, **style)


def sweep_figure(sweep: pl.DataFrame, rule_id: str, *, chosen_setting: str,
                 max_events_per_hour: float = 0.0) -> Any:
    """One rule's sweep: precision against recall (colour: alert volume), and F1 against alert volume."""
    rows = sweep.filter(pl.col("rule_id") == rule_id).with_columns(
        (pl.col("setting") == chosen_setting).alias("chosen"))
    fig = _figure(12.0, 4.4)
    ax1, ax2 = fig.subplots(1, 2)
    points = ax1.scatter(rows["recall"].to_list(), rows["precision"].to_list(), c=rows["events_per_hour"].to_list(),
                         cmap="viridis", s=40, alpha=0.8)
    fig.colorbar(points, ax=ax1, label="events per hour")
    _mark(ax1, rows, "recall", "precision")
    ax1.set(xlabel="recall", ylabel="precision", xlim=(-0.05, 1.05), ylim=(-0.05, 1.05),
            title=f"{rule_id}: {len(rows)} settings")
    ax1.legend(loc="lower left", fontsize=8)
    ax2.scatter(rows["events_per_hour"].to_list(), rows["f1"].to_list(), color=_COLOURS["f1"], s=40, alpha=0.7)
    _mark(ax2, rows, "events_per_hour", "f1")
    if max_events_per_hour > 0:
        ax2.axvline(max_events_per_hour, color="black", linestyle=":", label="volume cap")
    ax2.set(xlabel="alert volume (events per hour)", ylabel="F1", ylim=(-0.05, 1.05), title="F1 against volume")
    ax2.legend(loc="lower right", fontsize=8)
    return fig


def slices_figure(sweep: pl.DataFrame, rule_id: str, *, chosen_values: str) -> Any:
    """Precision, recall, F1 and volume along each swept field, the other fields at their chosen values."""
    rows = sweep.filter(pl.col("rule_id") == rule_id)
    chosen = json.loads(chosen_values)
    fields = list(chosen)
    fig = _figure(4.2 * max(len(fields), 1), 3.6)
    axes = fig.subplots(1, max(len(fields), 1), squeeze=False)[0]
    for ax, name in zip(axes, fields, strict=False):
        others = [pl.col(f"p.{f}") == v for f, v in chosen.items() if f != name]
        line = rows.filter(*others) if others else rows
        line = line.sort(f"p.{name}")
        xs = line[f"p.{name}"].to_list()
        for metric in ("precision", "recall", "f1"):
            ax.plot(xs, line[metric].to_list(), marker="o", color=_COLOURS[metric], label=metric)
        ax.axvline(chosen[name], color="#d62728", linestyle="--", linewidth=1)
        ax.set(xlabel=name, ylim=(-0.05, 1.05), title=f"{rule_id}: {name}")
        twin = ax.twinx()
        twin.plot(xs, line["events_per_hour"].to_list(), color=_COLOURS["volume"], linestyle=":", marker="x",
                  label="events/h")
        twin.set_ylabel("events per hour")
        if ax is axes[0]:
            ax.legend(loc="lower left", fontsize=8)
    return fig


def errors_figure(errors: pl.DataFrame, name: str, *, fps: float | None = None) -> Any:
    """Per-frame misses, false tracks (those on ignored people apart) and identity switches, stacked, over the
    sequence, with the number of ground-truth people."""
    fig = _figure(12.0, 3.6)
    ax = fig.subplots()
    frames = errors["frame"].to_numpy()
    x = frames / fps if fps else frames
    stacks = [errors["fn"].to_numpy(), (errors["fp"] - errors["fp_ignored"]).to_numpy(),
              errors["fp_ignored"].to_numpy(), errors["idsw"].to_numpy()]
    ax.stackplot(x, *stacks, labels=["missed (fn)", "false track (fp)", "fp on ignored people", "id switch"],
                 colors=["#c44e52", "#dd8452", "#cccccc", "#8172b2"], step="mid")
    ax.plot(x, errors["gt"].to_numpy(), color="black", linewidth=0.8, label="people (ground truth)")
    ax.set(xlabel="seconds" if fps else "frame", ylabel="boxes", title=f"{name}: where tracking fails")
    ax.legend(loc="upper right", fontsize=8, ncols=5)
    return fig


def metrics_figure(table: pl.DataFrame, metrics: tuple[str, ...] = ("HOTA", "MOTA", "IDF1")) -> Any:
    """Grouped bars of the scores per sequence."""
    fig = _figure(max(5.0, 1.8 * len(table) + 2.0), 3.6)
    ax = fig.subplots()
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        xs = [j + i * width for j in range(len(table))]
        bars = ax.bar(xs, table[metric].to_list(), width=width, label=metric)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([j + width * (len(metrics) - 1) / 2 for j in range(len(table))], table["sequence"].to_list())
    ax.set(ylim=(0.0, 1.1), title="Tracking scores per sequence")
    ax.legend(fontsize=8)
    return fig


def frame_figure(image: str | Path, result: pl.DataFrame, gt: pl.DataFrame, error_row: dict[str, Any]) -> Any:
    """One frame with its boxes: missed people red, false tracks orange (dashed), switched ids magenta,
    matched people green, people the ground truth ignores grey (dotted)."""
    import matplotlib.image as mpimg
    from matplotlib.patches import Rectangle

    fig = _figure(9.0, 6.0)
    ax = fig.subplots()
    ax.imshow(mpimg.imread(str(image)))
    missed, false, switched = (set(error_row[k]) for k in ("missed_ids", "false_ids", "switched_ids"))
    for row in gt.iter_rows(named=True):
        if row["conf"] == 0:
            colour, style, width = "#aaaaaa", ":", 1.0
        else:
            colour = "#d62728" if row["id"] in missed else "#ff00ff" if row["id"] in switched else "#2ca02c"
            style, width = "-", 2.0 if row["id"] in missed | switched else 1.0
        ax.add_patch(Rectangle((row["x"], row["y"]), row["w"], row["h"], fill=False, edgecolor=colour,
                               linestyle=style, linewidth=width))
    for row in result.filter(pl.col("id").is_in(list(false))).iter_rows(named=True):
        ax.add_patch(Rectangle((row["x"], row["y"]), row["w"], row["h"], fill=False, edgecolor="#ff7f0e",
                               linestyle="--", linewidth=2.0))
        ax.annotate(str(row["id"]), (row["x"], row["y"]), color="#ff7f0e", fontsize=8)
    ax.set_axis_off()
    ax.set_title(f"frame {error_row['frame']}: missed {sorted(missed)}, false tracks {sorted(false)}, "
                 f"switched {sorted(switched)}", fontsize=9)
    return fig


def verdicts_figure(frame: pl.DataFrame, by: str = "rule_id") -> Any:
    """Stacked counts of verdicts (true, false alarm, duplicate, unreviewed) per ``by`` value of an
    :func:`analytics.alerts.audit_stats.alerts_frame`."""
    counts = (frame.with_columns(pl.col("verdict").fill_null("unreviewed"))
              .group_by(by, "verdict").len().pivot(on="verdict", index=by, values="len").fill_null(0).sort(by))
    fig = _figure(8.0, 3.8)
    ax = fig.subplots()
    bottom = [0] * len(counts)
    colours = {"true_alert": "#55a868", "false_alarm": "#c44e52", "duplicate": "#8172b2", "unreviewed": "#cccccc"}
    labels = [str(k) for k in counts[by].to_list()]
    for verdict, colour in colours.items():
        if verdict in counts.columns:
            values = counts[verdict].to_list()
            ax.bar(labels, values, bottom=bottom, color=colour, label=verdict)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set(ylabel="alerts", title=f"Verdicts by {by}")
    ax.legend(fontsize=8)
    return fig
