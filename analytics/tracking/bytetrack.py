"""Our ByteTrack-class multi-object tracker: vectorised, class-aware, driven by timestamps.

Association per frame (after a Kalman prediction of every track to the frame's timestamp):

1. confirmed and lost tracks vs high-score detections (score >= ``high_threshold``): IoU >= ``match_iou``,
   or, when IoU is too low (fast motion at low frame rates), centre distance <= ``max_center_distance``
   track-box heights;
2. confirmed tracks matched in the previous frame and still unmatched vs low-score detections: IoU >=
   ``low_match_iou`` only (low scores are too unreliable for the distance fallback);
3. tentative tracks vs the remaining high-score detections, with the same gates as stage 1.

Unmatched tentative tracks are dropped; unmatched confirmed tracks become LOST and are dropped once they
have gone unmatched for more than ``lost_ttl`` seconds; unmatched high-score detections with score >=
``new_track_threshold`` start TENTATIVE tracks, confirmed after ``min_hits`` matched frames. Matching
never crosses classes. Track ids start at 1 per tracker and are given at birth, so the ids of tentative
tracks that never confirm are skipped (ids are unique, not contiguous).

The tracker never reads the clock: ``timestamp`` (seconds) drives the Kalman time step and the lost-track
expiry, so it works at any and at variable frame rates and replays recorded logs exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from analytics.config import TrackerConfig
from analytics.tracking import kalman
from analytics.tracking.matching import assign, association_cost
from analytics.types import Detections, Tracks, TrackState

BoxSource = Literal["filter", "detection"]


@dataclass(frozen=True)
class _Table:
    """All live tracks as columns (T rows). Never modified in place: every step builds a new table."""

    track_id: np.ndarray  # (T,) int64
    mean: np.ndarray  # (T, 8) float64 Kalman state, px and px/s
    cov: np.ndarray  # (T, 8, 8) float64
    class_id: np.ndarray  # (T,) int16
    confidence: np.ndarray  # (T,) float32, last matched score
    box: np.ndarray  # (T, 4) float32 xyxy of the last matched detection
    hits: np.ndarray  # (T,) int32 matched frames
    birth: np.ndarray  # (T,) int64 frame counter at birth
    last_seen: np.ndarray  # (T,) float64 timestamp of the last match, seconds
    confirmed: np.ndarray  # (T,) bool, reached min_hits

    @classmethod
    def empty(cls) -> _Table:
        return cls(np.zeros(0, np.int64), np.zeros((0, 8)), np.zeros((0, 8, 8)), np.zeros(0, np.int16),
                   np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros(0, np.int32),
                   np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.track_id)

    def take(self, index: np.ndarray) -> _Table:
        return _Table(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def concat(self, other: _Table) -> _Table:
        return _Table(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in self.__dataclass_fields__))


class ByteTracker:
    """Online multi-object tracker with the ``update(detections, timestamp) -> Tracks`` contract.

    Args:
        cfg: association parameters (:class:`~analytics.config.TrackerConfig`; any object with the same
            fields works, e.g. in parameter sweeps).
        kalman_params: motion-model noise (defaults suit walking people and road traffic).
        box_source: boxes reported for matched tracks: ``"filter"`` (Kalman posterior, smoother) or
            ``"detection"`` (the matched detection itself). Lost tracks always report the prediction.

    Example:
        >>> tracker = ByteTracker(TrackerConfig())
        >>> tracks = tracker.update(Detections([[10, 10, 50, 110]], [0.9], [0]), timestamp=0.0)
        >>> tracks.track_id.tolist(), TrackState(int(tracks.state[0])).name
        ([1], 'TENTATIVE')
    """

    def __init__(self, cfg: TrackerConfig, *, kalman_params: kalman.KalmanParams | None = None,
                 box_source: BoxSource = "filter") -> None:
        if box_source not in ("filter", "detection"):
            raise ValueError(f"box_source must be 'filter' or 'detection', got {box_source!r}")
        self.cfg = cfg
        self.kalman_params = kalman_params or kalman.KalmanParams()
        self.box_source = box_source
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; ids start at 1 again."""
        self._table = _Table.empty()
        self._next_id = 1
        self._frame = -1
        self._time: float | None = None
        self._prev_time: float | None = None

    def update(self, detections: Detections, timestamp: float) -> Tracks:
        """Advance to ``timestamp`` (seconds, non-decreasing) and associate this frame's detections.

        Args:
            detections: this frame's detections, already filtered (classes, minimum score, size); the
                lowest score present acts as the ByteTrack low threshold.
            timestamp: frame time in seconds (media time or wall time), never earlier than the last call.

        Returns:
            Every live track: CONFIRMED and TENTATIVE tracks matched (or born) in this frame, and LOST
            tracks at their predicted box.
        """
        dt = self._advance_clock(timestamp)
        table = self._predict(self._table, dt)
        table = table.take(~table.confirmed | (timestamp - table.last_seen <= self.cfg.lost_ttl + 1e-9))
        matches = self._associate(table, detections)
        table, matched = self._apply_matches(table, detections, matches, timestamp)
        keep = table.confirmed | matched  # tentative tracks die on their first miss
        table, matched = table.take(keep), matched[keep]
        table, born = self._spawn(table, detections, matches, timestamp)
        self._table = table
        return self._report(table, np.concatenate([matched, born]))

    # -- steps -------------------------------------------------------------------------------------

    def _advance_clock(self, timestamp: float) -> float:
        timestamp = float(timestamp)
        if not math.isfinite(timestamp):
            raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
        if self._time is not None and timestamp < self._time:
            raise ValueError(f"timestamp went backwards: {timestamp} s after {self._time} s")
        dt = 0.0 if self._time is None else timestamp - self._time
        self._prev_time, self._time = self._time, timestamp
        self._frame += 1
        return dt

    def _predict(self, table: _Table, dt: float) -> _Table:
        mean = table.mean.copy()
        lost = table.confirmed & (table.last_seen != self._prev_time) if self._prev_time is not None \
            else np.zeros(len(table), bool)
        mean[lost, 7] = 0.0  # a lost box keeps its size
        mean, cov = kalman.predict(mean, table.cov, dt, self.kalman_params)
        return _Table(table.track_id, mean, cov, *(getattr(table, f) for f in _Table.__dataclass_fields__
                                                    if f not in ("track_id", "mean", "cov")))

    def _associate(self, table: _Table, dets: Detections) -> np.ndarray:
        """(K, 2) int64 (table row, detection index) matches over the three stages."""
        cfg = self.cfg
        pred = kalman.state_to_xyxy(table.mean)
        high = dets.confidence >= cfg.high_threshold
        was_tracked = table.confirmed & (table.last_seen == self._prev_time)
        stages = (
            (np.flatnonzero(table.confirmed), np.flatnonzero(high), cfg.match_iou, cfg.max_center_distance),
            (np.flatnonzero(was_tracked), np.flatnonzero(~high), cfg.low_match_iou, 0.0),
            (np.flatnonzero(~table.confirmed), np.flatnonzero(high), cfg.match_iou, cfg.max_center_distance),
        )
        used_t, used_d = np.zeros(len(table), bool), np.zeros(len(dets), bool)
        found = []
        for rows, cols, min_iou, max_dist in stages:
            rows, cols = rows[~used_t[rows]], cols[~used_d[cols]]
            cost = association_cost(pred[rows], table.class_id[rows], dets.xyxy[cols], dets.class_id[cols],
                                    min_iou=min_iou, max_center_distance=max_dist)
            pairs, _, _ = assign(cost)
            pairs = np.stack([rows[pairs[:, 0]], cols[pairs[:, 1]]], axis=1)
            used_t[pairs[:, 0]], used_d[pairs[:, 1]] = True, True
            found.append(pairs)
        return np.concatenate(found).astype(np.int64)

    def _apply_matches(self, table: _Table, dets: Detections, matches: np.ndarray,
                       timestamp: float) -> tuple[_Table, np.ndarray]:
        rows, cols = matches[:, 0], matches[:, 1]
        mean, cov = table.mean.copy(), table.cov.copy()
        mean[rows], cov[rows] = kalman.update(mean[rows], cov[rows], kalman.xyxy_to_measurement(dets.xyxy[cols]),
                                              self.kalman_params)
        hits, conf, box, last = table.hits.copy(), table.confidence.copy(), table.box.copy(), table.last_seen.copy()
        hits[rows] += 1
        conf[rows], box[rows], last[rows] = dets.confidence[cols], dets.xyxy[cols], timestamp
        confirmed = table.confirmed | (hits >= self.cfg.min_hits)
        matched = np.zeros(len(table), bool)
        matched[rows] = True
        new = _Table(table.track_id, mean, cov, table.class_id, conf, box, hits, table.birth, last, confirmed)
        return new, matched

    def _spawn(self, table: _Table, dets: Detections, matches: np.ndarray,
               timestamp: float) -> tuple[_Table, np.ndarray]:
        free = np.ones(len(dets), bool)
        free[matches[:, 1]] = False
        idx = np.flatnonzero(free & (dets.confidence >= self.cfg.new_track_threshold)
                             & (dets.confidence >= self.cfg.high_threshold))
        n = len(idx)
        mean, cov = kalman.initiate(kalman.xyxy_to_measurement(dets.xyxy[idx]), self.kalman_params)
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        born = _Table(ids, mean, cov, dets.class_id[idx].copy(), dets.confidence[idx].copy(),
                      dets.xyxy[idx].copy(), np.ones(n, np.int32), np.full(n, self._frame, np.int64),
                      np.full(n, timestamp), np.full(n, self.cfg.min_hits <= 1))
        return table.concat(born), np.ones(n, bool)

    def _report(self, table: _Table, matched: np.ndarray) -> Tracks:
        state = np.where(matched, np.where(table.confirmed, TrackState.CONFIRMED, TrackState.TENTATIVE),
                         TrackState.LOST)
        xyxy = kalman.state_to_xyxy(table.mean)
        if self.box_source == "detection":
            xyxy = np.where(matched[:, None], table.box, xyxy)
        velocity = np.stack([table.mean[:, 4], table.mean[:, 5] + table.mean[:, 7] / 2], axis=1)
        return Tracks(table.track_id.copy(), xyxy, table.class_id.copy(), table.confidence.copy(), velocity,
                      self._frame - table.birth, state)
