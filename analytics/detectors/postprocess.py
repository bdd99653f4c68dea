"""Decoding of the YOLOv8 / YOLO11 detection head and a vectorised per-class NMS, numpy only.

The head output is (B, 4 + 80, A): for each of A anchors, a box (cx, cy, w, h) in network pixels then
80 COCO class scores (already sigmoid-activated). Decoding keeps, per anchor, the best class *among the
requested classes only*, drops anchors below the confidence threshold, runs per-class NMS and maps the
boxes back to frame pixels through the letterbox.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analytics.detectors.preprocess import Letterbox
from analytics.types import Detections

#: Candidates kept (by score) before NMS, as Ultralytics' ``max_nms``.
MAX_CANDIDATES = 30000
#: Detections kept per frame after NMS, as Ultralytics' ``max_det``.
MAX_DETECTIONS = 300
_NUM_COCO = 80


def cxcywh_to_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    """(N, 4) centre-size boxes -> (N, 4) float32 corner boxes, same units."""
    c = np.asarray(cxcywh, dtype=np.float32)
    half = c[:, 2:4] / 2
    return np.concatenate([c[:, 0:2] - half, c[:, 0:2] + half], axis=1)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) xyxy box against (N, 4) xyxy boxes -> (N,) float32."""
    tl = np.maximum(box[:2], boxes[:, :2])
    br = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(br - tl, 0.0, None), axis=1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, np.float32(1e-9))


def nms(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, *, iou: float,
        max_det: int = MAX_DETECTIONS) -> np.ndarray:
    """Greedy per-class non-maximum suppression.

    Boxes of different classes never suppress each other (each class is shifted by a large offset).
    The loop runs once per *kept* box; each step compares it with all remaining boxes at once.

    Args:
        xyxy: (N, 4) float32 boxes, pixels.
        scores: (N,) float32.
        class_id: (N,) integer class ids.
        iou: boxes overlapping a higher-scored box of the same class by more than this are dropped.
        max_det: stop after this many boxes are kept.

    Returns:
        (K,) int64 indices into the inputs of the kept boxes, by decreasing score.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"nms iou must be in (0, 1], got {iou}")
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    span = float(np.max(xyxy)) - min(float(np.min(xyxy)), 0.0) + 1.0
    shifted = xyxy.astype(np.float32) + (class_id.astype(np.float32) * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[iou_one_to_many(shifted[best], shifted[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def _candidates(pred: np.ndarray, classes: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    """Anchors whose best requested-class score reaches ``confidence``: (xyxy, score, class_id)."""
    scores = pred[4 + classes]  # (C, A)
    best = np.argmax(scores, axis=0)
    score = np.take_along_axis(scores, best[None], axis=0)[0]
    keep = np.flatnonzero(score >= confidence)
    if keep.size > MAX_CANDIDATES:
        keep = keep[np.argsort(-score[keep], kind="stable")[:MAX_CANDIDATES]]
    xyxy = cxcywh_to_xyxy(pred[:4, keep].T)
    return xyxy, score[keep].astype(np.float32), classes[best[keep]]


def _check_inputs(output: np.ndarray, boxes: Sequence[Letterbox], classes: Sequence[int]) -> np.ndarray:
    out = np.asarray(output)
    if out.ndim == 2:
        out = out[None]
    if out.ndim != 3 or out.shape[1] != 4 + _NUM_COCO:
        raise ValueError(f"expected a YOLO head output of shape (B, 84, A), got {np.shape(output)}")
    if out.shape[0] != len(boxes):
        raise ValueError(f"head output holds {out.shape[0]} images but {len(boxes)} letterboxes were given")
    bad = [c for c in classes if not 0 <= int(c) < _NUM_COCO]
    if bad or len(classes) == 0:
        raise ValueError(f"classes must be a non-empty list of COCO ids in [0, 80), got {tuple(classes)}")
    return out


def decode(output: np.ndarray, boxes: Sequence[Letterbox], *, classes: Sequence[int], confidence: float,
           iou: float, max_det: int = MAX_DETECTIONS) -> list[Detections]:
    """Turn a YOLO head output into one :class:`Detections` per image, in frame pixels.

    Args:
        output: (B, 84, A) or (84, A) float32 head output; boxes in network pixels.
        boxes: B :class:`Letterbox` records from pre-processing, in the same order.
        classes: COCO ids to keep; each anchor's class is the best among these only.
        confidence: minimum score kept, in [0, 1].
        iou: per-class NMS threshold, in (0, 1].
        max_det: at most this many detections per image.

    Returns:
        B :class:`Detections`, xyxy (N, 4) float32 frame pixels clipped to the frame, by decreasing score.
    """
    out = _check_inputs(output, boxes, classes)
    cls = np.asarray(sorted({int(c) for c in classes}), dtype=np.int64)
    results = []
    for pred, box in zip(out, boxes):
        xyxy, score, class_id = _candidates(pred, cls, confidence)
        kept = nms(xyxy, score, class_id, iou=iou, max_det=max_det)
        results.append(Detections(box.to_frame(xyxy[kept]), score[kept], class_id[kept]))
    return results
