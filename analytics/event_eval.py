"""Event-level evaluation: compare the events of a pipeline run with reference events.

The reference is typically the same rules replayed on ground-truth tracks (see
:func:`analytics.evaluation.mot_to_track_log`), so that the scores measure what detection and tracking
errors do to the events, not the rules themselves. Three steps:

1. :func:`track_id_mapping` maps predicted track ids to reference track ids by box overlap, frame by
   frame, so that event members can be compared across the two runs.
2. :func:`final_events` collapses each event's life cycle (``open``, ``updated``..., ``closed``) to one
   record.
3. :func:`match_events` pairs predicted and reference events one-to-one and counts true positives, false
   positives and false negatives, overall and per event kind.

Times are seconds in the events' own time base; both sides must share it (media time for files).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment

from analytics.rules.base import Event
from analytics.tracking.matching import iou_matrix

#: Cost of a forbidden pair in the event assignment; any feasible cost is in [-1, 0].
_INFEASIBLE = 1e9
_BOX_COLUMNS = ("x1", "y1", "x2", "y2")


# ---------------------------------------------------------------------------------------------- track ids


def track_id_mapping(pred: pl.DataFrame, ref: pl.DataFrame, *, iou_threshold: float = 0.5) -> dict[int, int]:
    """Map each predicted track id to the reference track id it overlaps most often.

    For every ``seq`` present in both logs, boxes are paired one-to-one by the Hungarian algorithm on IoU and
    pairs with IoU >= ``iou_threshold`` count as one co-occurrence of ``(pred id, ref id)``. Each predicted
    id maps to the reference id with the most co-occurrences (ties: the smallest reference id). Every row is
    used, whatever its ``state``; filter the logs first to compare, say, confirmed tracks only.

    Args:
        pred: predicted track log (:data:`analytics.tracklog.TRACK_SCHEMA`; uses ``seq``, ``track_id`` and
            the box ``x1, y1, x2, y2``, pixels).
        ref: reference track log, same columns and the same frame numbering and pixel frame.
        iou_threshold: minimum box IoU of a pair, in (0, 1].

    Returns:
        ``{pred track id: ref track id}``; predicted ids never matched are absent.

    Raises:
        ValueError: ``iou_threshold`` outside (0, 1], or a log lacks a needed column.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    p_seq, p_id, p_box = _log_arrays(pred, "pred")
    r_seq, r_id, r_box = _log_arrays(ref, "ref")
    common = np.intersect1d(p_seq, r_seq)
    p_lo, p_hi = np.searchsorted(p_seq, common, "left"), np.searchsorted(p_seq, common, "right")
    r_lo, r_hi = np.searchsorted(r_seq, common, "left"), np.searchsorted(r_seq, common, "right")
    pairs_p, pairs_r = [], []
    for pa, pb, ra, rb in zip(p_lo.tolist(), p_hi.tolist(), r_lo.tolist(), r_hi.tolist(), strict=True):
        iou = iou_matrix(p_box[pa:pb], r_box[ra:rb])
        rows, cols = linear_sum_assignment(iou, maximize=True)
        ok = iou[rows, cols] >= iou_threshold
        pairs_p.append(p_id[pa:pb][rows[ok]])
        pairs_r.append(r_id[ra:rb][cols[ok]])
    if not pairs_p:
        return {}
    return _majority(np.concatenate(pairs_p), np.concatenate(pairs_r))


def _log_arrays(log: pl.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seq (N,) int64 ascending, track_id (N,) int64, xyxy (N, 4) float64) of a track log, sorted by seq."""
    missing = [c for c in ("seq", "track_id", *_BOX_COLUMNS) if c not in log.columns]
    if missing:
        raise ValueError(f"{name} track log lacks columns {missing}")
    log = log.sort("seq")
    return (log["seq"].cast(pl.Int64).to_numpy(), log["track_id"].cast(pl.Int64).to_numpy(),
            log.select(_BOX_COLUMNS).cast(pl.Float64).to_numpy().reshape(-1, 4))


def _majority(pred_ids: np.ndarray, ref_ids: np.ndarray) -> dict[int, int]:
    """For each predicted id, the reference id paired with it most often (ties: the smallest ref id)."""
    if len(pred_ids) == 0:
        return {}
    pairs, counts = np.unique(np.stack([pred_ids, ref_ids], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))  # by pred id, most counts, smallest ref id
    pairs = pairs[order]
    first = np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]
    return {int(p): int(r) for p, r in pairs[first]}


# ---------------------------------------------------------------------------------------- event records


def final_events(records: Iterable[Event]) -> list[Event]:
    """Collapse each event's life cycle to one record.

    Records sharing an ``id`` (``open``, then ``updated``..., then ``closed``; an instantaneous event has a
    single ``closed`` record) become the *last* record of that id, with ``start`` the earliest start seen,
    ``end`` the latest end, ``member_ids`` the union over all its records (ascending) and ``classes`` aligned
    with them: each member's class as last recorded with it. When some member never had a class recorded
    (a record with empty ``classes``), ``classes`` is empty. Inputs are not mutated.

    Returns:
        One event per id, in the order of each id's first record.
    """
    groups: dict[str, list[Event]] = {}
    for record in records:
        groups.setdefault(record.id, []).append(record)
    return [_collapse(group) for group in groups.values()]


def _collapse(group: list[Event]) -> Event:
    """One record from the life cycle ``group`` (in arrival order); see :func:`final_events`."""
    members: set[int] = set()
    classes: dict[int, str] = {}
    for record in group:
        members.update(record.member_ids)
        classes.update(zip(record.member_ids, record.classes))  # empty classes add nothing
    ids = tuple(sorted(members))
    aligned = tuple(classes[m] for m in ids) if all(m in classes for m in ids) else ()
    return dataclasses.replace(group[-1], start=min(r.start for r in group), end=max(r.end for r in group),
                               member_ids=ids, classes=aligned)


# ---------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class MatchCounts:
    """True positives, false positives and false negatives of a matching, with the derived scores.

    ``precision = tp / (tp + fp)``, 1.0 when there is no predicted event; ``recall = tp / (tp + fn)``, 1.0
    when there is no reference event; ``f1`` their harmonic mean, 0.0 when both are 0.
    """

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready counts and scores."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True)
class EventMatch(MatchCounts):
    """The result of :func:`match_events`: counts and scores (see :class:`MatchCounts`) and the pairing.

    Attributes:
        pairs: (predicted event id, reference event id) of each true positive, in predicted order.
        unmatched_pred: ids of the false-positive predicted events, in predicted order.
        unmatched_ref: ids of the missed reference events, in reference order.
        by_kind: the counts per event kind, for every kind seen on either side, sorted by kind.
    """

    pairs: list[tuple[str, str]] = field(default_factory=list)
    unmatched_pred: list[str] = field(default_factory=list)
    unmatched_ref: list[str] = field(default_factory=list)
    by_kind: dict[str, MatchCounts] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report: counts, scores, pairs, unmatched ids and the per-kind counts."""
        return {**super().to_dict(), "pairs": [list(p) for p in self.pairs],
                "unmatched_pred": list(self.unmatched_pred), "unmatched_ref": list(self.unmatched_ref),
                "by_kind": {k: c.to_dict() for k, c in self.by_kind.items()}}


@dataclass(frozen=True)
class _Criteria:
    """The matching options of :func:`match_events`, validated."""

    id_map: Mapping[int, int] | None
    time_tolerance: float
    min_time_iou: float
    min_member_overlap: float
    match_camera: bool

    def __post_init__(self) -> None:
        if self.time_tolerance < 0:
            raise ValueError(f"time_tolerance must be >= 0 seconds, got {self.time_tolerance}")
        for name in ("min_time_iou", "min_member_overlap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def match_events(pred: Sequence[Event], ref: Sequence[Event], *, id_map: Mapping[int, int] | None = None,
                 time_tolerance: float = 1.0, min_time_iou: float = 0.2, min_member_overlap: float = 0.3,
                 match_camera: bool = False) -> EventMatch:
    """Pair predicted events with reference events one-to-one and score the result.

    Both sides first go through :func:`final_events`. A predicted and a reference event *can* match when:

    * they have the same ``kind``, ``zone_id`` and ``line_id`` (and ``camera_id`` when ``match_camera``; off
      by default, as reference events may come from a replay under another camera id);
    * both have a ``direction`` in their evidence (line crossings): the same direction;
    * time: the intervals ``[start, end]`` are at most ``time_tolerance`` seconds apart, and once each is
      widened by ``time_tolerance`` on both sides their IoU (intersection / union of durations) is at least
      ``min_time_iou``. Two instantaneous events (``start == end``, e.g. line crossings) ``d`` seconds apart
      then match when ``d <= time_tolerance``: their widened IoU is ``(2 tol - d) / (2 tol + d)``, 1 when
      simultaneous and at least 1/3 within the tolerance (keep ``min_time_iou <= 1/3`` for that rule);
      with ``time_tolerance`` 0 they must be simultaneous;
    * members, compared only when ``id_map`` is given and both events have members: each predicted member
      is mapped through ``id_map`` (an unmapped id matches nothing) and the overlap coefficient
      ``|mapped ∩ ref members| / min(|pred members|, |ref members|)`` must be at least
      ``min_member_overlap``. Otherwise the member overlap counts as 1.

    Among the feasible pairs, the assignment (Hungarian) maximises the number of matches, then the total
    similarity ``time IoU * member overlap``. Events are split by (kind, zone, line[, camera]) and into
    clusters of overlapping times first, so long runs stay fast.

    Args:
        pred: event records of the run under test (any statuses; not mutated).
        ref: reference event records.
        id_map: predicted track id -> reference track id, e.g. from :func:`track_id_mapping`; it applies to
            every predicted event, so match one camera at a time.
        time_tolerance: seconds, >= 0.
        min_time_iou: in [0, 1].
        min_member_overlap: in [0, 1].
        match_camera: also require equal ``camera_id``.

    Returns:
        The counts, scores and pairing, overall and per kind.

    Raises:
        ValueError: a tolerance or threshold out of range.
    """
    crit = _Criteria(id_map, time_tolerance, min_time_iou, min_member_overlap, match_camera)
    p_events, r_events = final_events(pred), final_events(ref)
    groups: dict[tuple, tuple[list[int], list[int]]] = {}
    for i, e in enumerate(p_events):
        groups.setdefault(_group_key(e, crit), ([], []))[0].append(i)
    for j, e in enumerate(r_events):
        groups.setdefault(_group_key(e, crit), ([], []))[1].append(j)
    matched: dict[int, int] = {}
    for p_idx, r_idx in groups.values():
        for cp, cr in _time_clusters(p_events, p_idx, r_events, r_idx, crit.time_tolerance):
            matched.update(_assign(p_events, cp, r_events, cr, crit))
    return _result(p_events, r_events, matched)


def _group_key(event: Event, crit: _Criteria) -> tuple:
    """Events of different keys never match."""
    return (event.kind, event.zone_id, event.line_id, event.camera_id if crit.match_camera else None)


def _time_clusters(p_events: list[Event], p_idx: list[int], r_events: list[Event], r_idx: list[int],
                   tol: float) -> list[tuple[list[int], list[int]]]:
    """Split one group into clusters whose intervals chain within ``tol``; pairs across clusters are more
    than ``tol`` apart, so cannot match. Returns (pred indices, ref indices) per cluster holding both."""
    items = sorted([(p_events[i].start, p_events[i].end, 0, i) for i in p_idx]
                   + [(r_events[j].start, r_events[j].end, 1, j) for j in r_idx])
    clusters: list[tuple[list[int], list[int]]] = []
    reach = -np.inf
    for start, end, side, index in items:
        if start > reach + tol:
            clusters.append(([], []))
        clusters[-1][side].append(index)
        reach = max(reach, end)
    return [c for c in clusters if c[0] and c[1]]


def _assign(p_events: list[Event], p_idx: list[int], r_events: list[Event], r_idx: list[int],
            crit: _Criteria) -> dict[int, int]:
    """Hungarian assignment inside one cluster: {pred index: ref index} over feasible pairs only."""
    feasible, sim = _similarity([p_events[i] for i in p_idx], [r_events[j] for j in r_idx], crit)
    cost = np.where(feasible, -sim, _INFEASIBLE)
    rows, cols = linear_sum_assignment(cost)
    return {p_idx[r]: r_idx[c] for r, c in zip(rows.tolist(), cols.tolist(), strict=True) if feasible[r, c]}


def _similarity(pred: list[Event], ref: list[Event], crit: _Criteria) -> tuple[np.ndarray, np.ndarray]:
    """For same-key events: (P, R) bool feasible pairs, and (P, R) float64 similarity
    ``time IoU * member overlap`` in [0, 1] (0 where infeasible)."""
    tol = crit.time_tolerance
    ps, pe = np.array([e.start for e in pred]), np.array([e.end for e in pred])
    rs, re = np.array([e.start for e in ref]), np.array([e.end for e in ref])
    gap = np.maximum(ps[:, None], rs[None, :]) - np.minimum(pe[:, None], re[None, :])
    inter = np.clip(2 * tol - gap, 0.0, None)  # overlap of the widened intervals
    union = (pe - ps + 2 * tol)[:, None] + (re - rs + 2 * tol)[None, :] - inter
    same = (ps[:, None] == rs[None, :]) & (pe[:, None] == re[None, :])
    iou = np.divide(inter, union, out=same.astype(np.float64), where=union > 0)
    feasible = (gap <= tol) & (iou >= crit.min_time_iou)
    sim = np.where(feasible, iou, 0.0)
    for i, j in zip(*np.nonzero(feasible), strict=True):
        overlap = _member_overlap(pred[i], ref[j], crit.id_map)
        if _same_direction(pred[i], ref[j]) and overlap >= crit.min_member_overlap:
            sim[i, j] *= overlap
        else:
            feasible[i, j], sim[i, j] = False, 0.0
    return feasible, sim


def _same_direction(a: Event, b: Event) -> bool:
    """False only when both events record a direction and they differ."""
    return "direction" not in a.evidence or "direction" not in b.evidence or \
        a.evidence["direction"] == b.evidence["direction"]


def _member_overlap(pred: Event, ref: Event, id_map: Mapping[int, int] | None) -> float:
    """Overlap coefficient of the mapped predicted members and the reference members; 1.0 when members
    are not compared (no ``id_map``, or a side without members)."""
    if id_map is None or not pred.member_ids or not ref.member_ids:
        return 1.0
    mapped = {id_map[m] for m in pred.member_ids if m in id_map}
    ref_members = set(ref.member_ids)
    return len(mapped & ref_members) / min(len(set(pred.member_ids)), len(ref_members))


def _result(p_events: list[Event], r_events: list[Event], matched: dict[int, int]) -> EventMatch:
    """Counts overall and per kind from the {pred index: ref index} matching."""
    ref_hit = set(matched.values())
    by_kind: dict[str, MatchCounts] = {}
    for kind in sorted({e.kind for e in p_events} | {e.kind for e in r_events}):
        tp = sum(1 for i in matched if p_events[i].kind == kind)
        n_pred = sum(1 for e in p_events if e.kind == kind)
        n_ref = sum(1 for e in r_events if e.kind == kind)
        by_kind[kind] = MatchCounts(tp=tp, fp=n_pred - tp, fn=n_ref - tp)
    return EventMatch(
        tp=len(matched), fp=len(p_events) - len(matched), fn=len(r_events) - len(matched),
        pairs=[(p_events[i].id, r_events[matched[i]].id) for i in sorted(matched)],
        unmatched_pred=[e.id for i, e in enumerate(p_events) if i not in matched],
        unmatched_ref=[e.id for j, e in enumerate(r_events) if j not in ref_hit],
        by_kind=by_kind,
    )
