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

from functools import lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field

from analytics.geometry import GroundCalibration, SceneGeometry, Zone, dlt_homography
from analytics.rules.base import Event, RuleConfigBase, RuleContext, event_id, frame_view
from analytics.rules.loitering import counted_rows
from analytics.rules.view import LogFrames
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, class_ids_from_names

#: Seconds between ``updated`` records of an open event (as :class:`analytics.rules.lasting.Lifecycle`).
UPDATE_EVERY = 5.0
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


class _OccupancyFields(NamedTuple):
    timer: tuple[float, float] | None
    peak_count: int
    episode: tuple | None
    next_event: int


# The open event, as a plain tuple: (event id, start, last_true, last_emit, best_score, best_seq, then the
# condition at last_true: track ids and class ids of the counted rows in row order, peak count, zone area).
_ID, _START, _LAST, _EMIT, _BEST, _SEQ, _IDS, _CIDS, _PEAK, _AREA = range(10)


class OccupancyState(_OccupancyFields):
    """State of one occupancy rule (immutable: a tuple, built cheaply once per frame).

    Attributes:
        timer: (since, last_true) while the measure is (or was, within ``grace``) above the threshold
            (:func:`analytics.rules.lasting.update_timers` for the rule's single key), else None.
        peak_count: highest count since the timer or the event began (0 when neither runs).
        episode: the open event, if any: (event id, start, last_true, last_emit, best_score, best_seq, track
            ids, class ids, peak count, zone area), the last four as of ``last_true`` (the members and
            evidence of its records, built only when one is emitted).
        next_event: counter of the next event id.
    """

    __slots__ = ()

    def __new__(cls, timer: tuple[float, float] | None = None, peak_count: int = 0, episode: tuple | None = None,
                next_event: int = 0) -> OccupancyState:
        return tuple.__new__(cls, (timer, peak_count, episode, next_event))


_new = tuple.__new__  # builds a state from its fields without the defaults' checks


class OccupancyRule:
    """Pure occupancy rule; see the module docstring for the semantics.

    Speed: the counted rows (present, of ``classes``, in the zone) are a column of the frame's shared
    :class:`~analytics.rules.view.FrameView` (computed once for the whole log in a replay), so the count
    is one call; the life cycle of :class:`analytics.rules.lasting.Lifecycle` (``update_on_members`` off) is
    inlined for the rule's single key, and the members and evidence are only built when a record is emitted.
    """

    def __init__(self, config: OccupancyConfig) -> None:
        self.config = config
        self._wanted = frozenset(class_ids_from_names(config.classes))
        self._counted = counted_rows(config.zone, self._wanted)
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

    def replay(self, frames: LogFrames, camera_id: str) -> list[tuple[int, Event]] | None:
        """Every event of a whole log at once (:class:`analytics.rules.base.Replays`): exactly those of
        :meth:`step` on every frame and :meth:`close` at the end.

        The count per frame is one column operation; the steps are then run on plain numbers, from the first
        frame above the threshold to the end of what it starts, skipping the frames between (where a step
        changes nothing); members are read only for the records. Returns None when ``per_m2`` has no area
        (the step names the problem).
        """
        cfg = self.config
        n = len(frames)
        counted = frames.column(*self._counted)
        counts = frames.count(counted)
        area = self._area(RuleContext(camera_id, (0, 0), 0, frames.geometry))
        if cfg.per_m2 and area is None:
            return None
        threshold, end_ratio, grace, end_grace = self._threshold, cfg.end_ratio, cfg.grace, cfg.end_grace
        measures = counts / area if cfg.per_m2 else counts.astype(np.float64)  # the floats of the step
        nxt = frames.next_flagged(measures > threshold)  # the first frame above at or after each frame
        count_of, measure_of, time_of, seq = counts.tolist(), measures.tolist(), frames.time.tolist(), frames.seq.tolist()
        rows = np.flatnonzero(counted)
        first = np.zeros(len(counted) + 1, dtype=np.int64)
        np.cumsum(counted, out=first[1:])
        lo, hi = first[frames.starts].tolist(), first[frames.ends].tolist()  # each frame's counted rows in rows
        track_id, class_id = frames.tracks.track_id, frames.tracks.class_id

        def record(ep: list, status: str, end: float) -> Event:
            r = rows[lo[ep[6]]:hi[ep[6]]]
            full = (ep[0], ep[1], ep[2], ep[3], ep[4], ep[5], tuple(track_id[r].tolist()),
                    tuple(class_id[r].tolist()), ep[7], area)
            return self._event(full, status, end, context)

        context = RuleContext(camera_id, (0, 0), 0, frames.geometry)
        events: list[tuple[int, Event]] = []
        timer: tuple[float, float] | None = None
        ep: list | None = None  # [id, start, last_true, last_emit, best, best_seq, frame of last_true, peak]
        peak = counter = 0
        f = nxt[0]
        while f < n:
            now, count, measure = time_of[f], count_of[f], measure_of[f]
            above = measure > threshold
            if above:
                timer = (now if timer is None else timer[0], now)
            elif timer is not None and now - timer[1] > grace:
                timer = None
            if count > peak:
                peak = count
            if ep is not None:
                if measure >= end_ratio * threshold:
                    score = saturating(measure / threshold)
                    if score > ep[4]:
                        ep[4], ep[5] = score, seq[f]
                    ep[2], ep[6], ep[7] = now, f, peak
                    if now - ep[3] >= UPDATE_EVERY:
                        ep[3] = now
                        events.append((f, record(ep, "updated", now)))
                elif now - ep[2] >= end_grace:
                    events.append((f, record(ep, "closed", ep[2])))
                    ep, timer = None, None
            elif above and now - timer[0] >= cfg.min_duration:
                ep = [event_id(camera_id, cfg.id, counter), min(timer[0], now), now, now,
                      saturating(measure / threshold), seq[f], f, peak]
                counter += 1
                events.append((f, record(ep, "open", now)))
            if timer is None and ep is None:
                peak = 0
                f = nxt[f + 1]  # nothing runs: the next frame above
            else:
                f += 1
        if ep is not None:
            events.append((n, record(ep, "closed", ep[2])))
        return events

    def step(self, tracks: Tracks, state: OccupancyState, now: float, *,
             context: RuleContext) -> tuple[OccupancyState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        timer, peak, ep, counter = state
        active = timer is not None or ep is not None
        if not active and not len(tracks):
            return state, []
        counted = frame_view(tracks, context).column(*self._counted)
        count = int(np.count_nonzero(counted))
        if count == 0 and not active:
            return state, []
        cfg = self.config
        area = self._area(context)
        if cfg.per_m2 and area is None:
            raise ValueError(f"rule {self.id!r}: per_m2 needs a zone below the horizon and a ground calibration "
                             "(see OccupancyConfig.check_geometry)")
        measure = count / area if cfg.per_m2 else float(count)
        threshold = self._threshold
        above = measure > threshold
        if not active and not above:  # nothing runs and nothing starts: the state stays as it is
            return state, []
        # the timer (analytics.rules.lasting.update_timers for the single key)
        if above:
            timer = (now if timer is None else timer[0], now)
        elif timer is not None and now - timer[1] > cfg.grace:
            timer = None
        if count > peak:
            peak = count
        # the life cycle (analytics.rules.lasting.Lifecycle.advance for the single key)
        events: list[Event] = []
        if ep is not None:
            if measure >= cfg.end_ratio * threshold:  # holds (the relaxed condition)
                score = saturating(measure / threshold)
                best, best_seq = (score, context.seq) if score > ep[_BEST] else (ep[_BEST], ep[_SEQ])
                emit = now - ep[_EMIT] >= UPDATE_EVERY
                ep = (ep[_ID], ep[_START], now, now if emit else ep[_EMIT], best, best_seq,
                      tuple(tracks.track_id[counted].tolist()), tuple(tracks.class_id[counted].tolist()), peak, area)
                if emit:
                    events.append(self._event(ep, "updated", now, context))
            elif now - ep[_LAST] >= cfg.end_grace:
                events.append(self._event(ep, "closed", ep[_LAST], context))
                ep, timer = None, None  # closed: a new event needs a new min_duration
        elif above and now - timer[0] >= cfg.min_duration:
            since = timer[0]
            ep = (event_id(context.camera_id, cfg.id, counter), min(since, now), now, now,
                  saturating(measure / threshold), context.seq, tuple(tracks.track_id[counted].tolist()),
                  tuple(tracks.class_id[counted].tolist()), peak, area)
            counter += 1
            events.append(self._event(ep, "open", now, context))
        if timer is None and ep is None:
            peak = 0
        return _new(OccupancyState, (timer, peak, ep, counter)), events

    def _event(self, ep: tuple, status: str, end: float, context: RuleContext) -> Event:
        """A record of the open event ``ep``: its members and evidence are the condition at its last_true."""
        track_id, class_id = ep[_IDS], ep[_CIDS]
        rows = sorted(range(len(track_id)), key=track_id.__getitem__)  # stable, like an argsort
        n, peak, area = len(rows), ep[_PEAK], ep[_AREA]
        evidence: dict[str, Any] = {
            "count": n, "peak_count": peak, "measure": self._measure,
            "threshold": self._threshold, "end_threshold": self._end_threshold, "zone": self._zone_label,
        }
        if area is not None:
            evidence.update(zone_area_m2=round(area, 3), density=round(n / area, 4),
                            peak_density=round(peak / area, 4))
        evidence["duration"] = round(end - ep[_START], 3)
        return Event(id=ep[_ID], kind="occupancy", rule_id=self.config.id, camera_id=context.camera_id,
                     status=status, start=ep[_START], end=end, member_ids=tuple([track_id[i] for i in rows]),
                     classes=tuple([CLASS_NAMES.get(class_id[i], str(class_id[i])) for i in rows]),
                     score=min(max(float(ep[_BEST]), 0.0), 1.0), evidence=evidence, best_frame_seq=ep[_SEQ],
                     zone_id=self.config.zone)

    def close(self, state: OccupancyState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open event at the last time its condition held."""
        ep = state.episode
        return [] if ep is None else [self._event(ep, "closed", ep[_LAST], context)]
