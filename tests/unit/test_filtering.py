"""Per-camera detection filter: classes, confidence, min_size (box height) and edge_margin (box centre)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import DetectionFilter
from analytics.detectors.filtering import detection_mask, filter_detections
from analytics.types import Detections

FRAME = (200, 100)  # (width, height)

# rows:            xyxy                  score  class    centre       height
DETS = Detections(
    xyxy=np.array([
        [10, 10, 30, 60],    # 0 person   0.9   (20, 35)   50
        [100, 40, 140, 60],  # 1 car      0.3   (120, 50)  20
        [0, 0, 6, 6],        # 2 person   0.8   (3, 3)      6
        [180, 80, 200, 100],  # 3 truck   0.6   (190, 90)  20
        [90, 20, 110, 90],   # 4 dog      0.95  (100, 55)  70
    ], np.float32),
    confidence=np.array([0.9, 0.3, 0.8, 0.6, 0.95], np.float32),
    class_id=np.array([0, 2, 0, 7, 16], np.int16),
)


@pytest.mark.parametrize(
    ("kwargs", "kept"),
    [
        ({}, [0, 1, 2, 3]),  # defaults: the 6 reported classes, score >= 0.25, no size or edge limit
        ({"classes": ("person",)}, [0, 2]),
        ({"classes": ("car", "truck")}, [1, 3]),
        ({"confidence": 0.5}, [0, 2, 3]),
        ({"confidence": 0.9}, [0]),  # equal to the threshold is kept
        ({"min_size": 20}, [0, 1, 3]),  # height equal to min_size is kept
        ({"min_size": 21}, [0]),
        ({"edge_margin": 3}, [0, 1, 2, 3]),  # centre exactly at the margin is kept
        ({"edge_margin": 4}, [0, 1, 3]),
        ({"edge_margin": 10.5}, [0, 1]),  # truck centre is 10 px from the right and bottom borders
        ({"classes": ("person", "truck"), "confidence": 0.7, "edge_margin": 5}, [0]),
    ],
)
def test_filter_table(kwargs, kept):
    flt = DetectionFilter(**kwargs)
    out = filter_detections(DETS, flt, frame_size=FRAME)
    np.testing.assert_array_equal(out.xyxy, DETS.xyxy[kept])
    np.testing.assert_array_equal(out.class_id, DETS.class_id[kept])
    assert detection_mask(DETS, flt, frame_size=FRAME).tolist() == [i in kept for i in range(len(DETS))]


def test_filter_empty():
    assert len(filter_detections(Detections.empty(), DetectionFilter(), frame_size=FRAME)) == 0


def test_filter_does_not_mutate_input():
    before = (DETS.xyxy.copy(), DETS.confidence.copy(), DETS.class_id.copy())
    filter_detections(DETS, DetectionFilter(min_size=30, edge_margin=20), frame_size=FRAME)
    for arr, ref in zip((DETS.xyxy, DETS.confidence, DETS.class_id), before):
        np.testing.assert_array_equal(arr, ref)


@pytest.mark.parametrize("size", [(0, 100), (200, -1)])
def test_filter_rejects_bad_frame_size(size):
    with pytest.raises(ValueError, match=r"frame_size.*got"):
        filter_detections(DETS, DetectionFilter(), frame_size=size)
