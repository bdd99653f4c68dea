"""Drawing: tracks, zones and lines over a frame; scaling; JPEG; the annotated video writer uses it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from analytics.annotate import LINE_COLOUR, PALETTE, ZONE_COLOUR, FrameRenderer, annotate, encode_jpeg
from analytics.config import CameraConfig, PrivacyMask
from analytics.geometry import Line, SceneGeometry, Zone
from analytics.pipeline.sinks import AnnotatedVideoWriter
from analytics.types import Frame, TrackedFrame, Tracks, TrackState

GREY = 128


def _grey(width: int = 320, height: int = 240) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def tracks(boxes: list[tuple[float, float, float, float]], *, ids: list[int] | None = None,
           states: list[int] | None = None) -> Tracks:
    n = len(boxes)
    return Tracks(
        track_id=ids or list(range(1, n + 1)),
        xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
        class_id=[0] * n,
        confidence=[0.9] * n,
        velocity=np.zeros((n, 2)),
        age=[5] * n,
        state=states or [TrackState.CONFIRMED] * n,
    )


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ."""
    return np.any(a != b, axis=2)


def test_input_is_never_modified_and_a_new_array_is_returned() -> None:
    image = _grey()
    before = image.copy()
    scene = SceneGeometry(zones=(Zone(id="z", polygon=((0.1, 0.1), (0.5, 0.1), (0.5, 0.5))),),
                          lines=(Line(id="l", a=(0, 0.8), b=(1, 0.8)),))
    out = annotate(image, tracks([(50, 50, 150, 200)]), scene=scene)
    assert out is not image
    assert not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)
    assert _changed(out, before).any()


def test_confirmed_box_is_drawn_at_its_pixels_in_its_track_colour() -> None:
    image = _grey()
    out = annotate(image, tracks([(60, 80, 160, 200)], ids=[3]))
    colour = PALETTE[3 % len(PALETTE)]
    assert tuple(out[140, 60]) == colour  # left edge, mid height
    assert tuple(out[140, 160]) == colour  # right edge
    assert tuple(out[200, 110]) == colour  # bottom edge
    assert (out[140, 110] == GREY).all()  # inside the box: untouched
    assert (out[20:60, 200:] == GREY).all()  # far from the box: untouched
    tag = out[60:80, 60:120]  # the "#3 person" tag sits above the box's top-left corner
    assert np.all(tag == colour, axis=2).mean() > 0.3


def test_tentative_and_lost_tracks_are_not_drawn() -> None:
    image = _grey()
    t = tracks([(10, 10, 100, 100), (150, 50, 250, 150)], states=[TrackState.TENTATIVE, TrackState.LOST])
    np.testing.assert_array_equal(annotate(image, t), image)


def test_wide_frames_are_scaled_down_and_boxes_follow() -> None:
    image = _grey(640, 480)
    out = annotate(image, tracks([(200, 200, 400, 400)], ids=[1]), max_width=320)
    assert out.shape == (240, 320, 3)
    colour = PALETTE[1]
    assert tuple(out[150, 100]) == colour  # x = 200 * 0.5
    assert tuple(out[150, 200]) == colour  # x = 400 * 0.5
    assert (out[150, 150] == GREY).all()
    assert annotate(image, Tracks.empty(), max_width=1000).shape == (480, 640, 3)  # never scaled up


def test_zone_outline_is_drawn_in_output_pixels() -> None:
    scene = SceneGeometry(zones=(Zone(id="plaza", polygon=((0.25, 0.25), (0.75, 0.25), (0.75, 0.75),
                                                           (0.25, 0.75))),))
    out = annotate(_grey(640, 480), Tracks.empty(), scene=scene, max_width=320)  # 320 x 240 output
    for y, x in [(60, 100), (60, 200), (180, 120), (100, 80), (100, 240)]:  # on the edges (x 80-240, y 60-180)
        assert np.abs(out[y, x].astype(int) - ZONE_COLOUR).max() < 60, (y, x, out[y, x])
    assert (out[20, 20] == GREY).all()
    assert (out[75, 100] == GREY).all()  # inside the zone, away from its edges and its tag


def test_line_arrow_points_to_the_positive_side() -> None:
    # a horizontal line drawn left to right: its positive side is below it (see analytics.geometry.Line)
    scene = SceneGeometry(lines=(Line(id="gate", a=(0.1, 0.5), b=(0.9, 0.5)),))
    image = _grey(400, 200)
    out = annotate(image, Tracks.empty(), scene=scene)
    changed = _changed(out, image)
    assert changed[100, 200] and changed[100, 300]  # the line itself
    assert changed[110:124, 198:203].any()  # the arrow below the midpoint
    assert not changed[76:95, 190:211].any()  # nothing above it
    reverse = annotate(image, Tracks.empty(),
                       scene=SceneGeometry(lines=(Line(id="gate", a=(0.9, 0.5), b=(0.1, 0.5)),)))
    assert _changed(reverse, image)[76:90, 198:203].any()
    assert tuple(out[100, 250]) == LINE_COLOUR


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((10, 10, 4), np.uint8)])
def test_bad_images_are_rejected_with_their_shape(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 BGR"):
        annotate(bad, Tracks.empty())


def test_bad_max_width_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_width"):
        annotate(_grey(), Tracks.empty(), max_width=0)


def test_encode_jpeg_round_trips_and_quality_is_checked() -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), (9, 9), 3)
    data = encode_jpeg(image, 90)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image).mean() < 3
    assert len(encode_jpeg(image, 30)) < len(data)
    for quality in (0, 101):
        with pytest.raises(ValueError, match="quality"):
            encode_jpeg(image, quality)


def test_renderer_blanks_private_zones_even_under_overlays() -> None:
    private = PrivacyMask(polygon=((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))
    cam = CameraConfig(id="cam", source="x.mp4", privacy_masks=(private,),
                       scene=SceneGeometry(zones=(Zone(id="z", polygon=((0.1, 0.1), (0.9, 0.1), (0.9, 0.9))),)))
    renderer = FrameRenderer([cam], max_width=200, jpeg_quality=90)
    image = np.full((300, 400, 3), 200, np.uint8)
    image[:, :200] = 0  # masked at the source
    box_over_both = tracks([(100, 100, 300, 250)])
    out = renderer.render(TrackedFrame(Frame("cam", 0, 0.0, image), box_over_both))
    assert out.shape == (150, 200, 3)
    assert (out[:, :100] == 0).all()  # the private left half: no box, no zone edge, no tag
    assert _changed(out[:, 101:], np.full_like(out[:, 101:], 200)).any()  # overlays on the public half
    with pytest.raises(KeyError, match="other"):
        renderer.render(TrackedFrame(Frame("other", 0, 0.0, image), box_over_both))


def test_annotated_video_writer_draws_with_annotate(tmp_path: Path) -> None:
    path = tmp_path / "cam.mp4"
    writer = AnnotatedVideoWriter(path, fps=5.0)
    t = tracks([(60, 60, 200, 180)], ids=[2])
    for seq in range(3):
        writer.write(TrackedFrame(Frame("cam", seq, seq / 5, _grey()), t))
    writer.close()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == 3
    expected = annotate(_grey(), t)
    for frame in frames:
        assert frame.shape == (240, 320, 3)
        assert np.abs(frame.astype(int) - expected).mean() < 8  # the same drawing, up to mp4v loss
        assert np.abs(frame[120, 60].astype(int) - PALETTE[2]).max() < 60


def test_track_log_sink_video_shows_the_camera_scene(tmp_path: Path) -> None:
    from analytics.config import OutputConfig
    from analytics.pipeline.sinks import TrackLogSink

    scene = SceneGeometry(lines=(Line(id="gate", a=(0.1, 0.5), b=(0.9, 0.5)),))
    cam = CameraConfig(id="cam", source="x.mp4", fps=5.0, scene=scene)
    sink = TrackLogSink(cam, OutputConfig(parquet=False, mot=False, video=True), out_dir=tmp_path)
    sink.write(TrackedFrame(Frame("cam", 0, 0.0, _grey()), Tracks.empty()))
    sink.close()
    cap = cv2.VideoCapture(str(sink.paths["video"]))
    ok, frame = cap.read()
    cap.release()
    assert ok
    assert np.abs(frame[120, 160].astype(int) - LINE_COLOUR).max() < 60  # the line across the middle
