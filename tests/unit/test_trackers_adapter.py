"""Third-party tracker adapters honour our ``update(detections, timestamp) -> Tracks`` contract."""

from __future__ import annotations

import os

import numpy as np
import pytest

from analytics.types import Detections, Tracks, TrackState


def _walk(tracker: object, n: int = 8, fps: float = 10.0) -> list[Tracks]:
    out = []
    for i in range(n):
        d = Detections([[100 + 5 * i, 100, 140 + 5 * i, 200], [400, 100, 440, 200]], [0.9, 0.8], [0, 0])
        before = d.xyxy.copy()
        out.append(tracker.update(d, timestamp=i / fps))
        np.testing.assert_array_equal(d.xyxy, before)
    return out


def _check(out: list[Tracks]) -> None:
    last = out[-1]
    assert isinstance(last, Tracks) and len(last) == 2
    assert set(last.state.tolist()) == {TrackState.CONFIRMED}
    mover = last[last.xyxy[:, 0] < 300]
    assert mover.velocity[0] == pytest.approx([50.0, 0.0], abs=10.0)  # px/s of the bottom-centre anchor
    assert mover.age[0] >= 5
    ids = {int(i) for t in out[2:] for i in t.track_id}
    assert len(ids) == 2


def test_roboflow_bytetrack_adapter() -> None:
    pytest.importorskip("trackers")
    from analytics.tracking.trackers_adapter import RoboflowByteTrack

    _check(_walk(RoboflowByteTrack(frame_rate=10.0)))


def test_ultralytics_bytetrack_adapter() -> None:
    os.environ.setdefault("YOLO_CONFIG_DIR", "/tmp/yolo_cfg")
    pytest.importorskip("lap")  # ultralytics' BYTETracker needs it and would try to pip-install it
    pytest.importorskip("ultralytics")
    from analytics.tracking.trackers_adapter import UltralyticsByteTrack

    _check(_walk(UltralyticsByteTrack(frame_rate=10.0)))
