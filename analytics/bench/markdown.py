"""The suite's markdown report: what ran, the tables, the plots, the regression check, and what each number means."""

from __future__ import annotations

from typing import Any

DEFINITIONS = """\
What the numbers mean:

- **HOTA, MOTA, IDF1**: tracking quality against the MOTChallenge ground truth of the analysed frames (TrackEval;
  ground-truth rows flagged 0 dropped, MOT15 convention). HOTA balances detection and association (0-1),
  MOTA = 1 - (misses + false positives + identity switches) / ground-truth boxes, IDF1 = identity F1.
- **events (reference)**: the run's events against the same rules replayed on the ground-truth tracks of the
  same frames; matched on kind, zone, line and direction, time intervals widened by 1 s overlapping (IoU >= 0.2)
  and members overlapping (>= 0.3 after mapping track ids to ground-truth ids by box IoU >= 0.5), one-to-one.
- **events (labels)**: the run's events against a labelled event file (what a person saw;
  `analytics/labels.py`): same kind, times overlapping once each label is widened by its slack, same place.
- **fps**: analysed frames per second of the whole pipeline (decode, detect, track, track log, rules, event log,
  alert stage and store), after the detector is built; the baseline's covers decode, `model.track` and
  collecting its rows. **speed ratio** = run fps / baseline fps on the same frames in the same suite run.
- **stage latency**: per analysed frame, p50 and p95 in ms: decode (waiting for the source's next frame),
  detect (the batch's detector call divided by its frames), track, sinks (track log), rules, events (event log
  and alert stage, on frames with events), alerts (the alert stage's own time per batch of events).
- **CPU**: process CPU time over wall time during the run (100 % = one core busy); **peak memory**: the
  process's peak resident set (each run is its own process).
- **capacity**: the largest number of cameras, each replaying real footage paced in real time and analysed at
  the given rate, for which the analysed fps stays >= the given share of rate x cameras and the analysis ticks
  lost to falling behind stay under the given share; **event-to-alert** latency at that load: from the moment
  the frame the rules fired on was handed over by its source to the moment its alert was saved.
- Speed numbers come from one run on the machine named above, which may have had other work: compare them only
  with numbers of the same suite run (the ratios), not across machines or days.
"""


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _stage(run: dict[str, Any], stage: str) -> str:
    s = run.get("stages", {}).get(stage, {})
    return f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f}" if s.get("count") else "-"


def _run_load(run: dict[str, Any]) -> str:
    load = run.get("load_average") or {}
    before, after = load.get("before"), load.get("after")
    return f"{before[0]:.1f} / {after[0]:.1f}" if before and after else "-"


def _header(results: dict[str, Any]) -> list[str]:
    s = results["suite"]
    git = s.get("git", {})
    m = s.get("machine", {})
    return [f"# Benchmark suite: subset `{s['subset']}`, {s['date']}", "",
            f"Command: `{s['command']}`  ", f"Manifest: `{s['manifest']}`; commit `{git.get('commit', '?')}`"
            + (" (uncommitted changes)" if git.get("dirty") else "") + "  ",
            f"Machine: {m.get('cpus', '?')} CPUs, {m.get('processor') or m.get('platform', '?')}; "
            f"suite time {s.get('seconds', 0):.0f} s" + _load(m) + (f"; overrides: `{', '.join(s['overrides'])}`"
                                                                    if s.get("overrides") else ""), ""]


def _load(machine: dict[str, Any]) -> str:
    """The load averages at the start and the end (other work on the machine, which slows every run)."""
    a, b = machine.get("load_average_start"), machine.get("load_average_end")
    if not a or not b:
        return ""
    start, end = " / ".join(map(str, a)), " / ".join(map(str, b))
    return f"; load average (1 / 5 / 15 min) {start} at the start, {end} at the end"


def _tracking_table(results: dict[str, Any]) -> list[str]:
    rows = [(r["sequence"], r["detector"], r) for r in results.get("runs", []) if r.get("tracking")]
    rows += [(b["sequence"], "ultralytics baseline", b) for b in results.get("baselines", []) if b.get("tracking")]
    if not rows:
        return []
    out = ["## Tracking quality", "", "| sequence | detector | frames | HOTA | MOTA | IDF1 | IDSW | FP | FN |",
           "|---|---|---|---|---|---|---|---|---|"]
    for seq, det, r in rows:
        t = r["tracking"]
        out.append(f"| {seq} | {det} | {int(t['frames'])} | {t['HOTA']:.3f} | {t['MOTA']:.3f} | {t['IDF1']:.3f} | "
                   f"{int(t['IDSW'])} | {int(t['FP'])} | {int(t['FN'])} |")
    return [*out, ""]


def _speed_table(results: dict[str, Any]) -> list[str]:
    runs = [r for r in results.get("runs", []) if not r.get("error")]
    if not runs:
        return []
    dets = results.get("detectors", {})
    out = ["## Speed", "", "Per-stage latency: p50 / p95, ms per frame. Load: the machine's 1-minute load average "
           "before and after the run (2 cores: above 2, other work was competing).", "",
           "| sequence | detector | backend | input | frames | fps | CPU % | peak MiB | decode | detect | track | "
           "rules | alerts | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        d = dets.get(r["detector"], {})
        size = "x".join(map(str, d["input_size"])) if d.get("input_size") else "-"
        out.append(f"| {r['sequence']} | {r['detector']} | {d.get('backend', '?')} | {size} | {r['frames']} | "
                   f"{r['fps']:.1f} | {r['cpu_percent']:.0f} | {r['peak_rss_mb']:.0f} | "
                   + " | ".join(_stage(r, s) for s in ("decode", "detect", "track", "rules", "alerts"))
                   + f" | {_run_load(r)} |")
    for b in results.get("baselines", []):
        if b.get("error"):
            continue
        out.append(f"| {b['sequence']} | ultralytics baseline `{b['model']}` | ultralytics | {b['imgsz']} | "
                   f"{b['frames']} | {b['fps']:.1f} | {b['cpu_percent']:.0f} | {b['peak_rss_mb']:.0f} | "
                   f"{_stage(b, 'decode')} | {_stage(b, 'detect_track')} (detect + track) | - | - | - | "
                   f"{_run_load(b)} |")
    out.append("")
    for b in results.get("baselines", []):
        if b.get("speed_ratio"):
            ratios = ", ".join(f"`{k}` {v:.2f}x" + (" (same weights and input size)" if k == b.get("compare_to")
                                                    else "") for k, v in b["speed_ratio"].items())
            out += [f"Speed ratio against the ultralytics baseline on {b['sequence']} (`model.track(..., "
                    f"tracker=\"{b['tracker']}\")`, `{b['model']}`, imgsz {b['imgsz']}): {ratios}.", ""]
    return out


def _events_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for r in results.get("runs", []):
        for key, what in (("reference", "reference events (rules on ground truth)"), ("labels", "labelled events")):
            ev = (r.get("events") or {}).get(key)
            if ev:
                total = ev["tp"] + ev["fn"]
                rows.append(f"| {r['sequence']} | {r['detector']} | {what} | {total} | {ev['tp'] + ev['fp']} | "
                            f"{ev['tp']} | {ev['fp']} | {ev['fn']} | {ev['precision']:.2f} | {ev['recall']:.2f} |")
    if not rows:
        return []
    return ["## Events", "", "| sequence | detector | against | expected | found | TP | FP | FN | precision | "
            "recall |", "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def _capacity(results: dict[str, Any]) -> list[str]:
    cap = results.get("capacity")
    if not cap:
        return []
    if cap.get("error"):
        return ["## Capacity", "", f"Failed: {cap['error']}", ""]
    crit = cap["criteria"]
    out = ["## Capacity", "",
           f"**{cap['streams']} camera stream(s)** at {cap['fps_per_stream']:g} analysed fps each, in real time "
           f"(footage: {', '.join(cap['sequences'])}, round-robin; kept up = analysed fps >= "
           f"{100 * crit['min_fps_ratio']:.0f} % of the target and <= {100 * crit['max_drop_ratio']:.0f} % of "
           f"analysis ticks lost; searched up to {cap['max_streams']}).", "",
           "| streams | target fps | analysed fps | ratio | ticks lost | CPU % | event-to-alert p50 / p95 ms | "
           "alerts | kept up |", "|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(cap["probes"], key=lambda p: p["streams"]):
        e = p["event_to_alert"]
        lat = f"{e['p50_ms']:.0f} / {e['p95_ms']:.0f}" if e.get("count") else "-"
        out.append(f"| {p['streams']} | {p['target_fps']:g} | {p['analysed_fps']:.2f} | {p['fps_ratio']:.3f} | "
                   f"{100 * p['drop_ratio']:.1f} % | {p['cpu_percent']:.0f} | {lat} | {e.get('count', 0)} | "
                   f"{'yes' if p['keeps_up'] else 'no'} |")
    return [*out, ""]


def _check(results: dict[str, Any]) -> list[str]:
    chk = results.get("check")
    if not chk:
        return []
    out = ["## Regression check", "", f"Against `{chk['reference']}`: **{'passed' if chk['passed'] else 'FAILED'}**.",
           "", "| metric | reference | tolerance | measured | status |", "|---|---|---|---|---|"]
    for o in chk["outcomes"]:
        out.append(f"| {o['metric']} | {o['reference']:.4f} | {o['tolerance']:.4f} | {_f(o['measured'], 4)} | "
                   f"{o['status']} |")
    return [*out, ""]


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    """The report as markdown; ``plots`` are PNG file names beside it."""
    lines = _header(results)
    from analytics.bench.report import run_errors

    errors = run_errors(results)
    if errors:
        lines += ["## Errors", "", *[f"- {e}" for e in errors], ""]
    lines += _tracking_table(results) + _speed_table(results) + _events_table(results) + _capacity(results)
    lines += _check(results)
    if plots:
        lines += ["## Plots", "", *[f"![{p}]({p})" for p in plots], ""]
    lines += [DEFINITIONS]
    return "\n".join(lines)
