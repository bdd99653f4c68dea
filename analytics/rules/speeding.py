"""``speeding``: a vehicle above the speed limit for at least ``min_duration`` seconds; one event per track.

Needs the camera's **ground calibration** (``scene.calibration``): without one, speeds would rest on the
class-height fallback, far too rough to report a speed against a limit, so :meth:`SpeedingConfig.
check_geometry` rejects such a camera at config load (and :meth:`SpeedingRule.step` refuses it too).

What counts: **confirmed** tracks (matched to a detection this frame; a lost track's speed is a
prediction, not a measurement) of ``classes`` whose ground anchor (bottom centre of the box) lies inside
``zone`` (anywhere when ``zone`` is null). Speed: :meth:`analytics.rules.view.FrameView.ground_speed`, the tracker's
smoothed anchor velocity mapped through the calibration homography, metres per second on the ground. A
track is **over the limit** at a frame when its speed exceeds ``max_speed_mps + tolerance_mps`` (the
tolerance absorbs the calibration and velocity error, so a car at the limit does not fire).

Hysteresis (key = track id): the over-the-limit run survives gaps (a frame just below, a frame without a
detection) of up to ``grace`` seconds (:func:`analytics.rules.lasting.update_timers`); events come from
:class:`analytics.rules.lasting.Lifecycle` (kind ``"speeding"``):

* **open** once a track has been over the limit for ``min_duration`` seconds; the event starts when its run
  began;
* **updated** every 5 s while it stays over the limit, with fresh evidence;
* **closed** once it has not been over the limit for ``end_grace`` seconds (slowed down, left the zone or
  the frame), with ``end`` the last frame over the limit; :meth:`SpeedingRule.close` closes the events
  still open at the end of a stream.

Evidence: ``class``, ``speed_mps`` (at the latest frame over the limit), ``max_speed_mps`` and
``max_speed_kmh``, ``mean_speed_mps`` and ``mean_speed_kmh`` (over the frames of the run that were over the
limit), ``samples`` (those frames), ``limit_mps``, ``limit_kmh``, ``tolerance_mps``, and ``duration``
(seconds, ``end - start``, added by the life cycle).

Score, saturating in the relative excess over the limit::

    score = min(1, 2 * (speed - max_speed_mps) / max_speed_mps)

0.2 at 10 % over the limit, 0.5 at 25 %, 1 from 50 % over; the event keeps its best score and the frame
of it (the fastest moment) as ``best_frame_seq``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import compress
from operator import itemgetter
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field

from analytics.geometry import SceneGeometry
from analytics.rules.base import Event, RuleConfigBase, RuleContext, event_id, frame_view
from analytics.rules.view import LogFrames
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, class_ids_from_names

_MPS_TO_KMH = 3.6
#: Seconds between ``updated`` records of an open event (as :class:`analytics.rules.lasting.Lifecycle`).
_UPDATE_EVERY = 5.0
#: An open event, as a plain tuple: (event id, start, last_true, last_emit, best_score, best_seq, class id
#: and speed at last_true).
_ID, _START, _LAST, _EMIT, _BEST, _SEQ, _CID, _SPEED = range(8)


class SpeedingConfig(RuleConfigBase):
    """Config of one speeding rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["speeding"] = Field(description="rule type selector")
    max_speed_mps: float = Field(gt=0.0, description="speed limit, metres per second on the ground (13.9 = 50 "
                                 "km/h, 8.3 = 30 km/h); range 3-40")
    zone: str | None = Field(None, description="id of the zone watched in the camera's scene geometry; null: "
                             "the whole frame")
    classes: tuple[str, ...] = Field(("car", "bus", "truck", "motorcycle"),
                                     description=f"class names watched, any of {sorted(CLASS_IDS)}")
    tolerance_mps: float = Field(1.0, ge=0.0, description="margin above the limit before a track counts as over "
                                 "it, metres per second (calibration and velocity error); range 0-3")
    min_duration: float = Field(1.0, ge=0.0, description="seconds a track must stay over the limit before the "
                                "event opens; range 0.3-5")
    grace: float = Field(0.5, ge=0.0, description="seconds a track may dip under the limit or go undetected "
                         "without restarting the min_duration count; range 0-1")
    end_grace: float = Field(2.0, ge=0.0, description="seconds under the limit (or unseen) before an open event "
                             "closes; range 1-5")


    def check_geometry(self, geometry: SceneGeometry) -> None:
        """The zone, if any, must exist, and the camera must have a ground calibration."""
        super().check_geometry(geometry)
        if geometry.calibration is None:
            raise ValueError(f"rule {self.id!r}: speeding needs a ground calibration (scene.calibration); this "
                             "camera has none, and the class-height fallback is too rough for a speed limit")


class _SpeedingFields(NamedTuple):
    timers: Mapping[int, tuple[float, float]]
    stats: Mapping[int, tuple[int, float, float]]
    episodes: Mapping[int, tuple]
    next_event: int


class SpeedingState(_SpeedingFields):
    """State of one speeding rule (immutable: a tuple, whose mappings are never modified; a tuple rather than
    a frozen dataclass because one is built per frame, and cheaply).

    Attributes:
        timers: track id -> (since, last_true), seconds: the tracks' over-the-limit runs.
        stats: track id -> (frames, sum of speeds, max speed), m/s, over the frames of the run (or of the
            open event) that were over the limit.
        episodes: the open events by track id: (event id, start, last_true, last_emit, best_score, best_seq,
            class id, speed at last_true), in the closing order of :class:`analytics.rules.lasting.Lifecycle`.
        next_event: counter of the next event id.
    """

    __slots__ = ()

    def __new__(cls, timers: Mapping[int, tuple[float, float]] | None = None,
                stats: Mapping[int, tuple[int, float, float]] | None = None,
                episodes: Mapping[int, tuple] | None = None, next_event: int = 0) -> SpeedingState:
        return tuple.__new__(cls, ({} if timers is None else timers, {} if stats is None else stats,
                                   {} if episodes is None else episodes, next_event))


_new = tuple.__new__  # builds a state from its fields without the defaults' checks


class SpeedingRule:
    """Pure speeding rule; see the module docstring for the semantics.

    The life cycle is that of :class:`analytics.rules.lasting.Lifecycle` (kind ``"speeding"``, an update
    every 5 s) specialised to single-track keys: score and evidence are computed only for emitted records.
    """

    def __init__(self, config: SpeedingConfig) -> None:
        self.config = config
        self._classes = frozenset(class_ids_from_names(config.classes))
        self._threshold = config.max_speed_mps + config.tolerance_mps

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> SpeedingState:
        return SpeedingState()

    def close(self, state: SpeedingState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open events at the last time each track was over the limit."""
        return [self._event(k, state.episodes[k], "closed", state.episodes[k][_LAST], state.stats[k], context)
                for k in sorted(state.episodes)]

    def wakes(self, frames: LogFrames) -> np.ndarray:
        """Frames with a track over the limit (:class:`analytics.rules.base.Sleeps`)."""
        over = frames.confirmed() & (frames.ground_speed() > self._threshold)
        if self.config.zone is not None:
            over &= frames.in_zone(self.config.zone)
        over &= np.isin(frames.tracks.class_id, sorted(self._classes))
        return frames.count(over) > 0

    def asleep_until(self, state: SpeedingState) -> float:
        """Once a run's ``grace`` or an open event's ``end_grace`` runs out."""
        timers, _, episodes, _ = state
        until = math.inf
        if timers:
            until = min(last for _, last in timers.values()) + self.config.grace
        if episodes:
            until = min(until, min(ep[_LAST] for ep in episodes.values()) + self.config.end_grace)
        return until

    def step(self, tracks: Tracks, state: SpeedingState, now: float, *,
             context: RuleContext) -> tuple[SpeedingState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by track id."""
        if context.geometry.calibration is None:
            raise ValueError(f"rule {self.id!r}: speeding needs a ground calibration (scene.calibration)")
        timers0, eps0 = state.timers, state.episodes
        view = frame_view(tracks, context)
        # which rows are over the limit, in plain Python (a frame holds a handful of tracks)
        threshold = self._threshold
        speed = view.ground_speed().tolist()
        over = [c and v > threshold for c, v in zip(view.confirmed().tolist(), speed)]
        if True in over and self.config.zone is not None:
            over = [o and z for o, z in zip(over, view.in_zone(self.config.zone).tolist())]
        if True in over:
            classes = self._classes
            cids = tracks.class_id.tolist()
            over = [o and c in classes for o, c in zip(over, cids)]
        if True in over:
            rows = sorted(zip(compress(tracks.track_id.tolist(), over), compress(cids, over), compress(speed, over)),
                          key=itemgetter(0))
        else:
            if not timers0 and not eps0:
                return state, []
            rows = []
        grace, end_grace = self.config.grace, self.config.end_grace
        if not rows:  # nothing over the limit: a change only when a run's grace or an event's end_grace ends
            for since, last in timers0.values():
                if now - last > grace:
                    break
            else:
                for ep in eps0.values():
                    if now - ep[_LAST] >= end_grace:
                        break
                else:
                    return state, []
        # timers (analytics.rules.lasting.update_timers), by track id
        timers: dict[int, tuple[float, float]] = {}
        for row in rows:
            prev = timers0.get(row[0])
            timers[row[0]] = (prev[0] if prev is not None else now, now)
        dropped = False
        for key, timer in timers0.items():
            if key not in timers:
                if now - timer[1] <= grace:
                    timers[key] = timer
                else:
                    dropped = True
        # (frames, sum, max) of the speeds over the limit: restarted when a run starts with no open event
        # (the stats are of tracks in the timers or with an open event: only a dropped timer forgets some)
        if dropped:
            stats = {k: v for k, v in state.stats.items() if k in timers or k in eps0}
        else:
            stats = dict(state.stats)
        for tid, _, v in rows:
            prev = stats.get(tid)
            if prev is None or (timers[tid][0] == now and tid not in eps0):
                stats[tid] = (1, v, v)
            else:
                stats[tid] = (prev[0] + 1, prev[1] + v, max(prev[2], v))
        # life cycle (analytics.rules.lasting.Lifecycle.advance for single-track keys)
        holding: dict[int, tuple[int, float]] = {}
        min_duration = self.config.min_duration
        for tid, cid, v in rows:
            if tid in eps0 or now - timers[tid][0] >= min_duration:
                holding[tid] = (cid, v)
        episodes: dict[int, tuple] = {}
        events: list[Event] = []
        if holding or eps0:
            closed = False
            for key, ep in eps0.items():
                if key in holding:
                    continue
                if now - ep[_LAST] >= end_grace:
                    events.append(self._event(key, ep, "closed", ep[_LAST], stats[key], context))
                    closed = True
                else:
                    episodes[key] = ep
            counter = state.next_event
            seq = context.seq
            limit = self.config.max_speed_mps
            for key in sorted(holding):
                cid, v = holding[key]
                score = min(1.0, max(0.0, 2.0 * (v - limit) / limit))
                ep = eps0.get(key)
                if ep is None:
                    ep = (event_id(context.camera_id, self.config.id, counter), min(timers[key][0], now), now, now,
                          score, seq, cid, v)
                    counter += 1
                    episodes[key] = ep
                    events.append(self._event(key, ep, "open", now, stats[key], context))
                    continue
                best, best_seq = (score, seq) if score > ep[_BEST] else (ep[_BEST], ep[_SEQ])
                if now - ep[_EMIT] >= _UPDATE_EVERY:
                    ep = (ep[_ID], ep[_START], now, now, best, best_seq, cid, v)
                    events.append(self._event(key, ep, "updated", now, stats[key], context))
                else:
                    ep = (ep[_ID], ep[_START], now, ep[_EMIT], best, best_seq, cid, v)
                episodes[key] = ep
            if closed:  # forget the stats of closed events (unless their run goes on)
                stats = {k: v for k, v in stats.items() if k in timers or k in episodes}
            return _new(SpeedingState, (timers, stats, episodes, counter)), events
        return _new(SpeedingState, (timers, stats, episodes, state.next_event)), events

    def _event(self, key: int, ep: tuple, status: str, end: float, stat: tuple[int, float, float],
               context: RuleContext) -> Event:
        """A record of the open event ``ep`` of track ``key`` (evidence as of its latest frame over the limit)."""
        limit = self.config.max_speed_mps
        name = CLASS_NAMES.get(ep[_CID], str(ep[_CID]))
        speed = ep[_SPEED]
        n, total, top = stat
        evidence: dict[str, Any] = {
            "class": name,
            "speed_mps": round(speed, 2),
            "max_speed_mps": round(top, 2),
            "max_speed_kmh": round(top * _MPS_TO_KMH, 1),
            "mean_speed_mps": round(total / n, 2),
            "mean_speed_kmh": round(total / n * _MPS_TO_KMH, 1),
            "samples": n,
            "limit_mps": limit,
            "limit_kmh": round(limit * _MPS_TO_KMH, 1),
            "tolerance_mps": self.config.tolerance_mps,
            "duration": round(end - ep[_START], 3),
        }
        return Event(id=ep[_ID], kind="speeding", rule_id=self.config.id, camera_id=context.camera_id,
                     status=status, start=ep[_START], end=end, member_ids=(key,), classes=(name,),
                     score=min(max(float(ep[_BEST]), 0.0), 1.0), evidence=evidence, best_frame_seq=ep[_SEQ],
                     zone_id=self.config.zone)
