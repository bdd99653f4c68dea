"""``congestion``: a queue of slow vehicles in a lane zone; at most one event at a time per rule (key 0).

What counts: present tracks (confirmed, or lost = predicted for a moment after their last detection, which
matters in a queue where vehicles hide each other; tentative tracks are ignored, see
:mod:`analytics.rules.scene`) of ``classes`` whose ground anchor (bottom centre of the box) lies inside
``zone``. A vehicle is **slow** when its ground speed is below ``max_speed_mps``.

Speeds come from :func:`analytics.rules.scene.ground_speed` (the tracker's smoothed anchor velocity mapped to
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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from analytics.rules.base import Event, RuleConfigBase, RuleContext
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.rules.scene import ground_speed, present
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, check_class_names, class_ids_from_names

#: The one key of the rule's condition (one congestion per rule and zone).
_KEY = 0


def _class_lookup(class_ids: tuple[int, ...]) -> np.ndarray:
    """(32768,) bool indexed by an int16 class id: whether it is watched (much faster than ``np.isin``)."""
    lut = np.zeros(1 << 15, bool)
    lut[list(class_ids)] = True
    return lut


def _anchors(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) float64 ground anchors (bottom centre) of (N, 4) boxes, pixels."""
    return np.column_stack(((xyxy[:, 0] + xyxy[:, 2]) * 0.5, xyxy[:, 3])).astype(np.float64)


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

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)


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
    """Pure congestion rule; see the module docstring for the semantics."""

    def __init__(self, config: CongestionConfig) -> None:
        self.config = config
        self._wanted = _class_lookup(class_ids_from_names(config.classes))
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

    def step(self, tracks: Tracks, state: CongestionState, now: float, *,
             context: RuleContext) -> tuple[CongestionState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        keep = self._wanted[tracks.class_id] & present(tracks)
        idle = not state.timers and not state.life.episodes
        if idle and not keep.any():
            return state, []
        rows = np.flatnonzero(keep)
        if len(rows):
            zone = context.geometry.zone(self.config.zone)
            rows = rows[zone.contains(_anchors(tracks.xyxy[rows]), context.frame_size)]
        if idle and len(rows) < self.config.min_vehicles:
            return state, []
        vehicles = tracks[rows]
        speed = ground_speed(vehicles, context)
        slow = speed < self.config.max_speed_mps
        holds = int(np.count_nonzero(slow)) >= self.config.min_vehicles
        timers = update_timers(state.timers, [_KEY] if holds else [], now, grace=self.config.start_grace)
        candidates = [self._candidate(vehicles, speed, slow, timers[_KEY][0], state, now, context)] if holds else []
        life, events = self._lifecycle.advance(state.life, candidates, now, context=context)
        return CongestionState(timers, life), events

    def _candidate(self, vehicles: Tracks, speed: np.ndarray, slow: np.ndarray, since: float,
                   state: CongestionState, now: float, context: RuleContext) -> Candidate:
        """The congestion at this frame: the slow vehicles (by track id), score and evidence."""
        cfg = self.config
        order = np.argsort(vehicles.track_id[slow], kind="stable")
        ids = vehicles.track_id[slow][order].tolist()
        classes = tuple(CLASS_NAMES.get(c, str(c)) for c in vehicles.class_id[slow][order].tolist())
        open_ep = state.life.episodes.get(_KEY)
        held = now - (open_ep.start if open_ep is not None else since)
        n = len(ids)
        score = 0.5 * min(1.0, n / (2 * cfg.min_vehicles))
        score += 0.5 * (min(1.0, held / (3 * cfg.min_duration)) if cfg.min_duration > 0 else 1.0)
        evidence: dict[str, Any] = {
            "slow_vehicles": n,
            "vehicles_in_zone": len(vehicles),
            "mean_speed_mps": round(float(speed.mean()), 2),
            "slow_mean_speed_mps": round(float(speed[slow].mean()), 2),
            "speed_source": "calibrated" if context.geometry.calibration is not None else "fallback",
            "max_speed_mps": cfg.max_speed_mps,
            "min_vehicles": cfg.min_vehicles,
            "min_duration": cfg.min_duration,
        }
        return Candidate(_KEY, since, tuple(ids), classes, min(score, 1.0), evidence, zone_id=cfg.zone)
