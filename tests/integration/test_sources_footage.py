"""File sources on the real footage in ../shared/footage."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics import paths
from analytics.config import CameraConfig, PrivacyMask
from analytics.sources import open_source
from analytics.types import Health

pytestmark = pytest.mark.integration

FOOTAGE = paths.footage_dir()


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"footage {path} is not available")
    return path


def test_pets09_image_folder_benchmark_yields_all_795_frames() -> None:
    seq = _need(FOOTAGE / "mot" / "PETS09-S2L1")
    source = open_source(CameraConfig(id="pets", source=str(seq), benchmark=True))
    count = 0
    for frame in source:
        assert frame.seq == count
        assert frame.timestamp == pytest.approx(count / 7)
        assert frame.size == (768, 576)
        count += 1
    assert count == 795
    status = source.status()
    assert (status.health, status.frames, status.dropped) == (Health.FINISHED, 795, 0)


def test_vct_video_at_5_fps_skips_to_the_analysis_rate() -> None:
    video = _need(FOOTAGE / "traffic" / "vct_input_video.mp4")
    source = open_source(CameraConfig(id="vct", source=str(video), fps=5.0))
    frames = list(source)
    assert abs(len(frames) - 905 / 24 * 5) <= 1.5
    assert frames[0].size == (640, 352)
    assert {b.seq - a.seq for a, b in zip(frames, frames[1:])} == {4, 5}  # a tick every 0.2 s = 4.8 frames
    assert source.fps == pytest.approx(24, abs=0.05)  # the file reports 24.013
    assert all(f.timestamp == pytest.approx(f.seq / source.fps) for f in frames)
    status = source.status()
    assert status.frames + status.dropped == 905


def test_privacy_mask_on_real_video() -> None:
    video = _need(FOOTAGE / "traffic" / "vdh_video1.avi")
    mask = PrivacyMask(name="windows", polygon=((0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)))
    source = open_source(CameraConfig(id="vdh", source=str(video), fps=3.0, privacy_masks=(mask,)))
    frames = list(source)
    assert frames
    for frame in frames:
        assert not frame.image[: int(0.3 * 240) - 1].any()
        assert frame.image[int(0.3 * 240) + 2:].any()
