"""Evidence and live frames on real footage read through the project's file sources (privacy masks applied at
the source), with synthetic tracks (detection is not needed to test the footage path)."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analytics import paths
from analytics.alerts.config import EvidenceConfig
from analytics.alerts.model import Alert
from analytics.config import CameraConfig, PrivacyMask
from analytics.geometry import Line, SceneGeometry, Zone
from analytics.pipeline.evidence import EvidenceRecorder
from analytics.pipeline.live import LiveFrames, LiveFrameWriter
from analytics.sources import open_source
from analytics.sources.privacy import rasterise
from analytics.types import TrackedFrame, Tracks, TrackState

pytestmark = pytest.mark.integration

FOOTAGE = paths.footage_dir()
PRIVATE = PrivacyMask(name="shop-front", polygon=((0.6, 0.05), (0.97, 0.05), (0.97, 0.55), (0.6, 0.55)))
SCENE = SceneGeometry(zones=(Zone(id="square", polygon=((0.05, 0.5), (0.5, 0.5), (0.5, 0.95), (0.05, 0.95))),),
                      lines=(Line(id="gate", a=(0.1, 0.4), b=(0.55, 0.4)),))
PRE, POST = 2.0, 2.0
ALERT_AT = 30  # the alert is created on the 30th analysed frame


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"footage {path} is not available")
    return path


def _walker(i: int, width: int, height: int) -> Tracks:
    """One confirmed person walking right, its box reaching into the private zone by the end."""
    x0 = 0.2 * width + 8.0 * i
    box = [x0, 0.3 * height, x0 + 0.12 * width, 0.75 * height]
    return Tracks(track_id=[5], xyxy=[box], class_id=[0], confidence=[0.8], velocity=np.zeros((1, 2)),
                  age=[i], state=[TrackState.CONFIRMED])


@pytest.mark.parametrize(("source", "fps", "size"), [
    ("street/one-by-one-person-detection.mp4", 5.0, (768, 432)),
    ("mot/PETS09-S2L1", None, (768, 576)),
])
def test_evidence_and_live_frames_from_real_footage(tmp_path: Path, source: str, fps: float | None,
                                                    size: tuple[int, int]) -> None:
    cam = CameraConfig(id="cam-a", source=str(_need(FOOTAGE / source)), fps=fps, privacy_masks=(PRIVATE,),
                       scene=SCENE)
    saved: list[tuple[str, str, Path]] = []
    config = EvidenceConfig(pre_seconds=PRE, post_seconds=POST, max_width=480, jpeg_quality=80)
    recorder = EvidenceRecorder(config, tmp_path / "evidence", [cam], on_saved=lambda *a: saved.append(a))
    live = LiveFrameWriter(tmp_path / "live", [cam], fps=2.0, max_width=480, jpeg_quality=80)
    src = open_source(cam)
    frames = []
    try:
        for i, frame in enumerate(itertools.islice(src, ALERT_AT + 60)):
            assert frame.size == size
            msg = TrackedFrame(frame, _walker(i, *size))
            frames.append(frame)
            recorder.on_frame(msg)
            live.on_frame(msg)
            if i == ALERT_AT:
                recorder.on_alert(Alert(id="cam-a:intrusion:1", camera_id="cam-a", kind="intrusion",
                                        rule_id="r", start=frame.timestamp, end=frame.timestamp,
                                        created_at=1.7e9, updated_at=1.7e9, best_frame_seq=frames[-3].seq))
    finally:
        src.close()
    assert recorder.close(120)
    rate = 1.0 / (frames[1].timestamp - frames[0].timestamp)  # analysed frames per second
    by_kind = {kind: path for _, kind, path in saved}
    assert set(by_kind) == {"snapshot", "clip"}

    snapshot = cv2.imread(str(by_kind["snapshot"]), cv2.IMREAD_COLOR)
    out_size = (480, round(size[1] * 480 / size[0]))
    assert (snapshot.shape[1], snapshot.shape[0]) == out_size
    with av.open(str(by_kind["clip"])) as container:
        stream = container.streams.video[0]
        clip = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(rate, rel=0.02)
        duration = float(stream.duration * stream.time_base)
    t_alert = frames[ALERT_AT].timestamp
    expected = [f for f in frames if t_alert - PRE - 1e-6 <= f.timestamp <= t_alert + POST + 1e-6]
    assert len(clip) == len(expected)
    assert duration == pytest.approx(PRE + POST + 1 / rate, abs=0.05)

    # the clip shows the real footage: each decoded frame matches its source frame (scaled) outside the overlays
    for decoded, frame in zip(clip[::10], expected[::10], strict=False):
        reference = cv2.resize(frame.image, out_size, interpolation=cv2.INTER_AREA)
        assert np.abs(decoded[-40:, -80:].astype(int) - reference[-40:, -80:]).mean() < 12

    live_jpeg = LiveFrames(tmp_path / "live").frame("cam-a")
    live_image = cv2.imdecode(np.frombuffer(live_jpeg, np.uint8), cv2.IMREAD_COLOR)

    mask = rasterise(cam.privacy_masks, *out_size)
    # JPEG and H.264 code colour in 16x16 blocks: ringing from the public pixels (and the coloured box that
    # crosses the border) reaches up to ~8 px into the zone; private content itself was never encoded
    inside = cv2.erode(mask, np.ones((17, 17), np.uint8)) > 0
    outside = cv2.dilate(mask, np.ones((17, 17), np.uint8)) == 0
    for image in [snapshot, live_image, *clip]:
        assert image[inside].max() <= 12, "private pixels visible"
        assert image[outside].std() > 10  # the rest of the scene is there
