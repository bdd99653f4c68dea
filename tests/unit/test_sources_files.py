"""File sources on small synthetic videos and image folders: seq numbers, media time, rate skipping, masks, errors."""

from __future__ import annotations

import itertools
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.config import CameraConfig, PrivacyMask
from analytics.sources import SourceError, open_source
from analytics.types import Health

WIDTH, HEIGHT = 64, 48
N_FRAMES = 30
SRC_FPS = 10.0


def _frame_image(i: int) -> np.ndarray:
    """Frame ``i`` is a flat grey of value ``i * 8`` (recoverable after lossy encoding)."""
    return np.full((HEIGHT, WIDTH, 3), (i * 8) % 256, np.uint8)


def _value_index(image: np.ndarray) -> int:
    return int(round(float(image.mean()) / 8))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 30-frame, 10 fps, 64x48 MJPG .avi whose frame i is grey level 8 i."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), SRC_FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(_frame_image(i))
    writer.release()
    return path


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A plain folder of 30 png images named 0.png .. 29.png (natural order differs from lexical)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(N_FRAMES):
        cv2.imwrite(str(folder / f"{i}.png"), _frame_image(i))
    return folder


@pytest.fixture
def mot_dir(tmp_path: Path) -> Path:
    """A MOTChallenge-layout sequence at 10 fps."""
    folder = tmp_path / "SEQ-01"
    (folder / "img1").mkdir(parents=True)
    for i in range(N_FRAMES):
        cv2.imwrite(str(folder / "img1" / f"{i + 1:06d}.jpg"), _frame_image(i))
    (folder / "seqinfo.ini").write_text("[Sequence]\nname=SEQ-01\nimDir=img1\nframeRate=10\nseqLength=30\n")
    return folder


def _cam(source: Path | str, **kwargs: object) -> CameraConfig:
    return CameraConfig(id="cam1", source=str(source), **kwargs)


@pytest.mark.parametrize("kind", ["video", "mot_dir"])
def test_benchmark_yields_every_frame_with_media_time(kind: str, request: pytest.FixtureRequest) -> None:
    source = open_source(_cam(request.getfixturevalue(kind), benchmark=True))
    frames = list(source)
    assert [f.seq for f in frames] == list(range(N_FRAMES))
    assert [f.timestamp for f in frames] == pytest.approx([i / SRC_FPS for i in range(N_FRAMES)])
    assert [_value_index(f.image) for f in frames] == list(range(N_FRAMES))
    assert all(f.camera_id == "cam1" and f.size == (WIDTH, HEIGHT) for f in frames)
    assert all(f.image.dtype == np.uint8 and f.image.shape == (HEIGHT, WIDTH, 3) for f in frames)
    status = source.status()
    assert (status.health, status.frames, status.dropped) == (Health.FINISHED, N_FRAMES, 0)


def test_benchmark_ignores_the_analysis_rate(video: Path) -> None:
    assert len(list(open_source(_cam(video, benchmark=True, fps=1.0)))) == N_FRAMES


def test_fps_none_yields_every_frame(image_dir: Path) -> None:
    assert [f.seq for f in open_source(_cam(image_dir, fps=None), image_fps=SRC_FPS)] == list(range(N_FRAMES))


@pytest.mark.parametrize(("rate", "expected_seqs"), [
    (5.0, list(range(0, N_FRAMES, 2))),
    (2.5, list(range(0, N_FRAMES, 4))),
    (3.0, [math.ceil(k * SRC_FPS / 3.0 - 1e-9) for k in range(9)]),  # 0, 4, 7, 10, 14, 17, 20, 24, 27
    (1.0, list(range(0, N_FRAMES, 10))),
    (10.0, list(range(N_FRAMES))),
    (25.0, list(range(N_FRAMES))),
])
@pytest.mark.parametrize("kind", ["video", "image_dir"])
def test_rate_keeps_the_first_frame_of_each_tick(kind: str, rate: float, expected_seqs: list[int],
                                                 request: pytest.FixtureRequest) -> None:
    source = open_source(_cam(request.getfixturevalue(kind), fps=rate), image_fps=SRC_FPS)
    frames = list(source)
    assert [f.seq for f in frames] == expected_seqs
    assert [f.timestamp for f in frames] == pytest.approx([s / SRC_FPS for s in expected_seqs])
    assert [_value_index(f.image) for f in frames] == expected_seqs  # skipped frames really were skipped
    assert source.status().dropped == N_FRAMES - len(expected_seqs)


def test_realtime_accounts_for_every_frame(image_dir: Path) -> None:
    source = open_source(_cam(image_dir, fps=None, realtime=True), image_fps=100.0)
    seqs = [f.seq for f in source]
    status = source.status()
    assert seqs == sorted(set(seqs)) and seqs[0] == 0
    assert status.frames == len(seqs) and status.frames + status.dropped == N_FRAMES


def test_loop_restarts_with_monotonic_seq_and_time(video: Path) -> None:
    source = open_source(_cam(video, benchmark=True, loop=True))
    frames = list(itertools.islice(source, 2 * N_FRAMES + 5))
    source.close()
    assert [f.seq for f in frames] == list(range(2 * N_FRAMES + 5))
    assert frames[N_FRAMES].timestamp == pytest.approx(N_FRAMES / SRC_FPS)
    assert _value_index(frames[N_FRAMES + 3].image) == 3
    assert source.status().health is Health.FINISHED


def test_loop_with_rate_keeps_the_tick_spacing(image_dir: Path) -> None:
    source = open_source(_cam(image_dir, fps=2.5, loop=True), image_fps=SRC_FPS)
    seqs = [f.seq for f in itertools.islice(source, 12)]
    source.close()
    assert seqs == list(range(0, 48, 4))


def test_privacy_mask_blanks_pixels_before_yield(video: Path) -> None:
    left = PrivacyMask(polygon=((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
    masked = list(open_source(_cam(video, benchmark=True, privacy_masks=(left,))))
    plain = list(open_source(_cam(video, benchmark=True)))
    for m, p in zip(masked, plain, strict=True):
        assert not m.image[:, : WIDTH // 2].any()
        assert np.array_equal(m.image[:, WIDTH // 2 + 1:], p.image[:, WIDTH // 2 + 1:])
    assert plain[-1].image[:, : WIDTH // 2].any()


def test_close_stops_iteration_and_status_finishes(video: Path) -> None:
    source = open_source(_cam(video, benchmark=True))
    assert source.status().health is Health.STARTING
    it = iter(source)
    next(it)
    assert source.status().health is Health.ONLINE
    source.close()
    assert list(it) == []
    assert source.status().health is Health.FINISHED
    source.close()  # idempotent


def test_close_before_iteration_releases_the_decoder(video: Path) -> None:
    source = open_source(_cam(video))
    source.close()
    assert source.status().health is Health.FINISHED


def test_second_iteration_is_refused(image_dir: Path) -> None:
    source = open_source(_cam(image_dir))
    iter(source)
    with pytest.raises(SourceError, match="cam1.*only once"):
        iter(source)


def test_mot_folder_uses_seqinfo_frame_rate(mot_dir: Path) -> None:
    (mot_dir / "seqinfo.ini").write_text("[Sequence]\nimDir=img1\nframeRate=7\n")
    frames = list(open_source(_cam(mot_dir, benchmark=True)))
    assert frames[7].timestamp == pytest.approx(1.0)


def test_bad_seqinfo_names_the_file(mot_dir: Path) -> None:
    ini = mot_dir / "seqinfo.ini"
    ini.write_text("[Sequence]\nimDir=img1\n")
    with pytest.raises(SourceError, match=rf"cam1.*{ini}.*frameRate"):
        open_source(_cam(mot_dir))


def test_image_folder_default_rate_is_25(image_dir: Path) -> None:
    frames = list(open_source(_cam(image_dir, benchmark=True)))
    assert frames[25].timestamp == pytest.approx(1.0)


def test_unreadable_image_is_skipped_with_a_warning(image_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (image_dir / "5.png").write_bytes(b"not a png")
    with caplog.at_level(logging.WARNING, logger="analytics.sources.files"):
        frames = list(open_source(_cam(image_dir, benchmark=True)))
    assert len(frames) == N_FRAMES - 1
    assert "5.png" in caplog.text


def test_missing_path_names_camera_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=rf"camera cam1: source {missing} does not exist; expected a video"):
        open_source(_cam(missing))


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=rf"cam1.*{tmp_path}.*no images"):
        open_source(_cam(tmp_path))


def test_random_bytes_cannot_be_decoded(tmp_path: Path) -> None:
    bad = tmp_path / "random.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match=rf"camera cam1: cannot decode {bad}"):
        open_source(_cam(bad))


def test_truncated_mp4_cannot_be_decoded(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), SRC_FPS, (WIDTH, HEIGHT))
    for i in range(N_FRAMES):
        writer.write(_frame_image(i))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the moov atom at the end is lost
    with pytest.raises(SourceError, match=rf"cannot decode {path}"):
        open_source(_cam(path))


def test_single_image_file_is_refused(image_dir: Path) -> None:
    with pytest.raises(SourceError, match="single image"):
        open_source(_cam(image_dir / "0.png"))


def test_unsupported_url_scheme_is_named() -> None:
    with pytest.raises(SourceError, match="unsupported URL scheme 'ftp'"):
        open_source(_cam("ftp://example.org/cam.mp4"))


def test_importing_sources_does_not_import_opencv() -> None:
    code = "import sys, analytics.sources; print('cv2' in sys.modules or 'av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "False"
