"""Per-camera filtering of detections (classes, score, size, frame edge), numpy only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analytics.types import Detections

if TYPE_CHECKING:
    from analytics.config import DetectionFilter


def detection_mask(dets: Detections, flt: DetectionFilter, *, frame_size: tuple[int, int]) -> np.ndarray:
    """(N,) bool mask of the detections ``flt`` keeps.

    Kept: class in ``flt.classes``; confidence >= ``flt.confidence``; box height (pixels) >= ``flt.min_size``;
    box centre at least ``flt.edge_margin`` pixels from every border of a (width, height) ``frame_size``.
    """
    w, h = frame_size
    if w <= 0 or h <= 0:
        raise ValueError(f"frame_size must be a positive (width, height), got {frame_size}")
    margin = flt.edge_margin
    centre = (dets.xyxy[:, 0:2] + dets.xyxy[:, 2:4]) / 2
    inside = (
        (centre[:, 0] >= margin) & (centre[:, 0] <= w - margin)
        & (centre[:, 1] >= margin) & (centre[:, 1] <= h - margin)
    )
    return (
        np.isin(dets.class_id, np.asarray(flt.class_ids, dtype=np.int16))
        & (dets.confidence >= np.float32(flt.confidence))
        & (dets.wh[:, 1] >= np.float32(flt.min_size))
        & inside
    )


def filter_detections(dets: Detections, flt: DetectionFilter, *, frame_size: tuple[int, int]) -> Detections:
    """The detections of one frame that a camera's :class:`~analytics.config.DetectionFilter` keeps.

    Args:
        dets: detections in frame pixels (not modified).
        flt: the camera's filter.
        frame_size: (width, height) of the frame, pixels.

    Returns:
        A new :class:`Detections` with the kept rows, in their original order.
    """
    return dets[detection_mask(dets, flt, frame_size=frame_size)]
