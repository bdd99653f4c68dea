"""What a run attaches for alerts: stage, evidence links in the store, live health, retention purge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analytics.alerts.store import AlertStore
from analytics.config import parse_config
from analytics.pipeline.alert_side import AlertSide
from analytics.rules.base import Event
from analytics.types import Frame, TrackedFrame, Tracks

CONFIG = parse_config({
    "cameras": [{"id": "cam", "source": "x.mp4", "fps": 5,
                 "scene": {"zones": [{"id": "square", "polygon": [[0, 0], [1, 0], [1, 1]]}]},
                 "rules": [{"kind": "gathering", "id": "group", "zone": "square"}]}],
    "alerts": {"evidence": {"pre_seconds": 1, "post_seconds": 1}, "retention_days": 15},
}, path=Path("c.yaml"))


class _Runner:
    """The runner's surface AlertSide uses: subscriber lists, the output folder, camera counters."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.subscribers: list = []
        self.event_subscribers: list = []

    def snapshot(self) -> list:
        return []


def _frame(seq: int) -> TrackedFrame:
    image = np.full((120, 160, 3), 90, np.uint8)
    return TrackedFrame(Frame("cam", seq, seq / 5.0, image), Tracks.empty())


def test_evidence_is_linked_and_purged_with_its_alert_after_retention(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    with AlertStore.open(f"sqlite:///{tmp_path / 'alerts.db'}") as store:
        runner = _Runner(tmp_path)
        side = AlertSide(runner, CONFIG, store, clock=lambda: clock[0])
        try:
            for seq in range(10):
                for subscriber in runner.subscribers:
                    subscriber(_frame(seq))
            event = Event("cam:group:0", "gathering", "group", "cam", "open", 1.0, 1.8, (1, 2, 3),
                          ("person",) * 3, 0.9, {}, 8, "square")
            (alert,) = [c.alert for c in runner.event_subscribers[0]([event])]
            for seq in range(10, 20):
                for subscriber in runner.subscribers:
                    subscriber(_frame(seq))
            assert side.evidence.wait_idle(30)
            files = store.evidence(alert.id)
            assert set(files) == {"snapshot", "clip"} and all(Path(p).is_file() for p in files.values())
            assert (tmp_path / "live" / "cam.jpg").is_file()

            clock[0] += 14 * 86400
            assert side.purge() == 0
            clock[0] += 2 * 86400
            assert side.purge() == 1
            assert store.get_alert(alert.id) is None and store.evidence(alert.id) == {}
            assert not any(Path(p).exists() for p in files.values())
        finally:
            side.close()
    health = json.loads((tmp_path / "live" / "health.json").read_text())
    assert health["cameras"] == []  # the stub runner reports no camera; the file is still written at close


def test_recorded_cameras_report_their_recording_health(tmp_path: Path) -> None:
    from analytics.pipeline.runner import CameraReport

    config = CONFIG.model_copy(update={"recording": CONFIG.recording.model_copy(update={
        "enabled": True, "segment_seconds": 5.0})})
    with AlertStore.open(f"sqlite:///{tmp_path / 'alerts.db'}") as store:
        runner = _Runner(tmp_path)
        runner.snapshot = lambda: [CameraReport("cam", frames=40)]
        side = AlertSide(runner, config, store, clock=lambda: 1_000_000.0)
        try:
            for seq in range(40):  # 8 s at 5 fps: one 5 s segment closed
                for subscriber in runner.subscribers:
                    subscriber(_frame(seq))
        finally:
            side.close()
        segments = side.index.segments()
    assert [s.camera_id for s in segments] == ["cam", "cam"]  # the closed one and the last, finished at close
    health = json.loads((tmp_path / "live" / "health.json").read_text())
    assert health["cameras"][0]["recording"] == {"frames": 40, "dropped": 0, "segments": 2, "failed": 0}
