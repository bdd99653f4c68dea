"""Event precision and recall of the full pipeline against reference events from ground truth (PETS09-S2L1).

    .venv/bin/python benchmarks/rules_pets09.py [--config configs/pets09.yaml] [--reuse]

1. Reference events: the ground-truth tracks (``gt/gt.txt``, rows flagged 0 dropped) become a track log
   (:func:`analytics.evaluation.mot_to_track_log`: state confirmed, causal 0.5 s velocity) and are replayed
   through the camera's rules from the config: what the rules would say with perfect perception.
2. Pipeline events: ``analytics run`` on the sequence with the same config (detector, tracker, rules), all
   795 frames.
3. Matching (:func:`analytics.event_eval.match_events`): same kind, zone and line; time intervals widened by
   1 s overlapping (IoU >= 0.2); members overlapping (overlap coefficient >= 0.3) after mapping pipeline
   track ids to ground-truth ids by box IoU >= 0.5 (majority over frames); one-to-one.

Writes benchmarks/results/rules_pets09.{json,md}. Work files go to .cache/rules_pets09/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from analytics.bench import scoring as bench_scoring  # noqa: E402
from analytics.config import load_config  # noqa: E402
from analytics.event_eval import final_events  # noqa: E402
from analytics.evaluation import mot_to_track_log, read_mot  # noqa: E402
from analytics.eventlog import EventLogWriter, read_events  # noqa: E402
from analytics.paths import shared_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / ".cache" / "rules_pets09"
FRAME_SIZE = (768, 576)
FPS = 7.0


def reference_events(camera, gt_path: Path, work: Path) -> tuple[list, Path]:
    """Replay the ground-truth tracks through the camera's rules; returns (events, GT track log path)."""
    mot = read_mot(gt_path)
    log = mot_to_track_log(mot.filter(pl.col("conf") != 0), camera_id=camera.id, fps=FPS)
    path = work / "gt.tracks.parquet"
    log.write_parquet(path)
    return bench_scoring.reference_events(camera, path, frame_size=FRAME_SIZE), path


def pipeline_events(config: Path, camera_id: str, work: Path, *, reuse: bool) -> tuple[list, Path, float]:
    out = work / "run"
    events_path = out / f"{camera_id}.events.jsonl"
    seconds = 0.0
    if not (reuse and events_path.is_file()):
        t0 = time.perf_counter()
        subprocess.run([str(ROOT / ".venv/bin/analytics"), "run", str(config), "--out", str(out), "--no-progress"],
                       check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    return read_events(events_path), out / f"{camera_id}.tracks.parquet", seconds


def summarise(events: list) -> list[dict]:
    return [{"id": e.id, "kind": e.kind, "rule": e.rule_id, "start": round(e.start, 2), "end": round(e.end, 2),
             "members": list(e.member_ids), "zone": e.zone_id, "line": e.line_id,
             **({"direction": e.evidence["direction"]} if "direction" in e.evidence else {})}
            for e in final_events(events)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "pets09.yaml")
    p.add_argument("--camera", default="pets09")
    p.add_argument("--reuse", action="store_true", help="reuse the pipeline run in .cache/rules_pets09/run")
    args = p.parse_args()

    cfg = load_config(args.config)
    camera = next(c for c in cfg.cameras if c.id == args.camera)
    WORK.mkdir(parents=True, exist_ok=True)
    gt = shared_dir() / "footage" / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"
    ref, gt_log = reference_events(camera, gt, WORK)
    writer = EventLogWriter(WORK / "reference.events.jsonl")
    writer.write(ref)
    writer.close()
    pred, pred_log, seconds = pipeline_events(args.config, camera.id, WORK, reuse=args.reuse)
    scored = bench_scoring.score_reference_events(pred, ref, pred_log=pred_log, ref_log=gt_log)
    result = {
        "sequence": "PETS09-S2L1", "config": str(args.config.relative_to(ROOT)), "camera": camera.id,
        "rules": [r.model_dump(mode="json") for r in camera.rules], "date": time.strftime("%Y-%m-%d"),
        "pipeline_seconds": round(seconds, 1),
        "matching": {"time_tolerance_s": scored["matching"]["time_tolerance"],
                     "min_time_iou": scored["matching"]["min_time_iou"],
                     "min_member_overlap": scored["matching"]["min_member_overlap"],
                     "id_map_iou": scored["matching"]["id_map_iou"], "mapped_pipeline_ids": scored["mapped_ids"]},
        "match": {k: v for k, v in scored.items() if k not in ("matching", "mapped_ids")},
        "reference_events": summarise(ref), "pipeline_events": summarise(pred),
        "command": ".venv/bin/python benchmarks/rules_pets09.py",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rules_pets09.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "rules_pets09.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    m = r["match"]
    lines = [f"# Event precision and recall on PETS09-S2L1, {r['date']}", "",
             f"Command: `{r['command']}` (config `{r['config']}`, camera `{r['camera']}`).", "",
             "Reference events: the same rules replayed on the ground-truth tracks. Pipeline events: "
             "`analytics run` (detector, tracker, rules) on the 795 frames.", "",
             "| kind | reference | pipeline | TP | FP | FN | precision | recall |", "|---|---|---|---|---|---|---|---|"]
    ref_by = _count(r["reference_events"])
    pred_by = _count(r["pipeline_events"])
    for kind in sorted(set(ref_by) | set(pred_by)):
        k = m["by_kind"].get(kind, {"tp": 0, "fp": pred_by.get(kind, 0), "fn": ref_by.get(kind, 0),
                                    "precision": 1.0, "recall": 1.0})
        lines.append(f"| {kind} | {ref_by.get(kind, 0)} | {pred_by.get(kind, 0)} | {k['tp']} | {k['fp']} | "
                     f"{k['fn']} | {k['precision']:.2f} | {k['recall']:.2f} |")
    lines.append(f"| **all** | {len(r['reference_events'])} | {len(r['pipeline_events'])} | {m['tp']} | {m['fp']} | "
                 f"{m['fn']} | **{m['precision']:.2f}** | **{m['recall']:.2f}** |")
    mt = r["matching"]
    lines += ["", f"Matching: same kind, zone and line (and direction for crossings); time intervals widened by "
              f"{mt['time_tolerance_s']} s with IoU >= {mt['min_time_iou']}; members overlapping >= "
              f"{mt['min_member_overlap']} (overlap coefficient) after mapping pipeline track ids to ground-truth "
              f"ids by box IoU >= {mt['id_map_iou']} ({mt['mapped_pipeline_ids']} ids mapped); one-to-one.", "",
              "Rules (from the config):", ""]
    lines += [f"- `{rule['id']}`: " + ", ".join(f"{k}={v}" for k, v in rule.items() if k != "id") for rule in r["rules"]]
    lines += ["", f"Unmatched pipeline events: {', '.join(m['unmatched_pred']) or 'none'}; unmatched reference "
              f"events: {', '.join(m['unmatched_ref']) or 'none'} (details in the JSON).", ""]
    return "\n".join(lines)


def _count(events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e["kind"]] = out.get(e["kind"], 0) + 1
    return out


if __name__ == "__main__":
    main()
