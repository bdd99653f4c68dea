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

from analytics.geometry import PERSON_HEIGHT_M, apply_homography
from analytics.rules.base import RuleContext
from analytics.types import CLASS_IDS, TrackState, Tracks

#: Assumed real height of each class, metres (fallback scale without calibration).
CLASS_HEIGHT_M: dict[str, float] = {
    "person": PERSON_HEIGHT_M, "bicycle": PERSON_HEIGHT_M, "motorcycle": 1.5, "car": 1.5, "bus": 3.0, "truck": 3.0,
}
_HEIGHT_BY_ID = np.full(max(CLASS_IDS.values()) + 1, PERSON_HEIGHT_M)
for _name, _h in CLASS_HEIGHT_M.items():
    _HEIGHT_BY_ID[CLASS_IDS[_name]] = _h

#: Time step used to turn an image velocity into a ground velocity through the homography, seconds.
_DT = 0.5


def present(tracks: Tracks) -> np.ndarray:
    """(N,) bool: tracks the rules use (confirmed or briefly lost; not tentative)."""
    return tracks.state != TrackState.TENTATIVE


def of_classes(tracks: Tracks, class_ids: np.ndarray) -> np.ndarray:
    """(N,) bool: present tracks whose class is in ``class_ids``."""
    return present(tracks) & np.isin(tracks.class_id, class_ids)


def in_zone(tracks: Tracks, zone_id: str, context: RuleContext) -> np.ndarray:
    """(N,) bool: whose ground anchor lies inside the zone."""
    if len(tracks) == 0:
        return np.zeros(0, bool)
    return context.geometry.zone(zone_id).contains(tracks.anchor, context.frame_size)


def metres_per_px(tracks: Tracks) -> np.ndarray:
    """(N,) float64 fallback scale near each object: assumed class height / box height (pixels >= 1)."""
    heights = np.maximum(tracks.xyxy[:, 3].astype(np.float64) - tracks.xyxy[:, 1], 1.0)
    cls = np.clip(tracks.class_id.astype(np.int64), 0, len(_HEIGHT_BY_ID) - 1)
    return _HEIGHT_BY_ID[cls] / heights


def ground_positions(tracks: Tracks, context: RuleContext) -> np.ndarray | None:
    """(N, 2) float64 metres on the ground plane, or None without a calibration."""
    cal = context.geometry.calibration
    if cal is None:
        return None
    norm = tracks.anchor.astype(np.float64) / np.asarray(context.frame_size, dtype=np.float64)
    return apply_homography(norm, cal.homography)


def pairwise_distance_m(tracks: Tracks, context: RuleContext) -> np.ndarray:
    """(N, N) float64 distances between ground anchors, metres (calibrated, or the height fallback).

    Without calibration the pixel distance of a pair is scaled by the mean of both objects' metres per
    pixel, so two people of similar size in the same part of the frame get a fair distance.
    """
    ground = ground_positions(tracks, context)
    if ground is not None:
        return np.linalg.norm(ground[:, None, :] - ground[None, :, :], axis=-1)
    anchor = tracks.anchor.astype(np.float64)
    scale = metres_per_px(tracks)
    px = np.linalg.norm(anchor[:, None, :] - anchor[None, :, :], axis=-1)
    return px * (scale[:, None] + scale[None, :]) / 2


def ground_velocity(tracks: Tracks, context: RuleContext) -> np.ndarray:
    """(N, 2) float64 velocity on the ground, metres per second (calibrated, or the height fallback).

    With a calibration the anchor and the anchor moved by ``velocity * 0.5 s`` are both mapped to the
    ground, which follows the perspective; without one the image velocity is scaled by
    :func:`metres_per_px` (image axes, no perspective).
    """
    vel = tracks.velocity.astype(np.float64)
    cal = context.geometry.calibration
    if cal is None:
        return vel * metres_per_px(tracks)[:, None]
    size = np.asarray(context.frame_size, dtype=np.float64)
    anchor = tracks.anchor.astype(np.float64)
    here = apply_homography(anchor / size, cal.homography)
    there = apply_homography((anchor + vel * _DT) / size, cal.homography)
    return (there - here) / _DT


def ground_speed(tracks: Tracks, context: RuleContext) -> np.ndarray:
    """(N,) float64 speed on the ground, metres per second (see :func:`ground_velocity`)."""
    return np.linalg.norm(ground_velocity(tracks, context), axis=1)
