"""``loitering``: a person staying at least ``min_duration`` seconds in a zone; one event per track per stay.

What counts: present tracks (confirmed, or lost = predicted for a moment after their last detection;
tentative tracks are ignored, see :mod:`analytics.rules.scene`) of ``classes`` whose ground anchor (bottom
centre of the box) lies inside ``zone`` (anywhere when ``zone`` is null) and, when ``max_speed_mps`` is
set, whose ground speed is at most ``max_speed_mps``. Speeds come from
:func:`analytics.rules.scene.ground_speed`: metres per second on the ground plane with the camera's ground
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

The per-track stay machinery (:class:`StayState`, :func:`step_stays`) is shared with ``intrusion``, and the
column-wise zone test (:func:`zone_rows`, :func:`class_lut`) with ``intrusion`` and ``occupancy``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from analytics.geometry import points_in_polygon
from analytics.rules.base import Event, RuleConfigBase, RuleContext
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.rules.scene import ground_speed, present
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, check_class_names, class_ids_from_names


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

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)


# --------------------------------------------------------------------------------------------------
# Per-track stays (shared with intrusion)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StayState:
    """Per-track stays of one rule and their open events (immutable: the mappings are never modified).

    Attributes:
        timers: track id -> (since, last_true), seconds (see :func:`analytics.rules.lasting.update_timers`).
        sums: track id -> (sum of the per-frame measure, frames) over the stay, for its mean (speed,
            confidence); kept while the track's stay or event lasts.
        life: the open events, by track id.
    """

    timers: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    sums: Mapping[int, tuple[float, int]] = field(default_factory=dict)
    life: LifecycleState = field(default_factory=LifecycleState)


@dataclass(frozen=True)
class Stay:
    """One track's stay at this frame, as handed to the rule's ``describe``.

    Attributes:
        track_id: the track.
        class_name: its class at this frame.
        dwell: seconds since the stay (or its open event) began.
        mean: mean of the per-frame measure over the stay.
    """

    track_id: int
    class_name: str
    dwell: float
    mean: float


#: ``describe(stay) -> (score in [0, 1], evidence)`` of a rule using :func:`step_stays`.
Describe = Callable[[Stay], tuple[float, dict[str, Any]]]


def _accumulate(state: StayState, timers: Mapping[int, tuple[float, float]], ids: list[int], values: list[float],
                now: float) -> dict[int, tuple[float, int]]:
    """New per-track sums: restarted for tracks whose stay starts now (and have no open event), else added."""
    opened = state.life.episodes
    sums = {k: v for k, v in state.sums.items() if k in timers or k in opened}
    for tid, value in zip(ids, values):
        prev = sums.get(tid)
        if prev is None or (timers[tid][0] == now and tid not in opened):
            sums[tid] = (value, 1)
        else:
            sums[tid] = (prev[0] + value, prev[1] + 1)
    return sums


def step_stays(lifecycle: Lifecycle, state: StayState, track_id: np.ndarray, class_id: np.ndarray,
               values: np.ndarray, now: float, *, grace: float, zone_id: str | None, context: RuleContext,
               describe: Describe) -> tuple[StayState, list[Event]]:
    """Advance per-track stays by one frame and turn them into events (one per track per stay).

    Args:
        lifecycle: the rule's life cycle (kind, min_duration, end_grace).
        state: the previous state (not mutated).
        track_id: (N,) int, this frame's tracks *in the zone* (the rule's condition holds for each of them).
        class_id: (N,) int, their classes.
        values: (N,) float, their per-frame measure, averaged over the stay (speed, confidence).
        now: frame time, seconds.
        grace: seconds of absence a stay survives.
        zone_id: zone of the events.
        context: the frame's context.
        describe: the rule's score and evidence for a stay.

    Returns:
        The new state and the events (closed first, then opened / updated by track id).
    """
    if len(track_id) == 0 and not state.timers and not state.life.episodes:
        return state, []
    ids = track_id.tolist()
    timers = update_timers(state.timers, ids, now, grace=grace)
    sums = _accumulate(state, timers, ids, np.asarray(values, dtype=np.float64).tolist(), now)
    opened = state.life.episodes
    candidates = []
    for tid, cid in zip(ids, class_id.tolist()):
        since = timers[tid][0]
        episode = opened.get(tid)
        if episode is None and now - since < lifecycle.min_duration:
            continue  # not due yet: skip building a candidate
        start = episode.start if episode is not None else since
        total, frames = sums[tid]
        name = CLASS_NAMES.get(cid, str(cid))
        score, evidence = describe(Stay(tid, name, now - start, total / frames))
        candidates.append(Candidate(key=tid, since=since, members=(tid,), classes=(name,), score=score,
                                    evidence=evidence, zone_id=zone_id))
    life, events = lifecycle.advance(state.life, candidates, now, context=context)
    closed = [k for k in opened if k not in life.episodes]
    if closed:  # an event that closed ends its stay: a return is a new stay
        timers = {k: v for k, v in timers.items() if k not in closed}
        sums = {k: v for k, v in sums.items() if k not in closed}
    return StayState(timers, sums, life), events


def class_lut(names: tuple[str, ...]) -> np.ndarray:
    """Lookup table over class ids: ``lut[min(class_id, len - 1)]`` is True for the named classes."""
    lut = np.zeros(max(CLASS_NAMES) + 2, bool)  # the last entry stands for any other class id
    lut[list(class_ids_from_names(names))] = True
    return lut


def zone_rows(tracks: Tracks, lut: np.ndarray, zone_id: str | None, context: RuleContext) -> np.ndarray:
    """(K,) int64 rows of the present tracks of the ``lut`` classes whose ground anchor is in the zone.

    The whole frame when ``zone_id`` is None. Works on the columns, without building sub-``Tracks``; anchors
    outside the zone's bounding box are dropped before the polygon test.
    """
    cls = np.minimum(tracks.class_id.view(np.uint16), len(lut) - 1)  # negative ids: "any other class"
    rows = np.flatnonzero(present(tracks) & lut[cls])
    if zone_id is None or len(rows) == 0:
        return rows
    polygon = context.geometry.zone(zone_id).polygon_px(context.frame_size)
    xyxy = tracks.xyxy[rows].astype(np.float64)
    anchor = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    near = np.flatnonzero(np.all((anchor >= lo) & (anchor <= hi), axis=1))
    if len(near) == 0:
        return near
    return rows[near[points_in_polygon(anchor[near], polygon)]]


def saturating(ratio: float) -> float:
    """``1 - 0.5 ** ratio`` clipped to [0, 1]: 0.5 at ratio 1, 0.75 at 2, towards 1."""
    return min(max(1.0 - 0.5 ** max(ratio, 0.0), 0.0), 1.0)


# --------------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------------


class LoiteringRule:
    """Pure loitering rule; see the module docstring for the semantics."""

    def __init__(self, config: LoiteringConfig) -> None:
        self.config = config
        self._lut = class_lut(config.classes)
        self._life = Lifecycle("loitering", config.id, config.min_duration, config.end_grace)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> StayState:
        return StayState()

    def step(self, tracks: Tracks, state: StayState, now: float, *,
             context: RuleContext) -> tuple[StayState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        cfg = self.config
        rows = zone_rows(tracks, self._lut, cfg.zone, context)
        if len(rows) == 0 and not state.timers and not state.life.episodes:
            return state, []
        speed = ground_speed(tracks, context)[rows] if len(rows) else np.zeros(0)
        if cfg.max_speed_mps is not None:
            slow = speed <= cfg.max_speed_mps
            rows, speed = rows[slow], speed[slow]
        calibrated = context.geometry.calibration is not None

        def describe(stay: Stay) -> tuple[float, dict[str, Any]]:
            evidence: dict[str, Any] = {
                "zone": cfg.zone if cfg.zone is not None else "frame", "class": stay.class_name,
                "mean_speed_mps": round(stay.mean, 3), "speed_calibrated": calibrated,
                "min_duration": cfg.min_duration,
            }
            if cfg.max_speed_mps is not None:
                evidence["max_speed_mps"] = cfg.max_speed_mps
            return saturating(stay.dwell / cfg.min_duration), evidence

        return step_stays(self._life, state, tracks.track_id[rows], tracks.class_id[rows], speed, now,
                          grace=cfg.grace, zone_id=cfg.zone, context=context, describe=describe)

    def close(self, state: StayState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close open events at the last time each track was in the zone."""
        return self._life.close_all(state.life, now, context=context)
