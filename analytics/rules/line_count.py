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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field

from analytics.geometry import Line, SceneGeometry, position_along, signed_distance
from analytics.rules.base import Event, RuleConfigBase, RuleContext, event_id, frame_view
from analytics.rules.view import LUT_SIZE, FrameView, LogFrames
from analytics.types import CLASS_IDS, CLASS_NAMES, TrackState, Tracks, class_ids_from_names

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



#: A remembered track: (side, anchor x, anchor y, last_seen, counted).
_Memory = tuple[int, float, float, float, bool]
_UNKNOWN: _Memory = (0, math.nan, math.nan, -math.inf, False)
#: Code of a row the rule does not use (lost, or of another class) in the per-row side codes.
_UNUSED = 2


class LineCountState(NamedTuple):
    """Per-track memory of one line-count rule (immutable: ``base`` is never written after creation; a
    named tuple, cheaper to build each frame than a frozen dataclass).

    The memory is kept in two parts so that a frame where no track changes side costs no per-track work:
    ``base`` and the last frame's rows (``tail_*``), whose update is applied to ``base`` lazily, only for
    the rows whose key (track id and side code) is gone at a later frame. :attr:`memory` gives the two
    merged.

    A row's key is ``4 * track id + code + 1``, with its side code: the side outside the band (+1, -1), 0
    inside the band, or 2 for a row the rule does not use (lost, or of another class).

    Attributes:
        base: track id -> ``(side, x, y, last_seen, counted)``, the memory before the update of the last
            frame's rows (see :attr:`memory`); for a track used at the last frame its ``counted`` is
            current, and so are its side and anchor when it was inside the band.
        counts: ((class name, direction, count), ...) sorted; the totals so far.
        next_event: counter for deterministic event ids.
        oldest: seconds, at most the oldest ``last_seen`` in ``base`` among the tracks not used at the
            last frame (inf when none): tracks to forget are looked for only once ``now - oldest`` exceeds
            ``forget_after``.
        tail_id: what identifies the last frame's keys: the bytes of the int64 keys (or, for track ids too
            large for them, a tuple of the keys).
        tail_keys: the last frame's keys by row, a list never written; tail_array: the same as the frame
            view's int64 array (None for track ids too large for it).
        tail_tracks: the last frame's tracks, for their anchors (pixels), read only when a row is applied.
        tail_time: the last frame's time, seconds.

    The properties ``track_id``, ``side``, ``pos``, ``last_seen`` and ``counted`` give the memory as arrays
    sorted by track id.
    """

    base: Mapping[int, _Memory] = {}  # noqa: RUF012 -- never written (a new dict when it changes)
    counts: tuple[tuple[str, int, int], ...] = ()
    next_event: int = 0
    oldest: float = math.inf
    tail_id: bytes | tuple[int, ...] = b""
    tail_keys: Sequence[int] = ()
    tail_array: np.ndarray | None = None
    tail_tracks: Tracks | None = None
    tail_time: float = -math.inf

    @classmethod
    def empty(cls) -> LineCountState:
        return cls({})

    @property
    def memory(self) -> Mapping[int, _Memory]:
        """track id -> ``(side, x, y, last_seen, counted)``: last side outside the hysteresis band (+1, -1,
        or 0 when not yet known), the anchor (pixels) where that side was last observed (NaN when unknown),
        the last frame time the track was used (seconds) and whether it has been counted on this line."""
        if not self.tail_keys:
            return self.base
        mem = dict(self.base)
        _apply_tail(mem, self, range(len(self.tail_keys)))
        return mem

    def count(self, class_name: str, direction: int) -> int:
        """Crossings so far of ``class_name`` in ``direction`` (+1 or -1)."""
        return next((n for c, d, n in self.counts if c == class_name and d == direction), 0)

    def _column(self, k: int, dtype: Any) -> np.ndarray:
        memory = self.memory
        return np.array([memory[t][k] for t in sorted(memory)], dtype)

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
        memory = self.memory
        return np.array([memory[t][1:3] for t in sorted(memory)], np.float64).reshape(-1, 2)

    @property
    def last_seen(self) -> np.ndarray:
        """(K,) float64 seconds."""
        return self._column(3, np.float64)

    @property
    def counted(self) -> np.ndarray:
        """(K,) bool, the track has been counted on this line."""
        return self._column(4, bool)


def _apply_tail(mem: dict[int, _Memory], state: LineCountState, rows: Iterable[int]) -> None:
    """Apply the update of the last frame's ``rows`` (indices into the tail) to ``mem`` (changed in place): a
    used row outside the band sets the side and the anchor, one inside keeps them; both set last_seen."""
    keys, anchor, when = state.tail_keys, state.tail_tracks.anchor, state.tail_time
    for j in rows:
        key = keys[j]
        c = (key & 3) - 1
        if c == _UNUSED:
            continue
        tid = key >> 2
        prev = mem.get(tid, _UNKNOWN)
        if c:
            x, y = anchor[j].tolist()
            mem[tid] = (c, x, y, when, prev[4])
        else:
            mem[tid] = (prev[0], prev[1], prev[2], when, prev[4])


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


def _make_geometry(scene: SceneGeometry, frame_size: tuple[int, int], line_id: str) -> _Geometry:
    line = scene.line(line_id)
    a, b = np.asarray(line.a) * frame_size, np.asarray(line.b) * frame_size
    ab = b - a
    length = float(np.linalg.norm(ab))
    return _Geometry(scene, frame_size, line, float(np.hypot(*ab)) == length, (*a.tolist(), *b.tolist()), length,
                     float(ab @ ab))


def _distances(tracks: Tracks, geo: _Geometry, view: FrameView) -> np.ndarray:
    """(N,) float64 signed distances of the anchors to the line, pixels: the view's when they are exact."""
    if geo.view_exact:
        return view.line_distance(geo.line.id)
    return signed_distance(tracks.anchor, geo.line, frame_size=geo.frame_size)


@lru_cache(maxsize=256)  # one function per (line, band, classes), so the view's cache key names it
def _code_fn(line_id: str, band: float, class_ids: tuple[int, ...]) -> Callable:
    """Element-wise side code of each row (see :class:`LineCountState`), for the frame view."""
    lut = np.zeros(LUT_SIZE, bool)
    lut[list(class_ids)] = True

    def code(t: Tracks, size: tuple[int, int], g: SceneGeometry) -> np.ndarray:
        geo = _make_geometry(g, size, line_id)
        dist = _distances(t, geo, FrameView(t, size, g))
        side = np.where(np.abs(dist) >= band, np.sign(dist), 0).astype(np.int8)
        cls = t.class_id.astype(np.int64)
        used = (t.state != _LOST) & (cls >= 0) & (cls < LUT_SIZE) & lut[np.clip(cls, 0, LUT_SIZE - 1)]
        side[~used] = _UNUSED
        return side
    return code


#: Track ids must be below this (in magnitude) for the int64 keys ``4 * id + code + 1``.
_KEY_LIMIT = 1 << 60


@lru_cache(maxsize=256)
def _key_fn(line_id: str, band: float, class_ids: tuple[int, ...]) -> Callable:
    """Element-wise key ``4 * track id + code + 1`` of each row (int64), for the frame view; None when a
    track id is too large for it."""
    code_fn = _code_fn(line_id, band, class_ids)

    def key(t: Tracks, size: tuple[int, int], g: SceneGeometry) -> np.ndarray | None:
        ids = t.track_id.astype(np.int64)
        if len(ids) and (int(ids.max()) >= _KEY_LIMIT or int(ids.min()) <= -_KEY_LIMIT):
            return None
        return ids * 4 + (code_fn(t, size, g).astype(np.int64) + 1)
    return key


class LineCountRule:
    """Pure line-count rule; see the module docstring for the semantics."""

    def __init__(self, config: LineCountConfig) -> None:
        self.config = config
        self._class_ids = np.asarray(class_ids_from_names(config.classes), dtype=np.int16)
        ids = tuple(sorted(set(self._class_ids.tolist())))
        self._code_key = ("line_count:code", f"{config.line}|{config.hysteresis_px!r}|{ids}")
        self._code_fn = _code_fn(config.line, config.hysteresis_px, ids)
        self._key_key = ("line_count:key", self._code_key[1])
        self._key_fn = _key_fn(config.line, config.hysteresis_px, ids)
        self._cached: _Geometry | None = None  # see _geometry

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> LineCountState:
        return LineCountState.empty()

    def close(self, state: LineCountState, now: float, *, context: RuleContext) -> list[Event]:
        """Crossings are instantaneous (emitted closed): nothing is left open at the end."""
        return []

    def replay(self, frames: LogFrames, camera_id: str) -> list[tuple[int, Event]] | None:
        """Every crossing of a whole log at once (:class:`analytics.rules.base.Replays`): exactly the events
        of :meth:`step` on every frame.

        Each used row's side code is a column; per track, in time order, the memory of :meth:`step` is: the
        last side outside the band and the anchor of the row that gave it, forgotten when a frame comes
        more than ``forget_after`` seconds after the track was last used (read from the last frame before
        its next row). A row outside the band on the other side than that memory, before the track is
        counted, is a change of side; the segment test of :meth:`_crossed` (the same float operations,
        element by element) keeps the crossings, and the first crossing of each remembered track counts.

        Returns None (step frame by frame instead) for what :meth:`step` treats apart: a log of several
        frame sizes, a line whose view distances are not those of the segment test, track ids too large for
        the row keys, a track twice in a frame, a crossing point within rounding of an end of the segment.
        """
        cfg = self.config
        if len(frames) == 0 or len(frames.views) != 1:
            return None
        geo = _make_geometry(frames.geometry, frames.size_of[0], cfg.line)
        if not geo.view_exact or frames.column(self._key_key, self._key_fn) is None:
            return None
        frame_of = frames.frame_of_row()
        code = frames.column(self._code_key, self._code_fn)
        walk = frames.walk(code != _UNUSED)
        if walk is None:
            return None
        rows = walk.rows
        forgotten = walk.in_gap & ~(walk.gap <= cfg.forget_after)
        life = np.cumsum(np.concatenate([[True], ~walk.same | forgotten]))  # one number per remembered track
        side = code[rows]
        out = np.flatnonzero(side != 0)  # the rows that set the remembered side
        rows_out, life_out, side_out = rows[out], life[out], side[out]
        change = np.flatnonzero((life_out[1:] == life_out[:-1]) & (side_out[1:] != side_out[:-1])) + 1
        if not len(change):
            return []
        row, prev = rows_out[change], rows_out[change - 1]
        anchor = frames.tracks.anchor
        ax, ay, bx, by = geo.ends
        abx, aby = bx - ax, by - ay
        d = frames.line_distance(cfg.line)[row]
        px, py = anchor[prev, 0].astype(np.float64), anchor[prev, 1].astype(np.float64)
        x, y = anchor[row, 0].astype(np.float64), anchor[row, 1].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            d_prev = (abx * (py - ay) - aby * (px - ax)) / geo.length
            frac = d_prev / (d_prev - d)
            qx, qy = px + frac * (x - px) - ax, py + frac * (y - py) - ay
            t = (qx * abx + qy * aby) / geo.ab2
            margin = 1e-12 * (1.0 + (np.abs(qx * abx) + np.abs(qy * aby)) / geo.ab2)
        if not (np.isfinite(t) & (np.abs(t) > margin) & (np.abs(t - 1.0) > margin)).all():
            return None
        crossed = (t >= 0.0) & (t <= 1.0)
        row, life_c = row[crossed], life_out[change][crossed]
        first = np.ones(len(row), bool)  # once counted, a track is not again
        first[1:] = life_c[1:] != life_c[:-1]
        row = row[first]
        row = row[np.lexsort((frames.tracks.track_id[row], frame_of[row]))]  # step order: frame, track id
        seq, time_of = frames.seq.tolist(), frames.time.tolist()
        counts: dict[tuple[str, int], int] = {}
        events = []
        for counter, (r, f, tid, cid, direction) in enumerate(zip(
                row.tolist(), frame_of[row].tolist(), frames.tracks.track_id[row].tolist(),
                frames.tracks.class_id[row].tolist(), code[row].tolist(), strict=True)):
            name = CLASS_NAMES.get(cid, str(cid))
            counts[(name, direction)] = counts.get((name, direction), 0) + 1
            now = time_of[f]
            events.append((f, Event(
                id=event_id(camera_id, self.id, counter), kind="line_crossing", rule_id=self.id,
                camera_id=camera_id, status="closed", start=now, end=now, member_ids=(tid,), classes=(name,),
                score=1.0, best_frame_seq=seq[f], line_id=cfg.line,
                evidence={"direction": direction, "class": name, "counts": _counts_evidence(counts)})))
        return events

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

        Cost: each row's side code (side outside the band, 0 inside, or unused) is a column of the frame's
        shared view (computed once for the whole log in a replay). When the frame has the same rows with the
        same codes as the last one (most frames), the memory is left as it is and only the frame's rows are
        kept for later: no per-track work. Otherwise only the rows whose code changed, appeared or
        left are handled, as Python values; the segment test runs only for the tracks that change side.
        """
        cfg = self.config
        now = float(now)
        view = frame_view(tracks, context)
        key = view.column(self._key_key, self._key_fn)  # KeyError naming the known lines for an unknown line
        if key is not None:
            key_id = key.tobytes()
            if key_id == state.tail_id and now - state.oldest <= cfg.forget_after:
                return LineCountState(state.base, state.counts, state.next_event, state.oldest, key_id,
                                      state.tail_keys, key, tracks, now), []
            keys = key.tolist()
        else:  # track ids too large for int64 keys: the same keys as Python ints
            code = view.column(self._code_key, self._code_fn).tolist()
            keys = [4 * k + c + 1 for k, c in zip(tracks.track_id.tolist(), code, strict=True)]
            key_id = tuple(keys)
            if key_id == state.tail_id and now - state.oldest <= cfg.forget_after:
                return LineCountState(state.base, state.counts, state.next_event, state.oldest, key_id,
                                      state.tail_keys, None, tracks, now), []
        return self._changed(tracks, state, now, context, view, key, keys, key_id)

    def _changed(self, tracks: Tracks, state: LineCountState, now: float, context: RuleContext, view: FrameView,
                 key: np.ndarray | None, keys: list[int],
                 key_id: bytes | tuple) -> tuple[LineCountState, list[Event]]:
        """:meth:`step` when the frame's keys differ from the last frame's, or tracks may be forgotten."""
        cfg = self.config
        base, oldest = state.base, state.oldest
        # A key gone since the last frame: that row's update is applied to the memory now (its track changed
        # code or left). A new key: a row to check for a change of side (a new track, or a changed code).
        before = state.tail_keys
        if key_id == state.tail_id:
            gone = new = ()
        elif key is not None and state.tail_array is not None and len(keys) == len(before):
            rows = (key != state.tail_array).nonzero()[0].tolist()  # keys moved to another row are in both
            now_k, before_k = {keys[i] for i in rows}, {before[i] for i in rows}
            gone, new = before_k - now_k, now_k - before_k
        else:
            now_k, before_k = set(keys), set(before)
            gone, new = before_k - now_k, now_k - before_k
        mem = None
        if gone:
            # A row inside the band only sets last_seen, which a track still used now does not need (its
            # new row sets it later), so those are skipped; unused rows set nothing.
            used = {k >> 2 for k in new if k & 3 != _UNUSED + 1}
            rows = [before.index(k) for k in gone if (r := k & 3) != _UNUSED + 1 and (r != 1 or k >> 2 not in used)]
            if rows:
                mem = dict(base)
                _apply_tail(mem, state, rows)
                if state.tail_time < oldest:
                    oldest = state.tail_time
        prior = base if mem is None else mem  # the memory before this frame for the new keys' tracks
        flips = []
        for k in new:
            c = (k & 3) - 1
            if c and c != _UNUSED:
                tid = k >> 2
                prev = prior.get(tid, _UNKNOWN)
                if prev[0] and c != prev[0] and not prev[4]:
                    flips.append((tid, keys.index(k), c))
        if now - oldest > cfg.forget_after:
            mem = dict(prior) if mem is None else mem
            oldest = _forget(mem, now, cfg.forget_after, {k >> 2 for k in keys if k & 3 != _UNUSED + 1})
        state_now = LineCountState(base if mem is None else mem, state.counts, state.next_event, oldest, key_id,
                                   keys, key, tracks, now)
        if not flips:
            return state_now, []
        crossings = self._crossed(sorted(flips), tracks, state, prior, self._geometry(context), context, view, keys)
        if not crossings:
            return state_now, []
        mem = dict(prior) if mem is None else mem
        anchor = view.anchor
        for i, tid, _, side in crossings:
            x, y = anchor[i].tolist()
            mem[tid] = (side, x, y, now, True)
        return self._emit(mem, state_now, crossings, now=now, context=context)

    def _geometry(self, context: RuleContext) -> _Geometry:
        """The line and its constants for the frame size, cached for the last geometry and size seen."""
        cached = self._cached
        if cached is not None and cached.scene is context.geometry and cached.frame_size == context.frame_size:
            return cached
        self._cached = _make_geometry(context.geometry, context.frame_size, self.config.line)
        return self._cached

    def _crossed(self, flips: list[tuple[int, int, int]], tracks: Tracks, state: LineCountState,
                 prior: Mapping[int, _Memory], geo: _Geometry, context: RuleContext, view: FrameView,
                 keys: list[int]) -> list[tuple[int, int, int, int]]:
        """``(row, track id, class id, direction)`` of the rows that crossed the segment, by track id, among
        the rows that changed side, ``flips`` ((track id, row, side), ...) sorted, whose memory before this
        frame is in ``prior``.

        The segment test of :meth:`_crossings` in plain Python, with the same floating-point operations;
        only the projection on the line (a matrix product there, which BLAS may round differently) is not
        bit for bit, so a crossing point within rounding of an endpoint goes to the vectorised test itself,
        over all the frame's used rows as always.
        """
        ax, ay, bx, by = geo.ends
        abx, aby = bx - ax, by - ay
        dist, anchor, cls = _distances(tracks, geo, view), view.anchor, tracks.class_id
        out = []
        for tid, i, side in flips:
            d = float(dist[i])
            prev = prior[tid]
            px, py = prev[1], prev[2]
            d_prev = (abx * (py - ay) - aby * (px - ax)) / geo.length
            frac = d_prev / (d_prev - d)
            x, y = anchor[i].tolist()
            qx, qy = px + frac * (x - px) - ax, py + frac * (y - py) - ay
            t = (qx * abx + qy * aby) / geo.ab2
            margin = 1e-12 * (1.0 + (abs(qx * abx) + abs(qy * aby)) / geo.ab2)
            if not (math.isfinite(t) and abs(t) > margin and abs(t - 1.0) > margin):
                return self._crossed_exactly(tracks, state, dist, anchor, context, keys)
            if 0.0 <= t <= 1.0:
                out.append((i, tid, int(cls[i]), side))
        return out

    def _crossed_exactly(self, tracks: Tracks, state: LineCountState, dist: np.ndarray, anchor: np.ndarray,
                         context: RuleContext, keys: list[int]) -> list[tuple[int, int, int, int]]:
        """:meth:`_crossed` by the vectorised test over the frame's used rows sorted by track id."""
        ids, cls = tracks.track_id.tolist(), tracks.class_id.tolist()
        order = sorted((i for i, k in enumerate(keys) if k & 3 != _UNUSED + 1), key=ids.__getitem__)
        memory = state.memory
        prev = [memory.get(ids[i], _UNKNOWN) for i in order]
        previous = _Previous(side=np.array([p[0] for p in prev], np.int8),
                             pos=np.array([p[1:3] for p in prev], np.float64).reshape(-1, 2),
                             counted=np.array([p[4] for p in prev], bool))
        anchor, dist = anchor.tolist(), dist.tolist()
        side, crossed = self._crossings(np.array([anchor[i] for i in order], np.float64).reshape(-1, 2),
                                        np.array([dist[i] for i in order], np.float64), previous, context)
        return [(i, ids[i], cls[i], s) for i, s, c in zip(order, side.tolist(), crossed.tolist(), strict=True) if c]

    def _emit(self, base: Mapping[int, _Memory], state: LineCountState, crossings: list[tuple[int, int, int, int]],
              *, now: float, context: RuleContext) -> tuple[LineCountState, list[Event]]:
        """One ``line_crossing`` event per crossing ``(row, track id, class id, direction)``; ``state`` with
        ``base``, the totals and the event counter updated."""
        counts = {(c, d): n for c, d, n in state.counts}
        events, counter = [], state.next_event
        for _, tid, cid, d in crossings:
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
        return LineCountState(base, new_counts, counter, *state[3:]), events


def _counts_evidence(counts: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    """``{class: {"positive": n, "negative": n}}`` from ``{(class, direction): n}``."""
    out: dict[str, dict[str, int]] = {}
    for (name, d), n in sorted(counts.items()):
        out.setdefault(name, {"positive": 0, "negative": 0})[_DIRECTION_NAMES[d]] = n
    return out


def _forget(memory: dict[int, _Memory], now: float, forget_after: float, used: set[int]) -> float:
    """Drop from ``memory`` (changed in place) the tracks unseen for more than ``forget_after`` seconds, but
    not those in ``used`` (the tracks of this frame, seen now); returns the oldest ``last_seen`` left among
    the others (inf when none)."""
    oldest = math.inf
    for tid, m in list(memory.items()):
        if tid not in used:
            if not now - m[3] <= forget_after:
                del memory[tid]
            elif m[3] < oldest:
                oldest = m[3]
    return oldest
