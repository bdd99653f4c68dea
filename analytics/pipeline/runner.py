"""The embedded runner: one capture thread per camera, one analysis loop (detect -> track -> sinks).

Capture threads decode and mask frames and hand them over through a :class:`FrameSlot`: a live camera's
slot holds only the newest frame (latest-frame policy: a slow detector drops frames, it never backs up the
stream), a file's slot is a short blocking queue (nothing is lost). The analysis loop batches whatever
frames are ready across cameras into one detector call, then runs each camera's tracker and sinks.

A camera that fails (missing file, corrupt file, dead stream) is reported and the others go on; the run
ends when every camera has finished or failed, or when :meth:`Runner.stop` is called (Ctrl-C), and
:meth:`Runner.run` always closes every sink so logs are flushed.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analytics.config import CameraConfig, RunConfig
from analytics.detectors.base import Detector
from analytics.eventlog import EventLogWriter
from analytics.pipeline.sinks import TrackLogSink
from analytics.pipeline.stages import DetectStage, RulesStage, TrackStage
from analytics.pipeline.timing import DEFAULT_MAXLEN, StageTimes
from analytics.rules.base import Event
from analytics.sources.base import Source, SourceError
from analytics.types import Frame, Health, TrackedFrame

log = logging.getLogger(__name__)


class FrameSlot:
    """Hand-off from one capture thread to the analysis loop.

    ``latest=True``: capacity 1, a new frame replaces an unread one (counted in ``dropped``).
    ``latest=False``: a blocking queue of ``capacity`` frames.
    """

    def __init__(self, ready: threading.Condition, *, latest: bool, capacity: int = 8) -> None:
        self._ready = ready
        self._latest = latest
        self._capacity = 1 if latest else capacity
        self._frames: collections.deque[Frame] = collections.deque()
        self.dropped = 0
        self.closed = False

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Hand over a frame; returns False when the run is stopping."""
        with self._ready:
            while len(self._frames) >= self._capacity:
                if self._latest:
                    self._frames.popleft()
                    self.dropped += 1
                    break
                if stop.is_set():
                    return False
                self._ready.wait(0.1)
            self._frames.append(frame)
            self._ready.notify_all()
        return not stop.is_set()

    def take(self) -> Frame | None:
        """The oldest waiting frame, or None. Call with the condition held."""
        if self._frames:
            frame = self._frames.popleft()
            self._ready.notify_all()
            return frame
        return None

    @property
    def done(self) -> bool:
        return self.closed and not self._frames

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()


@dataclass
class CameraReport:
    """Counters of one camera for progress displays and the end-of-run summary."""

    camera_id: str
    health: Health = Health.STARTING
    frames: int = 0  # frames analysed
    dropped: int = 0  # frames skipped by the rate limit or the latest-frame policy
    reconnects: int = 0
    fps: float = 0.0  # analysed frames per second, recent
    tracks: int = 0  # confirmed tracks in the last analysed frame
    error: str | None = None
    events: int = 0  # event records emitted (open, updated, closed)
    outputs: dict[str, Path] = field(default_factory=dict)
    timings: StageTimes = field(default_factory=StageTimes)  # per-frame stage durations (pipeline/timing.py)


@dataclass
class RunReport:
    """End-of-run summary: per-camera counters, total seconds, and seconds spent in the detector and after it
    (tracking, sinks, rules, events). ``detect_batches`` holds (frames in the batch, seconds) of the last
    detector calls (bounded, see :mod:`analytics.pipeline.timing`)."""

    cameras: list[CameraReport]
    seconds: float
    detect_seconds: float
    track_seconds: float
    detect_batches: list[tuple[int, float]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.cameras)


class _Camera:
    """Runner-side state of one camera: config, capture thread, slot, tracker, sinks, counters."""

    def __init__(self, cfg: CameraConfig, sink: TrackLogSink, ready: threading.Condition, out_dir: Path) -> None:
        self.cfg = cfg
        self.slot = FrameSlot(ready, latest=cfg.is_live)
        self.track = TrackStage(cfg)
        self.rules = RulesStage(cfg) if cfg.rules else None
        self.sink = sink
        self.source: Source | None = None
        self.report = CameraReport(cfg.id, outputs=dict(sink.paths))
        self.events: EventLogWriter | None = None
        if self.rules is not None:
            self.events = EventLogWriter(out_dir / f"{cfg.id}.events.jsonl")
            self.report.outputs["events"] = self.events.path
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self.thread: threading.Thread | None = None

    def count_frame(self, now: float, n_tracks: int) -> None:
        self.report.frames += 1
        self.report.tracks = n_tracks
        self._times.append(now)
        if len(self._times) > 1:
            self.report.fps = (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)

    def refresh(self) -> CameraReport:
        src = self.source
        if src is not None and self.report.health not in (Health.FAILED,):
            st = src.status()
            self.report.health = st.health
            self.report.reconnects = st.reconnects
            self.report.error = st.error
            self.report.dropped = st.dropped + self.slot.dropped
        elif self.report.health is not Health.FAILED:
            self.report.dropped = self.slot.dropped
        return self.report


class Runner:
    """Runs every camera of a config through one shared detector.

    Args:
        config: the validated run config.
        detector: a ready detector (see :func:`analytics.detectors.create_detector`).
        open_source: camera config -> Source (injected so tests and other deployments can swap it).
        out_dir: where sinks write; defaults to ``config.output.dir``.
        mot_paths: per-camera override of the MOT text path (used by ``analytics track --out``).
    """

    def __init__(self, config: RunConfig, detector: Detector, *, open_source: Callable[[CameraConfig], Source],
                 out_dir: Path | None = None, mot_paths: dict[str, Path] | None = None) -> None:
        self.config = config
        self.out_dir = Path(out_dir or config.output.dir)
        self._open_source = open_source
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self.detect = DetectStage(detector, {c.id: c.detection for c in config.cameras})
        self.cameras = {
            c.id: _Camera(c, TrackLogSink(c, config.output, out_dir=self.out_dir,
                                          mot_path=(mot_paths or {}).get(c.id)), self._ready, self.out_dir)
            for c in config.cameras
        }
        self.subscribers: list[Callable[[TrackedFrame], None]] = []
        self.event_subscribers: list[Callable[[list[Event]], None]] = []
        self._detect_s = 0.0
        self._track_s = 0.0
        self._batches: collections.deque[tuple[int, float]] = collections.deque(maxlen=DEFAULT_MAXLEN)

    # -- capture -----------------------------------------------------------------------------------
    def _capture(self, cam: _Camera) -> None:
        try:
            cam.source = self._open_source(cam.cfg)
            frames, timings = iter(cam.source), cam.report.timings
            while True:
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                timings.add("decode", time.perf_counter() - t0)
                if not cam.slot.put(frame, self._stop):
                    break
        except SourceError as err:
            cam.report.health, cam.report.error = Health.FAILED, str(err)
            log.error("camera %s failed: %s", cam.cfg.id, err)
        except Exception as err:  # noqa: BLE001 - a broken camera must never take the others down
            cam.report.health, cam.report.error = Health.FAILED, f"{type(err).__name__}: {err}"
            log.exception("camera %s failed", cam.cfg.id)
        finally:
            cam.slot.close()
            self._close_source(cam)

    @staticmethod
    def _close_source(cam: _Camera) -> None:
        """Release a camera's decoder (idempotent; sources may be closed from any thread)."""
        if cam.source is not None:
            try:
                cam.source.close()
            except Exception:  # noqa: BLE001 - closing must reach every camera
                log.exception("camera %s: close failed", cam.cfg.id)

    # -- analysis ----------------------------------------------------------------------------------
    def _gather(self) -> list[Frame] | None:
        """Up to ``batch`` ready frames, round-robin over cameras; None when every camera is done."""
        batch: list[Frame] = []
        limit = self.config.detector.batch
        with self._ready:
            while True:
                for cam in self.cameras.values():
                    while len(batch) < limit and (frame := cam.slot.take()) is not None:
                        batch.append(frame)
                        if cam.cfg.is_live:
                            break
                if batch:
                    return batch
                if self._stop.is_set() or all(c.slot.done for c in self.cameras.values()):
                    return None
                self._ready.wait(0.05)

    def _analyse(self, frames: list[Frame]) -> None:
        t0 = time.perf_counter()
        detected = self.detect.process(frames)
        t1 = time.perf_counter()
        self._batches.append((len(frames), t1 - t0))
        for msg in detected:
            cam = self.cameras[msg.frame.camera_id]
            timings = cam.report.timings
            timings.add("detect", (t1 - t0) / len(frames))
            a = time.perf_counter()
            tracked = cam.track.process(msg)
            b = time.perf_counter()
            cam.sink.write(tracked)
            for callback in self.subscribers:
                callback(tracked)
            c = time.perf_counter()
            timings.add("track", b - a)
            timings.add("sinks", c - b)
            if cam.rules is not None:
                events = cam.rules.process(tracked)
                d = time.perf_counter()
                timings.add("rules", d - c)
                if events:
                    self._publish(cam, events)
                    timings.add("events", time.perf_counter() - d)
            cam.count_frame(time.monotonic(), int((tracked.tracks.state == 1).sum()))
        self._detect_s += t1 - t0
        self._track_s += time.perf_counter() - t1

    def _publish(self, cam: _Camera, events: list[Event]) -> None:
        """Write a camera's events to its event log and hand them to the subscribers (the alert stage)."""
        if not events:
            return
        cam.report.events += len(events)
        if cam.events is not None:
            cam.events.write(events)
        for callback in self.event_subscribers:
            callback(events)

    def _finish(self, cam: _Camera) -> None:
        """End of a camera's stream: close its open events, flush and close its logs."""
        try:
            if cam.rules is not None:
                self._publish(cam, cam.rules.close())
        finally:
            cam.sink.close()
            if cam.events is not None:
                cam.events.close()

    def run(self) -> RunReport:
        """Run until every camera is done or :meth:`stop` is called; always flushes and closes the sinks."""
        start = time.perf_counter()
        for cam in self.cameras.values():
            cam.thread = threading.Thread(target=self._capture, args=(cam,), name=f"capture-{cam.cfg.id}",
                                          daemon=True)
            cam.thread.start()
        try:
            while (frames := self._gather()) is not None:
                self._analyse(frames)
        finally:
            self.stop()
            for cam in self.cameras.values():
                if cam.thread is not None:
                    cam.thread.join(timeout=10)
                self._finish(cam)
                cam.refresh()
        return RunReport([c.report for c in self.cameras.values()], time.perf_counter() - start,
                         self._detect_s, self._track_s, list(self._batches))

    def stop(self) -> None:
        """Ask every thread to stop (safe from a signal handler or another thread)."""
        self._stop.set()
        for cam in self.cameras.values():
            self._close_source(cam)
        with self._ready:
            self._ready.notify_all()

    def snapshot(self) -> list[CameraReport]:
        """Current counters of every camera (for progress displays)."""
        return [cam.refresh() for cam in self.cameras.values()]
