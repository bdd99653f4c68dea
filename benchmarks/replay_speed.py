"""Replay speed: track rows per second of ``analytics replay`` on one core, per camera, with a per-rule split.

    .venv/bin/python benchmarks/replay_speed.py [--config configs/default.yaml] [--run-dir runs/default]
                                                [--repeats 5]

For every camera of the config that has rules, replays its track log from ``--run-dir`` (made by
``analytics run CONFIG`` first; the benchmark runs it when a log is missing) through the camera's rules
``repeats`` times, pinned to one CPU core, and reports the median rows per second of the whole replay
(Parquet read included). A second pass times each rule's ``step`` separately, to show where the time goes.
Also replays the PETS09-S2L1 ground-truth tracks with the rules of ``configs/pets09.yaml``, and a denser
log made of them: ``copies`` time-shifted copies of the ground truth overlaid (new track ids), about 45
people per frame instead of 6, real trajectories at a crowd's density. Per-frame costs (reading a frame,
stepping each rule) dominate sparse logs, so rows per second grow with the rows per frame.
Writes benchmarks/results/replay_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from analytics.config import load_config  # noqa: E402
from analytics.evaluation import mot_to_track_log, read_mot  # noqa: E402
from analytics.paths import shared_dir  # noqa: E402
from analytics.replay import load_frames, replay  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def time_replay(log: Path, camera, *, repeats: int, frame_size=None) -> dict:
    rows = pl.scan_parquet(log).select(pl.len()).collect().item()
    seconds, events = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        events = len(replay(log, camera, frame_size=frame_size))
        seconds.append(time.perf_counter() - t0)
    frames = sum(1 for _ in load_frames(log, frame_size=frame_size))
    med = statistics.median(seconds)
    return {"rows": rows, "frames": frames, "rows_per_frame": round(rows / max(frames, 1), 2),
            "event_records": events, "seconds": [round(s, 4) for s in seconds], "seconds_median": round(med, 4),
            "rows_per_second": round(rows / med), "frames_per_second": round(frames / med),
            "per_rule_us_per_frame": per_rule(log, camera, frame_size=frame_size)}


def per_rule(log: Path, camera, *, frame_size=None, repeats: int = 3) -> dict[str, float]:
    """Microseconds per frame each rule adds to a replay: a replay with that rule alone, minus one with no
    rules (reading and framing), medians over ``repeats``."""
    def seconds(rules: tuple) -> float:
        cam = camera.model_copy(update={"rules": rules})
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            replay(log, cam, frame_size=frame_size)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    frames = sum(1 for _ in load_frames(log, frame_size=frame_size))
    base = seconds(())
    out = {"(reading and framing, no rule)": round(base / frames * 1e6, 1)}
    for cfg in camera.rules:
        out[f"{cfg.kind}:{cfg.id}"] = round(max(seconds((cfg,)) - base, 0.0) / frames * 1e6, 1)
    return out


def dense(log: pl.DataFrame, *, copies: int) -> pl.DataFrame:
    """``copies`` versions of a track log overlaid, each shifted in time by a fraction of its length (rows
    wrap around the end) with new track ids: the same scene, ``copies`` times as busy."""
    seqs = log["seq"].unique().sort()
    n, first = len(seqs), int(seqs[0])
    dt = float(log["timestamp"].max() - log["timestamp"].min()) / max(n - 1, 1)
    parts = []
    for k in range(copies):
        shift = k * n // copies
        seq = (pl.col("seq") - first + shift) % n + first
        wrapped = (pl.col("seq") - first + shift >= n).cast(pl.Int64) * 500_000  # a wrapped track is a new one
        parts.append(log.with_columns(seq.alias("seq"), ((seq - first) * dt).alias("timestamp"),
                                      pl.col("track_id") + k * 1_000_000 + wrapped))
    return pl.concat(parts).sort("seq", maintain_order=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "default")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the issue asks

    cfg = load_config(args.config)
    cameras = [c for c in cfg.cameras if c.rules]
    if any(not (args.run_dir / f"{c.id}.tracks.parquet").is_file() for c in cameras):
        subprocess.run([str(ROOT / ".venv/bin/analytics"), "run", str(args.config), "--out", str(args.run_dir),
                        "--no-progress"], check=True, capture_output=True, text=True)
    results = {c.id: time_replay(args.run_dir / f"{c.id}.tracks.parquet", c, repeats=args.repeats) for c in cameras}
    for cam_id, r in results.items():
        print(f"{cam_id}: {r['rows_per_second']} rows/s ({r['rows']} rows, {r['rows_per_frame']} per frame)", flush=True)

    pets = load_config(ROOT / "configs" / "pets09.yaml").cameras[0]
    gt_log = ROOT / ".cache" / "replay_speed" / "pets09_gt.tracks.parquet"
    gt_log.parent.mkdir(parents=True, exist_ok=True)
    mot = read_mot(shared_dir() / "footage" / "mot" / "PETS09-S2L1" / "gt" / "gt.txt")
    mot_to_track_log(mot.filter(pl.col("conf") != 0), camera_id=pets.id, fps=7.0).write_parquet(gt_log)
    results["pets09 (ground truth)"] = time_replay(gt_log, pets, repeats=args.repeats, frame_size=(768, 576))
    dense_log = gt_log.with_name("pets09_gt_x8.tracks.parquet")
    dense(pl.read_parquet(gt_log), copies=8).write_parquet(dense_log)
    results["pets09 (ground truth x8, dense)"] = time_replay(dense_log, pets, repeats=args.repeats,
                                                             frame_size=(768, 576))

    total_rows = sum(r["rows"] for r in results.values())
    total_s = sum(r["seconds_median"] for r in results.values())
    result = {"date": time.strftime("%Y-%m-%d"), "config": str(args.config.relative_to(ROOT)),
              "run_dir": str(args.run_dir.relative_to(ROOT)) if args.run_dir.is_relative_to(ROOT) else str(args.run_dir),
              "repeats": args.repeats, "one_core": hasattr(os, "sched_setaffinity"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
              "cameras": results, "overall_rows_per_second": round(total_rows / total_s),
              "command": ".venv/bin/python benchmarks/replay_speed.py"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replay_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "replay_speed.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [f"# Replay speed, {r['date']}", "",
             f"Command: `{r['command']}` (config `{r['config']}`, logs from `{r['run_dir']}`, median of "
             f"{r['repeats']} replays, pinned to one core: {r['one_core']}).", "",
             "| camera | rules | rows | frames | rows/frame | event records | rows/s | frames/s |",
             "|---|---|---|---|---|---|---|---|"]
    for cam, c in r["cameras"].items():
        lines.append(f"| {cam} | {len(c['per_rule_us_per_frame']) - 1} | {c['rows']} | {c['frames']} | "
                     f"{c['rows_per_frame']} | {c['event_records']} | {c['rows_per_second']:,} | "
                     f"{c['frames_per_second']:,} |")
    lines += ["", f"All logs together: **{r['overall_rows_per_second']:,} rows/s** on one core.", "",
              "Microseconds per frame: reading and framing with no rule, then what each rule adds:", ""]
    for cam, c in r["cameras"].items():
        lines.append(f"- {cam}: " + ", ".join(f"{k} {v}" for k, v in c["per_rule_us_per_frame"].items()))
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
