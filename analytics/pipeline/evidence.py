"""Alert evidence: a snapshot and a short H.264 clip for each new alert, cut from a per-camera ring buffer.

Each camera keeps the last ``pre_seconds`` (frame time) of its analysed frames, annotated, scaled to
``max_width`` and JPEG-encoded (a 75-camera centre cannot hold raw frames). When an alert is created:

* the **snapshot** is the buffered frame whose ``seq`` is the alert's ``best_frame_seq``, else the newest
  buffered frame (none yet: the camera's next frame);
* the **clip** gathers the buffered frames from ``alert.start - pre_seconds`` and the following frames until
  ``alert.end + post_seconds`` (frame time; at creation ``alert.end`` is the creating frame's time), then is
  encoded as a browser-playable MP4 (H.264 High, yuv420p, even size, ``moov`` atom first) through PyAV.

Files: ``<evidence_dir>/<camera_id>/<alert_id with ':' -> '_'>/snapshot.jpg`` and ``clip.mp4``, each written
to a temporary file in that folder and moved into place. Encoding and file writes run on one background
writer thread fed by a queue, so the analysis thread only annotates and JPEG-encodes its frame.

Privacy: frames arrive already masked at the source; rendering blanks the private zones once more on the
scaled, annotated image (see :class:`~analytics.annotate.FrameRenderer`), and no raw frame is kept.

PyAV and OpenCV are imported only when a clip is encoded.
"""

from __future__ import annotations

import collections
import logging
import queue
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analytics.alerts.config import EvidenceConfig
from analytics.alerts.model import Alert
from analytics.annotate import FrameRenderer
from analytics.pipeline.live import check_camera_id, write_atomic
from analytics.types import TrackedFrame
from analytics.video_io import Mp4Writer

if TYPE_CHECKING:
    from analytics.config import CameraConfig

log = logging.getLogger(__name__)

SNAPSHOT = "snapshot"
CLIP = "clip"
_FOLDER = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
#: Frame-time tolerance, seconds, when comparing timestamps to a clip's window.
_EPS = 1e-6
#: Clip frame rate when it cannot be measured (a single frame and no configured rate), frames per second.
_DEFAULT_FPS = 5.0
#: x264 settings: visually fine for evidence, fast enough for one thread serving many cameras.
_X264 = {"crf": "23", "preset": "veryfast"}


def evidence_paths(evidence_dir: Path, alert_id: str) -> dict[str, Path]:
    """``{"snapshot": .../snapshot.jpg, "clip": .../clip.mp4}`` of an alert.

    The folder is ``<evidence_dir>/<camera_id>/<alert_id with ':' replaced by '_'>``, the camera id being
    the part of ``alert_id`` before its first ``:``. ValueError for an id that could leave ``evidence_dir``.
    """
    camera_id = alert_id.split(":", 1)[0] if isinstance(alert_id, str) else alert_id
    check_camera_id(camera_id)
    name = alert_id.replace(":", "_")
    if not _FOLDER.match(name):
        raise ValueError(f"invalid alert id {alert_id!r}: expected letters, digits, ':', '_', '.' or '-'")
    folder = Path(evidence_dir) / camera_id / name
    return {SNAPSHOT: folder / "snapshot.jpg", CLIP: folder / "clip.mp4"}


def remove_evidence(evidence_dir: Path, alert_id: str) -> bool:
    """Delete an alert's evidence folder (any process, e.g. the console's retention purge).

    Returns True if it was removed or did not exist, False if the id is invalid or removing failed (logged).
    """
    try:
        folder = evidence_paths(evidence_dir, alert_id)[SNAPSHOT].parent
    except ValueError as err:
        log.error("evidence: cannot remove: %s", err)
        return False
    if not folder.exists():
        return True
    try:
        shutil.rmtree(folder)
    except OSError as err:
        log.error("evidence: cannot remove %s: %s", folder, err)
        return False
    return True


@dataclass(frozen=True, slots=True)
class BufferedFrame:
    """One buffered frame: ``seq`` and ``timestamp`` (seconds, frame time) of the source frame, annotated JPEG."""

    seq: int
    timestamp: float
    jpeg: bytes = field(repr=False)


@dataclass(slots=True)
class _Snapshot:
    alert_id: str
    jpeg: bytes = field(repr=False)


@dataclass(slots=True)
class _Clip:
    alert_id: str
    end: float  # frame time, seconds: the clip is complete once a frame at or after it was seen
    fallback_fps: float
    frames: list[BufferedFrame] = field(default_factory=list)


@dataclass(slots=True)
class _Camera:
    buffer: collections.deque[BufferedFrame] = field(default_factory=collections.deque)
    clips: list[_Clip] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)  # alert ids waiting for this camera's next frame


def clip_rate(frames: Sequence[BufferedFrame], fallback_fps: float) -> Fraction:
    """Constant frame rate (frames per second) that gives the clip the real duration of its frames.

    ``(n - 1) / (last - first timestamp)``: the mean rate, so a clip of ``pre + post`` seconds lasts that long
    even when the analysis rate does not divide the source rate. ``fallback_fps`` for fewer than two frames.
    """
    span = frames[-1].timestamp - frames[0].timestamp if len(frames) > 1 else 0.0
    fps = (len(frames) - 1) / span if span > 0 else fallback_fps
    return Fraction(min(max(fps, 0.1), 120.0)).limit_denominator(1000)


def write_clip(path: Path, frames: Sequence[BufferedFrame], *, fallback_fps: float = _DEFAULT_FPS) -> int:
    """Encode buffered JPEG frames as an H.264 MP4 at ``path``, atomically. Returns the frames written.

    The size is the first frame's, cut down to even width and height (yuv420p); other sizes are resized.
    Frames are decoded one at a time (memory: one raw frame). Raises ValueError when nothing decodes,
    OSError / ``av.error.FFmpegError`` when writing fails (the temporary file is removed).
    """
    import cv2

    if not frames:
        raise ValueError(f"a clip needs at least one frame; {path} not written")
    with Mp4Writer(path, rate=clip_rate(frames, fallback_fps), options=_X264) as writer:
        for item in frames:
            image = cv2.imdecode(np.frombuffer(item.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("evidence: buffered frame %d does not decode; left out of %s", item.seq, path)
                continue
            writer.write(image)
        if not writer.written:
            raise ValueError(f"no frame of the clip decodes; {path} not written")
    return writer.written


class EvidenceRecorder:
    """Keeps a ring buffer per camera and writes each new alert's snapshot and clip (see the module docstring).

    Args:
        config: ``alerts.evidence`` settings (``enabled`` False: every method is a no-op).
        evidence_dir: root folder of the evidence files.
        cameras: the run's camera configs (scene overlay, privacy masks, fallback clip rate).
        on_saved: called as ``on_saved(alert_id, "snapshot" | "clip", path)`` once a file is complete, on the
            writer thread; its errors are logged.
        max_buffer_frames: hard cap on each camera's ring buffer, frames (memory guard at high rates).

    Threading: :meth:`on_frame` runs on the analysis thread (annotate + JPEG encode, then a short locked
    update); :meth:`on_alert`, :meth:`remove` and :meth:`close` may be called from any thread. Files are
    written by one background thread. Errors are logged; nothing raises into the pipeline.
    """

    def __init__(self, config: EvidenceConfig, evidence_dir: Path, cameras: Sequence[CameraConfig], *,
                 on_saved: Callable[[str, str, Path], None] | None = None, max_buffer_frames: int = 1500) -> None:
        if max_buffer_frames < 1:
            raise ValueError(f"max_buffer_frames must be at least 1, got {max_buffer_frames}")
        self.config = config
        self.evidence_dir = Path(evidence_dir)
        self.on_saved = on_saved
        self.max_buffer_frames = max_buffer_frames
        self._renderer = FrameRenderer(cameras, max_width=config.max_width, jpeg_quality=config.jpeg_quality)
        self._fallback_fps = {c.id: c.fps or _DEFAULT_FPS for c in cameras}
        self._cameras = {c.id: _Camera() for c in cameras}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queued = 0  # jobs submitted and not yet finished (guarded by _lock)
        self._jobs: queue.Queue[_Snapshot | _Clip | None] = queue.Queue()
        self._closed = not config.enabled
        self._warned: set[str] = set()
        self._thread: threading.Thread | None = None
        if config.enabled:
            self._thread = threading.Thread(target=self._work, name="evidence-writer", daemon=True)
            self._thread.start()

    # -- analysis side -----------------------------------------------------------------------------
    def on_frame(self, tracked: TrackedFrame) -> None:
        """Runner subscriber: buffer the frame, feed the camera's pending clips and snapshots."""
        if self._closed:
            return
        frame = tracked.frame
        state = self._cameras.get(frame.camera_id)
        if state is None:
            self._warn_once(frame.camera_id, "evidence: frame of unknown camera %r ignored", frame.camera_id)
            return
        try:
            item = BufferedFrame(frame.seq, frame.timestamp, self._renderer.jpeg(tracked))
        except Exception:  # noqa: BLE001 - evidence must never stop the analysis
            self._warn_once(frame.camera_id, "evidence: camera %s: cannot render a frame", frame.camera_id,
                            exc_info=True)
            return
        with self._lock:
            if self._closed:
                return
            jobs = self._add(state, item)
            self._queue(jobs)

    def _add(self, state: _Camera, item: BufferedFrame) -> list[_Snapshot | _Clip]:
        """Buffer ``item`` and return the jobs it completes. Call with the lock held."""
        buf = state.buffer
        if buf and item.timestamp < buf[-1].timestamp:
            buf.clear()  # the frame clock went back (a live camera's clock was reset): start afresh
        buf.append(item)
        oldest = item.timestamp - self.config.pre_seconds - _EPS
        while len(buf) > 1 and (buf[0].timestamp < oldest or len(buf) > self.max_buffer_frames):
            buf.popleft()
        jobs: list[_Snapshot | _Clip] = [_Snapshot(alert_id, item.jpeg) for alert_id in state.snapshots]
        state.snapshots.clear()
        still: list[_Clip] = []
        for clip in state.clips:
            if item.timestamp <= clip.end + _EPS:
                clip.frames.append(item)
            (jobs if item.timestamp >= clip.end - _EPS else still).append(clip)
        state.clips = still
        return jobs

    def on_alert(self, alert: Alert) -> None:
        """An alert was CREATED: queue its snapshot now and start its clip. Any thread."""
        if self._closed:
            return
        state = self._cameras.get(alert.camera_id)
        if state is None:
            self._warn_once(alert.camera_id, "evidence: alert %s of unknown camera %r ignored", alert.id,
                            alert.camera_id)
            return
        try:
            evidence_paths(self.evidence_dir, alert.id)
        except ValueError as err:
            log.error("evidence: %s", err)
            return
        start = alert.start - self.config.pre_seconds - _EPS
        clip = _Clip(alert.id, alert.end + self.config.post_seconds, self._fallback_fps[alert.camera_id])
        with self._lock:
            if self._closed:
                return
            buf = state.buffer
            jobs: list[_Snapshot | _Clip] = []
            if buf:
                best = next((f for f in buf if f.seq == alert.best_frame_seq), buf[-1])
                jobs.append(_Snapshot(alert.id, best.jpeg))
            else:
                state.snapshots.append(alert.id)
            clip.frames = [f for f in buf if start <= f.timestamp <= clip.end + _EPS]
            if buf and buf[-1].timestamp >= clip.end - _EPS:
                jobs.append(clip)
            else:
                state.clips.append(clip)
            self._queue(jobs)

    def buffered(self, camera_id: str) -> list[tuple[int, float]]:
        """``(seq, timestamp)`` of a camera's buffered frames, oldest first (diagnostics and tests)."""
        with self._lock:
            return [(f.seq, f.timestamp) for f in self._cameras[camera_id].buffer]

    # -- housekeeping ------------------------------------------------------------------------------
    def remove(self, alert: Alert) -> bool:
        """Delete an alert's evidence folder and forget its pending files (retention purge).

        Returns True if the folder was removed or did not exist, False if removing it failed (logged). A file
        the writer thread is writing at that very moment may still appear (retention purges old alerts).
        """
        with self._lock:
            state = self._cameras.get(alert.camera_id)
            if state is not None:
                state.clips = [c for c in state.clips if c.alert_id != alert.id]
                state.snapshots = [a for a in state.snapshots if a != alert.id]
        return remove_evidence(self.evidence_dir, alert.id)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued snapshot and clip is written; False on timeout. Any thread."""
        with self._idle:
            return self._idle.wait_for(lambda: self._queued == 0, timeout)

    def close(self, timeout: float = 60.0) -> bool:
        """Write the pending clips with the frames they have, then stop the writer thread. Idempotent.

        Returns False if the writer did not finish within ``timeout`` seconds (logged).
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                for camera_id, state in self._cameras.items():
                    if state.snapshots:
                        log.warning("evidence: camera %s ended before a frame for the snapshot of %s",
                                    camera_id, ", ".join(state.snapshots))
                    self._queue([c for c in state.clips if c.frames])
                    state.clips, state.snapshots = [], []
                    state.buffer.clear()
                if self._thread is not None:
                    self._jobs.put(None)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("evidence: the writer did not finish within %.0f s", timeout)
            return False
        return True

    # -- writer thread -----------------------------------------------------------------------------
    def _queue(self, jobs: list[_Snapshot | _Clip]) -> None:
        """Hand jobs to the writer thread. Call with the lock held."""
        for job in jobs:
            self._queued += 1
            self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._write(job)
            except Exception:  # noqa: BLE001 - one failed file must not stop the writer
                log.exception("evidence: alert %s: cannot write its %s", job.alert_id,
                              SNAPSHOT if isinstance(job, _Snapshot) else CLIP)
            finally:
                with self._idle:
                    self._queued -= 1
                    self._idle.notify_all()

    def _write(self, job: _Snapshot | _Clip) -> None:
        paths = evidence_paths(self.evidence_dir, job.alert_id)
        kind = SNAPSHOT if isinstance(job, _Snapshot) else CLIP
        paths[kind].parent.mkdir(parents=True, exist_ok=True)
        if isinstance(job, _Snapshot):
            write_atomic(paths[kind], job.jpeg)
        else:
            n = write_clip(paths[kind], job.frames, fallback_fps=job.fallback_fps)
            log.debug("evidence: alert %s: clip of %d frames", job.alert_id, n)
        if self.on_saved is not None:
            try:
                self.on_saved(job.alert_id, kind, paths[kind])
            except Exception:  # noqa: BLE001 - a failing callback must not stop the writer
                log.exception("evidence: on_saved failed for %s %s", job.alert_id, kind)

    def _warn_once(self, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args, exc_info=exc_info)
