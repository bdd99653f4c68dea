"""The reference run: plain ultralytics ``model.track(..., tracker="bytetrack.yaml")`` on the same frames.

The frames come from the engine's own source for the camera (same decoder, same analysis rate, same privacy
masks, same ``max_frames``), and each is handed to ``model.track(image, persist=True, ...)``, so both runs
see exactly the same images. Timing covers decode + detect + track + collecting the MOT rows, after one
warm-up prediction (model compilation excluded, as it is from the pipeline's own timing). ultralytics'
``track`` defaults apply (detection confidence 0.1, NMS IoU 0.7); only ``classes`` and ``imgsz`` are set.

ultralytics and torch are imported when :func:`ultralytics_track` runs, never at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from analytics.bench.measure import Usage, latency_summary, peak_rss_mb
from analytics.types import Frame


def _timed_frames(frames: Iterable[Frame], decode: list[float]) -> Iterator[Frame]:
    it = iter(frames)
    while True:
        t0 = time.perf_counter()
        frame = next(it, None)
        if frame is None:
            return
        decode.append(time.perf_counter() - t0)
        yield frame


def ultralytics_track(frames: Iterable[Frame], *, model: str | Path, out: Path, classes: tuple[int, ...],
                      imgsz: int = 640, tracker: str = "bytetrack.yaml", on_frame=None) -> dict[str, Any]:
    """Track ``frames`` with ultralytics and write MOTChallenge rows (``seq + 1`` as the frame number) to ``out``.

    Args:
        frames: the frames, in order (an engine source, possibly limited).
        model: registry name or path of a model ultralytics loads (checked by :mod:`analytics.models`).
        out: MOTChallenge text to write.
        classes: COCO class ids to keep.
        imgsz: ultralytics input size, pixels.
        tracker: ultralytics tracker config.
        on_frame: called after each frame (progress).

    Returns:
        ``frames``, ``seconds``, ``fps``, ``model_load_seconds``, ``cpu_seconds``, ``cpu_percent``,
        ``peak_rss_mb``, ``stages`` (``decode``, ``detect_track``: the whole ``model.track`` call, and
        ultralytics' own ``preprocess``, ``inference``, ``postprocess``; latency summaries, ms).
    """
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path.home() / ".cache" / "analytics" / "ultralytics"))
    from ultralytics import YOLO

    from analytics.models import resolve_model

    t0 = time.perf_counter()
    yolo = YOLO(str(resolve_model(model).path), task="detect")
    yolo.predict(np.zeros((imgsz, imgsz, 3), np.uint8), imgsz=imgsz, verbose=False)  # warm-up / compile
    load_s = time.perf_counter() - t0
    decode: list[float] = []
    calls: list[float] = []
    own: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}
    rows: list[str] = []
    n = 0
    start = Usage.now()
    for frame in _timed_frames(frames, decode):
        a = time.perf_counter()
        res = yolo.track(frame.image, persist=True, tracker=tracker, classes=list(classes), imgsz=imgsz,
                         verbose=False)[0]
        calls.append(time.perf_counter() - a)
        for key in own:
            own[key].append(float(res.speed.get(key) or 0.0) / 1e3)
        n += 1
        boxes = res.boxes
        if boxes is not None and boxes.id is not None:
            for (x1, y1, x2, y2), tid, conf in zip(boxes.xyxy.tolist(), boxes.id.int().tolist(), boxes.conf.tolist(),
                                                   strict=True):
                rows.append(f"{frame.seq + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},"
                            "-1,-1,-1\n")
        if on_frame is not None:
            on_frame()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(rows))
    end = Usage.now()
    seconds = end.wall - start.wall
    stages = {"decode": latency_summary(decode), "detect_track": latency_summary(calls)}
    stages |= {key: latency_summary(values) for key, values in own.items()}
    return {"frames": n, "seconds": round(seconds, 3), "fps": round(n / seconds, 3) if seconds > 0 else 0.0,
            "model_load_seconds": round(load_s, 3), **end.since(start), "peak_rss_mb": peak_rss_mb(),
            "stages": stages, "outputs": {"mot": str(out)}}
