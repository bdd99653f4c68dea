"""Suite results as flat metrics, JSON, a markdown report and PNG plots.

Metric names (``results.json`` ``metrics``, MLflow, ``benchmarks/reference.yaml``), ``<seq>`` a sequence id and
``<det>`` a detector variant id (``baseline`` for the ultralytics reference run):

* ``<seq>/<det>/HOTA``, ``MOTA``, ``IDF1``, ``DetA``, ``AssA``, ``IDSW``: tracking quality on sequences with
  ground truth (TrackEval; MOT15 convention);
* ``<seq>/<det>/events_ref_precision``, ``events_ref_recall``: events against the rules replayed on the
  ground-truth tracks; ``labels_precision``, ``labels_recall``: events against the labelled event file;
* ``<seq>/<det>/fps``: analysed frames per second end to end; ``cpu_percent`` (100 = one core busy);
  ``peak_rss_mb``; ``<stage>_p50_ms``, ``<stage>_p95_ms`` per stage (decode, detect, track, rules, alerts...);
* ``<seq>/<det>/speed_ratio_vs_baseline``: fps of the run / fps of the baseline on the same frames;
* ``capacity/streams``: cameras at the capacity rate kept up with in real time; ``capacity/analysed_fps``,
  ``capacity/event_to_alert_p50_ms``, ``..._p95_ms``, ``capacity/cpu_percent`` at that load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRACKING_METRICS = ("HOTA", "MOTA", "IDF1", "DetA", "AssA", "IDSW")
REPORT_STAGES = ("decode", "detect", "track", "sinks", "rules", "events", "alerts")
BASELINE_STAGES = ("decode", "detect_track", "inference")


def _speed(prefix: str, run: dict[str, Any], stages: tuple[str, ...]) -> dict[str, float]:
    out = {f"{prefix}/{k}": float(run[k]) for k in ("fps", "cpu_percent", "peak_rss_mb") if k in run}
    for stage in stages:
        summary = run.get("stages", {}).get(stage, {})
        for q in ("p50_ms", "p95_ms"):
            if q in summary:
                out[f"{prefix}/{stage}_{q}"] = float(summary[q])
    return out


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """Every number worth tracking, by name (module docstring)."""
    out: dict[str, float] = {}
    for run in results.get("runs", []):
        if run.get("error"):
            continue
        prefix = f"{run['sequence']}/{run['detector']}"
        out |= {f"{prefix}/{k}": float(v) for k, v in (run.get("tracking") or {}).items() if k in TRACKING_METRICS}
        events = run.get("events") or {}
        for key, name in (("reference", "events_ref"), ("labels", "labels")):
            if events.get(key):
                out[f"{prefix}/{name}_precision"] = float(events[key]["precision"])
                out[f"{prefix}/{name}_recall"] = float(events[key]["recall"])
        out |= _speed(prefix, run, REPORT_STAGES)
    for base in results.get("baselines", []):
        if base.get("error"):
            continue
        prefix = f"{base['sequence']}/baseline"
        out |= {f"{prefix}/{k}": float(v) for k, v in (base.get("tracking") or {}).items() if k in TRACKING_METRICS}
        out |= _speed(prefix, base, BASELINE_STAGES)
        for det, ratio in base.get("speed_ratio", {}).items():
            out[f"{base['sequence']}/{det}/speed_ratio_vs_baseline"] = float(ratio)
    cap = results.get("capacity")
    if cap and not cap.get("error"):
        out["capacity/streams"] = float(cap["streams"])
        at = cap.get("at_capacity") or {}
        if at:
            out["capacity/analysed_fps"] = float(at["analysed_fps"])
            out["capacity/cpu_percent"] = float(at["cpu_percent"])
            for q in ("p50_ms", "p95_ms"):
                if q in at["event_to_alert"]:
                    out[f"capacity/event_to_alert_{q}"] = float(at["event_to_alert"][q])
    return out


def run_errors(results: dict[str, Any]) -> list[str]:
    """One line per failed run, baseline or capacity search."""
    out = [f"{r['sequence']} / {r['detector']}: {r['error']}" for r in results.get("runs", []) if r.get("error")]
    out += [f"{b['sequence']} / baseline: {b['error']}" for b in results.get("baselines", []) if b.get("error")]
    if results.get("capacity") and results["capacity"].get("error"):
        out.append(f"capacity: {results['capacity']['error']}")
    return out


# -------------------------------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_speed(results: dict[str, Any], path: Path) -> Path | None:
    """Bars of end-to-end fps per run (and baseline), one group per sequence."""
    rows = [(f"{r['sequence']}\n{r['detector']}", r["fps"]) for r in results.get("runs", []) if not r.get("error")]
    rows += [(f"{b['sequence']}\nultralytics baseline", b["fps"]) for b in results.get("baselines", [])
             if not b.get("error")]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4))
    colors = ["tab:gray" if "baseline" in name else "tab:blue" for name, _ in rows]
    ax.bar(range(len(rows)), [v for _, v in rows], color=colors)
    ax.set_xticks(range(len(rows)), [n for n, _ in rows], fontsize=8)
    ax.set_ylabel("analysed frames per second (end to end)")
    ax.set_title("Speed per run")
    for i, (_, v) in enumerate(rows):
        ax.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_stages(results: dict[str, Any], path: Path) -> Path | None:
    """Per-stage latency per run: p50 bars with the p95 as a marker, milliseconds, log scale."""
    runs = [r for r in results.get("runs", []) if not r.get("error")]
    stages = [s for s in ("decode", "detect", "track", "rules", "alerts")
              if any(r.get("stages", {}).get(s, {}).get("p50_ms", 0.0) > 0 for r in runs)]
    if not stages:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(stages) + 0.4 * len(runs)), 4))
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        xs = [j + i * width for j in range(len(stages))]
        p50 = [run.get("stages", {}).get(s, {}).get("p50_ms", 0.0) for s in stages]
        p95 = [run.get("stages", {}).get(s, {}).get("p95_ms", 0.0) for s in stages]
        ax.bar(xs, p50, width=width, label=f"{run['sequence']} / {run['detector']}")
        ax.scatter(xs, p95, marker="_", color="black", s=80, zorder=3)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(stages))], stages)
    ax.set_yscale("log")
    ax.set_ylabel("ms per frame (bar p50, tick p95)")
    ax.set_title("Per-stage latency")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_accuracy(results: dict[str, Any], path: Path) -> Path | None:
    """HOTA, MOTA, IDF1 per run on sequences with ground truth, and event precision / recall."""
    rows = [(f"{r['sequence']}\n{r['detector']}", r) for r in results.get("runs", []) if not r.get("error")]
    rows += [(f"{b['sequence']}\nbaseline", b) for b in results.get("baselines", []) if not b.get("error")]
    scores = []
    for name, r in rows:
        values = {k: (r.get("tracking") or {}).get(k) for k in ("HOTA", "MOTA", "IDF1")}
        for key, label in (("reference", "ref. events"), ("labels", "labels")):
            ev = (r.get("events") or {}).get(key)
            if ev:
                values[f"{label}\nprecision"], values[f"{label}\nrecall"] = ev["precision"], ev["recall"]
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            scores.append((name, values))
    if not scores:
        return None
    plt = _pyplot()
    order = ("HOTA", "MOTA", "IDF1")
    keys = sorted({k for _, v in scores for k in v}, key=lambda k: (k not in order, order.index(k) if k in order
                                                                     else 0, k))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(keys) * max(1, len(scores)) / 2), 4))
    width = 0.8 / len(scores)
    for i, (name, values) in enumerate(scores):
        xs = [j + i * width for j in range(len(keys))]
        ax.bar(xs, [values.get(k, 0.0) for k in keys], width=width, label=name.replace("\n", " / "))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], keys, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy: tracking and events")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_capacity(results: dict[str, Any], path: Path) -> Path | None:
    """Analysed fps against the real-time target per probe, and the share of ticks lost."""
    cap = results.get("capacity")
    if not cap or cap.get("error") or not cap.get("probes"):
        return None
    plt = _pyplot()
    probes = sorted(cap["probes"], key=lambda p: p["streams"])
    n = [p["streams"] for p in probes]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [p["target_fps"] for p in probes], "k--", label="target (fps x streams)")
    ax.plot(n, [p["analysed_fps"] for p in probes], "o-", label="analysed fps")
    for p in probes:
        ax.annotate(("ok" if p["keeps_up"] else "behind") + f"\nlost {100 * p['drop_ratio']:.0f}%",
                    (p["streams"], p["analysed_fps"]), fontsize=7, ha="center", va="bottom")
    ax.set_xticks(n)
    ax.set_xlabel("camera streams")
    ax.set_ylabel("frames per second")
    ax.set_title(f"Capacity: {cap['streams']} stream(s) at {cap['fps_per_stream']:g} fps in real time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Every plot that has data, as PNG files in ``out_dir``."""
    made = [plot(results, out_dir / name) for plot, name in (
        (plot_speed, "speed_fps.png"), (plot_stages, "stage_latency.png"), (plot_accuracy, "accuracy.png"),
        (plot_capacity, "capacity.png"))]
    return [p for p in made if p is not None]


def portable(value: Any) -> Any:
    """``value`` with paths in the project shown relative to it and paths in the shared folder as
    ``${SHARED}/...``, so committed results do not carry one machine's folders."""
    from analytics.paths import PROJECT_ROOT, shared_dir

    prefixes = ((f"{PROJECT_ROOT}/", ""), (f"{shared_dir()}/", "${SHARED}/"))
    if isinstance(value, str):
        for prefix, repl in prefixes:
            value = value.replace(prefix, repl)
        return value
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v) for v in value]
    return value


def write_json(results: dict[str, Any], path: Path) -> Path:
    """``results`` as indented JSON (paths made :func:`portable`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(portable(results), indent=2, default=str) + "\n", encoding="utf-8")
    return path
