"""Live view files: rate-limited atomic JPEGs per camera, health.json, and the console-side reader."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.config import CameraConfig, PrivacyMask
from analytics.pipeline.live import LiveFrames, LiveFrameWriter
from analytics.pipeline.runner import CameraReport
from analytics.sources.privacy import PrivacyMasker, rasterise
from analytics.types import Frame, Health, TrackedFrame, Tracks, TrackState

CAM = CameraConfig(id="cam-1", source="x.mp4")


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _frame(seq: int, *, camera_id: str = "cam-1", image: np.ndarray | None = None,
           tracks: Tracks | None = None) -> TrackedFrame:
    if image is None:
        image = np.full((120, 160, 3), (seq * 7) % 256, np.uint8)
    return TrackedFrame(Frame(camera_id, seq, seq / 8, image), tracks if tracks is not None else Tracks.empty())


def _writer(tmp_path: Path, *, cameras=(CAM,), fps: float = 2.0, clock=None, wall=None,
            max_width: int = 960) -> LiveFrameWriter:
    return LiveFrameWriter(tmp_path / "live", list(cameras), fps=fps, max_width=max_width, jpeg_quality=80,
                           clock=clock or FakeClock(), wall=wall or FakeClock(1.7e9))


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_frames_are_written_at_most_fps_times_per_second(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = _writer(tmp_path, fps=2.0, clock=clock)
    reader = LiveFrames(tmp_path / "live")
    written: list[float] = []
    previous = None
    for seq in range(40):  # 8 frames per second for 5 s
        clock.now = 100.0 + seq * 0.125
        writer.on_frame(_frame(seq))
        data = reader.frame("cam-1")
        if data != previous:
            written.append(clock.now)
            assert abs(float(_decode(data).mean()) - (seq * 7) % 256) < 2  # this very frame
            previous = data
    assert len(written) == 10  # one frame in four: t = 0, 0.5, ... 4.5
    assert min(np.diff(written)) >= 0.5


def test_rate_limit_is_per_camera_and_never_exceeds_fps(tmp_path: Path) -> None:
    other = CameraConfig(id="cam-2", source="y.mp4")
    clock = FakeClock()
    writer = _writer(tmp_path, cameras=(CAM, other), fps=2.0, clock=clock)
    reader = LiveFrames(tmp_path / "live")
    counts = {"cam-1": 0, "cam-2": 0}
    last: dict[str, bytes | None] = {"cam-1": None, "cam-2": None}
    for seq in range(50):  # 5 fps (0.2 s, not a multiple of 0.5) for 10 s, both cameras
        clock.now = 100.0 + seq * 0.2
        for cam in counts:
            writer.on_frame(_frame(seq, camera_id=cam))
            data = reader.frame(cam)
            counts[cam] += data != last[cam]
            last[cam] = data
    assert counts["cam-1"] == counts["cam-2"]
    assert 2.0 * 10 * 0.8 <= counts["cam-1"] <= 2.0 * 10 + 1


def test_a_reader_never_sees_a_partial_jpeg(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = _writer(tmp_path, fps=10.0, clock=clock, max_width=1280)
    reader = LiveFrames(tmp_path / "live")
    rng = np.random.default_rng(1)
    noise = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(3)]  # large, slow to write
    writer.on_frame(_frame(0, image=noise[0]))
    stop = threading.Event()
    reads: list[int] = []
    errors: list[str] = []

    def read_loop() -> None:
        while not stop.is_set():
            data = reader.frame("cam-1")
            if data is None or not (data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")):
                errors.append(f"partial file: {None if data is None else len(data)} bytes")
                continue
            if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
                errors.append("undecodable file")
            reads.append(len(data))

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for seq in range(1, 40):
            clock.now += 1.0
            writer.on_frame(_frame(seq, image=noise[seq % 3]))
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors[:5]
    assert len(reads) > 10
    assert not [p for p in (tmp_path / "live").iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_health_json_holds_every_camera_report(tmp_path: Path) -> None:
    clock, wall = FakeClock(), FakeClock(1_700_000_000.0)
    other = CameraConfig(id="cam-2", source="y.mp4")
    writer = _writer(tmp_path, cameras=(CAM, other), clock=clock, wall=wall)
    writer.on_frame(_frame(0))
    wall.now = 1_700_000_005.5
    reports = [
        CameraReport("cam-1", health=Health.ONLINE, frames=120, dropped=3, reconnects=1, fps=4.98765, tracks=7),
        CameraReport("cam-2", health=Health.OFFLINE, error="stream stalled"),
    ]
    writer.write_health(reports, {"cam-1": {"frames": 118, "dropped": 2, "segments": 4, "failed": 1}})
    raw = json.loads((tmp_path / "live" / "health.json").read_text())
    assert raw == {
        "updated_at": 1_700_000_005.5,
        "cameras": [
            {"id": "cam-1", "health": "online", "fps": pytest.approx(4.988, abs=1e-3), "frames": 120,
             "dropped": 3, "reconnects": 1, "tracks": 7, "error": None, "last_frame_at": 1_700_000_000.0,
             "recording": {"frames": 118, "dropped": 2, "segments": 4, "failed": 1}},
            {"id": "cam-2", "health": "offline", "fps": 0.0, "frames": 0, "dropped": 0, "reconnects": 0,
             "tracks": 0, "error": "stream stalled", "last_frame_at": None, "recording": None},
        ],
    }
    assert LiveFrames(tmp_path / "live").health() == raw


@pytest.mark.parametrize("bad", ["../health", "a/b", "", "..", ".", "x" * 65, "a b", "cam\x00", "/etc/passwd"])
def test_bad_camera_ids_are_rejected_before_touching_files(tmp_path: Path, bad: str) -> None:
    reader = LiveFrames(tmp_path)
    with pytest.raises(ValueError, match="invalid camera id"):
        reader.frame(bad)


def test_missing_frame_and_missing_health_give_empty_answers(tmp_path: Path, caplog) -> None:
    reader = LiveFrames(tmp_path / "nothing-here")
    with caplog.at_level(logging.WARNING):
        assert reader.frame("cam-1") is None
        assert reader.health() == {"updated_at": None, "cameras": []}
    assert not caplog.records


@pytest.mark.parametrize("content", [b'{"updated_at": 17000, "cameras": [{"id": "c', b"garbage \xff\xfe", b"",
                                     b"[1, 2]", b'{"cameras": 3}'])
def test_damaged_health_gives_the_empty_answer_and_logs_once(tmp_path: Path, caplog, content: bytes) -> None:
    (tmp_path / "health.json").write_bytes(content)
    reader = LiveFrames(tmp_path)
    with caplog.at_level(logging.WARNING, logger="analytics.pipeline.live"):
        for _ in range(3):
            assert reader.health() == {"updated_at": None, "cameras": []}
    assert len(caplog.records) == 1
    assert "health.json" in caplog.records[0].getMessage()


def test_unknown_camera_and_write_errors_never_raise(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = _writer(tmp_path, clock=clock)
    writer.on_frame(_frame(0, camera_id="stranger"))
    assert not (tmp_path / "live" / "stranger.jpg").exists()
    (tmp_path / "live").rmdir()  # the folder vanished (disk cleaned under the run): logged, not raised
    writer.on_frame(_frame(1))
    writer.write_health([CameraReport("cam-1")])


def test_live_frame_keeps_private_pixels_masked(tmp_path: Path) -> None:
    private = PrivacyMask(polygon=((0.55, 0.1), (0.95, 0.1), (0.95, 0.7), (0.55, 0.7)))
    cam = CameraConfig(id="cam-1", source="x.mp4", privacy_masks=(private,))
    rng = np.random.default_rng(2)
    image = PrivacyMasker(cam.privacy_masks).apply(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    box_into_private = Tracks(track_id=[4], xyxy=[[200, 100, 450, 400]], class_id=[0], confidence=[0.9],
                              velocity=np.zeros((1, 2)), age=[9], state=[TrackState.CONFIRMED])
    writer = _writer(tmp_path, cameras=(cam,), max_width=320)
    writer.on_frame(_frame(0, image=image, tracks=box_into_private))
    live = _decode(LiveFrames(tmp_path / "live").frame("cam-1"))
    assert live.shape == (240, 320, 3)
    # JPEG codes colour in 16x16 blocks: ringing from the (worst-case, noise) public pixels reaches ~9 px in
    inside = cv2.erode(rasterise(cam.privacy_masks, 320, 240), np.ones((21, 21), np.uint8)) > 0
    assert inside.sum() > 10000
    assert live[inside].max() <= 8
    outside = cv2.dilate(rasterise(cam.privacy_masks, 320, 240), np.ones((7, 7), np.uint8)) == 0
    assert live[outside].std() > 20  # the public pixels (noise, halved by the 2x downscale) are still there
