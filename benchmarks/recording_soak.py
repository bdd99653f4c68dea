"""Soak run of continuous recording: 4 cameras of real footage for 10 minutes, memory and segment continuity.

    .venv/bin/python benchmarks/recording_soak.py [--minutes 10] [--segment-seconds 60] [--fps 5]
                                                  [--detector null|config]

Four cameras read real footage from ``../shared/footage`` through the project's file sources, looped and paced in
real time (``realtime: true, loop: true``) at the analysed rate ``--fps``, each with a privacy mask, through the
real :class:`~analytics.pipeline.runner.Runner` (capture threads, tracker, track-log sinks) with a
:class:`~analytics.recording.segments.SegmentRecorder` subscribed, indexing into a SQLite store, and the
:class:`~analytics.recording.retention.Retention` low-disk check every 30 s and purge every 60 s (on the real
disk: nothing is due, it measures that they run). The detector is a **null detector** (no detections) by default,
so the soak measures recording, not inference, on this shared 2-core machine; ``--detector config`` uses the
default config's OpenVINO detector instead. The runner's track logs are off unless ``--track-logs``: their Parquet
frame index buffers one row per analysed frame until 4096 rows per camera (~14 minutes at 5 fps), a bounded ramp
of ~1.8 MB per minute for 4 cameras that would hide the recorder's own memory in a 10-minute run.

Measured: the process's resident memory (RSS) every 10 s; memory is **flat** when the least-squares slope after
the first minute is under 2 MB per minute and the mean of the last minute is within 10 % of the first minute's.
Segments: per camera, every boundary must be gap-free (a segment's ``end`` / ``wall_end`` equal to the next one's
``start`` / ``wall_start``), every analysed frame recorded or counted as dropped, no failed segment, each file's
frame count (decoded container header) equal to its index row. Writes benchmarks/results/recording_soak.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics import paths  # noqa: E402
from analytics.alerts.store import AlertStore  # noqa: E402
from analytics.config import parse_config  # noqa: E402
from analytics.pipeline import Runner  # noqa: E402
from analytics.recording.index import RecordingIndex  # noqa: E402
from analytics.recording.retention import Retention  # noqa: E402
from analytics.recording.segments import SegmentRecorder  # noqa: E402
from analytics.sources import open_source  # noqa: E402
from analytics.types import Detections  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FOOTAGE = {
    "junction": "street/vtest_PETS09-S2L1_480x360.mp4",
    "street": "traffic/vct_input_video.mp4",
    "desk": "street/one-by-one-person-detection.mp4",
    "parking": "traffic/car-detection.mp4",
}
MASK = [[0.6, 0.05], [0.95, 0.05], [0.95, 0.4], [0.6, 0.4]]
SAMPLE_S = 10.0


class NullDetector:
    """No detections: the soak measures recording, not inference."""

    name = "null"

    def detect(self, frames):
        return [Detections.empty() for _ in frames]

    def close(self) -> None:
        pass


def build(args: argparse.Namespace, work: Path) -> tuple[Any, Any]:
    footage = paths.footage_dir()
    cameras = [{"id": cam, "source": str(footage / rel), "fps": args.fps, "realtime": True, "loop": True,
                "privacy_masks": [{"name": "private", "polygon": MASK}]} for cam, rel in FOOTAGE.items()]
    output = {"dir": str(work / "out"), "parquet": args.track_logs, "mot": args.track_logs}
    cfg = parse_config({"cameras": cameras, "output": output,
                        "recording": {"enabled": True, "segment_seconds": args.segment_seconds}},
                       path=work / "soak.yaml", base=work)
    if args.detector == "null":
        return cfg, NullDetector()
    from analytics.detectors import create_detector

    classes = tuple(sorted({cid for cam in cfg.cameras for cid in cam.detection.class_ids}))
    conf = min(cam.detection.confidence for cam in cfg.cameras)
    return cfg, create_detector(cfg.detector, classes=classes, confidence=conf)


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    t = np.array([s[0] for s in samples]) / 60.0
    m = np.array([s[1] for s in samples])
    return float(np.polyfit(t, m, 1)[0]) if len(samples) > 2 else 0.0


def check_segments(index: RecordingIndex, camera: str) -> dict[str, Any]:
    import av

    segs = sorted(index.segments(camera_id=camera), key=lambda s: s.start)
    gaps = [(a.id, b.id, b.start - a.end, b.wall_start - a.wall_end) for a, b in zip(segs, segs[1:])
            if a.end != b.start or a.wall_end != b.wall_start]
    mismatched = []
    for s in segs:
        with av.open(s.path) as container:
            n = container.streams.video[0].frames
        if n != s.frames:
            mismatched.append((s.id, s.frames, n))
    return {"segments": len(segs), "frames": sum(s.frames for s in segs), "bytes": sum(s.bytes for s in segs),
            "covered_s": (segs[-1].end - segs[0].start) if segs else 0.0,
            "durations_s": [round(s.end - s.start, 3) for s in segs], "gaps": gaps, "gap_free": not gaps,
            "file_frame_mismatches": mismatched}


def run(args: argparse.Namespace) -> dict[str, Any]:
    proc = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="recording_soak_") as tmp:
        work = Path(tmp)
        cfg, detector = build(args, work)
        store = AlertStore.open(f"sqlite:///{work / 'alerts.db'}")
        index = RecordingIndex(store)
        rec_dir = work / "recordings"
        retention = Retention(index, None, retention_days=15, min_free_gb=cfg.recording.min_free_gb,
                              recordings_dir=rec_dir)
        recorder = SegmentRecorder(cfg.recording, rec_dir, cfg.cameras, index, on_disk_full=retention.check_disk)
        runner = Runner(cfg, detector, open_source=open_source, out_dir=work / "out")
        runner.subscribers.append(recorder.on_frame)
        result: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: result.setdefault("report", runner.run()), name="runner")
        t0, cpu0 = time.monotonic(), proc.cpu_times()
        thread.start()
        samples: list[tuple[float, float]] = []
        next_disk = next_purge = 0.0
        while (elapsed := time.monotonic() - t0) < args.minutes * 60 and thread.is_alive():
            samples.append((elapsed, proc.memory_info().rss / 2**20))
            if elapsed >= next_disk:
                retention.check_disk()
                next_disk = elapsed + 30
            if elapsed >= next_purge:
                retention.purge()
                next_purge = elapsed + 60
            print(f"{elapsed:6.0f} s  RSS {samples[-1][1]:7.1f} MB  "
                  + "  ".join(f"{c}: {s.frames}/{s.dropped}" for c, s in recorder.stats().items()), flush=True)
            time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - t0 - elapsed)))
        runner.stop()
        thread.join(60)
        closed = recorder.close(120)
        wall = time.monotonic() - t0
        cpu1 = proc.cpu_times()
        after_close = proc.memory_info().rss / 2**20  # not a sample: the pipeline has stopped
        report = result.get("report")
        stats = recorder.stats()
        cameras = {}
        for cam in cfg.cameras:
            analysed = next((c.frames for c in report.cameras if c.camera_id == cam.id), None) if report else None
            seg = check_segments(index, cam.id)
            s = stats[cam.id]
            cameras[cam.id] = {"source": FOOTAGE[cam.id], "analysed_frames": analysed, "recorded_frames": s.frames,
                               "recorder_dropped": s.dropped, "failed_segments": s.failed,
                               "unindexed": s.unindexed, "all_frames_accounted": analysed == s.frames + s.dropped,
                               **seg}
        store.close()
    after = [s for s in samples if s[0] >= 60.0]
    first = [m for t, m in samples if 60.0 <= t < 120.0] or [samples[0][1]]
    last = [m for t, m in samples if t >= samples[-1][0] - 60.0]
    slope = slope_mb_per_min(after)
    ratio = float(np.mean(last) / np.mean(first))
    flat = slope < 2.0 and abs(ratio - 1.0) < 0.10
    gap_free = all(c["gap_free"] and not c["file_frame_mismatches"] for c in cameras.values())
    ok = (flat and gap_free and closed and all(c["failed_segments"] == 0 and c["all_frames_accounted"]
                                               for c in cameras.values()))
    return {
        "command": "python benchmarks/recording_soak.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {"minutes": args.minutes, "fps": args.fps, "segment_seconds": args.segment_seconds,
                     "detector": args.detector, "track_logs": args.track_logs, "crf": cfg.recording.crf,
                     "max_width": cfg.recording.max_width},
        "wall_s": round(wall, 1), "cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 1),
        "rss_mb": [(round(t, 1), round(m, 1)) for t, m in samples],
        "memory": {"slope_mb_per_min_after_1min": round(slope, 3), "first_minute_mb": round(float(np.mean(first)), 1),
                   "last_minute_mb": round(float(np.mean(last)), 1), "last_over_first": round(ratio, 4),
                   "peak_mb": round(max(m for _, m in samples), 1), "after_close_mb": round(after_close, 1),
                   "flat": flat},
        "cameras": cameras, "recorder_closed": closed, "gap_free": gap_free, "ok": ok,
    }


def markdown(r: dict[str, Any]) -> str:
    m = r["memory"]
    lines = [
        "# Recording soak", "",
        f"`{r['command']}` on {r['machine']['cpus']} cores ({r['machine']['platform']}): 4 cameras of real footage, "
        f"looped in real time at {r['settings']['fps']} fps analysed (= recorded), "
        f"{r['settings']['segment_seconds']} s segments, {r['settings']['detector']} detector, track logs "
        f"{'on' if r['settings']['track_logs'] else 'off'}, for {r['wall_s']:.0f} s (CPU {r['cpu_s']:.0f} s).", "",
        f"Memory: RSS {m['first_minute_mb']} MB in the second minute, {m['last_minute_mb']} MB in the last "
        f"(x{m['last_over_first']}), slope after the first minute {m['slope_mb_per_min_after_1min']} MB/min, "
        f"peak {m['peak_mb']} MB: **{'flat' if m['flat'] else 'NOT flat'}** (slope < 2 MB/min, within 10 %).", "",
        "| camera | analysed | recorded | dropped | segments | failed | covered s | gap-free | file frames = index |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cam, c in r["cameras"].items():
        lines.append(f"| {cam} | {c['analysed_frames']} | {c['recorded_frames']} | {c['recorder_dropped']} | "
                     f"{c['segments']} | {c['failed_segments']} | {c['covered_s']:.1f} | {c['gap_free']} | "
                     f"{not c['file_frame_mismatches']} |")
    lines += ["", f"Verdict: **{'pass' if r['ok'] else 'FAIL'}**.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--segment-seconds", type=float, default=60.0)
    p.add_argument("--fps", type=float, default=5.0)
    p.add_argument("--detector", choices=("null", "config"), default="null")
    p.add_argument("--track-logs", action="store_true", help="also write the runner's Parquet / MOT track logs "
                   "(their Parquet frame index buffers ~1.5 KB per analysed frame until 4096 rows per camera)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for recording_soak.{json,md}")
    args = p.parse_args()
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recording_soak.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "recording_soak.md").write_text(markdown(result))
    print(markdown(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
