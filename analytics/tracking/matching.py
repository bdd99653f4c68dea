"""Vectorised association between predicted track boxes and detections.

All boxes are (N, 4) xyxy pixels, top-left origin. Costs are (T, D) float64 matrices, rows tracks and
columns detections; :data:`INFEASIBLE` marks pairs that must never match (gated out or of different class).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Cost of a forbidden pair. Any feasible cost is below 2.
INFEASIBLE = 1e6

#: A centre-distance match also needs box heights within this factor of each other.
MAX_SCALE_CHANGE = 2.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4) x (B, 4) xyxy boxes -> (A, B) float64 intersection over union in [0, 1]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def center_distance(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """(T, D) float64 distance between box centres, in units of the *track* box height."""
    t = np.asarray(tracks, dtype=np.float64).reshape(-1, 4)
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 4)
    tc = (t[:, :2] + t[:, 2:]) / 2
    dc = (d[:, :2] + d[:, 2:]) / 2
    dist = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2)
    return dist / np.maximum(t[:, 3] - t[:, 1], 1.0)[:, None]


def association_cost(track_xyxy: np.ndarray, track_class: np.ndarray, det_xyxy: np.ndarray,
                     det_class: np.ndarray, *, min_iou: float, max_center_distance: float = 0.0) -> np.ndarray:
    """Gated (T, D) cost: ``1 - IoU`` where IoU >= ``min_iou``; otherwise, when the centre-distance
    fallback is on (``max_center_distance`` > 0, in track box heights) and the box heights agree within
    :data:`MAX_SCALE_CHANGE`, ``1 + distance / max_center_distance`` (always worse than an IoU match);
    otherwise, and for any pair of different classes, :data:`INFEASIBLE`.
    """
    iou = iou_matrix(track_xyxy, det_xyxy)
    cost = np.where(iou >= min_iou, 1.0 - iou, INFEASIBLE)
    if max_center_distance > 0 and cost.size:
        dist = center_distance(track_xyxy, det_xyxy)
        th = np.maximum(track_xyxy[:, 3] - track_xyxy[:, 1], 1.0)[:, None]
        dh = np.maximum(det_xyxy[:, 3] - det_xyxy[:, 1], 1.0)[None, :]
        ratio = np.maximum(th / dh, dh / th)
        near = (dist <= max_center_distance) & (ratio <= MAX_SCALE_CHANGE) & (cost >= INFEASIBLE)
        cost = np.where(near, 1.0 + dist / max_center_distance, cost)
    same_class = np.asarray(track_class)[:, None] == np.asarray(det_class)[None, :]
    return np.where(same_class, cost, INFEASIBLE)


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment over feasible pairs.

    Returns:
        matches: (K, 2) int64 (track row, detection column) pairs.
        unmatched_tracks: (T - K,) int64 rows.
        unmatched_dets: (D - K,) int64 columns.
    """
    n_t, n_d = cost.shape
    if n_t == 0 or n_d == 0:
        return np.zeros((0, 2), np.int64), np.arange(n_t, dtype=np.int64), np.arange(n_d, dtype=np.int64)
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] < INFEASIBLE
    matches = np.stack([rows[ok], cols[ok]], axis=1).astype(np.int64)
    unmatched_t = np.setdiff1d(np.arange(n_t), matches[:, 0]).astype(np.int64)
    unmatched_d = np.setdiff1d(np.arange(n_d), matches[:, 1]).astype(np.int64)
    return matches, unmatched_t, unmatched_d
