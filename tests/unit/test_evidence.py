"""Alert evidence: ring buffer, snapshot choice, H.264 clips, background writing, close, remove, privacy."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analytics.alerts.config import EvidenceConfig
from analytics.alerts.model import Alert
from analytics.config import CameraConfig, PrivacyMask
from analytics.pipeline.evidence import EvidenceRecorder, evidence_paths
from analytics.sources.privacy import PrivacyMasker, rasterise
from analytics.types import Frame, TrackedFrame, Tracks, TrackState

FPS = 10.0
CAM = CameraConfig(id="cam-1", source="x.mp4", fps=FPS)


def level(seq: int) -> int:
    """Grey level that identifies a frame in a clip (30 distinct levels, 8 apart)."""
    return 10 + 8 * (seq % 30)


def tracked(seq: int, *, image: np.ndarray | None = None, tracks: Tracks | None = None,
            camera_id: str = "cam-1") -> TrackedFrame:
    if image is None:
        image = np.full((120, 160, 3), level(seq), np.uint8)
    return TrackedFrame(Frame(camera_id, seq, seq / FPS, image), tracks if tracks is not None else Tracks.empty())


def alert(n: int = 1, *, at: float, start: float | None = None, best: int | None = None,
          camera_id: str = "cam-1") -> Alert:
    return Alert(id=f"{camera_id}:intrusion:{n}", camera_id=camera_id, kind="intrusion", rule_id="no-entry",
                 start=at if start is None else start, end=at, created_at=1.7e9, updated_at=1.7e9,
                 best_frame_seq=best)


class Saved:
    """Collects on_saved calls (called on the writer thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Path]] = []

    def __call__(self, alert_id: str, kind: str, path: Path) -> None:
        assert path.is_file()  # complete before the callback
        self.calls.append((alert_id, kind, path))


def recorder(tmp_path: Path, *, pre: float = 1.0, post: float = 1.0, cameras=(CAM,), on_saved=None,
             **kwargs) -> EvidenceRecorder:
    config = EvidenceConfig(pre_seconds=pre, post_seconds=post, max_width=320, jpeg_quality=90)
    return EvidenceRecorder(config, tmp_path / "evidence", list(cameras), on_saved=on_saved, **kwargs)


def read_jpeg(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def read_clip(path: Path) -> tuple[list[np.ndarray], av.video.stream.VideoStream]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        return frames, stream


def centre_level(image: np.ndarray) -> float:
    h, w = image.shape[:2]
    return float(image[h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean())


def test_ring_buffer_holds_pre_seconds_of_frame_time(tmp_path: Path) -> None:
    rec = recorder(tmp_path, pre=1.0)
    try:
        for seq in range(50):
            rec.on_frame(tracked(seq))
            held = rec.buffered("cam-1")
            assert held[-1][0] == seq
            assert held[-1][1] - held[0][1] <= 1.0 + 1e-6
        assert [s for s, _ in held] == list(range(39, 50))  # 4.9 - 1.0 = 3.9 s: frames 39-49
    finally:
        rec.close()


def test_ring_buffer_has_a_hard_frame_cap_and_restarts_when_time_goes_back(tmp_path: Path) -> None:
    rec = recorder(tmp_path, pre=10.0, max_buffer_frames=5)
    try:
        for seq in range(20):
            rec.on_frame(tracked(seq))
        assert [s for s, _ in rec.buffered("cam-1")] == [15, 16, 17, 18, 19]
        rec.on_frame(tracked(3))  # a live camera's clock was reset
        assert [s for s, _ in rec.buffered("cam-1")] == [3]
    finally:
        rec.close()


def test_snapshot_is_the_best_frame_else_the_newest(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, on_saved=saved)
    for seq in range(20):
        rec.on_frame(tracked(seq))
    rec.on_alert(alert(1, at=1.9, best=15))
    rec.on_alert(alert(2, at=1.9, best=2))  # no longer buffered (the buffer holds 9-19)
    rec.on_alert(alert(3, at=1.9, best=None))
    assert rec.wait_idle(30)
    snaps = {a: p for a, kind, p in saved.calls if kind == "snapshot"}
    assert set(snaps) == {"cam-1:intrusion:1", "cam-1:intrusion:2", "cam-1:intrusion:3"}
    assert abs(centre_level(read_jpeg(snaps["cam-1:intrusion:1"])) - level(15)) < 3
    assert abs(centre_level(read_jpeg(snaps["cam-1:intrusion:2"])) - level(19)) < 3
    assert abs(centre_level(read_jpeg(snaps["cam-1:intrusion:3"])) - level(19)) < 3
    assert snaps["cam-1:intrusion:1"] == evidence_paths(tmp_path / "evidence", "cam-1:intrusion:1")["snapshot"]
    assert snaps["cam-1:intrusion:1"] == tmp_path / "evidence" / "cam-1" / "cam-1_intrusion_1" / "snapshot.jpg"
    rec.close()


def test_snapshot_waits_for_the_first_frame(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, on_saved=saved)
    rec.on_alert(alert(at=0.0, best=0))
    assert rec.wait_idle(30) and saved.calls == []
    rec.on_frame(tracked(7))
    assert rec.wait_idle(30)
    assert [(a, k) for a, k, _ in saved.calls] == [("cam-1:intrusion:1", "snapshot")]
    assert abs(centre_level(read_jpeg(saved.calls[0][2])) - level(7)) < 3
    rec.close()


def test_clip_covers_pre_and_post_seconds_and_plays_in_a_browser(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, pre=1.0, post=1.0, on_saved=saved)
    for seq in range(30):
        rec.on_frame(tracked(seq))
    rec.on_alert(alert(at=2.9, start=2.9))  # created on frame 29
    for seq in range(30, 45):
        rec.on_frame(tracked(seq))
    assert rec.wait_idle(30)
    clips = [p for _, kind, p in saved.calls if kind == "clip"]
    assert clips == [evidence_paths(tmp_path / "evidence", "cam-1:intrusion:1")["clip"]]
    frames, stream = read_clip(clips[0])
    expected = list(range(19, 40))  # 1.9 s to 3.9 s: pre + post seconds around frame 29
    assert len(frames) == len(expected)
    assert [round(abs(centre_level(f) - level(s))) <= 6 for f, s in zip(frames, expected, strict=True)] \
        == [True] * len(expected)
    assert stream.codec_context.name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert float(stream.average_rate) == pytest.approx(FPS, rel=0.01)
    assert float(stream.duration * stream.time_base) == pytest.approx(2.1, abs=0.05)  # 21 frames at 10 fps
    data = clips[0].read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while downloading
    assert not [p for p in clips[0].parent.iterdir() if p.name.endswith(".tmp")]
    rec.close()


def test_clip_starts_pre_seconds_before_the_alert_start(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, pre=3.0, post=0.5, on_saved=saved)
    for seq in range(40):
        rec.on_frame(tracked(seq))
    rec.on_alert(alert(at=3.9, start=3.0))  # an event that began at 3.0 s, alert created at 3.9 s
    for seq in range(40, 50):
        rec.on_frame(tracked(seq))
    rec.close()
    clip = next(p for _, kind, p in saved.calls if kind == "clip")
    frames, _ = read_clip(clip)
    assert len(frames) == len(range(9, 45))  # 3.0 - 3.0 = 0.0 s, but the buffer holds from 3.9 - 3.0 = 0.9 s
    assert abs(centre_level(frames[0]) - level(9)) < 6
    assert abs(centre_level(frames[-1]) - level(44)) < 6


def test_odd_frame_sizes_give_even_clips(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, pre=0.5, post=0.5, on_saved=saved)
    for seq in range(12):
        rec.on_frame(tracked(seq, image=np.full((101, 151, 3), level(seq), np.uint8)))
        if seq == 5:
            rec.on_alert(alert(at=0.5))
    rec.close()
    frames, stream = read_clip(next(p for _, kind, p in saved.calls if kind == "clip"))
    assert (stream.codec_context.width, stream.codec_context.height) == (150, 100)
    assert len(frames) == 11


def test_encoding_never_blocks_the_analysis_thread(tmp_path: Path) -> None:
    release = threading.Event()
    saved = Saved()

    def slow_on_saved(alert_id: str, kind: str, path: Path) -> None:
        release.wait(30)  # the writer thread is stuck here
        saved(alert_id, kind, path)

    rec = recorder(tmp_path, pre=0.5, post=0.5, on_saved=slow_on_saved)

    def analysis() -> None:
        for seq in range(60):
            rec.on_frame(tracked(seq))
            if seq in (5, 20, 40):
                rec.on_alert(alert(seq, at=seq / FPS))

    thread = threading.Thread(target=analysis)
    thread.start()
    thread.join(20)
    blocked = thread.is_alive()
    release.set()
    thread.join(10)
    assert not blocked, "on_frame / on_alert waited for the writer thread"
    assert rec.close(60)
    assert sorted((a, k) for a, k, _ in saved.calls) == sorted(
        (f"cam-1:intrusion:{n}", k) for n in (5, 20, 40) for k in ("snapshot", "clip"))


def test_close_writes_a_pending_clip_with_what_it_has(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, pre=1.0, post=5.0, on_saved=saved)
    for seq in range(21):
        rec.on_frame(tracked(seq))
    rec.on_alert(alert(at=2.0))
    for seq in range(21, 26):  # the stream ends at 2.5 s, before 2.0 + 5.0
        rec.on_frame(tracked(seq))
    assert rec.wait_idle(30)
    assert [k for _, k, _ in saved.calls] == ["snapshot"]
    assert rec.close(60)
    clip = next(p for _, kind, p in saved.calls if kind == "clip")
    frames, _ = read_clip(clip)
    assert len(frames) == len(range(10, 26))
    assert rec.close(1)  # idempotent
    rec.on_frame(tracked(26))  # after close: ignored
    rec.on_alert(alert(2, at=2.6))
    assert len(saved.calls) == 2


def test_remove_deletes_the_evidence_and_cancels_pending_files(tmp_path: Path) -> None:
    saved = Saved()
    rec = recorder(tmp_path, pre=0.5, post=0.5, on_saved=saved)
    for seq in range(10):
        rec.on_frame(tracked(seq))
    first, second = alert(1, at=0.9), alert(2, at=0.9)
    rec.on_alert(first)
    rec.on_alert(second)
    for seq in range(10, 16):
        rec.on_frame(tracked(seq))
    assert rec.wait_idle(30)
    folder = evidence_paths(tmp_path / "evidence", first.id)["clip"].parent
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4", "snapshot.jpg"]
    assert rec.remove(first) is True
    assert not folder.exists()
    assert evidence_paths(tmp_path / "evidence", second.id)["clip"].is_file()  # the other alert is kept
    assert rec.remove(first) is True  # nothing left: still fine
    pending = alert(3, at=1.5)
    rec.on_alert(pending)
    assert rec.wait_idle(30)
    rec.remove(pending)  # removed before its post seconds were recorded
    for seq in range(16, 30):
        rec.on_frame(tracked(seq))
    rec.close()
    assert not evidence_paths(tmp_path / "evidence", pending.id)["clip"].exists()


@pytest.mark.parametrize("bad", ["../etc:intrusion:1", "a/b:intrusion:1", "cam:../../x:1", "..", "cam:in trusion:1"])
def test_evidence_paths_refuse_ids_that_leave_the_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        evidence_paths(tmp_path, bad)


def test_disabled_evidence_writes_nothing(tmp_path: Path) -> None:
    config = EvidenceConfig(enabled=False)
    rec = EvidenceRecorder(config, tmp_path / "evidence", [CAM])
    for seq in range(10):
        rec.on_frame(tracked(seq))
    rec.on_alert(alert(at=0.5))
    assert rec.close()
    assert not (tmp_path / "evidence").exists()


def test_errors_are_logged_and_never_raised(tmp_path: Path, caplog) -> None:
    (tmp_path / "evidence").write_text("a file where the folder should be")
    saved = Saved()
    rec = recorder(tmp_path, pre=0.5, post=0.2, on_saved=saved)
    with caplog.at_level(logging.WARNING, logger="analytics.pipeline.evidence"):
        rec.on_frame(tracked(0, camera_id="stranger"))
        rec.on_alert(alert(at=0.0, camera_id="stranger"))
        for seq in range(6):
            rec.on_frame(tracked(seq))
        rec.on_alert(alert(at=0.2))
        rec.on_frame(TrackedFrame(Frame("cam-1", 6, 0.6, np.zeros((4, 4), np.uint8)), Tracks.empty()))
        assert rec.close(30)
    assert saved.calls == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "stranger" in messages and "cannot write its snapshot" in messages and "cannot render" in messages


def test_private_pixels_stay_masked_in_snapshot_and_every_clip_frame(tmp_path: Path) -> None:
    private = PrivacyMask(name="windows", polygon=((0.5, 0.05), (0.95, 0.05), (0.95, 0.6), (0.5, 0.6)))
    cam = CameraConfig(id="cam-1", source="x.mp4", fps=FPS, privacy_masks=(private,))
    masker = PrivacyMasker(cam.privacy_masks, camera_id=cam.id)
    rng = np.random.default_rng(3)
    box_into_private = Tracks(track_id=[7], xyxy=[[150, 80, 400, 330]], class_id=[0], confidence=[0.9],
                              velocity=np.zeros((1, 2)), age=[12], state=[TrackState.CONFIRMED])
    saved = Saved()
    rec = recorder(tmp_path, pre=0.5, post=0.5, cameras=(cam,), on_saved=saved)
    for seq in range(16):  # noise: the worst case for compression ringing into the private zone
        image = masker.apply(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), inplace=True)
        rec.on_frame(tracked(seq, image=image, tracks=box_into_private))
        if seq == 7:
            rec.on_alert(alert(at=0.7, best=6))
    assert rec.close(60)
    paths = {kind: p for _, kind, p in saved.calls}
    snapshot = read_jpeg(paths["snapshot"])
    frames, _ = read_clip(paths["clip"])
    assert snapshot.shape == (240, 320, 3) and len(frames) == 11
    # JPEG and H.264 code colour in 16x16 blocks: ringing from the public noise reaches ~9 px into the zone
    inside = cv2.erode(rasterise(cam.privacy_masks, 320, 240), np.ones((21, 21), np.uint8)) > 0
    outside = cv2.dilate(rasterise(cam.privacy_masks, 320, 240), np.ones((21, 21), np.uint8)) == 0
    assert inside.sum() > 10000
    for image in [snapshot, *frames]:
        assert image.shape == (240, 320, 3)
        assert image[inside].max() <= 10
        assert image[outside].std() > 20  # the public pixels are still there


def test_remove_evidence_works_without_a_recorder(tmp_path: Path) -> None:
    from analytics.pipeline.evidence import remove_evidence

    clip = evidence_paths(tmp_path, "cam-1:loitering:4")["clip"]
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x")
    assert remove_evidence(tmp_path, "cam-1:loitering:4") is True
    assert not clip.parent.exists() and (tmp_path / "cam-1").is_dir()
    assert remove_evidence(tmp_path, "cam-1:loitering:4") is True
    assert remove_evidence(tmp_path, "../x:y:1") is False
