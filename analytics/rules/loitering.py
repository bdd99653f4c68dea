"""``loitering``: a person staying at least ``min_duration`` seconds in a zone; one event per track per stay.

What counts: present tracks (confirmed, or lost = predicted for a moment after their last detection;
tentative tracks are ignored, see :mod:`analytics.rules.view`) of ``classes`` whose ground anchor (bottom
centre of the box) lies inside ``zone`` (anywhere when ``zone`` is null) and, when ``max_speed_mps`` is
set, whose ground speed is at most ``max_speed_mps``. Speeds come from
:meth:`analytics.rules.view.FrameView.ground_speed`: metres per second on the ground plane with the camera's ground
calibration, the class-height fallback without it (a rough scale: set ``max_speed_mps`` generously then).
A frame where a track counts is a frame "in the zone" for that track.

Stays (key = track id): a stay begins at the track's first frame in the zone and survives gaps (leaving
the zone, walking faster than ``max_speed_mps``, not being detected at all) of up to ``grace`` seconds
(:func:`analytics.rules.lasting.update_timers`); a longer gap ends it, and the next frame in the zone
starts a new stay.

Events (:class:`analytics.rules.lasting.Lifecycle`, kind ``"loitering"``):

* **open** once a stay has lasted ``min_duration`` seconds (``now - since >= min_duration``); the event
  starts at the stay's first frame;
* **updated** every 5 s while the track stays, with fresh evidence;
* **closed** once the track has not been in the zone for ``end_grace`` seconds, with ``end`` the last frame
  it was there; that also ends the stay, so a return is a new stay that must again last ``min_duration``.
  :meth:`LoiteringRule.close` closes the events still open at the end of a stream, at the same ``end``.

Evidence: ``duration`` (seconds, the dwell: ``end - start``), ``zone`` (its id, or ``"frame"`` for the whole
frame), ``class``, ``mean_speed_mps`` (mean ground speed over the stay's frames in the zone),
``speed_calibrated`` (whether that speed comes from a ground calibration), and the thresholds used,
``min_duration`` and ``max_speed_mps`` (absent when any speed counts).

Score: ``1 - 0.5 ** (dwell / min_duration)``: 0.5 when the event opens, 0.75 at twice ``min_duration``,
0.875 at three times, towards 1; the event keeps its best (latest) score.

The per-track stay machinery (:class:`StayState`, :class:`Stays`) is shared with ``intrusion``. The rules
read their measurements (present tracks, zone membership, ground speed) from the frame's shared view
(:func:`analytics.rules.base.frame_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from itertools import compress
from operator import itemgetter
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field

from analytics.geometry import SceneGeometry
from analytics.rules.base import Event, RuleConfigBase, RuleContext, event_id, frame_view
from analytics.rules.view import FrameView, LogFrames
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, class_ids_from_names


class LoiteringConfig(RuleConfigBase):
    """Config of one loitering rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["loitering"] = Field(description="rule type selector")
    zone: str | None = Field(None, description="id of the zone watched in the camera's scene geometry; null: "
                             "the whole frame")
    classes: tuple[str, ...] = Field(("person",), description=f"class names watched, any of {sorted(CLASS_IDS)}")
    min_duration: float = Field(30.0, gt=0.0, description="seconds a track must stay in the zone before the "
                                "event opens; range 10-600")
    grace: float = Field(3.0, ge=0.0, description="seconds a track may leave the zone or go undetected without "
                         "ending its stay (detector flicker, brief occlusion); range 0-10")
    end_grace: float = Field(3.0, ge=0.0, description="seconds without the track in the zone before an open "
                             "event closes; range 1-10")
    max_speed_mps: float | None = Field(None, gt=0.0, description="only frames where the track's ground speed "
                                        "is at most this many metres per second count (standing, strolling); "
                                        "null: any speed; range 0.3-1.5")



# --------------------------------------------------------------------------------------------------
# Which rows count (shared with intrusion and occupancy)
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def counted_rows(zone_id: str | None, class_ids: frozenset[int],
                 max_speed: float | None = None) -> tuple[tuple[str, str], Callable]:
    """The view column ``(key, fn)`` of the rows a rule counts: present tracks of ``class_ids`` whose ground
    anchor is in ``zone_id`` (anywhere when None) and, with ``max_speed``, whose ground speed is at most
    that. ``fn`` is element-wise (see :mod:`analytics.rules.view`), so in a replay it runs once for the whole
    log and each frame reads a slice: ``view.column(key, fn)``. Rules with the same parameters share it.
    """
    wanted = np.array(sorted(class_ids), dtype=np.int64)

    def fn(t: Tracks, size: tuple[int, int], g: SceneGeometry) -> np.ndarray:
        view = FrameView(t, size, g)
        mask = view.present() & np.isin(t.class_id, wanted)
        if zone_id is not None:
            mask &= view.in_zone(zone_id)
        if max_speed is not None:
            mask &= view.ground_speed() <= max_speed
        return mask

    return ("counted", f"{zone_id}|{sorted(class_ids)}|{max_speed}"), fn


# --------------------------------------------------------------------------------------------------
# Per-track stays (shared with intrusion)
# --------------------------------------------------------------------------------------------------

#: Seconds between ``updated`` records of an open event (as :class:`analytics.rules.lasting.Lifecycle`).
UPDATE_EVERY = 5.0

# An open event, as a plain tuple (built once per frame per open event, so kept cheap):
# (event id, start, last_true, last_emit, best_score, best_seq, class id at last_true).
_ID, _START, _LAST, _EMIT, _BEST, _SEQ, _CID = range(7)


class _StayFields(NamedTuple):
    timers: Mapping[int, tuple[float, float]]
    sums: Mapping[int, tuple[float, int]]
    episodes: Mapping[int, tuple]
    next_event: int


class StayState(_StayFields):
    """Per-track stays of one rule and their open events (immutable: a tuple, whose mappings are never
    modified; a tuple rather than a frozen dataclass because one is built per frame, and cheaply).

    Attributes:
        timers: track id -> (since, last_true), seconds (see :func:`analytics.rules.lasting.update_timers`).
        sums: track id -> (sum of the per-frame measure, frames) over the stay, for its mean (speed,
            confidence); kept while the track's stay or event lasts.
        episodes: the open events by track id: (event id, start, last_true, last_emit, best_score, best_seq,
            class id at last_true); ordered as :class:`analytics.rules.lasting.Lifecycle` orders its episodes
            (the closing order of events).
        next_event: counter of the next event id.
    """

    __slots__ = ()

    def __new__(cls, timers: Mapping[int, tuple[float, float]] | None = None,
                sums: Mapping[int, tuple[float, int]] | None = None, episodes: Mapping[int, tuple] | None = None,
                next_event: int = 0) -> StayState:
        return tuple.__new__(cls, ({} if timers is None else timers, {} if sums is None else sums,
                                   {} if episodes is None else episodes, next_event))


_new = tuple.__new__  # builds a state from its fields without the defaults' checks


_FRAME_KEY = itemgetter(0, 1)  # frame, key
_RECORD_ORDER = itemgetter(0, 1, 2, 3)  # frame, closed before opened / updated, closing order, key

#: ``score(dwell, mean) -> [0, 1]`` of a stay at a frame it holds.
Score = Callable[[float, float], float]
#: ``evidence(class_name, mean, context) -> dict`` of a stay (``duration`` is added when the event is built).
Evidence = Callable[[str, float, RuleContext], dict[str, Any]]


def _class_name(cid: int) -> str:
    return CLASS_NAMES.get(cid, str(cid))


class Stays:
    """Per-track stays turned into events (one per track per stay), with the exact life cycle of
    :class:`analytics.rules.lasting.Lifecycle` (kind, ``min_duration``, ``end_grace``, an update every 5 s)
    specialised to single-track keys, so that a frame where nothing is due costs a few dict operations:
    score and evidence are only computed when a record is emitted.

    A stay begins at the track's first frame under the condition and survives gaps of up to ``grace``
    seconds; an event opens once it has lasted ``min_duration``, is updated every 5 s, and closes once the
    track has not held for ``end_grace`` seconds (which also ends the stay).
    """

    def __init__(self, kind: str, rule_id: str, *, min_duration: float, grace: float, end_grace: float,
                 zone_id: str | None, score: Score, evidence: Evidence) -> None:
        self.kind, self.rule_id = kind, rule_id
        self.min_duration, self.grace, self.end_grace = min_duration, grace, end_grace
        self.zone_id = zone_id
        self.score, self.evidence = score, evidence

    def _event(self, key: int, ep: tuple, status: str, end: float, mean: float, context: RuleContext) -> Event:
        name = _class_name(ep[_CID])
        evidence = {**self.evidence(name, mean, context), "duration": round(end - ep[_START], 3)}
        return Event(id=ep[_ID], kind=self.kind, rule_id=self.rule_id, camera_id=context.camera_id, status=status,
                     start=ep[_START], end=end, member_ids=(key,), classes=(name,),
                     score=min(max(float(ep[_BEST]), 0.0), 1.0), evidence=evidence, best_frame_seq=ep[_SEQ],
                     zone_id=self.zone_id)

    def step(self, state: StayState, ids: list[int], cids: list[int], values: list[float], now: float,
             context: RuleContext) -> tuple[StayState, list[Event]]:
        """Advance by one frame.

        Args:
            state: the previous state (not mutated).
            ids: this frame's track ids *under the condition*, in row order.
            cids: their class ids.
            values: their per-frame measure (averaged over the stay).
            now: frame time, seconds.
            context: the frame's context.

        Returns:
            The new state (the same object when nothing changed) and the events (closed first, then opened /
            updated by track id).
        """
        timers0, sums0, eps0, counter = state
        grace = self.grace
        if not ids:
            if not timers0 and not eps0:
                return state, []
            # nothing holds: something changes only when a timer runs out or an event closes
            for since, last in timers0.values():
                if now - last > grace:
                    break
            else:
                end_grace = self.end_grace
                for ep in eps0.values():
                    if now - ep[_LAST] >= end_grace:
                        break
                else:
                    return state, []
        # one pass over the rows: timers (analytics.rules.lasting.update_timers), sums (restarted for tracks
        # whose stay starts now and have no open event, else added) and the candidates (tracks with an open
        # event, or whose stay has lasted min_duration)
        timers: dict[int, tuple[float, float]] = {}
        sums = dict(sums0)
        holding: dict[int, int] = {}
        min_duration = self.min_duration
        timer_of, sum_of = timers0.get, sums.get
        for tid, cid, value in zip(ids, cids, values):
            prev = timer_of(tid)
            since = now if prev is None else prev[0]
            timers[tid] = (since, now)
            total = sum_of(tid)
            if tid in eps0:
                sums[tid] = (value, 1) if total is None else (total[0] + value, total[1] + 1)
                holding[tid] = cid
            else:
                sums[tid] = (value, 1) if total is None or since == now else (total[0] + value, total[1] + 1)
                if now - since >= min_duration:
                    holding[tid] = cid
        # the other timers last while within grace; a dropped one forgets its sums unless its event is open
        # (the sums are of tracks in the timers or with an open event)
        for key, timer in timers0.items():
            if key not in timers:
                if now - timer[1] <= grace:
                    timers[key] = timer
                elif key not in eps0:
                    sums.pop(key, None)
        if not holding and not eps0:
            return _new(StayState, (timers, sums, eps0, counter)), []
        # life cycle (analytics.rules.lasting.Lifecycle.advance for single-track keys)
        end_grace = self.end_grace
        camera_id = context.camera_id
        episodes: dict[int, tuple] = {}
        closed_events: list[Event] = []
        closed: list[int] = []
        for key, ep in eps0.items():
            if key in holding:
                continue
            if now - ep[_LAST] >= end_grace:
                total, frames = sums[key]
                closed_events.append(self._event(key, ep, "closed", ep[_LAST], total / frames, context))
                closed.append(key)
            else:
                episodes[key] = ep
        events: list[Event] = []
        seq = context.seq
        for key in sorted(holding):
            cid = holding[key]
            total, frames = sums[key]
            mean = total / frames
            ep = eps0.get(key)
            if ep is None:
                since = timers[key][0]
                ep = (event_id(camera_id, self.rule_id, counter), min(since, now), now, now,
                      self.score(now - since, mean), seq, cid)
                counter += 1
                episodes[key] = ep
                events.append(self._event(key, ep, "open", now, mean, context))
                continue
            start = ep[_START]
            score = self.score(now - start, mean)
            best, best_seq = (score, seq) if score > ep[_BEST] else (ep[_BEST], ep[_SEQ])
            if now - ep[_EMIT] >= UPDATE_EVERY:
                ep = (ep[_ID], start, now, now, best, best_seq, cid)
                events.append(self._event(key, ep, "updated", now, mean, context))
            else:
                ep = (ep[_ID], start, now, ep[_EMIT], best, best_seq, cid)
            episodes[key] = ep
        if closed:  # an event that closed ends its stay: a return is a new stay
            for key in closed:
                timers.pop(key, None)
                sums.pop(key, None)
        if closed_events:
            events = closed_events + events
        return _new(StayState, (timers, sums, episodes, counter)), events

    def replay(self, frames: LogFrames, camera_id: str, counted: np.ndarray,
               values: np.ndarray) -> list[tuple[int, Event]] | None:
        """Every event of a whole log at once (:class:`analytics.rules.base.Replays`): exactly those of
        :meth:`step` on every frame and :meth:`close` at the end.

        Per track, its rows under the condition are walked in time order with the same Python arithmetic as
        :meth:`step`; what a step does on the frames between two of them (a timer running out, an event
        closing) is read from the last frame before the later one, and frames without such rows are never
        visited. The records are then put in step order: by frame, closed ones first (in the order of the
        open events then: by the frame each last held, then track id), then opened and updated ones by
        track id; event ids are numbered in order of opening, as the steps number them.

        Args:
            counted: (R,) bool, the rows under the condition (:func:`counted_rows`).
            values: (R,) the per-row measure averaged over a stay.

        Returns None (step frame by frame instead) when a track has two rows under the condition in one
        frame, or a frame time is not finite.
        """
        n = len(frames)
        times = frames.time
        walk = frames.walk(counted)
        if walk is None or not np.isfinite(times).all():
            return None
        rows, ids, fr, same, in_gap, gap = walk
        if not len(rows):
            return []
        dropped = (in_gap & ~(gap <= self.grace)).tolist()  # a step in the gap drops the timer ...
        closes = (in_gap & (gap >= self.end_grace)).tolist()  # ... or closes the open event
        starts = np.flatnonzero(np.concatenate([[True], ~same])).tolist() + [len(rows)]
        seq_all = frames.seq.tolist()
        tl, fl, il = times[fr].tolist(), fr.tolist(), ids.tolist()
        vl, cl = values[rows].tolist(), frames.tracks.class_id[rows].tolist()
        min_duration, end_grace, score_of = self.min_duration, self.end_grace, self.score

        # records: (frame, 0 closed | 1 opened or updated, order within, key, status, episode, its fields then,
        # end, mean); an episode is a list [id, start, last_true, last_emit, best, best_seq, cid], its id set
        # once every opening is known
        records: list[tuple] = []
        opened: list[tuple[int, int, list]] = []
        for a, b in zip(starts[:-1], starts[1:]):
            key = il[a]
            since = total = ep = None
            frames_in = 0
            for j in range(a, b):
                now = tl[j]
                if j > a:
                    if ep is not None and closes[j - 1]:
                        g = frames.first_elapsed(ep[2], end_grace, fl[j - 1] + 1)
                        records.append((g, 0, fl[j - 1], key, "closed", ep, ep[1:], ep[2], total / frames_in))
                        since = total = ep = None
                    elif dropped[j - 1]:
                        since = None
                        if ep is None:
                            total = None
                if since is None:
                    since = now
                value = vl[j]
                if ep is not None:
                    total, frames_in = (value, 1) if total is None else (total + value, frames_in + 1)
                else:
                    if total is None or since == now:
                        total, frames_in = value, 1
                    else:
                        total, frames_in = total + value, frames_in + 1
                    if not now - since >= min_duration:
                        continue
                mean = total / frames_in
                f = fl[j]
                if ep is None:
                    ep = [None, min(since, now), now, now, score_of(now - since, mean), seq_all[f], cl[j]]
                    opened.append((f, key, ep))
                    records.append((f, 1, 0, key, "open", ep, ep[1:], now, mean))
                    continue
                score = score_of(now - ep[1], mean)
                if score > ep[4]:
                    ep[4], ep[5] = score, seq_all[f]
                ep[2], ep[6] = now, cl[j]
                if now - ep[3] >= UPDATE_EVERY:
                    ep[3] = now
                    records.append((f, 1, 0, key, "updated", ep, ep[1:], now, mean))
            if ep is not None:
                g = frames.first_elapsed(ep[2], end_grace, fl[b - 1] + 1)
                records.append((g, 0, fl[b - 1] if g < n else 0, key, "closed", ep, ep[1:], ep[2], total / frames_in))
        opened.sort(key=_FRAME_KEY)
        for counter, (_, _, ep) in enumerate(opened):
            ep[0] = event_id(camera_id, self.rule_id, counter)
        records.sort(key=_RECORD_ORDER)
        out = []
        geometry, sizes = frames.geometry, frames.size_of
        for f, _, _, key, status, ep, fields, end, mean in records:
            at = min(f, n - 1)
            context = RuleContext(camera_id, sizes[at], seq_all[at], geometry)
            out.append((f, self._event(key, (ep[0], *fields), status, end, mean, context)))
        return out

    def step_rows(self, state: StayState, tracks: Tracks, keep: list[bool], values: Callable[[], list[float]],
                  now: float, context: RuleContext) -> tuple[StayState, list[Event]]:
        """:meth:`step` on the rows of ``tracks`` flagged in ``keep`` (one bool per row); ``values()`` gives the
        per-row values and is only called when a row is kept. Returns the same state when nothing is kept and
        nothing is running."""
        if True not in keep:
            if not state.timers and not state.episodes:
                return state, []
            return self.step(state, [], [], [], now, context)
        return self.step(state, list(compress(tracks.track_id.tolist(), keep)),
                         list(compress(tracks.class_id.tolist(), keep)), list(compress(values(), keep)), now, context)

    def close(self, state: StayState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open events at the last time each held (ordered by track id)."""
        out = []
        for key in sorted(state.episodes):
            ep = state.episodes[key]
            total, frames = state.sums[key]
            out.append(self._event(key, ep, "closed", ep[_LAST], total / frames, context))
        return out


# --------------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------------


class LoiteringRule:
    """Pure loitering rule; see the module docstring for the semantics."""

    def __init__(self, config: LoiteringConfig) -> None:
        self.config = config
        self._classes = frozenset(class_ids_from_names(config.classes))
        cfg = config
        self._counted = counted_rows(cfg.zone, self._classes, cfg.max_speed_mps)
        base: dict[str, Any] = {"zone": cfg.zone if cfg.zone is not None else "frame"}

        min_duration = cfg.min_duration

        def score(dwell: float, mean: float) -> float:  # saturating(dwell / min_duration), inlined
            ratio = dwell / min_duration
            value = 1.0 - 0.5 ** (0.0 if 0.0 > ratio else ratio)
            return 1.0 if 1.0 < value else (0.0 if 0.0 > value else value)

        def evidence(name: str, mean: float, context: RuleContext) -> dict[str, Any]:
            out: dict[str, Any] = {**base, "class": name, "mean_speed_mps": round(mean, 3),
                                   "speed_calibrated": context.geometry.calibration is not None,
                                   "min_duration": cfg.min_duration}
            if cfg.max_speed_mps is not None:
                out["max_speed_mps"] = cfg.max_speed_mps
            return out

        self._stays = Stays("loitering", config.id, min_duration=cfg.min_duration, grace=cfg.grace,
                            end_grace=cfg.end_grace, zone_id=cfg.zone, score=score, evidence=evidence)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> StayState:
        return StayState()

    def replay(self, frames: LogFrames, camera_id: str) -> list[tuple[int, Event]] | None:
        """The whole log at once (:meth:`Stays.replay`; :class:`analytics.rules.base.Replays`)."""
        return self._stays.replay(frames, camera_id, frames.column(*self._counted), frames.ground_speed())

    def step(self, tracks: Tracks, state: StayState, now: float, *,
             context: RuleContext) -> tuple[StayState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        view = frame_view(tracks, context)
        return self._stays.step_rows(state, tracks, view.column(*self._counted).tolist(),
                                     lambda: view.ground_speed().tolist(), now, context)

    def close(self, state: StayState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close open events at the last time each track was in the zone."""
        return self._stays.close(state, now, context=context)
