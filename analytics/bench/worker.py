"""One measured benchmark job in its own process, so its CPU use and peak memory are its own.

    python -m analytics.bench.worker JOB.json RESULT.json

``JOB.json`` (written by :mod:`analytics.bench.suite`) holds ``kind`` and its arguments:

* ``pipeline``: ``config`` (a one-camera run config, as JSON), ``out_dir``, ``max_frames``, ``label``;
* ``baseline``: ``camera`` (camera config), ``model``, ``imgsz``, ``tracker``, ``out``, ``max_frames``;
* ``capacity``: ``config`` (detector and the sequences' cameras), ``spec`` (:class:`CapacitySpec`), ``out_dir``;

and ``progress`` (bool or null: on a terminal only). The result is written as JSON to ``RESULT.json``; a
failure exits non-zero with the error on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (see the module docstring) and return its JSON-ready result."""
    from analytics.config import CameraConfig, RunConfig

    kind = job.get("kind")
    progress = job.get("progress")
    if kind == "pipeline":
        from analytics.bench.pipeline import run_pipeline

        return run_pipeline(RunConfig.model_validate(job["config"]), out_dir=Path(job["out_dir"]),
                            max_frames=job.get("max_frames"), progress=progress, label=job.get("label", "pipeline"))
    if kind == "baseline":
        return _baseline(CameraConfig.model_validate(job["camera"]), job, progress)
    if kind == "capacity":
        from analytics.bench.manifest import CapacitySpec

        return _capacity(RunConfig.model_validate(job["config"]), CapacitySpec.model_validate(job["spec"]),
                         Path(job["out_dir"]), progress)
    raise ValueError(f"unknown benchmark job kind {kind!r}; expected pipeline, baseline or capacity")


def _baseline(cam, job: dict[str, Any], progress: bool | None) -> dict[str, Any]:
    from analytics.bench.baseline import ultralytics_track
    from analytics.bench.measure import PollingBar
    from analytics.bench.pipeline import expected_frames, limited
    from analytics.sources import open_source

    source = limited(open_source, job.get("max_frames"))(cam)
    done = [0]
    try:
        with PollingBar(lambda: done[0], total=expected_frames(cam, job.get("max_frames")),
                        desc=job.get("label", "baseline"), enabled=progress, position=1):
            return ultralytics_track(source, model=job["model"], out=Path(job["out"]),
                                     classes=cam.detection.class_ids, imgsz=int(job.get("imgsz", 640)),
                                     tracker=job.get("tracker", "bytetrack.yaml"),
                                     on_frame=lambda: done.__setitem__(0, done[0] + 1))
    finally:
        source.close()


def _capacity(cfg, spec, out_dir: Path, progress: bool | None) -> dict[str, Any]:
    from analytics.bench.capacity import keeps_up, probe_cameras, run_probe, search
    from analytics.bench.measure import peak_rss_mb
    from analytics.bench.pipeline import build_detector

    sequences = list(cfg.cameras)
    detector = build_detector(cfg)
    try:
        def run(n: int) -> dict[str, Any]:
            cams = probe_cameras(sequences, n, fps=spec.fps)
            return run_probe(cfg, cams, detector, out_dir=out_dir / f"probe-{n}", rate=spec.fps,
                             warmup=spec.warmup_seconds, seconds=spec.probe_seconds, progress=progress)

        capacity, probes = search(run, max_streams=spec.max_streams,
                                  passes=lambda p: keeps_up(p, min_fps_ratio=spec.min_fps_ratio,
                                                            max_drop_ratio=spec.max_drop_ratio))
    finally:
        detector.close()
    at = next((p for p in probes if p["streams"] == capacity), None)
    return {"streams": capacity, "fps_per_stream": spec.fps, "max_streams": spec.max_streams,
            "criteria": {"min_fps_ratio": spec.min_fps_ratio, "max_drop_ratio": spec.max_drop_ratio},
            "at_capacity": at, "probes": probes, "peak_rss_mb": peak_rss_mb(),
            "sequences": [c.id for c in sequences]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m analytics.bench.worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("ANALYTICS_BENCH_LOG", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path.home() / ".cache" / "analytics" / "ultralytics"))
    out = Path(args[1])
    try:
        result = run_job(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    except Exception as err:  # noqa: BLE001 - reported to the suite, which goes on with the other runs
        traceback.print_exc()
        out.write_text(json.dumps({"error": f"{type(err).__name__}: {err}"}) + "\n", encoding="utf-8")
        return 1
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
