"""``wrong_way``: sustained motion against a lane zone's allowed direction; one event per track.

The zone must have an ``allowed_direction`` (:class:`analytics.geometry.Zone`): a unit vector as seen on
screen, pixels, x right, y down (for a frame that is not square, ``(1, 1)`` is 45 degrees on screen).
:meth:`WrongWayConfig.check_geometry` rejects a zone without one at config load.

Measuring motion (per track, key = track id): only **confirmed** tracks (matched to a detection this
frame; a lost track's position is a prediction) of ``classes`` whose ground anchor (bottom centre of the
box) lies inside ``zone`` are observed. Between two observations of a track its anchor displacement is
split, in metres, into a component *along* the allowed direction and one *across* it:

* with the camera's ground calibration, both anchors go through the homography, and the allowed direction
  is mapped to the ground at the track's position (the anchor and a point 8 px further along the
  direction), so perspective is followed;
* without one, the pixel displacement is scaled by the class-height fallback
  (:func:`analytics.rules.scene.metres_per_px`: a car is assumed 1.5 m tall), in image axes: approximate,
  good enough for a 5 m threshold near the vehicle, not for precise distances.

A displacement is not counted (the track's position is simply taken as the new reference) when the track
was not observed in the zone for more than ``max_gap`` seconds before (it was hidden, or left the zone and
came back elsewhere: what it did meanwhile is unknown), or when it implies more than 60 m/s (an identity
switch of the tracker, not a motion).

A track's **run** measures its latest motion against the direction. It starts (its *origin*) at the
track's most advanced position along the allowed direction: whenever the track is at or beyond the run's
origin along the direction, the origin moves to the current position. It also restarts at the current
position when the track has moved with the allowed direction (positive along displacement) at every
observation for more than ``reset_grace`` seconds. From the origin, the run keeps:

* ``displacement``: how far the track is now behind the origin along the direction, metres (>= 0);
* ``moving_against``: seconds from the origin to the frame at which the track was furthest behind it
  (the time it spent moving against the direction, not the time it then stood still);
* ``angle``: degrees between the net motion since the origin and the allowed direction (180 = straight
  against).

The track goes **wrong way** at a frame when ``displacement >= min_displacement_m``, ``moving_against >=
min_duration`` and ``angle > min_angle_deg``: both a distance and a duration, so jitter, a car reversing a
metre or a velocity flipping sign for a moment never fire. A track first seen in the zone starts a run
there.

Events (:class:`analytics.rules.lasting.Lifecycle`, kind ``"wrong_way"``, ``zone_id`` = ``zone``): a track
(confirmed or lost, in the zone) that is wrong way **opens** an event at once, starting at its run's
origin; it is **updated** every 5 s while it stays wrong way, and **closed** ``end_grace`` seconds after it
last was (it left the zone or the frame, its track ended, or it turned round), with ``end`` that last
time. A track is reported once: it opens no second event while the rule remembers it (until it has not been
observed in the zone for ``forget_after`` seconds). :meth:`WrongWayRule.close` closes the events still open
at the end of a stream.

Evidence: ``class``, ``displacement_m``, ``moving_against_s``, ``angle_deg``, ``speed_mps`` (the track's
ground speed now, :func:`analytics.rules.scene.ground_speed`), ``mean_speed_mps`` (``displacement_m /
moving_against_s``), ``speed_source`` (``"calibrated"`` or ``"fallback"``), the thresholds
``min_displacement_m``, ``min_duration`` and ``min_angle_deg``, and ``duration`` (``end - start``, added by
the life cycle).

Score, saturating in the displacement beyond the threshold::

    score = min(1, 0.5 + 0.5 * (displacement - min_displacement_m) / min_displacement_m)

0.5 at the threshold, 1 from twice ``min_displacement_m``; the event keeps its best score.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from analytics.geometry import SceneGeometry, apply_homography
from analytics.rules.base import Event, RuleConfigBase, RuleContext
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState
from analytics.rules.scene import ground_speed, metres_per_px, present
from analytics.types import CLASS_IDS, CLASS_NAMES, TrackState, Tracks, check_class_names, class_ids_from_names

#: Pixels along the allowed direction used to map it to the ground at a track's anchor.
_DIRECTION_STEP_PX = 8.0
#: Metres per second above which a displacement between two observations is an identity switch.
_MAX_SPEED_MPS = 60.0


class WrongWayConfig(RuleConfigBase):
    """Config of one wrong-way rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["wrong_way"] = Field(description="rule type selector")
    zone: str = Field(description="id of the lane zone in the camera's scene geometry; it must have an "
                      "allowed_direction")
    classes: tuple[str, ...] = Field(("car", "bus", "truck", "motorcycle", "bicycle"),
                                     description=f"class names watched, any of {sorted(CLASS_IDS)}")
    min_displacement_m: float = Field(5.0, gt=0.0, description="metres a track must move against the allowed "
                                      "direction (along it, net); ground metres with a calibration, the "
                                      "class-height fallback without; range 2-20")
    min_duration: float = Field(2.0, gt=0.0, description="seconds a track must keep moving against the "
                                "direction; range 1-10")
    min_angle_deg: float = Field(120.0, ge=90.0, lt=180.0, description="degrees between the net motion and the "
                                 "allowed direction above which the motion is against it (180 = straight "
                                 "against); range 100-170")
    reset_grace: float = Field(1.0, ge=0.0, description="seconds of steady motion with the allowed direction "
                               "that restart a track's against-motion run; range 0.5-3")
    max_gap: float = Field(1.0, gt=0.0, description="seconds without an observation in the zone after which the "
                           "displacement across the gap is not counted (occlusion, leaving and re-entering the "
                           "zone); range 0.5-3")
    end_grace: float = Field(2.0, ge=0.0, description="seconds a wrong-way track may be unseen or out of the "
                             "zone before its event closes; range 1-5")
    forget_after: float = Field(10.0, gt=0.0, description="seconds after which a track not observed in the zone "
                                "is forgotten (and could be reported again); >= end_grace; range 5-60")

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)

    @model_validator(mode="after")
    def _forget_after_end(self) -> WrongWayConfig:
        if self.forget_after < self.end_grace:
            raise ValueError(f"forget_after ({self.forget_after}) must be >= end_grace ({self.end_grace})")
        return self

    def check_geometry(self, geometry: SceneGeometry) -> None:
        """The zone must exist and have an allowed direction."""
        super().check_geometry(geometry)
        if geometry.zone(self.zone).allowed_direction is None:
            raise ValueError(f"rule {self.id!r}: wrong_way needs zone {self.zone!r} to have an allowed_direction "
                             "(the lane's direction of travel on screen, e.g. [0, 1] for downwards)")


@dataclass(frozen=True, eq=False)
class Runs:
    """Per-track runs of one wrong-way rule, rows sorted by track id (arrays never written after creation).

    Attributes:
        track_id: (K,) int64, ascending.
        last_px: (K, 2) float64, anchor at the last observation, pixels.
        last_seen: (K,) float64, seconds, last observation in the zone.
        origin_at: (K,) float64, seconds, when the track was at the run's origin.
        along: (K,) float64, metres along the allowed direction from the origin (<= 0: behind it).
        across: (K,) float64, metres across the direction from the origin (signed).
        furthest: (K,) float64, the most negative ``along`` of the run, metres.
        furthest_at: (K,) float64, seconds, when ``furthest`` was reached.
        with_since: (K,) float64, seconds, start of the current streak of moves with the direction; NaN
            when the last move was not with it.
        reported: (K,) bool, the track has had an event.
    """

    track_id: np.ndarray
    last_px: np.ndarray
    last_seen: np.ndarray
    origin_at: np.ndarray
    along: np.ndarray
    across: np.ndarray
    furthest: np.ndarray
    furthest_at: np.ndarray
    with_since: np.ndarray
    reported: np.ndarray

    @classmethod
    def empty(cls) -> Runs:
        z = np.zeros(0)
        return cls(np.zeros(0, np.int64), np.zeros((0, 2)), z, z, z, z, z, z, z, np.zeros(0, bool))

    def rows(self, index: np.ndarray) -> Runs:
        """The rows at ``index`` (mask or indices), as a new :class:`Runs`."""
        return Runs(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True)
class WrongWayState:
    """State of one wrong-way rule: the per-track runs and the open events (by track id)."""

    runs: Runs = field(default_factory=Runs.empty)
    life: LifecycleState = field(default_factory=LifecycleState)


def _class_lookup(class_ids: tuple[int, ...]) -> np.ndarray:
    """(32768,) bool indexed by an int16 class id: whether it is watched (much faster than ``np.isin``)."""
    lut = np.zeros(1 << 15, bool)
    lut[list(class_ids)] = True
    return lut


def _anchors(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) float64 ground anchors (bottom centre) of (N, 4) boxes, pixels."""
    return np.column_stack(((xyxy[:, 0] + xyxy[:, 2]) * 0.5, xyxy[:, 3])).astype(np.float64)


def _increments(prev_px: np.ndarray, now_px: np.ndarray, scale: np.ndarray | None, direction: np.ndarray,
                context: RuleContext) -> tuple[np.ndarray, np.ndarray]:
    """Displacement from ``prev_px`` to ``now_px`` (both (N, 2) pixels), metres along and across the direction.

    Args:
        scale: (N,) fallback metres per pixel (used without a calibration only).

    Returns:
        ((N,), (N,)) float64: along (positive = with the allowed direction), across (signed).
    """
    cal = context.geometry.calibration
    if cal is None:
        d = (now_px - prev_px) * scale[:, None]
        unit = np.broadcast_to(direction, d.shape)
    else:
        size = np.asarray(context.frame_size, dtype=np.float64)
        points = np.concatenate([now_px, now_px + direction * _DIRECTION_STEP_PX, prev_px]) / size
        here, ahead, before = np.split(apply_homography(points, cal.homography), 3)
        d = here - before
        unit = ahead - here
        unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    along = d[:, 0] * unit[:, 0] + d[:, 1] * unit[:, 1]
    across = unit[:, 0] * d[:, 1] - unit[:, 1] * d[:, 0]
    return along, across


def _lookup(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where ``ids`` are in the ascending ``sorted_ids``: (index (N,) int, known (N,) bool); index 0 if unknown."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    idx = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return idx, sorted_ids[idx] == ids


def _blank(n: int) -> Runs:
    """``n`` rows standing for tracks the runs do not know (every field is replaced on a reset)."""
    z = np.zeros(n)
    return Runs(np.zeros(n, np.int64), np.zeros((n, 2)), z, z, z, z, z, z, np.full(n, np.nan), np.zeros(n, bool))


def _advance(runs: Runs, ids: np.ndarray, now_px: np.ndarray, scale: np.ndarray | None, now: float, *,
             direction: np.ndarray, reset_grace: float, max_gap: float, context: RuleContext) -> Runs:
    """New runs of the tracks observed now.

    Args:
        runs: the previous runs (not mutated).
        ids: (N,) int64 ascending, tracks observed now (confirmed, in the zone).
        now_px: (N, 2) float64 their anchors, pixels.
        scale: (N,) their fallback metres per pixel, or None with a calibration.
    """
    idx, known = _lookup(runs.track_id, ids)
    prev = runs.rows(idx) if len(runs.track_id) else _blank(len(ids))
    ds, dc = _increments(np.where(known[:, None], prev.last_px, now_px), now_px, scale, direction, context)
    gap = now - prev.last_seen
    valid = known & (gap <= max_gap) & (np.hypot(ds, dc) <= _MAX_SPEED_MPS * gap)
    ds, dc = np.where(valid, ds, 0.0), np.where(valid, dc, 0.0)
    along, across = prev.along + ds, prev.across + dc
    with_move = known & (ds > 0)
    streak_start = np.where(np.isnan(prev.with_since), prev.last_seen, prev.with_since)
    with_since = np.where(with_move, streak_start, np.nan)
    reset = ~known | (along >= 0) | (with_move & (now - with_since > reset_grace))
    deeper = ~reset & (along < prev.furthest)
    return Runs(
        track_id=ids,
        last_px=now_px,
        last_seen=np.full(len(ids), float(now)),
        origin_at=np.where(reset, now, prev.origin_at),
        along=np.where(reset, 0.0, along),
        across=np.where(reset, 0.0, across),
        furthest=np.where(reset, 0.0, np.where(deeper, along, prev.furthest)),
        furthest_at=np.where(reset | deeper, now, prev.furthest_at),
        with_since=with_since,
        reported=known & prev.reported,
    )


def _merge(old: Runs, cur: Runs, *, now: float, forget_after: float) -> Runs:
    """Rows of ``cur`` plus those of ``old`` not observed now and observed within ``forget_after``; by id."""
    stale = ~_lookup(cur.track_id, old.track_id)[1] & (now - old.last_seen <= forget_after)
    if not stale.any():
        return cur
    kept = old.rows(stale)
    if len(cur.track_id) == 0:
        return kept
    ids = np.concatenate([cur.track_id, kept.track_id])
    order = np.argsort(ids, kind="stable")
    return Runs(**{f.name: np.concatenate([getattr(cur, f.name), getattr(kept, f.name)])[order]
                   for f in fields(Runs)})


class WrongWayRule:
    """Pure wrong-way rule; see the module docstring for the semantics."""

    def __init__(self, config: WrongWayConfig) -> None:
        self.config = config
        self._wanted = _class_lookup(class_ids_from_names(config.classes))
        self._lifecycle = Lifecycle("wrong_way", config.id, 0.0, config.end_grace)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> WrongWayState:
        return WrongWayState()

    def close(self, state: WrongWayState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open events at the last time each track was wrong way."""
        return self._lifecycle.close_all(state.life, now, context=context)

    def step(self, tracks: Tracks, state: WrongWayState, now: float, *,
             context: RuleContext) -> tuple[WrongWayState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by track id."""
        zone = context.geometry.zone(self.config.zone)
        if zone.allowed_direction is None:
            raise ValueError(f"rule {self.id!r}: zone {zone.id!r} has no allowed_direction")
        keep = self._wanted[tracks.class_id] & present(tracks)
        idle = len(state.runs.track_id) == 0 and not state.life.episodes
        if idle and not keep.any():
            return state, []
        rows = np.flatnonzero(keep)
        anchor = _anchors(tracks.xyxy[rows])
        if len(rows):
            inside = zone.contains(anchor, context.frame_size)
            rows, anchor = rows[inside], anchor[inside]
        if idle and len(rows) == 0:
            return state, []
        order = np.argsort(tracks.track_id[rows], kind="stable")
        sel, anchor = tracks[rows[order]], anchor[order]
        seen = sel.state == TrackState.CONFIRMED
        scale = metres_per_px(sel)[seen] if context.geometry.calibration is None else None
        cur = _advance(state.runs, sel.track_id[seen], anchor[seen], scale, now,
                       direction=np.asarray(zone.allowed_direction, dtype=np.float64),
                       reset_grace=self.config.reset_grace, max_gap=self.config.max_gap, context=context)
        runs = _merge(state.runs, cur, now=now, forget_after=self.config.forget_after)
        candidates = self._candidates(runs, sel, state.life, context) if len(sel) else []
        life, events = self._lifecycle.advance(state.life, candidates, now, context=context)
        if life.episodes:
            opened = _lookup(np.sort(np.fromiter(life.episodes, np.int64)), runs.track_id)[1]
            if (opened & ~runs.reported).any():
                runs = replace(runs, reported=runs.reported | opened)
        return WrongWayState(runs, life), events

    def _candidates(self, runs: Runs, sel: Tracks, life: LifecycleState,
                    context: RuleContext) -> list[Candidate]:
        """Present tracks in the zone that are wrong way now (and not yet reported, unless their event is open)."""
        cfg = self.config
        if len(runs.track_id) == 0:
            return []
        idx, known = _lookup(runs.track_id, sel.track_id)
        displacement = -runs.along[idx]
        against_s = runs.furthest_at[idx] - runs.origin_at[idx]
        wrong = known & (displacement >= cfg.min_displacement_m) & (against_s >= cfg.min_duration)
        if not wrong.any():
            return []
        angle = np.degrees(np.arctan2(np.abs(runs.across[idx]), runs.along[idx]))
        fresh = ~runs.reported[idx] | np.array([t in life.episodes for t in sel.track_id.tolist()], bool)
        rows = np.flatnonzero(wrong & (angle > cfg.min_angle_deg) & fresh)
        if len(rows) == 0:
            return []
        speed = ground_speed(sel[rows], context)
        source = "calibrated" if context.geometry.calibration is not None else "fallback"
        out = []
        for k, i in enumerate(rows.tolist()):
            tid = int(sel.track_id[i])
            name = CLASS_NAMES.get(int(sel.class_id[i]), str(int(sel.class_id[i])))
            disp, secs = float(displacement[i]), float(against_s[i])
            evidence: dict[str, Any] = {
                "class": name,
                "displacement_m": round(disp, 2),
                "moving_against_s": round(secs, 3),
                "angle_deg": round(float(angle[i]), 1),
                "speed_mps": round(float(speed[k]), 2),
                "mean_speed_mps": round(disp / secs, 2),
                "speed_source": source,
                "min_displacement_m": cfg.min_displacement_m,
                "min_duration": cfg.min_duration,
                "min_angle_deg": cfg.min_angle_deg,
            }
            score = min(1.0, 0.5 + 0.5 * (disp - cfg.min_displacement_m) / cfg.min_displacement_m)
            since = float(runs.origin_at[idx[i]])
            out.append(Candidate(tid, since, (tid,), (name,), score, evidence, zone_id=cfg.zone))
        return out
