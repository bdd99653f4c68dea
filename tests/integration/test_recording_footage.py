"""Continuous recording of real footage read through the project's file sources (privacy mask applied at the
source): segment frame counts and times, contiguous boundaries, the recorded picture, and the pixel test: every
pixel inside the private zone is blank in every decoded frame of every segment."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analytics import paths
from analytics.alerts.store import AlertStore
from analytics.config import CameraConfig, PrivacyMask
from analytics.recording.config import RecordingConfig
from analytics.recording.index import RecordingIndex
from analytics.recording.segments import SegmentRecorder
from analytics.sources import open_source
from analytics.sources.privacy import rasterise
from analytics.types import TrackedFrame, Tracks

pytestmark = pytest.mark.integration

FOOTAGE = paths.footage_dir()
PRIVATE = PrivacyMask(name="flat-window", polygon=((0.55, 0.05), (0.97, 0.05), (0.97, 0.5), (0.7, 0.62),
                                                   (0.55, 0.5)))
T0 = 1_750_000_000.0
SEGMENT = 5.0  # seconds (the shortest the config allows)
WIDTH = 480  # recorded width: the footage is scaled down, so the mask is re-applied after scaling


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"footage {path} is not available")
    return path


def _decode(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
        return [float(f.time) for f in frames], [f.to_ndarray(format="bgr24") for f in frames]


@pytest.mark.parametrize(("source", "fps", "size"), [
    ("street/one-by-one-person-detection.mp4", 5.0, (768, 432)),
    ("street/vtest_PETS09-S2L1_480x360.mp4", 5.0, (480, 360)),  # not scaled: recorded at its own size
])
def test_recording_real_footage(tmp_path: Path, source: str, fps: float, size: tuple[int, int]) -> None:
    cam = CameraConfig(id="cam-r", source=str(_need(FOOTAGE / source)), fps=fps, privacy_masks=(PRIVATE,))
    wall = {"now": T0}
    with AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        index = RecordingIndex(store)
        config = RecordingConfig(enabled=True, segment_seconds=SEGMENT, max_width=WIDTH, crf=23)
        recorder = SegmentRecorder(config, tmp_path / "rec", [cam], index, clock=lambda: wall["now"],
                                   max_queue=1000)
        src = open_source(cam)
        frames = []
        try:
            for frame in itertools.islice(src, int(2 * SEGMENT * fps) + 3):  # two segments and a bit
                assert frame.size == size
                wall["now"] = T0 + frame.timestamp
                frames.append(frame)
                recorder.on_frame(TrackedFrame(frame, Tracks.empty()))
        finally:
            src.close()
        assert recorder.close(120)
        segments = index.segments(camera_id="cam-r")
        stats = recorder.stats()["cam-r"]

    assert stats.dropped == 0 and stats.failed == 0
    interval = frames[1].timestamp - frames[0].timestamp
    assert interval == pytest.approx(1.0 / fps, rel=0.05)  # the recording rate is the analysed rate
    assert [s.frames for s in segments] == [int(SEGMENT * fps), int(SEGMENT * fps), 3]
    assert segments[0].start == frames[0].timestamp and segments[0].wall_start == T0 + frames[0].timestamp
    for a, b in zip(segments, segments[1:]):
        assert a.end == b.start and a.wall_end == b.wall_start  # contiguous, exactly
    assert segments[-1].end == pytest.approx(frames[-1].timestamp + interval)

    out_w = min(size[0], WIDTH)
    out_h = round(size[1] * out_w / size[0])
    zone = rasterise(cam.privacy_masks, out_w, out_h)
    # The encoder never sees a private pixel; what H.264 puts inside the zone is ringing from the public pixels
    # next to it (4:2:0 chroma and DCT blocks): measured on these clips, at most 21 levels 1 px inside the edge,
    # 10 from 4 px, 3 from 10 px.
    inside = cv2.erode(zone, np.ones((9, 9), np.uint8)) > 0  # 4 px from the edge
    deep = cv2.erode(zone, np.ones((21, 21), np.uint8)) > 0  # 10 px
    outside = cv2.dilate(zone, np.ones((7, 7), np.uint8)) == 0
    assert inside.sum() > 0.1 * out_w * out_h
    i = 0
    for seg in segments:
        times, images = _decode(Path(seg.path))
        assert len(images) == seg.frames
        expected = [f.timestamp - seg.start for f in frames[i:i + seg.frames]]
        assert times == pytest.approx(expected, abs=2e-3)  # each frame at its own time
        for image, frame in zip(images, frames[i:i + seg.frames]):
            assert image.shape == (out_h - out_h % 2, out_w, 3)
            rows = image.shape[0]
            assert image[inside[:rows]].max() <= 16 and image[inside[:rows]].mean() < 2, "private pixels recorded"
            assert image[deep[:rows]].max() <= 8, "private pixels recorded"
            source = cv2.resize(frame.image, (out_w, out_h), interpolation=cv2.INTER_AREA)[: image.shape[0]]
            diff = image.astype(np.float32) - source.astype(np.float32)
            psnr = 10 * np.log10(255.0**2 / max(float(np.mean(diff[outside[: image.shape[0]]] ** 2)), 1e-9))
            assert psnr > 30, f"the recorded picture differs from the source ({psnr:.1f} dB)"
        i += seg.frames
    assert i == len(frames)
