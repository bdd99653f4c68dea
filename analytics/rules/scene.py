"""Per-frame measurements the rules share: which tracks count, zone membership, ground distances, speeds.

Which tracks count: rules use tracks that are **confirmed** (matched this frame) or **lost** (predicted for
a short while after their last match, so a person hidden for a moment is still there). Tentative tracks
(not yet confirmed) are ignored: they are mostly flicker, and a real object is confirmed within
``min_hits`` frames.

Units on the ground:

* with the camera's ground calibration, positions are metres on the ground plane (homography of the ground
  anchor, the bottom centre of the box) and speeds are metres per second;
* without it, distances and speeds fall back on the **assumed height of the object**
  (:data:`CLASS_HEIGHT_M`: a person is 1.7 m tall, a car 1.5 m...): ``metres per pixel = height_m /
  box_height_px`` near each object. That ignores perspective across the frame, so it is right for
  distances between nearby objects (members of a group) and rough for speeds; rules that need true
  speeds (``speeding``) require a calibration.
"""

from __future__ import annotations

import numpy as np

from analytics.geometry import SceneGeometry
from analytics.rules.base import RuleContext, frame_view
from analytics.rules.view import CLASS_HEIGHT_M, FrameView, class_lut
from analytics.types import Tracks

__all__ = ["CLASS_HEIGHT_M", "FrameView", "class_lut", "frame_view", "present", "of_classes", "in_zone",
           "metres_per_px", "ground_positions", "pairwise_distance_m", "ground_velocity", "ground_speed"]

_NO_SCENE = RuleContext("", (1, 1), 0, SceneGeometry())  # for measurements that need no scene


def present(tracks: Tracks) -> np.ndarray:
    """(N,) bool: tracks the rules use (confirmed or briefly lost; not tentative)."""
    return frame_view(tracks, _NO_SCENE).present()


def of_classes(tracks: Tracks, class_ids: np.ndarray) -> np.ndarray:
    """(N,) bool: present tracks whose class is in ``class_ids``."""
    return frame_view(tracks, _NO_SCENE).of_classes(class_lut(np.asarray(class_ids).tolist()))


def in_zone(tracks: Tracks, zone_id: str, context: RuleContext) -> np.ndarray:
    """(N,) bool: whose ground anchor lies inside the zone."""
    return frame_view(tracks, context).in_zone(zone_id)


def metres_per_px(tracks: Tracks) -> np.ndarray:
    """(N,) float64 fallback scale near each object: assumed class height / box height (pixels >= 1)."""
    return frame_view(tracks, _NO_SCENE).metres_per_px()


def ground_positions(tracks: Tracks, context: RuleContext) -> np.ndarray | None:
    """(N, 2) float64 metres on the ground plane, or None without a calibration."""
    return frame_view(tracks, context).ground()


def pairwise_distance_m(tracks: Tracks, context: RuleContext) -> np.ndarray:
    """(N, N) float64 distances between ground anchors, metres (calibrated, or the height fallback).

    Without calibration the pixel distance of a pair is scaled by the mean of both objects' metres per
    pixel, so two people of similar size in the same part of the frame get a fair distance.
    """
    view = frame_view(tracks, context)
    ground = view.ground()
    if ground is not None:
        d = ground[:, None, :] - ground[None, :, :]
        return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
    anchor = tracks.anchor.astype(np.float64)
    scale = view.metres_per_px()
    d = anchor[:, None, :] - anchor[None, :, :]
    return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) * (scale[:, None] + scale[None, :]) / 2


def ground_velocity(tracks: Tracks, context: RuleContext) -> np.ndarray:
    """(N, 2) float64 velocity on the ground, metres per second (calibrated, or the height fallback).

    With a calibration the anchor and the anchor moved by ``velocity * 0.5 s`` are both mapped to the
    ground, which follows the perspective; without one the image velocity is scaled by
    :func:`metres_per_px` (image axes, no perspective).
    """
    return frame_view(tracks, context).ground_velocity()


def ground_speed(tracks: Tracks, context: RuleContext) -> np.ndarray:
    """(N,) float64 speed on the ground, metres per second (see :func:`ground_velocity`)."""
    return frame_view(tracks, context).ground_speed()
