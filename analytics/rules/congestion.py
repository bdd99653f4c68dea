"""``congestion``: a queue of slow vehicles in a lane zone; at most one event at a time per rule (key 0).

What counts: present tracks (confirmed, or lost = predicted for a moment after their last detection, which
matters in a queue where vehicles hide each other; tentative tracks are ignored, see
:mod:`analytics.rules.view`) of ``classes`` whose ground anchor (bottom centre of the box) lies inside
``zone``. A vehicle is **slow** when its ground speed is below ``max_speed_mps``.

Speeds come from :meth:`analytics.rules.view.FrameView.ground_speed` (the tracker's smoothed anchor velocity mapped to
the ground): metres per second on the ground plane with the camera's ground calibration; without one, the
class-height fallback (a car is assumed 1.5 m tall, so ``metres per pixel = 1.5 / box height``), which
ignores perspective and is only **approximate**: set ``max_speed_mps`` generously then. The evidence says
which was used (``speed_source``: ``"calibrated"`` or ``"fallback"``).

Condition: at least ``min_vehicles`` slow vehicles in the zone. Hysteresis:

* start: the condition may stop holding for up to ``start_grace`` seconds (a vehicle of the queue missed
  for a moment, one creeping above the limit) without restarting the ``min_duration`` count
  (:func:`analytics.rules.lasting.update_timers`);
* end: an open event closes once the condition has not held for ``end_grace`` seconds, so a queue that
  moves for a moment and stops again is still one congestion (:class:`analytics.rules.lasting.Lifecycle`).

Events (kind ``"congestion"``, key 0, ``zone_id`` = ``zone``):

* **open** once the condition has held (with the start grace) for ``min_duration`` seconds; the event
  starts when it began to hold;
* **updated** when the set of slow vehicles (``member_ids``) changes, or every 5 s, with fresh evidence;
* **closed** ``end_grace`` seconds after the condition last held, with ``end`` that last time;
  :meth:`CongestionRule.close` closes an open event at the end of a stream, at the same ``end``.

Evidence: ``slow_vehicles`` (count), ``vehicles_in_zone`` (all vehicles of ``classes`` in the zone),
``mean_speed_mps`` (mean ground speed of the vehicles in the zone), ``slow_mean_speed_mps`` (of the slow
ones), ``speed_source``, the thresholds ``max_speed_mps``, ``min_vehicles`` and ``min_duration``, and
``duration`` (seconds, ``end - start``, added by the life cycle).

Score, saturating in the queue length and its duration::

    score = 0.5 * min(1, n / (2 * min_vehicles)) + 0.5 * min(1, t / (3 * min_duration))

with ``n`` the slow vehicles now and ``t`` the seconds since the congestion began: 0.25 + 0.17 = 0.42 when
the event opens at the thresholds, 1 for a queue twice ``min_vehicles`` long lasting three times
``min_duration``. The event keeps its best score (and the frame of it as ``best_frame_seq``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.rules.view import LogFrames
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, class_ids_from_names

#: The one key of the rule's condition (one congestion per rule and zone).
_KEY = 0


class CongestionConfig(RuleConfigBase):
    """Config of one congestion rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["congestion"] = Field(description="rule type selector")
    zone: str = Field(description="id of the lane zone watched in the camera's scene geometry")
    classes: tuple[str, ...] = Field(("car", "bus", "truck", "motorcycle"),
                                     description=f"class names counted as vehicles, any of {sorted(CLASS_IDS)}")
    max_speed_mps: float = Field(2.0, gt=0.0, description="a vehicle is slow below this ground speed, metres per "
                                 "second (2 m/s = 7.2 km/h); without calibration speeds are approximate, so "
                                 "set it higher; range 0.5-5")
    min_vehicles: int = Field(3, ge=1, description="slow vehicles needed in the zone at once; range 1-30 (about "
                              "the number of vehicles that fill a third of the lane zone)")
    min_duration: float = Field(20.0, ge=0.0, description="seconds the queue must last before the event opens; "
                                "range 5-300 (longer than a red light's queue if those should not count)")
    start_grace: float = Field(3.0, ge=0.0, description="seconds the condition may lapse without restarting the "
                               "min_duration count (a vehicle missed for a moment); range 0-10")
    end_grace: float = Field(10.0, ge=0.0, description="seconds without the condition before an open event "
                             "closes, so a queue that moves for a moment is still one congestion; range 5-60")



@dataclass(frozen=True)
class CongestionState:
    """State of one congestion rule (immutable: the mapping is never modified after creation).

    Attributes:
        timers: ``{0: (since, last_true)}`` while the condition holds or lapsed within ``start_grace``.
        life: the open event, if any (key 0).
    """

    timers: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    life: LifecycleState = field(default_factory=LifecycleState)


class CongestionRule:
    """Pure congestion rule; see the module docstring for the semantics.

    Speed: zone membership and ground speeds come from the frame's shared
    :class:`~analytics.rules.view.FrameView`, and the frame's few rows are handled in plain Python; while
    nothing runs, a frame without ``min_vehicles`` slow vehicles in the zone returns the same state at once.
    """

    def __init__(self, config: CongestionConfig) -> None:
        self.config = config
        self._wanted = frozenset(class_ids_from_names(config.classes))
        self._lifecycle = Lifecycle("congestion", config.id, config.min_duration, config.end_grace,
                                    update_on_members=False)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> CongestionState:
        return CongestionState()

    def close(self, state: CongestionState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open event, if any, at the last time the condition held."""
        return self._lifecycle.close_all(state.life, now, context=context)

    def wakes(self, frames: LogFrames) -> np.ndarray:
        """Frames with at least ``min_vehicles`` slow vehicles in the zone (:class:`analytics.rules.base.Sleeps`)."""
        cfg = self.config
        slow = frames.present() & frames.in_zone(cfg.zone) & np.isin(frames.tracks.class_id, sorted(self._wanted))
        slow &= frames.ground_speed() < cfg.max_speed_mps
        return frames.count(slow) >= cfg.min_vehicles

    def asleep_until(self, state: CongestionState) -> float:
        """Asleep for good while no timer runs and no event is open; else every frame counts."""
        return math.inf if not state.timers and not state.life.episodes else -math.inf

    def step(self, tracks: Tracks, state: CongestionState, now: float, *,
             context: RuleContext) -> tuple[CongestionState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        cfg = self.config
        idle = not state.timers and not state.life.episodes
        if idle and len(tracks) < cfg.min_vehicles:
            return state, []
        view = frame_view(tracks, context)
        # plain Python over the frame's few rows: cheaper than a chain of numpy calls at that size
        wanted = self._wanted
        rows = [i for i, (p, z, c) in enumerate(zip(view.present().tolist(), view.in_zone(cfg.zone).tolist(),
                                                    tracks.class_id.tolist())) if p and z and c in wanted]
        if idle and len(rows) < cfg.min_vehicles:
            return state, []
        all_speed = view.ground_speed().tolist()
        speed = [all_speed[i] for i in rows]
        limit = cfg.max_speed_mps
        slow = [k for k, v in enumerate(speed) if v < limit]
        holds = len(slow) >= cfg.min_vehicles
        if idle and not holds:  # nothing runs and nothing starts: the state stays as it is
            return state, []
        timers = update_timers(state.timers, [_KEY] if holds else [], now, grace=cfg.start_grace)
        candidates = ([self._candidate(tracks, rows, speed, slow, timers[_KEY][0], state, now, context)]
                      if holds else [])
        life, events = self._lifecycle.advance(state.life, candidates, now, context=context)
        return CongestionState(timers, life), events

    def _candidate(self, tracks: Tracks, rows: list[int], speed: list[float], slow: list[int], since: float,
                   state: CongestionState, now: float, context: RuleContext) -> Candidate:
        """The congestion at this frame: the slow vehicles (by track id), score and evidence.

        ``rows``: the frame's rows of the vehicles in the zone; ``speed``: their ground speeds; ``slow``: the
        indices of the slow ones in those lists.
        """
        cfg = self.config
        track_id, class_id = tracks.track_id.tolist(), tracks.class_id.tolist()
        slow_rows = sorted([rows[k] for k in slow], key=track_id.__getitem__)  # stable, like the argsort before
        ids = tuple([track_id[i] for i in slow_rows])
        classes = tuple([CLASS_NAMES.get(class_id[i], str(class_id[i])) for i in slow_rows])
        open_ep = state.life.episodes.get(_KEY)
        held = now - (open_ep.start if open_ep is not None else since)
        n = len(ids)
        score = 0.5 * min(1.0, n / (2 * cfg.min_vehicles))
        score += 0.5 * (min(1.0, held / (3 * cfg.min_duration)) if cfg.min_duration > 0 else 1.0)
        evidence: dict[str, Any] = {
            "slow_vehicles": n,
            "vehicles_in_zone": len(rows),
            "mean_speed_mps": round(_mean(speed), 2),
            "slow_mean_speed_mps": round(_mean([speed[k] for k in slow]), 2),
            "speed_source": "calibrated" if context.geometry.calibration is not None else "fallback",
            "max_speed_mps": cfg.max_speed_mps,
            "min_vehicles": cfg.min_vehicles,
            "min_duration": cfg.min_duration,
        }
        return Candidate(_KEY, since, ids, classes, min(score, 1.0), evidence, zone_id=cfg.zone)


#: Below this many values numpy's mean adds them one after the other (its pairwise summation starts at 8).
_NUMPY_MEAN_FROM = 8


def _mean(values: list[float]) -> float:
    """The mean exactly as ``np.mean`` of a 1-D float64 array of ``values`` gives it (same float)."""
    n = len(values)
    if n >= _NUMPY_MEAN_FROM:
        return float(np.mean(np.asarray(values, dtype=np.float64)))
    total = values[0]
    for v in values[1:]:
        total += v
    return total / n
