"""Continuous recording: every camera's analysed frames as fixed-length H.264 MP4 segments, indexed in the store.

:class:`SegmentRecorder` is a :class:`~analytics.pipeline.runner.Runner` subscriber. It records the frames the
run analyses, so **the recording rate is the analysed rate** (the camera's ``fps``, or every decoded frame when
``fps`` is null; frames the runner drops under load are missing from the recording too, their time is kept).

* **Pixels**: the raw frame, no boxes or overlay. Frames arrive privacy-masked at the source
  (:mod:`analytics.sources.privacy`); frames wider than ``max_width`` are scaled down (area interpolation) and
  the camera's private zones are blanked again on the scaled image, because scaling blends border pixels into
  them. So no pixel of a private zone is ever stored.
* **Segments**: a segment starts at a camera's first frame and ends at the first frame whose timestamp is at
  least ``segment_seconds`` (frame time) after its start; that frame starts the next segment, so a segment's
  ``end`` is exactly the next one's ``start`` (media time) and its ``wall_end`` the next one's ``wall_start``:
  boundaries are gap-free. The frames are shown at their own timestamps (millisecond time base), so dropped or
  irregular frames keep their real time. A real interruption is not hidden: when frame time goes back (a live
  camera's clock reset) or jumps forward by more than ``max_gap`` (the camera was offline), the segment ends at
  its last frame plus one frame interval and a new one starts at the next frame. At :meth:`close` the open
  segments end the same way.
* **Files**: ``<recordings_dir>/<camera>/<YYYYmmdd>/<camera>_<YYYYmmddTHHMMSS.mmm>Z.mp4``, named after the wall
  time (UTC) of the segment's first frame, written to a temporary file in that folder, moved into place when
  complete (:class:`~analytics.video_io.Mp4Writer`), then indexed (:meth:`RecordingIndex.add_segment`).
  ``start`` / ``end`` are media time (the frames' timestamps: Unix time for live cameras), ``wall_start`` /
  ``wall_end`` the recorder's clock when the first frame and the next segment's first frame arrived.

Threading: :meth:`on_frame` runs on the analysis thread and only queues the frame (no copy: sources hand over a
fresh array per frame and nothing mutates it afterwards). One background writer thread scales, encodes and
writes for every camera. The queue is bounded (``max_queue`` frames): when the writer falls behind, frames are
dropped and counted (:meth:`stats`), the analysis thread never waits. One writer thread encodes what x264
``veryfast`` can there (measured on a 2-core box: ~80 frames per second of 480x360 to 768x432 video, 16 cameras
at 5 fps); a large centre runs several recorders.

Errors never reach the pipeline: a segment that cannot be written (a full disk, ENOSPC, included) is dropped
and logged, the camera pauses ``retry_seconds`` and starts a new segment; on ENOSPC ``on_disk_full`` is called
(the :meth:`~analytics.recording.retention.Retention.check_disk` early purge). A camera's failure does not stop
the others. A segment written but not indexed (the store failing) stays on disk; the retention purge deletes such
files once they are older than the retention (:mod:`analytics.recording.retention`).

Memory: each segment has its own x264 encoder, whose threads leave freed memory in glibc's per-thread heaps;
without trimming, a 4-camera recorder's resident memory rose by ~25 MB over its first few segments before
levelling off. After each segment the recorder calls glibc's ``malloc_trim(0)`` (where it exists), which hands
that memory back: the resident memory stays flat from the first segment (``benchmarks/recording_soak.py``).

PyAV and OpenCV are imported on the writer thread, so importing this module is light.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analytics.pipeline.live import check_camera_id
from analytics.recording.config import RecordingConfig
from analytics.recording.index import RecordingIndex
from analytics.types import TrackedFrame

if TYPE_CHECKING:
    from analytics.config import CameraConfig
    from analytics.sources.privacy import PrivacyMasker
    from analytics.video_io import Mp4Writer

log = logging.getLogger(__name__)

#: Time base of the segments' frame timestamps, seconds per tick.
TIME_BASE = Fraction(1, 1000)
#: Frame interval assumed for a camera analysing every frame (``fps`` null) until two frames are seen, seconds.
_DEFAULT_INTERVAL = 0.2
#: x264 preset: one writer thread serves many cameras.
_PRESET = "veryfast"


def _heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where there is none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def segment_path(recordings_dir: Path, camera_id: str, wall: float) -> Path:
    """``<recordings_dir>/<camera>/<YYYYmmdd>/<camera>_<YYYYmmddTHHMMSS.mmm>Z.mp4`` for a segment whose first
    frame arrived at ``wall`` (Unix seconds, named in UTC). ValueError for an invalid camera id."""
    check_camera_id(camera_id)
    seconds = int(wall // 1)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
    millis = min(int(round((wall - seconds) * 1000)), 999)
    return Path(recordings_dir) / camera_id / stamp[:8] / f"{camera_id}_{stamp}.{millis:03d}Z.mp4"


@dataclass(frozen=True, slots=True)
class RecordingStats:
    """One camera's recording counters since the recorder started.

    Attributes:
        frames: frames encoded into segments.
        dropped: frames dropped because the writer thread fell behind (queue full).
        skipped: frames not recorded while pausing after a failed segment.
        segments: segments written and indexed.
        failed: segments dropped (write error, full disk).
        unindexed: segments written whose indexing failed (left on disk for the retention sweep).
    """

    frames: int = 0
    dropped: int = 0
    skipped: int = 0
    segments: int = 0
    failed: int = 0
    unindexed: int = 0


@dataclass(slots=True)
class _Item:
    camera_id: str
    timestamp: float  # media time, seconds
    wall: float  # recorder clock when the frame arrived, Unix seconds
    image: np.ndarray


@dataclass(slots=True)
class _Segment:
    writer: Mp4Writer
    path: Path
    start: float
    wall_start: float
    last: float  # timestamp of the last frame written
    last_wall: float
    last_pts: int = -1
    frames: int = 0


@dataclass(slots=True)
class _Camera:
    interval: float  # nominal frame interval, seconds (1 / fps)
    max_gap: float  # a forward jump in frame time above this ends the segment, seconds
    masker: PrivacyMasker | None = None  # built on the writer thread (OpenCV import)
    segment: _Segment | None = None
    retry_at: float = float("-inf")  # recorder clock; frames before it are skipped after a failure
    stats: RecordingStats = RecordingStats()


class SegmentRecorder:
    """Records every camera in fixed-length segments (see the module docstring); :meth:`close` after the run.

    Args:
        config: the ``recording`` settings (``segment_seconds``, ``max_width``, ``crf``). ``enabled`` is the
            caller's business: a recorder records.
        recordings_dir: root folder of the segments (created as needed).
        cameras: the run's camera configs (ids, ``fps`` for the nominal rate, privacy masks).
        index: where finished segments are indexed.
        clock: wall clock, Unix seconds (segment wall times, file names, index ``at``); injectable.
        on_disk_full: called (on the writer thread) when writing fails with ENOSPC, e.g.
            :meth:`Retention.check_disk`; its errors are logged.
        max_queue: frames waiting for the writer thread, all cameras together; beyond it frames are dropped.
        max_gap: seconds; a forward jump in a camera's frame time above ``max(max_gap, 3 / fps)`` ends its
            segment (a real interruption is recorded as a gap).
        retry_seconds: after a failed segment, the camera's frames are skipped for this long (recorder clock).
    """

    def __init__(self, config: RecordingConfig, recordings_dir: Path, cameras: Sequence[CameraConfig],
                 index: RecordingIndex, *, clock: Callable[[], float] = time.time,
                 on_disk_full: Callable[[], object] | None = None, max_queue: int = 64, max_gap: float = 5.0,
                 retry_seconds: float = 5.0) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1 frame, got {max_queue}")
        if max_gap <= 0 or retry_seconds < 0:
            raise ValueError(f"max_gap must be positive and retry_seconds not negative, got {max_gap}, "
                             f"{retry_seconds}")
        self.config = config
        self.recordings_dir = Path(recordings_dir).resolve()
        self.index = index
        self.on_disk_full = on_disk_full
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._configs = {c.id: c for c in cameras}
        self._cameras = {
            c.id: _Camera(interval=1.0 / c.fps if c.fps else _DEFAULT_INTERVAL,
                          max_gap=max(max_gap, 3.0 / c.fps if c.fps else 0.0))
            for c in cameras}
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0  # frames queued and not yet handled (guarded by _lock)
        self._closed = False
        self._warned: set[str] = set()
        self._trim = _heap_trimmer()
        self._thread = threading.Thread(target=self._work, name="segment-writer", daemon=True)
        self._thread.start()

    # -- analysis side -------------------------------------------------------------------------------------------

    def on_frame(self, tracked: TrackedFrame) -> None:
        """Runner subscriber: queue the frame for its camera's segment; never blocks, never raises."""
        try:
            frame = tracked.frame
            cam = self._cameras.get(frame.camera_id)
            if cam is None:
                self._warn_once(f"unknown:{frame.camera_id}", "recording: frame of unknown camera %r ignored",
                                frame.camera_id)
                return
            item = _Item(frame.camera_id, float(frame.timestamp), float(self._clock()), frame.image)
            with self._lock:
                if self._closed:
                    return
                try:
                    self._queue.put_nowait(item)
                except queue.Full:
                    cam.stats = replace(cam.stats, dropped=cam.stats.dropped + 1)
                    dropped = cam.stats.dropped
                else:
                    self._pending += 1
                    return
            if dropped == 1 or dropped % 100 == 0:
                log.warning("recording: the writer is behind; camera %s has dropped %d frame(s) so far",
                            frame.camera_id, dropped)
        except Exception:  # noqa: BLE001 - recording must never stop the analysis
            log.exception("recording: cannot queue a frame")

    def stats(self) -> dict[str, RecordingStats]:
        """Each camera's counters (a snapshot; any thread)."""
        with self._lock:
            return {camera_id: cam.stats for camera_id, cam in self._cameras.items()}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued frame is handled (segments stay open); False on timeout. Any thread."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 60.0) -> bool:
        """Handle the queued frames, finish and index every open segment, stop the writer. Idempotent.

        Returns False if the writer did not finish within ``timeout`` seconds (logged).
        """
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            deadline = time.monotonic() + timeout
            while True:  # the writer drains the queue, so a full queue frees a slot soon
                try:
                    self._queue.put(None, timeout=max(0.01, deadline - time.monotonic()))
                    break
                except queue.Full:
                    if time.monotonic() >= deadline or not self._thread.is_alive():
                        break
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("recording: the segment writer did not finish within %.0f s", timeout)
            return False
        return True

    # -- writer thread -------------------------------------------------------------------------------------------

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._record(item)
            except Exception:  # noqa: BLE001 - one camera's failure must not stop the writer
                log.exception("recording: camera %s: unexpected error", item.camera_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
        for camera_id, cam in self._cameras.items():
            if cam.segment is not None:
                try:
                    self._end_after_last(camera_id, cam)
                except Exception:  # noqa: BLE001 - closing must reach every camera
                    log.exception("recording: camera %s: cannot finish the last segment", camera_id)
        with self._idle:
            self._pending = 0
            self._idle.notify_all()

    def _record(self, item: _Item) -> None:
        cam = self._cameras[item.camera_id]
        seg = cam.segment
        if seg is not None:
            if item.timestamp < seg.last or item.timestamp - seg.last > cam.max_gap:
                log.warning("recording: camera %s: frame time went from %.3f to %.3f; the segment ends there",
                            item.camera_id, seg.last, item.timestamp)
                self._end_after_last(item.camera_id, cam)
            elif item.timestamp - seg.start >= self.config.segment_seconds:
                self._finish(item.camera_id, cam, end=item.timestamp, wall_end=item.wall)
        if cam.segment is None:
            if item.wall < cam.retry_at:
                self._count(cam, skipped=1)
                return
            try:
                cam.segment = self._begin(item)
            except Exception as err:  # noqa: BLE001 - logged; the camera retries later
                self._failed(item.camera_id, cam, err, "cannot start a segment", at=item.wall)
                return
        seg = cam.segment
        try:
            image = self._prepare(item.camera_id, cam, item.image)
            pts = max(round((item.timestamp - seg.start) / TIME_BASE), seg.last_pts + 1)
            seg.writer.write(image, pts=pts)
        except Exception as err:  # noqa: BLE001 - the segment is dropped, the camera goes on
            cam.segment = None
            seg.writer.abort()
            self._failed(item.camera_id, cam, err, f"cannot write {seg.path.name}; segment dropped",
                         at=item.wall)
            return
        seg.last, seg.last_wall, seg.last_pts = item.timestamp, item.wall, pts
        seg.frames += 1
        self._count(cam, frames=1)

    def _begin(self, item: _Item) -> _Segment:
        from analytics.video_io import Mp4Writer

        path = segment_path(self.recordings_dir, item.camera_id, item.wall)
        path.parent.mkdir(parents=True, exist_ok=True)
        stem, n = path.stem, 1
        while path.exists():  # two segments started in the same millisecond (a clock reset): keep both
            path, n = path.with_name(f"{stem}~{n}.mp4"), n + 1
        cfg = self._configs[item.camera_id]
        writer = Mp4Writer(path, rate=cfg.fps or 1.0 / _DEFAULT_INTERVAL, time_base=TIME_BASE,
                           options={"crf": str(self.config.crf), "preset": _PRESET})
        return _Segment(writer, path, item.timestamp, item.wall, item.timestamp, item.wall)

    def _prepare(self, camera_id: str, cam: _Camera, image: np.ndarray) -> np.ndarray:
        """The frame to encode: scaled to ``max_width``, private zones blanked on the result (a new array
        whenever anything changes; the frame itself is never written to)."""
        import cv2

        from analytics.sources.privacy import PrivacyMasker

        if cam.masker is None:
            cam.masker = PrivacyMasker(self._configs[camera_id].privacy_masks, camera_id=camera_id)
        height, width = image.shape[:2]
        if width > self.config.max_width:
            size = (self.config.max_width, max(2, round(height * self.config.max_width / width)))
            return cam.masker.apply(cv2.resize(image, size, interpolation=cv2.INTER_AREA), inplace=True)
        return cam.masker.apply(image)

    def _end_after_last(self, camera_id: str, cam: _Camera) -> None:
        """End the open segment one frame interval after its last frame (no next frame to end it)."""
        seg = cam.segment
        if seg is None:
            return
        step = (seg.last - seg.start) / (seg.frames - 1) if seg.frames > 1 else cam.interval
        step = step if step > 0 else cam.interval
        self._finish(camera_id, cam, end=seg.last + step, wall_end=seg.last_wall + step)

    def _finish(self, camera_id: str, cam: _Camera, *, end: float, wall_end: float) -> None:
        """Close the open segment's file and index it as ``[start, end)``."""
        seg, cam.segment = cam.segment, None
        if seg is None:
            return
        try:
            frames = seg.writer.close()
            size = seg.path.stat().st_size
        except Exception as err:  # noqa: BLE001 - the segment is dropped, the camera goes on
            seg.writer.abort()
            self._failed(camera_id, cam, err, f"cannot finish {seg.path.name}; segment dropped", at=wall_end)
            return
        try:
            self.index.add_segment(camera_id, start=seg.start, end=end, wall_start=seg.wall_start,
                                   wall_end=wall_end, frames=frames, size=size, path=seg.path, at=self._clock())
        except Exception:  # noqa: BLE001 - the file stays; the retention sweep removes it when it is due
            log.exception("recording: camera %s: %s written but not indexed", camera_id, seg.path)
            self._count(cam, unindexed=1)
            return
        self._count(cam, segments=1)
        if self._trim is not None:
            self._trim(0)  # see the module docstring: memory
        log.debug("recording: camera %s: %s, %d frames, %.3f-%.3f", camera_id, seg.path.name, frames, seg.start,
                  end)

    def _failed(self, camera_id: str, cam: _Camera, err: BaseException, what: str, *, at: float) -> None:
        """Count and log a dropped segment, pause the camera ``retry_seconds`` from ``at`` (recorder clock, the
        failing frame's arrival), and on ENOSPC call ``on_disk_full``."""
        cam.retry_at = at + self.retry_seconds
        self._count(cam, failed=1)
        full = isinstance(err, OSError) and err.errno == errno.ENOSPC
        log.error("recording: camera %s: %s: %s%s", camera_id, what, err,
                  " (disk full: early purge)" if full else "")
        if full and self.on_disk_full is not None:
            try:
                self.on_disk_full()
            except Exception:  # noqa: BLE001 - the purge is retried by housekeeping
                log.exception("recording: the disk-full purge failed")

    def _count(self, cam: _Camera, **increments: int) -> None:
        with self._lock:
            stats = cam.stats
            cam.stats = replace(stats, **{k: getattr(stats, k) + v for k, v in increments.items()})

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)
