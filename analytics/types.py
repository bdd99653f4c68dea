"""Core columnar types and the typed messages passed between pipeline stages.

Everything here depends only on numpy, so every stage (and ``import analytics``) can use it without
pulling in torch, OpenVINO or OpenCV.

Coordinate frame everywhere: pixels of the *decoded* frame, origin top-left, x right, y down.
Class ids are COCO ids; :data:`CLASS_NAMES` lists the ones the engine reports.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

#: The COCO classes the engine reports, by COCO id.
CLASS_NAMES: dict[int, str] = {
    0: "person",
    1: "bicycle",
    2: "car",
    3: "motorcycle",
    5: "bus",
    7: "truck",
}
CLASS_IDS: dict[str, int] = {name: cid for cid, name in CLASS_NAMES.items()}
PERSON = CLASS_IDS["person"]
VEHICLES: tuple[int, ...] = (CLASS_IDS["car"], CLASS_IDS["bus"], CLASS_IDS["truck"], CLASS_IDS["motorcycle"])


def class_ids_from_names(names: list[str] | tuple[str, ...]) -> tuple[int, ...]:
    """Map class names (``"person"``, ``"car"``...) to COCO ids, rejecting unknown names."""
    unknown = [n for n in names if n not in CLASS_IDS]
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown}; expected any of {sorted(CLASS_IDS)}")
    return tuple(CLASS_IDS[n] for n in names)


def check_class_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Config validator: a non-empty tuple of known class names, returned unchanged."""
    if not names:
        raise ValueError("at least one class is needed")
    class_ids_from_names(names)
    return names


class TrackState(enum.IntEnum):
    """Life-cycle state of a track."""

    TENTATIVE = 0  # seen, not yet confirmed (too few hits)
    CONFIRMED = 1  # matched to a detection in this frame and confirmed
    LOST = 2  # confirmed earlier, not matched in this frame, still predicted


class Health(str, enum.Enum):
    """Health of a camera source, as shown to operators."""

    STARTING = "starting"
    ONLINE = "online"
    DEGRADED = "degraded"  # frames arrive but late / reconnects happened recently
    OFFLINE = "offline"  # no frames; reconnecting with backoff
    FINISHED = "finished"  # a file source reached its end
    FAILED = "failed"  # a permanent error (missing file, corrupt file): the camera is out


def _check_len(name: str, arr: np.ndarray, n: int, trailing: tuple[int, ...] = ()) -> None:
    if arr.shape != (n, *trailing):
        raise ValueError(f"{name} must have shape {(n, *trailing)}, got {arr.shape}")


@dataclass(frozen=True)
class Detections:
    """A batch of detections in one frame.

    Attributes:
        xyxy: (N, 4) float32, pixels of the decoded frame, top-left origin.
        confidence: (N,) float32 in [0, 1].
        class_id: (N,) int16, COCO class ids.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4))
        object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=np.float32).reshape(-1))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int16).reshape(-1))
        n = len(self.xyxy)
        _check_len("confidence", self.confidence, n)
        _check_len("class_id", self.class_id, n)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Select with a boolean mask, an index array or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index])

    @property
    def wh(self) -> np.ndarray:
        """(N, 2) float32 box width and height in pixels."""
        return self.xyxy[:, 2:4] - self.xyxy[:, 0:2]


@dataclass(frozen=True)
class Tracks:
    """The tracks reported for one frame.

    Attributes:
        track_id: (N,) int64, unique per camera and run, starting at 1.
        xyxy: (N, 4) float32, pixels, top-left origin (the tracker's estimate).
        class_id: (N,) int16, COCO class ids (majority vote over the track's detections).
        confidence: (N,) float32, score of the last matched detection.
        velocity: (N, 2) float32, ground-anchor velocity in pixels per second (image plane).
        age: (N,) int32, frames since the track was born (0 on its first frame).
        state: (N,) int8, :class:`TrackState` values.
    """

    track_id: np.ndarray
    xyxy: np.ndarray
    class_id: np.ndarray
    confidence: np.ndarray
    velocity: np.ndarray
    age: np.ndarray
    state: np.ndarray

    def __post_init__(self) -> None:
        casts = {
            "track_id": (np.int64, ()),
            "xyxy": (np.float32, (4,)),
            "class_id": (np.int16, ()),
            "confidence": (np.float32, ()),
            "velocity": (np.float32, (2,)),
            "age": (np.int32, ()),
            "state": (np.int8, ()),
        }
        n = len(np.asarray(self.track_id).reshape(-1))
        for name, (dtype, trailing) in casts.items():
            arr = np.asarray(getattr(self, name), dtype=dtype)
            if arr.size == 0:
                arr = arr.reshape((0, *trailing))
            object.__setattr__(self, name, arr)
            _check_len(name, arr, n, trailing)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.int16),
            np.zeros(0, np.float32),
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int8),
        )

    def __len__(self) -> int:
        return len(self.track_id)

    @classmethod
    def trusted(cls, track_id: np.ndarray, xyxy: np.ndarray, class_id: np.ndarray, confidence: np.ndarray,
                velocity: np.ndarray, age: np.ndarray, state: np.ndarray) -> Tracks:
        """Build without the dtype casts and length checks, for arrays already of the documented dtypes and
        shapes (slices of a validated batch, columns of a track log read back). The rules engine builds
        one ``Tracks`` per frame and selects from it several times per rule, so the checks would dominate."""
        out = object.__new__(cls)
        out.__dict__.update(track_id=track_id, xyxy=xyxy, class_id=class_id, confidence=confidence,
                            velocity=velocity, age=age, state=state)
        return out

    def __getitem__(self, index: Any) -> Tracks:
        """Select with a boolean mask, an index array or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Tracks.trusted(
            self.track_id[index],
            self.xyxy[index],
            self.class_id[index],
            self.confidence[index],
            self.velocity[index],
            self.age[index],
            self.state[index],
        )

    @cached_property
    def anchor(self) -> np.ndarray:
        """(N, 2) float32 ground anchor: bottom centre of the box, pixels (computed once per instance)."""
        xyxy = self.xyxy
        out = np.empty((len(xyxy), 2), np.float32)
        np.add(xyxy[:, 0], xyxy[:, 2], out=out[:, 0])
        out[:, 0] *= 0.5
        out[:, 1] = xyxy[:, 3]
        return out

    @property
    def confirmed(self) -> Tracks:
        """Only the tracks matched and confirmed in this frame."""
        return self[self.state == TrackState.CONFIRMED]


@dataclass(frozen=True)
class Frame:
    """A decoded, privacy-masked frame.

    Attributes:
        camera_id: the camera's id from the config.
        seq: 0-based index of the frame in its source (decoded order; skipped frames leave gaps).
        timestamp: seconds. Media time (``seq / fps``) for files and image folders, Unix wall time for live.
        image: (H, W, 3) uint8 BGR, private zones already blanked.
    """

    camera_id: str
    seq: int
    timestamp: float
    image: np.ndarray = field(repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class DetectedFrame:
    """Message from the detector stage: a frame and its detections."""

    frame: Frame
    detections: Detections


@dataclass(frozen=True)
class TrackedFrame:
    """Message from the tracker stage: the frame's identity and its tracks (the image is kept for sinks)."""

    frame: Frame
    tracks: Tracks

    def with_tracks(self, tracks: Tracks) -> TrackedFrame:
        return replace(self, tracks=tracks)


@dataclass(frozen=True)
class SourceStatus:
    """Snapshot of one camera source's counters and health, for progress displays and the console."""

    camera_id: str
    health: Health
    frames: int = 0  # frames handed to the pipeline
    dropped: int = 0  # frames decoded but not analysed (rate limiting, latest-frame policy)
    reconnects: int = 0
    error: str | None = None
