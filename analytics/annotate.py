"""Drawing for people: confirmed tracks, zones and tripwire lines over a frame, and JPEG encoding.

One module draws for every consumer (the annotated run video, the console's live view, alert snapshots and
clips), so they all look the same. Drawing never touches its input: :func:`annotate` returns a new image.

Coordinate frames: track boxes are pixels of the decoded frame (top-left origin); zones and lines are
normalised image coordinates (see :mod:`analytics.geometry`) and are scaled to the output size.

OpenCV is imported inside the functions, so importing this module (and the pipeline) stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from analytics.geometry import SceneGeometry
from analytics.types import CLASS_NAMES, TrackedFrame, Tracks, TrackState

if TYPE_CHECKING:
    from analytics.config import CameraConfig

#: Box colours (BGR), picked by track id so a track keeps its colour from frame to frame.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (10, 249, 72), (23, 204, 146), (134, 219, 61), (211, 188, 0), (209, 85, 255),
)
ZONE_COLOUR = (0, 215, 255)  # BGR amber
LINE_COLOUR = (255, 0, 255)  # BGR magenta
TEXT_COLOUR = (0, 0, 0)
_FONT_SCALE = 0.4
_THICKNESS = 2
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ARROW_PX = 24.0  # length of a line's direction arrow, output pixels


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got shape {image.shape} dtype {image.dtype}")


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel points -> int32 fixed-point points for cv2 drawing with ``shift=_SHIFT``."""
    return np.round(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32)


def _label(image: np.ndarray, text: str, x: float, y: float, colour: tuple[int, int, int]) -> None:
    """Draw ``text`` on a filled ``colour`` tag whose bottom-left corner is near (x, y), kept inside the image."""
    import cv2

    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)
    h, w = image.shape[:2]
    x0 = int(min(max(x, 0), max(w - tw - 4, 0)))
    y1 = int(min(max(y, th + base + 2), h))
    cv2.rectangle(image, (x0, y1 - th - base - 2), (x0 + tw + 4, y1), colour, cv2.FILLED)
    cv2.putText(image, text, (x0 + 2, y1 - base), cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, TEXT_COLOUR, 1,
                cv2.LINE_AA)


def draw_tracks(image: np.ndarray, tracks: Tracks, *, scale: float = 1.0) -> None:
    """Draw the CONFIRMED tracks' boxes and ``#id class`` tags into ``image`` (in place).

    Args:
        image: (H, W, 3) uint8 BGR, drawn into.
        tracks: boxes in pixels of the decoded frame; ``scale`` maps them to ``image`` pixels.
    """
    import cv2

    shown = tracks[tracks.state == TrackState.CONFIRMED]
    boxes = shown.xyxy.astype(np.float64) * scale
    for track_id, class_id, box in zip(shown.track_id.tolist(), shown.class_id.tolist(), boxes, strict=True):
        colour = PALETTE[track_id % len(PALETTE)]
        p = _fixed(box)
        cv2.rectangle(image, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, _THICKNESS, cv2.LINE_8,
                      _SHIFT)
        _label(image, f"#{track_id} {CLASS_NAMES.get(class_id, class_id)}", box[0], box[1], colour)


def draw_scene(image: np.ndarray, scene: SceneGeometry) -> None:
    """Draw the scene's zones (closed outlines) and lines (with an arrow to their positive side), in place.

    The arrow starts at the line's midpoint and points along the normal to the right of ``a -> b`` on
    screen: the side an object crosses *into* in the positive direction (see :class:`~analytics.geometry.Line`).
    """
    import cv2

    h, w = image.shape[:2]
    size = (w, h)
    for zone in scene.zones:
        poly = zone.polygon_px(size)
        cv2.polylines(image, [_fixed(poly)], True, ZONE_COLOUR, _THICKNESS, cv2.LINE_AA, _SHIFT)
        _label(image, zone.id, *poly.mean(axis=0), ZONE_COLOUR)
    for line in scene.lines:
        a = np.asarray(line.a, np.float64) * size
        b = np.asarray(line.b, np.float64) * size
        cv2.line(image, tuple(_fixed(a).tolist()), tuple(_fixed(b).tolist()), LINE_COLOUR, _THICKNESS,
                 cv2.LINE_AA, _SHIFT)
        d = b - a
        normal = np.array([-d[1], d[0]]) / np.linalg.norm(d)  # right of a->b with y down: the positive side
        mid = (a + b) / 2
        tip = mid + normal * _ARROW_PX
        cv2.arrowedLine(image, tuple(_fixed(mid).tolist()), tuple(_fixed(tip).tolist()), LINE_COLOUR,
                        _THICKNESS, cv2.LINE_AA, _SHIFT, 0.35)
        _label(image, line.id, *a, LINE_COLOUR)


def annotate(image: np.ndarray, tracks: Tracks, *, scene: SceneGeometry | None = None,
             max_width: int | None = None) -> np.ndarray:
    """A new annotated copy of a frame: confirmed tracks, zones and lines, scaled down to ``max_width``.

    Args:
        image: (H, W, 3) uint8 BGR, pixels of the decoded frame. Never modified.
        tracks: the frame's tracks (boxes in pixels of ``image``); only CONFIRMED ones are drawn.
        scene: the camera's zones and lines (normalised coordinates), or None.
        max_width: pixels; a wider image is scaled down (aspect kept, area interpolation) before drawing, so
            strokes and text keep their size. None: keep the size.

    Returns:
        (H', W', 3) uint8 BGR, a new array (``W' = min(W, max_width)``).
    """
    import cv2

    _check_image(image)
    if max_width is not None and max_width < 1:
        raise ValueError(f"max_width must be a positive number of pixels, got {max_width}")
    h, w = image.shape[:2]
    scale = 1.0
    if max_width is not None and w > max_width:
        scale = max_width / w
        out = cv2.resize(image, (max_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    else:
        out = image.copy()
    if scene is not None:
        draw_scene(out, scene)
    if len(tracks):
        draw_tracks(out, tracks, scale=scale)
    return out


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 BGR image at ``quality`` (1-100, OpenCV's scale)."""
    import cv2

    _check_image(image)
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1-100, got {quality}")
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as JPEG")
    return buf.tobytes()


class FrameRenderer:
    """Annotated, scaled JPEGs of the frames of known cameras, private zones blanked again on the output.

    The frames arriving are already masked at the source; the camera's privacy masks are applied once more
    to the *annotated, scaled* image, so neither scaling (which blends border pixels) nor an overlay (a box or
    a tag reaching into a private zone) puts anything inside a private zone. Only blanking is added.

    Args:
        cameras: the camera configs (scene drawn, privacy masks applied).
        max_width: pixels; wider frames are scaled down.
        jpeg_quality: 1-100.

    Threading: call from any thread (the masks' per-size cache is filled idempotently).
    """

    def __init__(self, cameras: Sequence[CameraConfig], *, max_width: int | None, jpeg_quality: int) -> None:
        from analytics.sources.privacy import PrivacyMasker

        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be in 1-100, got {jpeg_quality}")
        self.max_width = max_width
        self.jpeg_quality = jpeg_quality
        self._scenes = {c.id: c.scene for c in cameras}
        self._maskers = {c.id: PrivacyMasker(c.privacy_masks, camera_id=c.id) for c in cameras}

    def knows(self, camera_id: str) -> bool:
        return camera_id in self._scenes

    def render(self, tracked: TrackedFrame) -> np.ndarray:
        """(H', W', 3) uint8 BGR annotated image (new array). KeyError for a camera not in the config."""
        camera_id = tracked.frame.camera_id
        if camera_id not in self._scenes:
            raise KeyError(f"camera {camera_id!r} is not configured here; known: {sorted(self._scenes)}")
        out = annotate(tracked.frame.image, tracked.tracks, scene=self._scenes[camera_id], max_width=self.max_width)
        return self._maskers[camera_id].apply(out, inplace=True)

    def jpeg(self, tracked: TrackedFrame) -> bytes:
        """The rendered frame as JPEG bytes."""
        return encode_jpeg(self.render(tracked), self.jpeg_quality)
