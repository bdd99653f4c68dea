"""Segment recorder: fixed-length, gap-free segments at the frames' own times, indexed by camera and time; private
pixels never stored; a slow writer drops frames instead of blocking the analysis; a failing camera (full disk
included) is dropped, reported and retried without stopping the others."""

from __future__ import annotations

import errno
import logging
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analytics.alerts.store import AlertStore
from analytics.config import CameraConfig, PrivacyMask
from analytics.recording.config import RecordingConfig
from analytics.recording.index import RecordingIndex
from analytics.recording.segments import SegmentRecorder, segment_path
from analytics.sources.privacy import PrivacyMasker, rasterise
from analytics.types import Frame, TrackedFrame, Tracks
from analytics.video_io import Mp4Writer

FPS = 10.0
T0 = 1_750_000_000.0  # wall clock at the first frame, Unix seconds (2025-06-15)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def index(tmp_path: Path):
    with AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        yield RecordingIndex(store)


def cam(camera_id: str = "cam-1", **kwargs) -> CameraConfig:
    return CameraConfig(id=camera_id, source="x.mp4", fps=FPS, **kwargs)


def frame(seq: int, *, camera_id: str = "cam-1", t: float | None = None, image: np.ndarray | None = None,
          size: tuple[int, int] = (160, 120)) -> TrackedFrame:
    if image is None:
        image = np.full((size[1], size[0], 3), 10 + 8 * (seq % 30), np.uint8)
    return TrackedFrame(Frame(camera_id, seq, seq / FPS if t is None else t, image), Tracks.empty())


def recorder(tmp_path: Path, index: RecordingIndex, clock: Clock, *, cameras=None, seconds: float = 5.0,
             max_width: int = 1920, **kwargs) -> SegmentRecorder:
    config = RecordingConfig(enabled=True, segment_seconds=seconds, max_width=max_width, crf=20)
    kwargs.setdefault("max_queue", 10_000)  # the tests feed faster than real time: nothing is dropped
    return SegmentRecorder(config, tmp_path / "rec", cameras or [cam()], index, clock=clock, **kwargs)


def feed(rec: SegmentRecorder, clock: Clock, frames: list[TrackedFrame]) -> None:
    for msg in frames:
        clock.now = T0 + msg.frame.timestamp
        rec.on_frame(msg)


def decode(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        return [float(f.time) for f in decoded], [f.to_ndarray(format="bgr24") for f in decoded]


def test_segments_roll_on_frame_time_and_are_gap_free(tmp_path: Path, index: RecordingIndex) -> None:
    clock = Clock()
    rec = recorder(tmp_path, index, clock, seconds=5.0)
    feed(rec, clock, [frame(i) for i in range(123)])  # 12.3 s at 10 fps
    assert rec.close(60)
    segs = index.segments(camera_id="cam-1")
    assert [s.frames for s in segs] == [50, 50, 23]
    assert [s.start for s in segs] == pytest.approx([0.0, 5.0, 10.0])
    for a, b in zip(segs, segs[1:]):
        assert a.end == b.start and a.wall_end == b.wall_start  # gap-free, exactly
    assert segs[-1].end == pytest.approx(12.3)  # last frame + one frame interval
    assert segs[0].wall_start == T0
    for seg in segs:
        path = Path(seg.path)
        assert path == segment_path(tmp_path / "rec", "cam-1", seg.wall_start).resolve()
        assert path.parent.name == "20250615" and path.stat().st_size == seg.bytes
        times, images = decode(path)
        assert len(images) == seg.frames
        assert times == pytest.approx([i / FPS for i in range(seg.frames)], abs=1e-3)  # shown at frame time
        first = round(seg.start * FPS)
        assert [int(round(im.mean())) for im in images[:3]] == pytest.approx(
            [10 + 8 * ((first + i) % 30) for i in range(3)], abs=6)  # levels 8 apart
    assert rec.stats()["cam-1"].frames == 123 and rec.stats()["cam-1"].segments == 3
    assert not list((tmp_path / "rec").rglob("*.tmp"))


def test_dropped_frames_keep_their_time(tmp_path: Path, index: RecordingIndex) -> None:
    clock = Clock()
    rec = recorder(tmp_path, index, clock, seconds=5.0)
    seqs = [0, 1, 2, 7, 8, 9, 20, 21]  # the runner dropped some frames under load
    feed(rec, clock, [frame(i) for i in seqs])
    assert rec.close(60)
    (seg,) = index.segments()
    times, _ = decode(Path(seg.path))
    assert times == pytest.approx([i / FPS for i in seqs], abs=1e-3)
    assert seg.end == pytest.approx(2.1 + 2.1 / 7)  # one mean frame interval after the last frame


@pytest.mark.parametrize("jump", [-3.0, 30.0])
def test_time_going_back_or_jumping_ends_the_segment(tmp_path: Path, index: RecordingIndex, jump: float) -> None:
    clock = Clock()
    rec = recorder(tmp_path, index, clock, seconds=60.0)
    before = [frame(i) for i in range(40)]  # 0.0 .. 3.9 s
    after = [frame(40 + i, t=3.9 + jump + i / FPS) for i in range(10)]
    feed(rec, clock, before)
    feed(rec, clock, after)
    assert rec.close(60)
    first, second = sorted(index.segments(), key=lambda s: s.wall_start)
    assert (first.frames, second.frames) == (40, 10)
    assert first.end == pytest.approx(4.0) and second.start == pytest.approx(3.9 + jump)


def test_wide_frames_are_scaled_and_private_pixels_never_stored(tmp_path: Path, index: RecordingIndex) -> None:
    private = PrivacyMask(name="windows", polygon=((0.5, 0.05), (0.95, 0.05), (0.95, 0.6), (0.5, 0.6)))
    camera = cam(privacy_masks=(private,))
    masker = PrivacyMasker(camera.privacy_masks, camera_id=camera.id)
    rng = np.random.default_rng(5)
    clock = Clock()
    rec = recorder(tmp_path, index, clock, cameras=[camera], max_width=320)
    # noise, masked at the source as the sources do: the worst case for scaling and codec ringing
    frames = [frame(i, image=masker.apply(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), inplace=True))
              for i in range(12)]
    originals = [f.frame.image.copy() for f in frames]
    feed(rec, clock, frames)
    assert rec.close(60)
    assert all(np.array_equal(f.frame.image, o) for f, o in zip(frames, originals))  # input not mutated
    (seg,) = index.segments()
    _, images = decode(Path(seg.path))
    zone = rasterise(camera.privacy_masks, 320, 240)
    inside = cv2.erode(zone, np.ones((21, 21), np.uint8)) > 0  # H.264 rings ~9 px into the zone from the noise
    outside = cv2.dilate(zone, np.ones((21, 21), np.uint8)) == 0
    assert len(images) == 12 and inside.sum() > 10000
    for image in images:
        assert image.shape == (240, 320, 3)
        assert image[inside].max() <= 10
        assert image[outside].std() > 20


def test_cameras_record_independently(tmp_path: Path, index: RecordingIndex) -> None:
    clock = Clock()
    rec = recorder(tmp_path, index, clock, cameras=[cam("a"), cam("b")], seconds=5.0)
    for i in range(60):
        feed(rec, clock, [frame(i, camera_id="a"), frame(i, camera_id="b", size=(96, 64))])
    assert rec.close(60)
    assert [s.frames for s in index.segments(camera_id="a")] == [50, 10]
    assert [s.frames for s in index.segments(camera_id="b")] == [50, 10]
    assert {Path(s.path).parent.parent.name for s in index.segments()} == {"a", "b"}


def test_a_slow_writer_drops_frames_and_never_blocks_the_analysis(tmp_path: Path, index: RecordingIndex,
                                                                   monkeypatch) -> None:
    release = threading.Event()
    real_add = index.add_segment

    def stuck_add(*args, **kwargs):
        release.wait(30)  # the writer thread is stuck here after the first segment
        return real_add(*args, **kwargs)

    monkeypatch.setattr(index, "add_segment", stuck_add)
    clock = Clock()
    rec = recorder(tmp_path, index, clock, seconds=5.0, max_queue=8)
    done = threading.Event()

    def analysis() -> None:
        feed(rec, clock, [frame(i) for i in range(200)])
        done.set()

    started = time.monotonic()
    thread = threading.Thread(target=analysis)
    thread.start()
    finished = done.wait(20)
    elapsed = time.monotonic() - started
    release.set()
    thread.join(10)
    assert finished and elapsed < 10, "on_frame waited for the writer thread"
    assert rec.close(60)
    stats = rec.stats()["cam-1"]
    assert stats.dropped > 100 and stats.frames + stats.dropped == 200
    assert sum(s.frames for s in index.segments()) == stats.frames


def test_a_full_disk_drops_the_segment_calls_the_purge_and_spares_the_other_camera(
        tmp_path: Path, index: RecordingIndex, monkeypatch, caplog) -> None:
    real_write = Mp4Writer.write
    full = {"on": True}

    def write(self, image, **kwargs):
        if full["on"] and "/a/" in str(self.path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, image, **kwargs)

    monkeypatch.setattr(Mp4Writer, "write", write)
    calls: list[float] = []
    clock = Clock()
    rec = recorder(tmp_path, index, clock, cameras=[cam("a"), cam("b")], seconds=5.0,
                   on_disk_full=lambda: calls.append(clock.now), retry_seconds=2.0)
    with caplog.at_level(logging.ERROR, logger="analytics.recording.segments"):
        for i in range(30):  # 0.0 .. 2.9 s: camera a fails at 0.0, pauses 2 s, fails again at 2.0
            feed(rec, clock, [frame(i, camera_id="a"), frame(i, camera_id="b")])
        assert rec.wait_idle(30)
        full["on"] = False  # the purge made room
        for i in range(30, 60):
            feed(rec, clock, [frame(i, camera_id="a"), frame(i, camera_id="b")])
        assert rec.close(60)
    assert len(calls) == 2
    assert "disk full" in caplog.text
    stats = rec.stats()
    assert stats["a"].failed == 2 and stats["a"].skipped > 0 and stats["b"].failed == 0
    assert [s.frames for s in index.segments(camera_id="b")] == [50, 10]
    (a,) = index.segments(camera_id="a")  # restarted at 4.0 s, after the second pause
    assert a.start == pytest.approx(4.0) and a.frames == 20
    assert not list((tmp_path / "rec").rglob("*.tmp"))


def test_a_failing_index_leaves_the_file_for_the_sweep(tmp_path: Path, index: RecordingIndex, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(index, "add_segment", broken)
    clock = Clock()
    rec = recorder(tmp_path, index, clock)
    feed(rec, clock, [frame(i) for i in range(10)])
    assert rec.close(60)
    assert rec.stats()["cam-1"].unindexed == 1
    assert len(list((tmp_path / "rec").rglob("*.mp4"))) == 1


def test_bad_frames_and_unknown_cameras_never_raise(tmp_path: Path, index: RecordingIndex, caplog) -> None:
    clock = Clock()
    rec = recorder(tmp_path, index, clock, retry_seconds=0.0)
    with caplog.at_level(logging.WARNING, logger="analytics.recording.segments"):
        rec.on_frame(frame(0, camera_id="stranger"))
        rec.on_frame(TrackedFrame(Frame("cam-1", 0, 0.0, np.zeros((4, 4), np.uint8)), Tracks.empty()))
        feed(rec, clock, [frame(i) for i in range(1, 11)])
        assert rec.close(60)
    assert "stranger" in caplog.text and "segment dropped" in caplog.text
    (seg,) = index.segments()
    assert seg.frames == 10
    assert rec.close(1)  # idempotent
    rec.on_frame(frame(11))  # after close: ignored
    assert index.segments() == [seg]
