"""``speeding``: a vehicle above the speed limit for at least ``min_duration`` seconds; one event per track.

Needs the camera's **ground calibration** (``scene.calibration``): without one, speeds would rest on the
class-height fallback, far too rough to report a speed against a limit, so :meth:`SpeedingConfig.
check_geometry` rejects such a camera at config load (and :meth:`SpeedingRule.step` refuses it too).

What counts: **confirmed** tracks (matched to a detection this frame; a lost track's speed is a
prediction, not a measurement) of ``classes`` whose ground anchor (bottom centre of the box) lies inside
``zone`` (anywhere when ``zone`` is null). Speed: :func:`analytics.rules.scene.ground_speed`, the tracker's
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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from analytics.geometry import SceneGeometry
from analytics.rules.base import Event, RuleConfigBase, RuleContext
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.rules.scene import ground_speed
from analytics.types import CLASS_IDS, CLASS_NAMES, TrackState, Tracks, check_class_names, class_ids_from_names

_MPS_TO_KMH = 3.6


def _class_lookup(class_ids: tuple[int, ...]) -> np.ndarray:
    """(32768,) bool indexed by an int16 class id: whether it is watched (much faster than ``np.isin``)."""
    lut = np.zeros(1 << 15, bool)
    lut[list(class_ids)] = True
    return lut


def _anchors(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) float64 ground anchors (bottom centre) of (N, 4) boxes, pixels."""
    return np.column_stack(((xyxy[:, 0] + xyxy[:, 2]) * 0.5, xyxy[:, 3])).astype(np.float64)


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

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)

    def check_geometry(self, geometry: SceneGeometry) -> None:
        """The zone, if any, must exist, and the camera must have a ground calibration."""
        super().check_geometry(geometry)
        if geometry.calibration is None:
            raise ValueError(f"rule {self.id!r}: speeding needs a ground calibration (scene.calibration); this "
                             "camera has none, and the class-height fallback is too rough for a speed limit")


@dataclass(frozen=True)
class SpeedingState:
    """State of one speeding rule (immutable: the mappings are never modified after creation).

    Attributes:
        timers: track id -> (since, last_true), seconds: the tracks' over-the-limit runs.
        stats: track id -> (frames, sum of speeds, max speed), m/s, over the frames of the run (or of the
            open event) that were over the limit.
        life: the open events, by track id.
    """

    timers: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    stats: Mapping[int, tuple[int, float, float]] = field(default_factory=dict)
    life: LifecycleState = field(default_factory=LifecycleState)


class SpeedingRule:
    """Pure speeding rule; see the module docstring for the semantics."""

    def __init__(self, config: SpeedingConfig) -> None:
        self.config = config
        self._wanted = _class_lookup(class_ids_from_names(config.classes))
        self._lifecycle = Lifecycle("speeding", config.id, config.min_duration, config.end_grace)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> SpeedingState:
        return SpeedingState()

    def close(self, state: SpeedingState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open events at the last time each track was over the limit."""
        return self._lifecycle.close_all(state.life, now, context=context)

    def step(self, tracks: Tracks, state: SpeedingState, now: float, *,
             context: RuleContext) -> tuple[SpeedingState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by track id."""
        if context.geometry.calibration is None:
            raise ValueError(f"rule {self.id!r}: speeding needs a ground calibration (scene.calibration)")
        keep = self._wanted[tracks.class_id] & (tracks.state == TrackState.CONFIRMED)
        if not keep.any() and not state.timers and not state.life.episodes:
            return state, []
        rows = np.flatnonzero(keep)
        if self.config.zone is not None and len(rows):
            zone = context.geometry.zone(self.config.zone)
            rows = rows[zone.contains(_anchors(tracks.xyxy[rows]), context.frame_size)]
        sel = tracks[rows]
        speed = ground_speed(sel, context)
        over = speed > self.config.max_speed_mps + self.config.tolerance_mps
        if not over.any() and not state.timers and not state.life.episodes:
            return state, []
        order = np.argsort(sel.track_id[over], kind="stable")
        ids = sel.track_id[over][order].tolist()
        cls = sel.class_id[over][order].tolist()
        speeds = speed[over][order].tolist()
        timers = update_timers(state.timers, ids, now, grace=self.config.grace)
        stats = _accumulate(state, timers, ids, speeds, now)
        candidates = [self._candidate(tid, timers[tid][0], CLASS_NAMES.get(c, str(c)), v, stats[tid])
                      for tid, c, v in zip(ids, cls, speeds)]
        life, events = self._lifecycle.advance(state.life, candidates, now, context=context)
        kept = {k: v for k, v in stats.items() if k in timers or k in life.episodes}
        return SpeedingState(timers, kept, life), events

    def _candidate(self, tid: int, since: float, name: str, speed: float,
                   stat: tuple[int, float, float]) -> Candidate:
        """A track over the limit at this frame, with its score and evidence."""
        limit = self.config.max_speed_mps
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
        }
        score = min(1.0, max(0.0, 2.0 * (speed - limit) / limit))
        return Candidate(tid, since, (tid,), (name,), score, evidence, zone_id=self.config.zone)


def _accumulate(state: SpeedingState, timers: Mapping[int, tuple[float, float]], ids: list[int],
                speeds: list[float], now: float) -> dict[int, tuple[int, float, float]]:
    """Per-track (frames, sum, max) of the speeds over the limit: restarted when a run starts with no open event."""
    opened = state.life.episodes
    stats = {k: v for k, v in state.stats.items() if k in timers or k in opened}
    for tid, v in zip(ids, speeds):
        prev = stats.get(tid)
        if prev is None or (timers[tid][0] == now and tid not in opened):
            stats[tid] = (1, v, v)
        else:
            stats[tid] = (prev[0] + 1, prev[1] + v, max(prev[2], v))
    return stats
