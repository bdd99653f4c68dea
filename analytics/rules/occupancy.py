"""``occupancy``: too many objects of a class in a zone (a crowded platform, a full square); one event per
period of over-occupancy.

What counts: present tracks (confirmed, or lost = predicted for a moment after their last detection;
tentative tracks are ignored, see :mod:`analytics.rules.view`) of ``classes`` whose ground anchor (bottom
centre of the box) lies inside ``zone`` (anywhere when ``zone`` is null). Each frame gives a **measure**:

* the **count** of those tracks, against ``max_count``; or
* with ``per_m2``, the **density**: count / the zone's area on the ground, people per square metre, against
  ``max_density``. The area comes from the camera's ground calibration: the zone's vertices are mapped to
  the ground by its homography and the shoelace formula gives the area (exact: a homography maps straight
  edges to straight edges). ``per_m2`` needs a zone and a calibration, and the zone must lie wholly on the
  ground side of the horizon; :meth:`OccupancyConfig.check_geometry` fails at config load otherwise.

Hysteresis (one key per rule):

* start: the measure must be **above** the threshold (``>``); :func:`analytics.rules.lasting.update_timers`
  keeps the time it began to be above through dips of up to ``grace`` seconds, and the event **opens** once
  that lasts ``min_duration`` seconds, starting when it began;
* end: once open, the condition is relaxed to ``measure >= end_ratio * threshold``; the event is
  **updated** when the tracks in the zone change (or every 5 s), and **closes** once the relaxed condition
  has not held for ``end_grace`` seconds, with ``end`` the last frame it held. A new event then needs a new
  ``min_duration`` above the threshold. :meth:`OccupancyRule.close` closes an open event at the end of a
  stream.

Members: the track ids in the zone at the last frame the condition held. Evidence: ``duration`` (seconds,
``end - start``), ``count``, ``peak_count`` (the highest count since the measure first went above the
threshold), ``measure`` (``"count"`` or ``"density"``), ``threshold`` and ``end_threshold`` (in the
measure's unit), ``zone`` (its id, or ``"frame"``), and with a zone and a calibration, whether or not
``per_m2`` is set: ``zone_area_m2``, ``density`` and ``peak_density`` (per m²).

Score: ``1 - 0.5 ** (measure / threshold)``: 0.5 at the threshold, 0.75 at twice it, towards 1; the event
keeps its best score (and the frame of it as its best frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from analytics.geometry import GroundCalibration, SceneGeometry, Zone, dlt_homography
from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, check_class_names, class_ids_from_names

#: The single key of the rule's condition.
_KEY = 0
#: Smallest |w| (homogeneous scale) of a zone vertex mapped to the ground, relative to the largest.
_HORIZON_TOL = 1e-6

Point = tuple[float, float]


def saturating(ratio: float) -> float:
    """``1 - 0.5 ** ratio`` clipped to [0, 1]: 0.5 at ratio 1, 0.75 at 2, towards 1."""
    return min(max(1.0 - 0.5 ** max(ratio, 0.0), 0.0), 1.0)


@lru_cache(maxsize=64)
def _ground_area(polygon: tuple[Point, ...], image_points: tuple[Point, ...],
                 ground_points: tuple[Point, ...]) -> float | None:
    """Area in m² on the ground of a polygon in normalised image coordinates, None when it reaches the horizon.

    Cached, with plain tuples as keys: the rule asks for it on every frame with people in the zone.
    """
    h = dlt_homography(np.asarray(image_points), np.asarray(ground_points))
    poly = np.asarray(polygon, dtype=np.float64)
    hom = np.concatenate([poly, np.ones((len(poly), 1))], axis=1) @ h.T
    w = hom[:, 2]
    if not (np.all(w > 0) or np.all(w < 0)) or np.min(np.abs(w)) < _HORIZON_TOL * np.max(np.abs(w)):
        return None
    g = hom[:, :2] / w[:, None]
    x, y = g[:, 0], g[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def zone_area_m2(zone: Zone, calibration: GroundCalibration) -> float:
    """Area of ``zone`` on the ground plane, square metres (shoelace on the homography of its vertices).

    Raises:
        ValueError: the zone reaches the calibration's horizon (its ground area is unbounded).
    """
    area = _ground_area(zone.polygon, calibration.image_points, calibration.ground_points)
    if area is None:
        raise ValueError(f"zone {zone.id!r} reaches the horizon of the ground calibration, so its area on the "
                         "ground is unbounded; keep the zone's polygon on the ground, below the horizon")
    return area


class OccupancyConfig(RuleConfigBase):
    """Config of one occupancy rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["occupancy"] = Field(description="rule type selector")
    zone: str | None = Field(description="id of the zone watched in the camera's scene geometry; null: the "
                             "whole frame (count only)")
    classes: tuple[str, ...] = Field(("person",), description=f"class names counted, any of {sorted(CLASS_IDS)}")
    max_count: int = Field(10, ge=1, description="the event needs more than this many objects in the zone "
                           "(when per_m2 is false); range 1-500")
    per_m2: bool = Field(False, description="compare the density (objects per m² of the zone on the ground) "
                         "with max_density instead of the count with max_count; needs a zone and a ground "
                         "calibration")
    max_density: float = Field(1.0, gt=0.0, description="the event needs a density above this, objects per m² "
                               "(when per_m2 is true); range 0.3-4 (about 2 is a dense crowd)")
    min_duration: float = Field(10.0, gt=0.0, description="seconds the measure must stay above the threshold "
                                "before the event opens; range 2-300")
    grace: float = Field(2.0, ge=0.0, description="seconds the measure may dip below the threshold without "
                         "restarting the min_duration timer; range 0-10")
    end_grace: float = Field(5.0, ge=0.0, description="seconds below end_ratio * threshold before an open event "
                             "closes; range 2-30")
    end_ratio: float = Field(0.8, gt=0.0, le=1.0, description="an open event stays open while the measure is at "
                             "least end_ratio * threshold (hysteresis on the end); range 0.5-1")

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)

    def check_geometry(self, geometry: SceneGeometry) -> None:
        """Also: ``per_m2`` needs a zone, a ground calibration and a zone below the horizon."""
        super().check_geometry(geometry)
        if not self.per_m2:
            return
        if self.zone is None:
            raise ValueError(f"rule {self.id!r}: per_m2 needs a zone (its ground area); zone is null")
        if geometry.calibration is None:
            raise ValueError(f"rule {self.id!r}: per_m2 needs the camera's ground calibration to measure the area "
                             f"of zone {self.zone!r}; add a calibration or set per_m2: false")
        try:
            zone_area_m2(geometry.zone(self.zone), geometry.calibration)
        except ValueError as exc:
            raise ValueError(f"rule {self.id!r}: {exc}") from None


@dataclass(frozen=True)
class OccupancyState:
    """State of one occupancy rule (immutable).

    Attributes:
        timers: {0: (since, last_true)} while the measure is (or was, within ``grace``) above the threshold.
        peak_count: highest count since the timer or the event began (0 when neither runs).
        life: the open event, if any (key 0).
    """

    timers: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    peak_count: int = 0
    life: LifecycleState = field(default_factory=LifecycleState)


class OccupancyRule:
    """Pure occupancy rule; see the module docstring for the semantics.

    Speed: zone membership comes from the frame's shared :class:`~analytics.rules.view.FrameView`, and the
    frame's few rows are selected in plain Python; a frame that can change nothing (nobody counted, or a
    count under the threshold, while nothing runs) returns the same state at once.
    """

    def __init__(self, config: OccupancyConfig) -> None:
        self.config = config
        self._wanted = frozenset(class_ids_from_names(config.classes))
        self._life = Lifecycle("occupancy", config.id, config.min_duration, config.end_grace,
                               update_on_members=False)
        self._threshold = config.max_density if config.per_m2 else float(config.max_count)
        self._end_threshold = round(config.end_ratio * self._threshold, 3)
        self._zone_label = config.zone if config.zone is not None else "frame"
        self._measure = "density" if config.per_m2 else "count"
        self._area_of: tuple[object, float | None] | None = None  # (geometry, its zone area): the last asked

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> OccupancyState:
        return OccupancyState()

    def _area(self, context: RuleContext) -> float | None:
        """The zone's ground area, m²; None without a zone, a calibration, or with a zone above the horizon."""
        geometry = context.geometry
        cached = self._area_of
        if cached is not None and cached[0] is geometry:
            return cached[1]
        cal = geometry.calibration
        if self.config.zone is None or cal is None:
            area = None
        else:
            area = _ground_area(geometry.zone(self.config.zone).polygon, cal.image_points, cal.ground_points)
        self._area_of = (geometry, area)  # a pure function of the (immutable) geometry
        return area

    def step(self, tracks: Tracks, state: OccupancyState, now: float, *,
             context: RuleContext) -> tuple[OccupancyState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        cfg = self.config
        active = bool(state.timers) or bool(state.life.episodes)
        if not active and not len(tracks):
            return state, []
        rows = self._rows(tracks, context)
        count = len(rows)
        if count == 0 and not active:
            return state, []
        area = self._area(context)
        if cfg.per_m2 and area is None:
            raise ValueError(f"rule {self.id!r}: per_m2 needs a zone below the horizon and a ground calibration "
                             "(see OccupancyConfig.check_geometry)")
        measure = count / area if cfg.per_m2 else float(count)
        above = measure > self._threshold
        if not active and not above:  # nothing runs and nothing starts: the state stays as it is
            return state, []
        timers = update_timers(state.timers, [_KEY] if above else [], now, grace=cfg.grace)
        is_open = _KEY in state.life.episodes
        holds = measure >= cfg.end_ratio * self._threshold if is_open else above
        peak = max(state.peak_count if active else 0, count)
        candidates = []
        if holds:
            candidates.append(self._candidate(tracks, rows, timers.get(_KEY, (now, now))[0], measure, peak, area))
        life, events = self._life.advance(state.life, candidates, now, context=context)
        if is_open and _KEY not in life.episodes:  # closed: a new event needs a new min_duration
            timers = {}
        still = bool(timers) or bool(life.episodes)
        return OccupancyState(timers, peak if still else 0, life), events

    def _rows(self, tracks: Tracks, context: RuleContext) -> list[int]:
        """Rows of the present tracks of ``classes`` whose ground anchor is in the zone (anywhere without one).

        Plain Python over the frame's few rows: cheaper than a chain of numpy calls at that size.
        """
        view = frame_view(tracks, context)
        wanted = self._wanted
        present = view.present().tolist()
        classes = tracks.class_id.tolist()
        if self.config.zone is None:
            return [i for i, (p, c) in enumerate(zip(present, classes)) if p and c in wanted]
        inside = view.in_zone(self.config.zone).tolist()
        return [i for i, (p, z, c) in enumerate(zip(present, inside, classes)) if p and z and c in wanted]

    def _candidate(self, tracks: Tracks, rows: list[int], since: float, measure: float, peak: int,
                   area: float | None) -> Candidate:
        """The condition at this frame: members are the tracks in the zone (``rows`` of ``tracks``)."""
        cfg = self.config
        track_id, class_id = tracks.track_id.tolist(), tracks.class_id.tolist()
        rows = sorted(rows, key=track_id.__getitem__)  # stable, like the argsort it replaces
        ids = tuple([track_id[i] for i in rows])
        classes = tuple([CLASS_NAMES.get(class_id[i], str(class_id[i])) for i in rows])
        n = len(ids)
        evidence: dict[str, Any] = {
            "count": n, "peak_count": peak, "measure": self._measure,
            "threshold": self._threshold, "end_threshold": self._end_threshold, "zone": self._zone_label,
        }
        if area is not None:
            evidence.update(zone_area_m2=round(area, 3), density=round(n / area, 4),
                            peak_density=round(peak / area, 4))
        return Candidate(key=_KEY, since=since, members=ids, classes=classes,
                         score=saturating(measure / self._threshold), evidence=evidence, zone_id=cfg.zone)

    def close(self, state: OccupancyState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open event at the last time its condition held."""
        return self._life.close_all(state.life, now, context=context)
