"""A requisition export from real footage: frames read through the project's file sources (privacy masks applied
at the source), recorded in segments by the segment recorder, a requisition over two cameras, an export that
verifies, then fails once one byte changes; every exported frame carries the watermark, shows the footage
elsewhere and keeps every private pixel blank."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics import paths
from analytics.alerts.store import AlertStore
from analytics.config import CameraConfig, PrivacyMask
from analytics.recording.config import RecordingConfig
from analytics.recording.export import MANIFEST, export_requisition
from analytics.recording.index import RecordingIndex
from analytics.recording.segments import SegmentRecorder
from analytics.recording.signing import public_key_raw
from analytics.recording.verify import verify_export
from analytics.sources import open_source
from analytics.sources.privacy import rasterise
from analytics.types import Frame, TrackedFrame, Tracks
from analytics.video_io import read_frames

pytestmark = pytest.mark.integration

FOOTAGE = paths.footage_dir()
T0 = 1_767_225_600.0  # wall clock at each camera's first frame: 2026-01-01T00:00:00Z
FPS = 5.0
SECONDS = 12.0  # footage recorded per camera: segments of 5 s, so three segments
START, END = T0 + 2.5, T0 + 10.5  # the requisition's range: across the three segments
CAMERAS = {
    "street-1": ("street/one-by-one-person-detection.mp4",
                 PrivacyMask(name="shop-front", polygon=((0.6, 0.05), (0.97, 0.05), (0.97, 0.55), (0.6, 0.55)))),
    "road-2": ("traffic/car-detection.mp4",
               PrivacyMask(name="windows", polygon=((0.05, 0.05), (0.45, 0.1), (0.4, 0.5), (0.1, 0.45)))),
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"footage {path} is not available")
    return path


def _record(tmp_path: Path, index: RecordingIndex, cameras: list[CameraConfig]) -> dict[str, list[Frame]]:
    """Record ``SECONDS`` of each camera's source with the segment recorder; returns the source frames."""
    clock = Clock()
    config = RecordingConfig(enabled=True, segment_seconds=5.0, crf=20)
    recorder = SegmentRecorder(config, tmp_path / "rec", cameras, index, clock=clock, max_queue=1000)
    frames: dict[str, list[Frame]] = {}
    try:
        for cam in cameras:
            src = open_source(cam)
            try:
                frames[cam.id] = list(itertools.islice(src, int(SECONDS * FPS)))
            finally:
                src.close()
            t0 = frames[cam.id][0].timestamp
            for frame in frames[cam.id]:
                clock.now = T0 + frame.timestamp - t0
                recorder.on_frame(TrackedFrame(frame, Tracks.empty()))
            assert recorder.wait_idle(120)
    finally:
        assert recorder.close(120)
    return frames


def test_an_export_of_real_footage_verifies_is_watermarked_and_keeps_private_zones_blank(tmp_path: Path) -> None:
    cameras = [CameraConfig(id=cid, source=str(_need(FOOTAGE / src)), fps=FPS, privacy_masks=(mask,))
               for cid, (src, mask) in CAMERAS.items()]
    key = Ed25519PrivateKey.generate()
    with AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        index = RecordingIndex(store)
        sources = _record(tmp_path, index, cameras)
        assert len(index.segments(camera_id="street-1")) == 3
        index.create_requisition("PV-2026/0042", authority="Commissariat central", officer="Lt Martin",
                                 reason="assault near the shop", cameras=list(CAMERAS), start=START, end=END,
                                 user="sup", at=T0 + 100)
        export = export_requisition(index, "PV-2026/0042", tmp_path / "exports", key=key, user="alice",
                                    clock=lambda: T0 + 200)
        assert store.audit_entries(action="requisition.export")[0].target == "PV-2026/0042"

    report = verify_export(export, trusted_public_key=public_key_raw(key))
    assert report.ok and report.files_checked == 2, report.problems
    manifest = json.loads((export / MANIFEST).read_bytes())
    assert manifest["missing"] == []
    for cam in cameras:
        entry = next(f for f in manifest["files"] if f["camera"] == cam.id)
        assert len(entry["source_segments"]) == 3
        wanted = [f for f in sources[cam.id] if START <= T0 + f.timestamp - sources[cam.id][0].timestamp < END]
        assert entry["frames"] == len(wanted) == 40
        _check_frames(export / entry["name"], entry, cam, wanted)

    clip = export / "street-1.mp4"
    data = bytearray(clip.read_bytes())
    data[len(data) // 3] ^= 0x80
    clip.write_bytes(bytes(data))
    report = verify_export(export)
    assert not report.ok and report.tampered_files == ["street-1.mp4"]


def _check_frames(path: Path, entry: dict, cam: CameraConfig, wanted: list[Frame]) -> None:
    """Every decoded frame: the watermark box differs from the source, the rest matches it, and the private zone
    (eroded 5 px: H.264 ringing from the public pixels, in a second generation) is black."""
    x0, y0, x1, y1 = entry["watermark"]["box"]
    width, height = entry["width"], entry["height"]
    mask = rasterise(cam.privacy_masks, width, height)
    inside = cv2.erode(mask, np.ones((11, 11), np.uint8)) > 0
    inside[y0:y1, x0:x1] = False  # the watermark is drawn over whatever lies under it
    assert inside.sum() > 2000  # the test covers a real zone
    outside = np.ones((height, width), bool)
    outside[cv2.dilate(mask, np.ones((17, 17), np.uint8)) > 0] = False
    outside[max(0, y0 - 8): y1 + 8, max(0, x0 - 8): x1 + 8] = False
    decoded = list(read_frames(path))
    assert len(decoded) == len(wanted)
    for frame, source in zip(decoded, wanted, strict=True):
        image = frame.image.astype(np.int16)
        reference = source.image[:height, :width].astype(np.int16)
        assert np.abs(image[y0:y1, x0:x1] - reference[y0:y1, x0:x1]).mean() > 25, "no visible watermark"
        assert np.abs(image[outside] - reference[outside]).mean() < 8, "the footage is not the source's"
        assert image[inside].max() <= 12, f"private pixels visible in frame {frame.index} of {path.name}"
