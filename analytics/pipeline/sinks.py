"""Per-camera sinks: the track log (Parquet + MOTChallenge text) and an optional annotated video."""

from __future__ import annotations

import logging
from pathlib import Path

from analytics.annotate import annotate
from analytics.config import CameraConfig, OutputConfig
from analytics.geometry import SceneGeometry
from analytics.tracklog import MotTextWriter, ParquetTrackWriter
from analytics.types import TrackedFrame

log = logging.getLogger(__name__)


class AnnotatedVideoWriter:
    """Draws confirmed tracks (and the scene's zones and lines, if given) with :func:`analytics.annotate.annotate`
    and writes an mp4 at the frames' full size (opened on the first frame)."""

    def __init__(self, path: str | Path, *, fps: float, scene: SceneGeometry | None = None) -> None:
        self.path = Path(path)
        self.fps = fps
        self.scene = scene
        self._writer = None

    def write(self, msg: TrackedFrame) -> None:
        import cv2

        image = annotate(msg.frame.image, msg.tracks, scene=self.scene)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OSError(f"cannot open video writer for {self.path}")
        self._writer.write(image)

    def flush(self) -> None:
        """Video frames are written as they come; nothing is buffered here."""

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class TrackLogSink:
    """Everything one camera writes: ``<dir>/<camera>.tracks.parquet``, ``<camera>.mot.txt``, ``<camera>.mp4``."""

    def __init__(self, camera: CameraConfig, output: OutputConfig, *, out_dir: Path,
                 mot_path: Path | None = None) -> None:
        self.camera_id = camera.id
        self.writers: list = []
        self.paths: dict[str, Path] = {}
        if output.parquet:
            self.paths["parquet"] = out_dir / f"{camera.id}.tracks.parquet"
            self.writers.append(ParquetTrackWriter(self.paths["parquet"]))
        if output.mot or mot_path is not None:
            self.paths["mot"] = mot_path or out_dir / f"{camera.id}.mot.txt"
            self.writers.append(MotTextWriter(self.paths["mot"], min_hits=camera.tracker.min_hits,
                                              backfill=camera.tracker.backfill))
        if output.video:
            self.paths["video"] = out_dir / f"{camera.id}.mp4"
            self.writers.append(AnnotatedVideoWriter(self.paths["video"], fps=camera.fps or 10.0,
                                                     scene=camera.scene))

    def write(self, msg: TrackedFrame) -> None:
        for writer in self.writers:
            writer.write(msg)

    def flush(self) -> None:
        for writer in self.writers:
            writer.flush()

    def close(self) -> None:
        for writer in self.writers:
            try:
                writer.close()
            except OSError:
                log.exception("camera %s: closing %s failed", self.camera_id, type(writer).__name__)
