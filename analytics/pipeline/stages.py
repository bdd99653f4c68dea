"""Pipeline stages. Each is a small object with one ``process`` method and typed inputs and outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analytics.config import CameraConfig, DetectionFilter
from analytics.detectors.base import Detector
from analytics.detectors.filtering import filter_detections
from analytics.rules.base import Event
from analytics.rules.engine import RuleEngine
from analytics.tracking.bytetrack import ByteTracker
from analytics.types import DetectedFrame, Frame, TrackedFrame


class DetectStage:
    """Runs one shared detector on a batch of frames from any cameras, then applies each camera's filter."""

    def __init__(self, detector: Detector, filters: Mapping[str, DetectionFilter]) -> None:
        self.detector = detector
        self.filters = dict(filters)

    def process(self, frames: Sequence[Frame]) -> list[DetectedFrame]:
        if not frames:
            return []
        batch = self.detector.detect([f.image for f in frames])
        out = []
        for frame, dets in zip(frames, batch, strict=True):
            flt = self.filters.get(frame.camera_id)
            if flt is not None:
                dets = filter_detections(dets, flt, frame_size=frame.size)
            out.append(DetectedFrame(frame, dets))
        return out


class TrackStage:
    """One camera's tracker: detections in, tracks out. Time comes from the frame's timestamp."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera_id = camera.id
        self.tracker = ByteTracker(camera.tracker)

    def process(self, msg: DetectedFrame) -> TrackedFrame:
        if msg.frame.camera_id != self.camera_id:
            raise ValueError(f"tracker of camera {self.camera_id!r} got a frame of {msg.frame.camera_id!r}")
        return TrackedFrame(msg.frame, self.tracker.update(msg.detections, msg.frame.timestamp))


class RulesStage:
    """One camera's rules: tracks in, events out (open / updated / closed records)."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera_id = camera.id
        self.engine = RuleEngine(camera.id, camera.scene, camera.rules)

    def process(self, msg: TrackedFrame) -> list[Event]:
        f = msg.frame
        if f.camera_id != self.camera_id:
            raise ValueError(f"rules of camera {self.camera_id!r} got a frame of {f.camera_id!r}")
        return self.engine.step(msg.tracks, seq=f.seq, timestamp=f.timestamp, frame_size=f.size)

    def close(self) -> list[Event]:
        """End of stream: close the events still open."""
        return self.engine.close()
