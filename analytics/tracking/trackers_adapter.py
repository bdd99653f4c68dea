"""Adapters giving third-party trackers our ``update(detections, timestamp) -> Tracks`` contract.

So that trackers can be benchmarked on equal footing (same detections, same filtering, same MOT writer):

* :class:`RoboflowByteTrack` wraps ``trackers.ByteTrackTracker`` (package ``trackers``, Apache-2.0);
* :class:`UltralyticsByteTrack` wraps ``ultralytics.trackers.byte_tracker.BYTETracker`` (AGPL-3.0).

Both report only the tracks they confirm and match in the frame (state CONFIRMED); they expose no
tentative ids, so :class:`~analytics.tracking.backfill.Backfill` has nothing to add for them. Velocity is
a finite difference of the anchor between a track's consecutive reports (px/s, zero on its first frame).
The heavy packages are imported on construction only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from analytics.types import Detections, Tracks, TrackState


class _Bookkeeping:
    """Per-id birth frame and last anchor, to fill ``age`` and ``velocity`` for wrapped trackers."""

    def __init__(self) -> None:
        self.frame = -1
        self.birth: dict[int, int] = {}
        self.last: dict[int, tuple[float, np.ndarray]] = {}

    def tracks(self, ids: np.ndarray, xyxy: np.ndarray, cls: np.ndarray, conf: np.ndarray, t: float) -> Tracks:
        self.frame += 1
        anchors = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1).astype(np.float64)
        vel = np.zeros((len(ids), 2))
        age = np.zeros(len(ids), np.int32)
        for i, tid in enumerate(ids.tolist()):
            self.birth.setdefault(tid, self.frame)
            age[i] = self.frame - self.birth[tid]
            prev = self.last.get(tid)
            if prev is not None and t > prev[0]:
                vel[i] = (anchors[i] - prev[1]) / (t - prev[0])
            self.last[tid] = (t, anchors[i])
        state = np.full(len(ids), TrackState.CONFIRMED, np.int8)
        return Tracks(ids, xyxy, cls, conf, vel, age, state)


class RoboflowByteTrack:
    """``trackers.ByteTrackTracker`` behind our contract (class-agnostic: feed one class at a time).

    Args:
        lost_ttl: seconds a lost track is kept (converted to the package's 30-fps frame buffer).
        frame_rate: nominal fps, used by the package before timestamps are known.
        new_track_threshold, min_hits, match_iou, high_threshold: the package's
            ``track_activation_threshold``, ``minimum_consecutive_frames``, ``minimum_iou_threshold`` and
            ``high_conf_det_threshold``; defaults are the package's own.
        lost_track_buffer: the package's own buffer (in its 30-fps frames); overrides ``lost_ttl`` when given.
    """

    def __init__(self, *, lost_ttl: float = 1.0, frame_rate: float = 30.0, new_track_threshold: float = 0.7,
                 min_hits: int = 2, match_iou: float = 0.1, high_threshold: float = 0.6,
                 lost_track_buffer: int | None = None) -> None:
        from trackers import ByteTrackTracker

        buffer = max(int(round(lost_ttl * 30.0)), 0) if lost_track_buffer is None else lost_track_buffer
        self._make = lambda: ByteTrackTracker(
            lost_track_buffer=buffer, frame_rate=frame_rate,
            track_activation_threshold=new_track_threshold, minimum_consecutive_frames=min_hits,
            minimum_iou_threshold=match_iou, high_conf_det_threshold=high_threshold)
        self.reset()

    def reset(self) -> None:
        self._tracker = self._make()
        self._book = _Bookkeeping()

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        import supervision as sv

        dets = sv.Detections(xyxy=detections.xyxy.astype(np.float32).copy(),
                             confidence=detections.confidence.copy(), class_id=detections.class_id.astype(int))
        out = self._tracker.update(dets, timestamp=float(timestamp))
        keep = np.asarray(out.tracker_id) >= 0
        cls = out.class_id[keep] if out.class_id is not None else np.zeros(int(keep.sum()))
        return self._book.tracks(np.asarray(out.tracker_id)[keep].astype(np.int64), out.xyxy[keep], cls,
                                 out.confidence[keep], float(timestamp))


@dataclass(frozen=True)
class _UltraResults:
    """The results-like object ultralytics' BYTETracker reads: ``conf``, ``cls``, ``xywh``, ``xyxy``."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    @property
    def xywh(self) -> np.ndarray:
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _UltraResults:
        return _UltraResults(self.xyxy[index], self.conf[index], self.cls[index])


class UltralyticsByteTrack:
    """ultralytics' ``BYTETracker`` behind our contract; defaults are ``bytetrack.yaml``'s.

    Args:
        frame_rate: fps used to turn ``lost_ttl`` into the tracker's frame buffer (it counts frames).
        lost_ttl: seconds a lost track is kept; ``None`` keeps the yaml's 30 frames.
        high_threshold, low_threshold, new_track_threshold, match_thresh, fuse_score: the yaml's
            ``track_high_thresh``, ``track_low_thresh``, ``new_track_thresh``, ``match_thresh`` (a cost:
            1 - IoU), ``fuse_score``.
        track_buffer: the yaml's ``track_buffer`` (frames a lost track is kept); overrides ``lost_ttl``.
    """

    def __init__(self, *, frame_rate: float = 30.0, lost_ttl: float | None = None, high_threshold: float = 0.25,
                 low_threshold: float = 0.1, new_track_threshold: float = 0.25, match_thresh: float = 0.8,
                 fuse_score: bool = True, track_buffer: int | None = None) -> None:
        os.environ.setdefault("YOLO_CONFIG_DIR", "/tmp/yolo_cfg")
        from types import SimpleNamespace

        from ultralytics.trackers.byte_tracker import BYTETracker

        if track_buffer is not None:
            buffer = track_buffer
        else:
            buffer = 30 if lost_ttl is None else max(int(round(lost_ttl * frame_rate)), 1)
        args = SimpleNamespace(tracker_type="bytetrack", track_high_thresh=high_threshold,
                               track_low_thresh=low_threshold, new_track_thresh=new_track_threshold,
                               track_buffer=buffer, match_thresh=match_thresh, fuse_score=fuse_score)
        self._make = lambda: BYTETracker(args)
        self.reset()

    def reset(self) -> None:
        self._tracker = self._make()
        self._book = _Bookkeeping()

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        res = _UltraResults(detections.xyxy.astype(np.float32).copy(), detections.confidence.copy(),
                            detections.class_id.astype(np.float32))
        out = np.asarray(self._tracker.update(res), dtype=np.float64).reshape(-1, 8)
        return self._book.tracks(out[:, 4].astype(np.int64), out[:, :4], out[:, 6], out[:, 5], float(timestamp))
