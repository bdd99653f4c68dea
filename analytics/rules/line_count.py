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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator

from analytics.geometry import Line, SceneGeometry, position_along, signed_distance
from analytics.rules.base import Event, RuleConfigBase, RuleContext, event_id, frame_view
from analytics.types import CLASS_IDS, CLASS_NAMES, TrackState, Tracks, check_class_names, class_ids_from_names

_DIRECTION_NAMES = {1: "positive", -1: "negative"}
_LOST = int(TrackState.LOST)


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


#: A remembered track: (side, anchor x, anchor y, last_seen, counted).
_Memory = tuple[int, float, float, float, bool]
_UNKNOWN: _Memory = (0, math.nan, math.nan, -math.inf, False)


class LineCountState(NamedTuple):
    """Per-track memory of one line-count rule (immutable: ``memory`` is never written after creation; a
    named tuple, cheaper to build each frame than a frozen dataclass).

    Attributes:
        memory: track id -> ``(side, x, y, last_seen, counted)``: last side outside the hysteresis band
            (+1, -1, or 0 when not yet known), the anchor (pixels) where that side was last observed (NaN
            when unknown), the last frame time the track was used (seconds) and whether it has been counted
            on this line.
        counts: ((class name, direction, count), ...) sorted; the totals so far.
        next_event: counter for deterministic event ids.
        oldest: seconds, at most the oldest ``last_seen`` in ``memory`` (inf when empty): tracks to forget
            are looked for only once ``now - oldest`` exceeds ``forget_after``.

    The properties ``track_id``, ``side``, ``pos``, ``last_seen`` and ``counted`` give the memory as arrays
    sorted by track id.
    """

    memory: Mapping[int, _Memory] = {}  # noqa: RUF012 -- never written (a new dict each frame)
    counts: tuple[tuple[str, int, int], ...] = ()
    next_event: int = 0
    oldest: float = math.inf

    @classmethod
    def empty(cls) -> LineCountState:
        return cls({})

    def count(self, class_name: str, direction: int) -> int:
        """Crossings so far of ``class_name`` in ``direction`` (+1 or -1)."""
        return next((n for c, d, n in self.counts if c == class_name and d == direction), 0)

    def _column(self, k: int, dtype: Any) -> np.ndarray:
        return np.array([self.memory[t][k] for t in sorted(self.memory)], dtype)

    @property
    def track_id(self) -> np.ndarray:
        """(K,) int64, ascending."""
        return np.array(sorted(self.memory), np.int64)

    @property
    def side(self) -> np.ndarray:
        """(K,) int8, last side outside the hysteresis band: +1, -1, or 0 when not yet known."""
        return self._column(0, np.int8)

    @property
    def pos(self) -> np.ndarray:
        """(K, 2) float64, anchor (pixels) where ``side`` was last observed; NaN when unknown."""
        return np.array([self.memory[t][1:3] for t in sorted(self.memory)], np.float64).reshape(-1, 2)

    @property
    def last_seen(self) -> np.ndarray:
        """(K,) float64 seconds."""
        return self._column(3, np.float64)

    @property
    def counted(self) -> np.ndarray:
        """(K,) bool, the track has been counted on this line."""
        return self._column(4, bool)


@dataclass(frozen=True)
class _Previous:
    """The previous state aligned with the current tracks (rows of ``tracks``)."""

    side: np.ndarray
    pos: np.ndarray
    counted: np.ndarray


class _Geometry(NamedTuple):
    """The line of one scene at one frame size, and constants of the segment test.

    Attributes:
        scene: the scene it was taken from; frame_size: (width, height), pixels; line: the line.
        view_exact: the view's signed distances (:meth:`FrameView.line_distance`) are bit for bit those of
            :func:`analytics.geometry.signed_distance`: same formula, and the line's length rounds the same
            through ``hypot`` as through ``norm`` (it normally does).
        ends: (ax, ay, bx, by) the endpoints, pixels; length: ``norm(b - a)``; ab2: ``(b - a) @ (b - a)``.
    """

    scene: SceneGeometry
    frame_size: tuple[int, int]
    line: Line
    view_exact: bool
    ends: tuple[float, float, float, float]
    length: float
    ab2: float


class LineCountRule:
    """Pure line-count rule; see the module docstring for the semantics."""

    def __init__(self, config: LineCountConfig) -> None:
        self.config = config
        self._class_ids = np.asarray(class_ids_from_names(config.classes), dtype=np.int16)
        self._wanted = frozenset(self._class_ids.tolist())
        self._cached: _Geometry | None = None  # see _geometry

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
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events are ordered by track id.

        Cost: a frame's handful of tracks are handled as Python values (cheaper than a dozen numpy calls on
        arrays of 6), with the signed distances from the frame's shared view; the vectorised segment test
        runs only on the frames where a track changes side.
        """
        cfg = self.config
        geo = self._geometry(context)
        now = float(now)
        wanted, lost = self._wanted, _LOST
        cls = tracks.class_id.tolist()
        rows = [i for i, (c, s) in enumerate(zip(cls, tracks.state.tolist())) if s != lost and c in wanted]
        memory = state.memory
        if not rows:
            if now - state.oldest <= cfg.forget_after:
                return state, []
            kept, oldest = _forget(dict(memory), now, cfg.forget_after)
            return LineCountState(kept, state.counts, state.next_event, oldest), []
        ids = tracks.track_id.tolist()
        anchor = tracks.anchor.tolist()
        if geo.view_exact:
            dist = frame_view(tracks, context).line_distance(cfg.line).tolist()
        else:
            dist = signed_distance(tracks.anchor, geo.line, frame_size=context.frame_size).tolist()
        band = cfg.hysteresis_px
        mem = dict(memory)
        flip = False
        for i in rows:
            tid, d = ids[i], dist[i]
            prev = memory.get(tid, _UNKNOWN)
            side = (1 if d > 0 else -1 if d < 0 else 0) if abs(d) >= band else 0
            if side:
                if side != prev[0] and prev[0] and not prev[4]:
                    flip = True
                mem[tid] = (side, anchor[i][0], anchor[i][1], now, prev[4])
            else:
                mem[tid] = (prev[0], prev[1], prev[2], now, prev[4])
        oldest = state.oldest if state.oldest < now else now
        if now - oldest > cfg.forget_after:
            mem, oldest = _forget(mem, now, cfg.forget_after)
        if not flip:
            return LineCountState(mem, state.counts, state.next_event, oldest), []
        crossings = self._crossed(rows, ids, cls, anchor, dist, memory, geo, context)
        for tid, _, _ in crossings:
            mem[tid] = (*mem[tid][:4], True)
        return self._emit(LineCountState(mem, state.counts, state.next_event, oldest), crossings, now=now,
                          context=context)

    def _geometry(self, context: RuleContext) -> _Geometry:
        """The line and its constants for the frame size, cached for the last geometry and size seen."""
        cached = self._cached
        if cached is not None and cached.scene is context.geometry and cached.frame_size == context.frame_size:
            return cached
        line = context.geometry.line(self.config.line)
        a, b = np.asarray(line.a) * context.frame_size, np.asarray(line.b) * context.frame_size
        ab = b - a
        length = float(np.linalg.norm(ab))
        self._cached = _Geometry(context.geometry, context.frame_size, line, float(np.hypot(*ab)) == length,
                                 (*a.tolist(), *b.tolist()), length, float(ab @ ab))
        return self._cached

    def _crossed(self, rows: list[int], ids: list[int], cls: list[int], anchor: list, dist: list,
                 memory: Mapping[int, _Memory], geo: _Geometry, context: RuleContext) -> list[tuple[int, int, int]]:
        """``(track id, class id, direction)`` of the rows that crossed the segment, by track id.

        The segment test of :meth:`_crossings` in plain Python for the rows that changed side, with the same
        floating-point operations; only the projection on the line (a matrix product there, which BLAS may
        round differently) is not bit for bit, so a crossing point within rounding of an endpoint goes to
        the vectorised test itself.
        """
        ax, ay, bx, by = geo.ends
        abx, aby = bx - ax, by - ay
        band, out = self.config.hysteresis_px, []
        for i in sorted(rows, key=ids.__getitem__):
            tid, d = ids[i], dist[i]
            side = (1 if d > 0 else -1 if d < 0 else 0) if abs(d) >= band else 0
            prev = memory.get(tid, _UNKNOWN)
            if not side or side == prev[0] or not prev[0] or prev[4]:
                continue
            px, py = prev[1], prev[2]
            d_prev = (abx * (py - ay) - aby * (px - ax)) / geo.length
            frac = d_prev / (d_prev - d)
            qx, qy = px + frac * (anchor[i][0] - px) - ax, py + frac * (anchor[i][1] - py) - ay
            t = (qx * abx + qy * aby) / geo.ab2
            margin = 1e-12 * (1.0 + (abs(qx * abx) + abs(qy * aby)) / geo.ab2)
            if not (math.isfinite(t) and abs(t) > margin and abs(t - 1.0) > margin):
                return self._crossed_exactly(rows, ids, cls, anchor, dist, memory, context)
            if 0.0 <= t <= 1.0:
                out.append((tid, cls[i], side))
        return out

    def _crossed_exactly(self, rows: list[int], ids: list[int], cls: list[int], anchor: list, dist: list,
                         memory: Mapping[int, _Memory], context: RuleContext) -> list[tuple[int, int, int]]:
        """:meth:`_crossed` by the vectorised test over the frame's rows sorted by track id."""
        order = sorted(rows, key=ids.__getitem__)
        prev = [memory.get(ids[i], _UNKNOWN) for i in order]
        previous = _Previous(side=np.array([p[0] for p in prev], np.int8),
                             pos=np.array([p[1:3] for p in prev], np.float64).reshape(-1, 2),
                             counted=np.array([p[4] for p in prev], bool))
        side, crossed = self._crossings(np.array([anchor[i] for i in order], np.float64).reshape(-1, 2),
                                        np.array([dist[i] for i in order], np.float64), previous, context)
        return [(ids[i], cls[i], s) for i, s, c in zip(order, side.tolist(), crossed.tolist(), strict=True) if c]

    def _emit(self, state: LineCountState, crossings: list[tuple[int, int, int]], *, now: float,
              context: RuleContext) -> tuple[LineCountState, list[Event]]:
        """One ``line_crossing`` event per crossing ``(track id, class id, direction)``; updates the totals and
        the event counter."""
        counts = {(c, d): n for c, d, n in state.counts}
        events, counter = [], state.next_event
        for tid, cid, d in crossings:
            name = CLASS_NAMES.get(cid, str(cid))
            counts[(name, d)] = counts.get((name, d), 0) + 1
            events.append(Event(
                id=event_id(context.camera_id, self.id, counter), kind="line_crossing", rule_id=self.id,
                camera_id=context.camera_id, status="closed", start=now, end=now,
                member_ids=(tid,), classes=(name,), score=1.0, best_frame_seq=context.seq,
                line_id=self.config.line,
                evidence={"direction": d, "class": name, "counts": _counts_evidence(counts)},
            ))
            counter += 1
        new_counts = tuple(sorted((c, d, n) for (c, d), n in counts.items()))
        return LineCountState(state.memory, new_counts, counter, state.oldest), events


def _counts_evidence(counts: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    """``{class: {"positive": n, "negative": n}}`` from ``{(class, direction): n}``."""
    out: dict[str, dict[str, int]] = {}
    for (name, d), n in sorted(counts.items()):
        out.setdefault(name, {"positive": 0, "negative": 0})[_DIRECTION_NAMES[d]] = n
    return out


def _forget(memory: dict[int, _Memory], now: float, forget_after: float) -> tuple[dict[int, _Memory], float]:
    """``memory`` (a fresh dict, changed in place) without the tracks unseen for more than ``forget_after``
    seconds, and the oldest ``last_seen`` left (inf when empty)."""
    for tid in [t for t, m in memory.items() if not now - m[3] <= forget_after]:
        del memory[tid]
    return memory, min((m[3] for m in memory.values()), default=math.inf)
