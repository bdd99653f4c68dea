"""One measured pipeline run: the embedded runner on one camera, as ``analytics run`` wires it, with timings.

Decode -> detect -> track -> track log -> rules -> event log -> alert stage (manager + SQLite store; the
evidence clips and live frames are not attached: they are not on an event's path to its alert). Measured:

* ``fps``: analysed frames / seconds of :meth:`Runner.run` (after the detector is built and compiled);
* per-stage latency percentiles from :mod:`analytics.pipeline.timing` (``decode``, ``detect``, ``track``,
  ``sinks``, ``rules``, ``events``) and ``alerts``: the alert stage's own time per batch of events;
* ``cpu_percent`` over the run (100 = one core busy) and the process's peak resident memory (the run is meant
  to be alone in its process, see :mod:`analytics.bench.worker`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from analytics.bench.measure import PollingBar, Usage, latency_summary, peak_rss_mb, timed
from analytics.config import CameraConfig, RunConfig
from analytics.types import Frame, SourceStatus

log = logging.getLogger(__name__)


class LimitedSource:
    """The first ``max_frames`` frames a source yields (analysed frames: after rate limiting), then the end."""

    def __init__(self, inner: Any, max_frames: int) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self._inner = inner
        self._max = max_frames
        self.camera_id = inner.camera_id

    def __iter__(self) -> Iterator[Frame]:
        frames = iter(self._inner)
        try:
            for n, frame in enumerate(frames, start=1):
                yield frame
                if n >= self._max:
                    break
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    def status(self) -> SourceStatus:
        return self._inner.status()

    def close(self) -> None:
        self._inner.close()


def limited(open_source: Callable[[CameraConfig], Any], max_frames: int | None) -> Callable[[CameraConfig], Any]:
    """``open_source`` whose sources stop after ``max_frames`` analysed frames (None: unchanged)."""
    if max_frames is None:
        return open_source
    return lambda cam: LimitedSource(open_source(cam), max_frames)


def expected_frames(cam: CameraConfig, max_frames: int | None = None) -> int | None:
    """How many frames the camera's source will yield (for a progress bar's total); None when unknown."""
    import cv2

    from analytics.sources.files import list_images, read_seqinfo

    path = Path(cam.source)
    try:
        if (path / "seqinfo.ini").is_file():
            folder, fps = read_seqinfo(path, camera_id=cam.id)
            n = len(list_images(folder))
        elif path.is_dir():
            n, fps = len(list_images(path)), 25.0
        else:
            cap = cv2.VideoCapture(str(path))
            n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 25.0)
            cap.release()
    except Exception:  # noqa: BLE001 - only a progress estimate
        return max_frames
    if cam.fps is not None and not cam.benchmark and cam.fps < fps:
        n = int(n * cam.fps / fps) + 1
    return min(n, max_frames) if max_frames else n


def build_detector(cfg: RunConfig):
    """The run's shared detector, as ``analytics run`` builds it (classes: the union; confidence: the minimum)."""
    from analytics.detectors import create_detector

    classes = tuple(sorted({cid for cam in cfg.cameras for cid in cam.detection.class_ids}))
    conf = min(cam.detection.confidence for cam in cfg.cameras)
    return create_detector(cfg.detector, classes=classes, confidence=conf)


def run_pipeline(cfg: RunConfig, *, out_dir: Path, max_frames: int | None = None, progress: bool | None = None,
                 label: str = "pipeline") -> dict[str, Any]:
    """Run the single camera of ``cfg`` through the pipeline and measure it (see the module docstring).

    Args:
        cfg: a run config with exactly one camera; ``output`` is replaced by ``out_dir``.
        out_dir: where the track log, MOT text, events and alert store go.
        max_frames: stop after this many analysed frames.
        progress: show a frame progress bar (None: on a terminal only).
        label: the progress bar's label.

    Returns:
        JSON-ready dict: ``frames``, ``seconds``, ``fps``, ``model_load_seconds``, ``cpu_seconds``,
        ``cpu_percent``, ``peak_rss_mb``, ``stages`` (name -> latency summary, ms), ``detect_batch``,
        ``outputs`` (name -> path), ``camera_id``, ``error``, ``event_records``.
    """
    from analytics.pipeline import Runner
    from analytics.sources import open_source

    if len(cfg.cameras) != 1:
        raise ValueError(f"a benchmark pipeline run takes one camera, got {len(cfg.cameras)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"dir": str(out_dir), "parquet": True,
                                                                        "mot": True, "video": False})})
    cam = cfg.cameras[0]
    t0 = time.perf_counter()
    detector = build_detector(cfg)
    load_s = time.perf_counter() - t0
    store = None
    alert_times: list[float] = []
    try:
        runner = Runner(cfg, detector, open_source=limited(open_source, max_frames), out_dir=out_dir)
        if cam.rules:
            store, stage = _alert_stage(cfg, out_dir)
            runner.event_subscribers.append(timed(stage.process, lambda s, _r: alert_times.append(s)))
        start = Usage.now()
        with PollingBar(lambda: sum(c.frames for c in runner.snapshot()), total=expected_frames(cam, max_frames),
                        desc=label, enabled=progress, position=1):
            report = runner.run()
        usage = Usage.now().since(start)
    finally:
        detector.close()
        if store is not None:
            store.close()
    camera = report.cameras[0]
    stages = {name: latency_summary(values) for name, values in camera.timings.as_dict().items()}
    stages["alerts"] = latency_summary(alert_times)
    batches = report.detect_batches
    return {
        "camera_id": cam.id, "frames": report.frames, "seconds": round(report.seconds, 3),
        "fps": round(report.frames / report.seconds, 3) if report.seconds else 0.0,
        "model_load_seconds": round(load_s, 3), **usage, "peak_rss_mb": peak_rss_mb(), "stages": stages,
        "detect_batch": {"mean_frames": round(sum(n for n, _ in batches) / len(batches), 2) if batches else 0,
                         **latency_summary([s for _, s in batches])},
        "outputs": {k: str(v) for k, v in camera.outputs.items()},
        "event_records": camera.events, "error": camera.error,
    }


def _alert_stage(cfg: RunConfig, out_dir: Path):
    from analytics.alerts.store import AlertStore
    from analytics.pipeline.alerting import AlertStage

    db = out_dir / "alerts.db"
    db.unlink(missing_ok=True)
    store = AlertStore.open(f"sqlite:///{db}")
    try:
        return store, AlertStage(cfg.alerts, store, cfg.cameras)
    except Exception:
        store.close()
        raise
