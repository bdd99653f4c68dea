"""The runner with fake sources and a fake detector (real ones are exercised in tests/integration)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analytics.config import parse_config
from analytics.pipeline import Runner
from analytics.pipeline.runner import FrameSlot
from analytics.sources.base import SourceError
from analytics.types import Detections, Frame, Health, SourceStatus


class FakeSource:
    """``n`` frames with one person box moving right by 5 px per frame."""

    def __init__(self, camera_id: str, n: int, *, fps: float = 10.0, block: threading.Event | None = None) -> None:
        self.camera_id, self.n, self.fps, self.block = camera_id, n, fps, block
        self.closed = threading.Event()
        self.health = Health.STARTING

    def __iter__(self):
        self.health = Health.ONLINE
        for i in range(self.n):
            if self.closed.is_set():
                return
            image = np.zeros((120, 160, 3), np.uint8)
            image[0, 0, 0] = i  # the fake detector reads the frame index from here
            yield Frame(self.camera_id, i, i / self.fps, image)
        if self.block is not None:  # behave like a live camera that stays up until closed
            self.closed.wait()
        self.health = Health.FINISHED

    def status(self) -> SourceStatus:
        return SourceStatus(self.camera_id, self.health)

    def close(self) -> None:
        self.closed.set()


class FakeDetector:
    name = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, frames):
        self.calls += 1
        out = []
        for image in frames:
            x = 10.0 + 5 * int(image[0, 0, 0])
            out.append(Detections([[x, 20, x + 20, 80]], [0.9], [0]))
        return out

    def close(self) -> None:
        pass


def make_config(tmp_path: Path, ids: list[str]) -> object:
    data = {"cameras": [{"id": i, "source": f"{i}.mp4", "tracker": {"min_hits": 2}} for i in ids],
            "detector": {"batch": 4}, "output": {"dir": str(tmp_path / "out")}}
    return parse_config(data, path=tmp_path / "test.yaml", base=tmp_path)


def test_runs_all_cameras_and_writes_logs(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, ["a", "b"])
    runner = Runner(cfg, FakeDetector(), open_source=lambda cam: FakeSource(cam.id, 20))
    report = runner.run()
    assert [c.frames for c in report.cameras] == [20, 20]
    for cam in ("a", "b"):
        df = pl.read_parquet(tmp_path / "out" / f"{cam}.tracks.parquet")
        assert df["seq"].to_list() == list(range(20))
        assert df["track_id"].n_unique() == 1
        mot = (tmp_path / "out" / f"{cam}.mot.txt").read_text().splitlines()
        # backfill: the tentative first frame is emitted once the track is confirmed on the second
        assert len(mot) == 20
        assert sorted(int(line.split(",")[0]) for line in mot) == list(range(1, 21))


def test_failing_camera_does_not_stop_the_others(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, ["good", "missing", "crashing"])

    def open_source(cam):
        if cam.id == "missing":
            raise SourceError(f"camera {cam.id}: file {cam.source} does not exist")
        if cam.id == "crashing":
            raise RuntimeError("decoder exploded")
        return FakeSource(cam.id, 15)

    report = Runner(cfg, FakeDetector(), open_source=open_source).run()
    by_id = {c.camera_id: c for c in report.cameras}
    assert by_id["good"].frames == 15
    assert by_id["missing"].health is Health.FAILED and "does not exist" in by_id["missing"].error
    assert by_id["crashing"].health is Health.FAILED and "decoder exploded" in by_id["crashing"].error


def test_stop_flushes_logs_of_a_live_camera(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, ["live"])
    block = threading.Event()
    runner = Runner(cfg, FakeDetector(), open_source=lambda cam: FakeSource(cam.id, 12, block=block))
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", runner.run()))
    thread.start()
    for _ in range(200):
        if runner.snapshot()[0].frames >= 12:
            break
        threading.Event().wait(0.05)
    runner.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert result["r"].cameras[0].frames == 12
    assert pl.read_parquet(tmp_path / "out" / "live.tracks.parquet").height == 12


def test_latest_slot_keeps_only_the_newest_frame() -> None:
    ready, stop = threading.Condition(), threading.Event()
    slot = FrameSlot(ready, latest=True)
    for i in range(5):
        assert slot.put(Frame("c", i, float(i), np.zeros((2, 2, 3), np.uint8)), stop)
    with ready:
        frame = slot.take()
        assert slot.take() is None
    assert frame.seq == 4 and slot.dropped == 4


def test_queue_slot_blocks_instead_of_dropping() -> None:
    ready, stop = threading.Condition(), threading.Event()
    slot = FrameSlot(ready, latest=False, capacity=2)
    for i in range(2):
        slot.put(Frame("c", i, float(i), np.zeros((2, 2, 3), np.uint8)), stop)
    stop.set()  # a full queue returns False once the run is stopping, instead of blocking forever
    assert slot.put(Frame("c", 2, 2.0, np.zeros((2, 2, 3), np.uint8)), stop) is False
    assert slot.dropped == 0


@pytest.mark.parametrize("batch", [1, 3])
def test_batches_across_cameras(tmp_path: Path, batch: int) -> None:
    data = {"cameras": [{"id": i, "source": f"{i}.mp4"} for i in "xyz"], "detector": {"batch": batch},
            "output": {"dir": str(tmp_path / "o"), "parquet": False, "mot": False}}
    cfg = parse_config(data, path=tmp_path / "t.yaml", base=tmp_path)
    det = FakeDetector()
    report = Runner(cfg, det, open_source=lambda cam: FakeSource(cam.id, 9)).run()
    assert report.frames == 27
    assert det.calls <= 27 and (batch == 1) == (det.calls == 27)


def test_annotated_video_is_written(tmp_path: Path) -> None:
    import cv2

    data = {"cameras": [{"id": "v", "source": "v.mp4", "tracker": {"min_hits": 1}}],
            "output": {"dir": str(tmp_path / "o"), "parquet": False, "mot": False, "video": True}}
    cfg = parse_config(data, path=tmp_path / "t.yaml", base=tmp_path)
    Runner(cfg, FakeDetector(), open_source=lambda cam: FakeSource(cam.id, 10)).run()
    cap = cv2.VideoCapture(str(tmp_path / "o" / "v.mp4"))
    frames = []
    while (ok_frame := cap.read())[0]:
        frames.append(ok_frame[1])
    cap.release()
    assert len(frames) == 10
    assert frames[5].max() > 100  # the box annotator drew on the black frames
