"""Replay speed: track rows per second of ``analytics replay`` on one core, against stepping every rule on
every frame in the same process, with the events of both compared.

    .venv/bin/python benchmarks/replay_speed.py [--config configs/default.yaml] [--run-dir runs/default]
                                                [--repeats 5] [--copies 10]

Logs replayed, each through its camera's rules:

* every camera of the config that has rules, from its track log in ``--run-dir`` (made by ``analytics run
  CONFIG`` first; the benchmark runs it when a log is missing);
* the same logs ``--copies`` times end to end (each copy after the previous one, with new track ids): the
  camera's real traffic over a longer stretch, as an analyst replays hours. A replay pays a fixed cost
  (opening two Parquet files, about 2 ms here) that dominates a log of a few hundred rows;
* the PETS09-S2L1 ground-truth tracks with the rules of ``configs/pets09.yaml``, and a denser log made of
  them: 8 time-shifted copies overlaid (new track ids), about 45 people per frame instead of 6.

For each log: the median seconds of ``repeats`` replays (Parquet read included) as ``analytics replay`` runs
them (:meth:`RuleEngine.replay <analytics.rules.engine.RuleEngine.replay>`: whole-log rules, sleeping rules),
and of the reference that steps every rule on every frame (``every_frame=True``); the speed-up is their
ratio, measured in the same process; the events of the two must be identical (the run fails otherwise).
Also the time to read the log alone, and a per-rule split (a replay with that rule alone, minus one with no
rule). Pinned to one CPU core. Writes benchmarks/results/replay_speed.{json,md}.
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
from analytics.replay import load_log, replay  # noqa: E402
from analytics.tracklog import frames_path_for  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / ".cache" / "replay_speed"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_replay(log: Path, camera, *, repeats: int, frame_size=None) -> dict:
    """Rows per second of the replay and of the every-frame reference on one log; events compared."""
    rows = pl.scan_parquet(log).select(pl.len()).collect().item()
    frames = len(load_log(log, camera.scene, frame_size=frame_size))
    events = replay(log, camera, frame_size=frame_size)
    reference = replay(log, camera, frame_size=frame_size, every_frame=True)
    if events != reference:
        raise SystemExit(f"{log}: the replay's events differ from stepping every rule on every frame")
    fast = median_seconds(lambda: replay(log, camera, frame_size=frame_size), repeats)
    slow = median_seconds(lambda: replay(log, camera, frame_size=frame_size, every_frame=True), max(repeats // 2, 1))
    read = median_seconds(lambda: load_log(log, camera.scene, frame_size=frame_size), repeats)
    return {"rows": rows, "frames": frames, "rows_per_frame": round(rows / max(frames, 1), 2),
            "event_records": len(events), "identical_to_every_frame": True,
            "seconds_median": round(fast, 5), "rows_per_second": round(rows / fast),
            "every_frame_seconds_median": round(slow, 5), "every_frame_rows_per_second": round(rows / slow),
            "speedup": round(slow / fast, 2), "read_ms": round(read * 1e3, 2),
            "per_rule_ms": per_rule(log, camera, frame_size=frame_size)}


def per_rule(log: Path, camera, *, frame_size=None, repeats: int = 3) -> dict[str, float]:
    """Milliseconds each rule adds to a replay: a replay with that rule alone, minus one with no rules."""
    def seconds(rules: tuple) -> float:
        cam = camera.model_copy(update={"rules": rules})
        return median_seconds(lambda: replay(log, cam, frame_size=frame_size), repeats)

    base = seconds(())
    out = {"(reading, no rule)": round(base * 1e3, 2)}
    for cfg in camera.rules:
        out[f"{cfg.kind}:{cfg.id}"] = round(max(seconds((cfg,)) - base, 0.0) * 1e3, 2)
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


def end_to_end(log: Path, out: Path, *, copies: int) -> Path:
    """``copies`` of a track log and its frame index one after the other (each starts one frame interval
    after the previous one ends; new track ids): a longer log of the same camera's traffic."""
    tracks, index = pl.read_parquet(log), pl.read_parquet(frames_path_for(log))
    seq_span = int(index["seq"].max()) - int(index["seq"].min()) + 1
    times = index["timestamp"]
    step = float(times.diff().median() or 0.0)
    time_span = float(times.max() - times.min()) + step
    id_span = int(tracks["track_id"].max()) + 1

    def shifted(df: pl.DataFrame, k: int, ids: bool) -> pl.DataFrame:
        cols = [pl.col("seq") + k * seq_span, pl.col("timestamp") + k * time_span]
        if ids:
            cols.append(pl.col("track_id") + k * id_span)
        return df.with_columns(cols)

    pl.concat([shifted(tracks, k, True) for k in range(copies)]).write_parquet(out)
    pl.concat([shifted(index, k, False) for k in range(copies)]).write_parquet(frames_path_for(out))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "default")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--copies", type=int, default=10, help="copies end to end in the long logs")
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the issue asks

    cfg = load_config(args.config)
    cameras = [c for c in cfg.cameras if c.rules]
    if any(not (args.run_dir / f"{c.id}.tracks.parquet").is_file() for c in cameras):
        subprocess.run([str(ROOT / ".venv/bin/analytics"), "run", str(args.config), "--out", str(args.run_dir),
                        "--no-progress"], check=True, capture_output=True, text=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for c in cameras:
        log = args.run_dir / f"{c.id}.tracks.parquet"
        results[c.id] = time_replay(log, c, repeats=args.repeats)
        print(f"{c.id}: {results[c.id]['rows_per_second']:,} rows/s", flush=True)
    for c in cameras:
        long_log = end_to_end(args.run_dir / f"{c.id}.tracks.parquet", CACHE / f"{c.id}_x{args.copies}.tracks.parquet",
                              copies=args.copies)
        name = f"{c.id} (x{args.copies} end to end)"
        results[name] = time_replay(long_log, c, repeats=args.repeats)
        print(f"{name}: {results[name]['rows_per_second']:,} rows/s", flush=True)

    pets = load_config(ROOT / "configs" / "pets09.yaml").cameras[0]
    gt_log = CACHE / "pets09_gt.tracks.parquet"
    mot = read_mot(shared_dir() / "footage" / "mot" / "PETS09-S2L1" / "gt" / "gt.txt")
    mot_to_track_log(mot.filter(pl.col("conf") != 0), camera_id=pets.id, fps=7.0).write_parquet(gt_log)
    results["pets09 (ground truth)"] = time_replay(gt_log, pets, repeats=args.repeats, frame_size=(768, 576))
    dense_log = gt_log.with_name("pets09_gt_x8.tracks.parquet")
    dense(pl.read_parquet(gt_log), copies=8).write_parquet(dense_log)
    results["pets09 (ground truth x8, dense)"] = time_replay(dense_log, pets, repeats=args.repeats,
                                                             frame_size=(768, 576))

    total_rows = sum(r["rows"] for r in results.values())
    total_s = sum(r["seconds_median"] for r in results.values())
    total_ref = sum(r["every_frame_seconds_median"] for r in results.values())
    result = {"date": time.strftime("%Y-%m-%d"), "config": str(args.config.relative_to(ROOT)),
              "run_dir": str(args.run_dir.relative_to(ROOT)) if args.run_dir.is_relative_to(ROOT) else str(args.run_dir),
              "repeats": args.repeats, "copies": args.copies, "one_core": hasattr(os, "sched_setaffinity"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor()},
              "logs": results, "overall_rows_per_second": round(total_rows / total_s),
              "overall_every_frame_rows_per_second": round(total_rows / total_ref),
              "overall_speedup": round(total_ref / total_s, 2),
              "command": ".venv/bin/python benchmarks/replay_speed.py"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "replay_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "replay_speed.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [f"# Replay speed, {r['date']}", "",
             f"Command: `{r['command']}` (config `{r['config']}`, logs from `{r['run_dir']}`, median of "
             f"{r['repeats']} replays, Parquet read included, pinned to one core: {r['one_core']}). \"Every "
             "frame\" is the reference that steps every rule on every frame, timed in the same process; the "
             "events of both are identical on every log (checked by the run).", "",
             "| log | rules | rows | frames | rows/frame | event records | rows/s | every frame, rows/s | speed-up "
             "| read, ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in r["logs"].items():
        lines.append(f"| {name} | {len(c['per_rule_ms']) - 1} | {c['rows']:,} | {c['frames']:,} | "
                     f"{c['rows_per_frame']} | {c['event_records']} | **{c['rows_per_second']:,}** | "
                     f"{c['every_frame_rows_per_second']:,} | {c['speedup']}x | {c['read_ms']} |")
    lines += ["", f"All logs together: **{r['overall_rows_per_second']:,} rows/s** on one core "
              f"({r['overall_every_frame_rows_per_second']:,} stepping every frame: {r['overall_speedup']}x).", "",
              "Milliseconds per replay: reading the log with no rule, then what each rule adds:", ""]
    for name, c in r["logs"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in c["per_rule_ms"].items()))
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
