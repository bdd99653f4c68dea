"""``line_count``: crossings of a tripwire per class and direction, each track counted once per line.

Box jitter near the line must not count twice, so a track's side only changes when its ground anchor
(bottom centre of the box) is at least ``hysteresis_px`` from the line: a crossing needs a displacement of
at least ``2 * hysteresis_px`` across the line, from one side outside the band to the other. The crossing
must also pass through the line *segment* (not its extension): the segment between the last anchor
outside the band and the current one must meet the line between its endpoints.

Direction: +1 when a track moves to the positive side of the line (right of ``a -> b`` on screen, see
:class:`analytics.geometry.Line`), -1 the other way. Only tracks that are not ``LOST`` (predicted without
a detection) are used. A track seen first inside the band gets its side once it leaves the band, so a
track born on the line and walking off is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from analytics.geometry import position_along, signed_distance
from analytics.rules.base import Event, RuleConfigBase, RuleContext, event_id
from analytics.types import CLASS_IDS, CLASS_NAMES, TrackState, Tracks, check_class_names, class_ids_from_names

_DIRECTION_NAMES = {1: "positive", -1: "negative"}


class LineCountConfig(RuleConfigBase):
    """Config of one line-count rule. Tuning ranges are given in each description."""

    line_fields = ("line",)

    kind: Literal["line_count"] = Field(description="rule type selector")
    line: str = Field(description="id of the line in the camera's scene geometry")
    classes: tuple[str, ...] = Field(("person", "bicycle", "car", "motorcycle", "bus", "truck"),
                                     description=f"class names counted, any of {sorted(CLASS_IDS)}")
    hysteresis_px: float = Field(8.0, ge=0.0, description="half-width of the dead band around the line, pixels "
                                 "of the decoded frame; a crossing needs 2x this displacement across the line, "
                                 "so set it above the anchor jitter; range 4-40 (larger for big, close objects)")
    forget_after: float = Field(10.0, gt=0.0, description="seconds after which an unseen track is dropped from "
                                "the state; longer than the tracker's lost_ttl; range 5-60")

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)


@dataclass(frozen=True, eq=False)
class LineCountState:
    """Per-track memory of one line-count rule (immutable; arrays are never written after creation).

    Attributes:
        track_id: (K,) int64, ascending.
        side: (K,) int8, last side outside the hysteresis band: +1, -1, or 0 when not yet known.
        pos: (K, 2) float64, anchor (pixels) where ``side`` was last observed; NaN when unknown.
        last_seen: (K,) float64 seconds.
        counted: (K,) bool, the track has been counted on this line.
        counts: ((class name, direction, count), ...) sorted; the totals so far.
        next_event: counter for deterministic event ids.
    """

    track_id: np.ndarray
    side: np.ndarray
    pos: np.ndarray
    last_seen: np.ndarray
    counted: np.ndarray
    counts: tuple[tuple[str, int, int], ...] = ()
    next_event: int = 0

    @classmethod
    def empty(cls) -> LineCountState:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros((0, 2)), np.zeros(0), np.zeros(0, bool))

    def count(self, class_name: str, direction: int) -> int:
        """Crossings so far of ``class_name`` in ``direction`` (+1 or -1)."""
        return next((n for c, d, n in self.counts if c == class_name and d == direction), 0)


@dataclass(frozen=True)
class _Previous:
    """The previous state aligned with the current tracks (rows of ``tracks``)."""

    side: np.ndarray
    pos: np.ndarray
    counted: np.ndarray


def _align(state: LineCountState, ids: np.ndarray) -> _Previous:
    """Look up each current id in the (sorted) state; unknown tracks get side 0, NaN position, not counted."""
    n = len(ids)
    if len(state.track_id) == 0:
        return _Previous(np.zeros(n, np.int8), np.full((n, 2), np.nan), np.zeros(n, bool))
    idx = np.minimum(np.searchsorted(state.track_id, ids), len(state.track_id) - 1)
    known = state.track_id[idx] == ids
    return _Previous(
        side=np.where(known, state.side[idx], 0).astype(np.int8),
        pos=np.where(known[:, None], state.pos[idx], np.nan),
        counted=known & state.counted[idx],
    )


class LineCountRule:
    """Pure line-count rule; see the module docstring for the semantics."""

    def __init__(self, config: LineCountConfig) -> None:
        self.config = config
        self._class_ids = np.asarray(class_ids_from_names(config.classes), dtype=np.int16)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> LineCountState:
        return LineCountState.empty()

    def close(self, state: LineCountState, now: float, *, context: RuleContext) -> list[Event]:
        """Crossings are instantaneous (emitted closed): nothing is left open at the end."""
        return []

    def _crossings(self, anchor: np.ndarray, dist: np.ndarray, prev: _Previous, context: RuleContext) -> tuple:
        """Sides outside the band and which rows crossed the segment. Returns (side (N,) int8, crossed (N,))."""
        band = self.config.hysteresis_px
        side = np.where(np.abs(dist) >= band, np.sign(dist), 0).astype(np.int8)
        flip = (side != 0) & (prev.side != 0) & (side != prev.side) & ~prev.counted
        if not flip.any():
            return side, flip
        line = context.geometry.line(self.config.line)
        d_prev = signed_distance(np.nan_to_num(prev.pos), line, frame_size=context.frame_size)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(flip, d_prev / (d_prev - dist), 0.0)
        crossing_point = prev.pos + frac[:, None] * (anchor - prev.pos)
        t = position_along(np.nan_to_num(crossing_point), line, frame_size=context.frame_size)
        return side, flip & (t >= 0.0) & (t <= 1.0)

    def step(self, tracks: Tracks, state: LineCountState, now: float, *,
             context: RuleContext) -> tuple[LineCountState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events are ordered by track id."""
        line = context.geometry.line(self.config.line)
        keep = np.isin(tracks.class_id, self._class_ids) & (tracks.state != TrackState.LOST)
        sel = tracks[keep]
        order = np.argsort(sel.track_id, kind="stable")
        ids, cls, anchor = sel.track_id[order], sel.class_id[order], sel.anchor[order].astype(np.float64)
        dist = signed_distance(anchor, line, frame_size=context.frame_size)
        prev = _align(state, ids)
        side, crossed = self._crossings(anchor, dist, prev, context)
        outside = side != 0
        cur = LineCountState(
            track_id=ids,
            side=np.where(outside, side, prev.side).astype(np.int8),
            pos=np.where(outside[:, None], anchor, prev.pos),
            last_seen=np.full(len(ids), float(now)),
            counted=prev.counted | crossed,
        )
        merged = _merge(state, cur, now=now, forget_after=self.config.forget_after)
        return self._emit(merged, ids[crossed], cls[crossed], side[crossed], now=now, context=context)

    def _emit(self, state: LineCountState, ids: np.ndarray, cls: np.ndarray, direction: np.ndarray, *,
              now: float, context: RuleContext) -> tuple[LineCountState, list[Event]]:
        """One ``line_crossing`` event per crossing; updates the totals and the event counter."""
        counts = {(c, d): n for c, d, n in state.counts}
        events, counter = [], state.next_event
        for tid, cid, d in zip(ids.tolist(), cls.tolist(), direction.tolist()):
            name = CLASS_NAMES.get(cid, str(cid))
            counts[(name, d)] = counts.get((name, d), 0) + 1
            events.append(Event(
                id=event_id(context.camera_id, self.id, counter), kind="line_crossing", rule_id=self.id,
                camera_id=context.camera_id, status="closed", start=float(now), end=float(now),
                member_ids=(tid,), classes=(name,), score=1.0, best_frame_seq=context.seq,
                line_id=self.config.line,
                evidence={"direction": d, "class": name, "counts": _counts_evidence(counts)},
            ))
            counter += 1
        new_counts = tuple(sorted((c, d, n) for (c, d), n in counts.items()))
        return LineCountState(state.track_id, state.side, state.pos, state.last_seen, state.counted,
                              new_counts, counter), events


def _counts_evidence(counts: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    """``{class: {"positive": n, "negative": n}}`` from ``{(class, direction): n}``."""
    out: dict[str, dict[str, int]] = {}
    for (name, d), n in sorted(counts.items()):
        out.setdefault(name, {"positive": 0, "negative": 0})[_DIRECTION_NAMES[d]] = n
    return out


def _merge(old: LineCountState, cur: LineCountState, *, now: float, forget_after: float) -> LineCountState:
    """Rows of ``cur`` plus the rows of ``old`` not seen now and seen within ``forget_after``; sorted by id."""
    stale = ~np.isin(old.track_id, cur.track_id) & (now - old.last_seen <= forget_after)
    ids = np.concatenate([cur.track_id, old.track_id[stale]])
    order = np.argsort(ids, kind="stable")
    return LineCountState(
        track_id=ids[order],
        side=np.concatenate([cur.side, old.side[stale]])[order],
        pos=np.concatenate([cur.pos, old.pos[stale]])[order],
        last_seen=np.concatenate([cur.last_seen, old.last_seen[stale]])[order],
        counted=np.concatenate([cur.counted, old.counted[stale]])[order],
        counts=old.counts,
        next_event=old.next_event,
    )
