"""Our ByteTracker on synthetic motion: identities, gates, life cycle, classes, time steps, purity."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import TrackerConfig
from analytics.tracking.bytetrack import ByteTracker
from analytics.tracking.kalman import KalmanParams
from analytics.types import PERSON, Detections, Tracks, TrackState

CAR = 2


def box(cx: float, cy: float, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def dets(*boxes: list[float], conf: float = 0.9, cls: int = PERSON) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(n, 4), np.full(n, conf), np.full(n, cls))


def by_id(tracks: Tracks, track_id: int) -> Tracks:
    return tracks[tracks.track_id == track_id]


def run(tracker: ByteTracker, frames: list[Detections], fps: float) -> list[Tracks]:
    return [tracker.update(d, timestamp=i / fps) for i, d in enumerate(frames)]


def test_ids_start_at_one_per_instance() -> None:
    for _ in range(2):
        tracker = ByteTracker(TrackerConfig())
        assert tracker.update(dets(box(100, 100), box(300, 100)), 0.0).track_id.tolist() == [1, 2]


def test_two_objects_crossing_keep_ids() -> None:
    """Two people walk towards each other on the same line and cross (boxes overlap for a few frames)."""
    tracker = ByteTracker(TrackerConfig())
    frames = [dets(box(100 + 10 * i, 200), box(400 - 10 * i, 200)) for i in range(31)]
    out = run(tracker, frames, fps=10)
    assert set(out[0].track_id.tolist()) == {1, 2}
    for tracks in out[2:]:
        left_to_right = by_id(tracks, 1)
        assert len(tracks) == 2 and len(left_to_right) == 1
    last = out[-1]
    assert by_id(last, 1).xyxy[0, 0] > by_id(last, 2).xyxy[0, 0]  # id 1 ended on the right: crossed


@pytest.mark.parametrize(("max_center_distance", "same_id"), [(1.0, True), (0.0, False)])
def test_fast_object_at_low_fps_kept_by_centre_gate(max_center_distance: float, same_id: bool) -> None:
    """50 px per frame with 40 px wide boxes: no IoU between the first two frames."""
    tracker = ByteTracker(TrackerConfig(max_center_distance=max_center_distance))
    out = run(tracker, [dets(box(100 + 50 * i, 200)) for i in range(6)], fps=5)
    ids = {int(t) for tracks in out for t in tracks.track_id[tracks.state != TrackState.LOST]}
    assert (ids == {1}) is same_id


@pytest.mark.parametrize(("missed", "kept"), [(3, True), (8, False)])
def test_missed_detections_within_lost_ttl_keep_id(missed: int, kept: bool) -> None:
    fps, ttl = 10.0, 0.5
    tracker = ByteTracker(TrackerConfig(lost_ttl=ttl))
    frames = [dets(box(100 + 5 * i, 200)) for i in range(5)]
    frames += [Detections.empty()] * missed
    frames += [dets(box(100 + 5 * i, 200)) for i in range(5 + missed, 10 + missed)]
    out = run(tracker, frames, fps=fps)
    lost = out[5]
    assert lost.state.tolist() == [TrackState.LOST]
    assert lost.xyxy[0, 0] > out[4].xyxy[0, 0]  # predicted forward while lost
    assert (out[-1].track_id.tolist() == [1]) is kept


def test_confirmation_after_min_hits_and_tentative_dies_on_miss() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    states = [tracker.update(dets(box(100, 100)), t / 10).state.tolist() for t in range(4)]
    assert states == [[TrackState.TENTATIVE], [TrackState.TENTATIVE], [TrackState.CONFIRMED], [TrackState.CONFIRMED]]
    other = ByteTracker(TrackerConfig(min_hits=3))
    other.update(dets(box(100, 100)), 0.0)
    assert len(other.update(Detections.empty(), 0.1)) == 0


def test_min_hits_one_confirms_at_birth() -> None:
    tracks = ByteTracker(TrackerConfig(min_hits=1)).update(dets(box(100, 100)), 0.0)
    assert tracks.state.tolist() == [TrackState.CONFIRMED]


def test_class_aware_matching() -> None:
    tracker = ByteTracker(TrackerConfig())
    tracker.update(dets(box(100, 100)), 0.0)
    tracker.update(dets(box(100, 100)), 0.1)
    tracks = tracker.update(dets(box(100, 100), cls=CAR), 0.2)
    assert by_id(tracks, 1).state.tolist() == [TrackState.LOST]
    car = tracks[tracks.class_id == CAR]
    assert car.track_id.tolist() == [2] and car.state.tolist() == [TrackState.TENTATIVE]


def test_low_score_detection_keeps_track_but_never_starts_one() -> None:
    tracker = ByteTracker(TrackerConfig())
    tracker.update(dets(box(100, 100)), 0.0)
    tracker.update(dets(box(102, 100)), 0.1)
    tracks = tracker.update(dets(box(104, 100), conf=0.3), 0.2)  # below high_threshold: stage 2
    assert tracks.state.tolist() == [TrackState.CONFIRMED]
    fresh = ByteTracker(TrackerConfig())
    assert len(fresh.update(dets(box(100, 100), conf=0.3), 0.0)) == 0


def test_velocity_in_pixels_per_second_at_variable_dt() -> None:
    """Constant 100 px/s with irregular frame times: velocity converges to (100, 0) whatever the dt."""
    tracker = ByteTracker(TrackerConfig(), kalman_params=KalmanParams())
    times = np.cumsum([0.0, 0.1, 0.3, 0.05, 0.2, 0.1, 0.25, 0.15, 0.1, 0.2, 0.3, 0.1])
    for t in times:
        tracks = tracker.update(dets(box(100 + 100 * t, 200)), float(t))
    assert tracks.velocity[0] == pytest.approx([100.0, 0.0], abs=5.0)
    assert tracks.age.tolist() == [len(times) - 1]


def test_same_motion_same_result_at_different_frame_rates() -> None:
    """A 10 s walk at 5 and at 25 fps: one id each, similar final velocity."""
    finals = []
    for fps in (5, 25):
        tracker = ByteTracker(TrackerConfig())
        n = 10 * fps
        out = run(tracker, [dets(box(100 + 60 * i / fps, 200)) for i in range(n)], fps=fps)
        assert {int(i) for t in out for i in t.track_id} == {1}
        finals.append(out[-1].velocity[0, 0])
    assert finals == pytest.approx([60.0, 60.0], abs=3.0)


def test_timestamp_going_backwards_is_rejected() -> None:
    tracker = ByteTracker(TrackerConfig())
    tracker.update(dets(box(100, 100)), 1.0)
    with pytest.raises(ValueError, match="backwards"):
        tracker.update(dets(box(100, 100)), 0.5)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(dets(box(100, 100)), float("nan"))


def test_does_not_mutate_inputs() -> None:
    tracker = ByteTracker(TrackerConfig())
    d = dets(box(100, 100), box(300, 100))
    d.xyxy.flags.writeable = False  # any in-place write raises
    d.confidence.flags.writeable = False
    d.class_id.flags.writeable = False
    before = d.xyxy.copy()
    tracker.update(d, 0.0)
    tracks = tracker.update(d, 0.1)
    np.testing.assert_array_equal(d.xyxy, before)
    tracks.xyxy[:] = 0  # the returned arrays are the caller's own
    assert tracker.update(d, 0.2).xyxy[0, 0] == pytest.approx(80.0, abs=1.0)


def test_reset_forgets_tracks_and_ids() -> None:
    tracker = ByteTracker(TrackerConfig())
    tracker.update(dets(box(100, 100)), 0.0)
    tracker.reset()
    assert tracker.update(dets(box(500, 100)), 0.0).track_id.tolist() == [1]


def test_empty_frames() -> None:
    tracker = ByteTracker(TrackerConfig())
    assert len(tracker.update(Detections.empty(), 0.0)) == 0
    assert len(tracker.update(Detections.empty(), 0.1)) == 0
