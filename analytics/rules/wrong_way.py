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
  (:meth:`analytics.rules.view.FrameView.metres_per_px`: a car is assumed 1.5 m tall), in image axes: approximate,
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
ground speed now, :meth:`analytics.rules.view.FrameView.ground_speed`), ``mean_speed_mps`` (``displacement_m /
moving_against_s``), ``speed_source`` (``"calibrated"`` or ``"fallback"``), the thresholds
``min_displacement_m``, ``min_duration`` and ``min_angle_deg``, and ``duration`` (``end - start``, added by
the life cycle).

Score, saturating in the displacement beyond the threshold::

    score = min(1, 0.5 + 0.5 * (displacement - min_displacement_m) / min_displacement_m)

0.5 at the threshold, 1 from twice ``min_displacement_m``; the event keeps its best score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from analytics.geometry import SceneGeometry, Zone, apply_homography
from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState
from analytics.rules.view import FrameView, LogFrames, _ground, _mpp
from analytics.types import CLASS_IDS, CLASS_NAMES, TrackState, Tracks, class_ids_from_names

#: Pixels along the allowed direction used to map it to the ground at a track's anchor.
_DIRECTION_STEP_PX = 8.0
#: Metres per second above which a displacement between two observations is an identity switch.
_MAX_SPEED_MPS = 60.0
_TENTATIVE, _CONFIRMED = int(TrackState.TENTATIVE), int(TrackState.CONFIRMED)
_RAD_TO_DEG = 180.0 / math.pi  # the factor of np.degrees


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


#: A track's run: (last x, last y, last_seen, origin_at, along, across, furthest, furthest_at, with_since,
#: reported, at); see :class:`Runs`. ``at``: ``(scene, frame size, X, Y)``, the last anchor on the ground
#: (calibrated scenes; None without), reused as the start of the next move while scene and size are the same.
_Run = tuple[float, float, float, float, float, float, float, float, float, bool, Any]


class Runs(NamedTuple):
    """Per-track runs of one wrong-way rule (immutable: ``by_id`` is never written after creation).

    Attributes:
        by_id: track id -> :data:`_Run`, the fields below for that track.
        oldest: seconds, at most the oldest ``last_seen`` in ``by_id`` (inf when empty): tracks to forget
            are looked for only once ``now - oldest`` exceeds ``forget_after``.

    Each field is also given as an array over the tracks sorted by id (the properties named in
    :attr:`COLUMNS`):

    * ``track_id``: (K,) int64, ascending.
    * ``last_px``: (K, 2) float64, anchor at the last observation, pixels.
    * ``last_seen``: (K,) float64, seconds, last observation in the zone.
    * ``origin_at``: (K,) float64, seconds, when the track was at the run's origin.
    * ``along``: (K,) float64, metres along the allowed direction from the origin (<= 0: behind it).
    * ``across``: (K,) float64, metres across the direction from the origin (signed).
    * ``furthest``: (K,) float64, the most negative ``along`` of the run, metres.
    * ``furthest_at``: (K,) float64, seconds, when ``furthest`` was reached.
    * ``with_since``: (K,) float64, seconds, start of the current streak of moves with the direction; NaN
      when the last move was not with it.
    * ``reported``: (K,) bool, the track has had an event.
    """

    by_id: Mapping[int, _Run] = {}  # noqa: RUF012 -- never written (a new dict when a run changes)
    oldest: float = math.inf

    COLUMNS = ("track_id", "last_px", "last_seen", "origin_at", "along", "across", "furthest", "furthest_at",
               "with_since", "reported")

    @classmethod
    def empty(cls) -> Runs:
        return cls({})

    def _column(self, k: int, dtype: Any = np.float64) -> np.ndarray:
        return np.array([self.by_id[t][k] for t in sorted(self.by_id)], dtype)

    track_id = property(lambda self: np.array(sorted(self.by_id), np.int64))
    last_px = property(lambda self: np.array([self.by_id[t][:2] for t in sorted(self.by_id)],
                                             np.float64).reshape(-1, 2))
    last_seen = property(lambda self: self._column(2))
    origin_at = property(lambda self: self._column(3))
    along = property(lambda self: self._column(4))
    across = property(lambda self: self._column(5))
    furthest = property(lambda self: self._column(6))
    furthest_at = property(lambda self: self._column(7))
    with_since = property(lambda self: self._column(8))
    reported = property(lambda self: self._column(9, bool))


class WrongWayState(NamedTuple):
    """State of one wrong-way rule: the per-track runs and the open events (by track id)."""

    runs: Runs = Runs()
    life: LifecycleState = LifecycleState()


class _Scene(NamedTuple):
    """What a step needs of the scene, looked up once per scene (see :meth:`WrongWayRule._scene`).

    Attributes:
        geometry: the scene it was taken from; zone: the lane zone; direction: its allowed direction (unit,
        pixels); homography: the calibration's 3x3 matrix as 9 floats, row by row, or None uncalibrated.
    """

    geometry: SceneGeometry
    zone: Zone
    direction: tuple[float, float]
    homography: tuple[float, ...] | None


def _div(a: float, b: float) -> float:
    """``a / b`` as numpy divides (inf or NaN when ``b`` is 0, no exception)."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _to_ground(x: float, y: float, h: tuple[float, ...]) -> tuple[float, float]:
    """One point through :func:`analytics.geometry.apply_homography`, with the same float operations."""
    h0, h1, h2, h3, h4, h5, h6, h7, h8 = h
    w = h6 * x + h7 * y + h8
    if w != 0.0:
        return (h0 * x + h1 * y + h2) / w, (h3 * x + h4 * y + h5) / w
    return _div(h0 * x + h1 * y + h2, w), _div(h3 * x + h4 * y + h5, w)


def _hypot_within(dx: float, dy: float, limit: float) -> bool:
    """``np.hypot(dx, dy) <= limit``: Python's hypot, or numpy's when the two are within rounding of it."""
    h = math.hypot(dx, dy)
    if abs(h - limit) <= 1e-9 * abs(limit):
        h = float(np.hypot(dx, dy))
    return h <= limit


def _advance_run(prev: _Run | None, x: float, y: float, now: float, move: tuple[float, float] | None, at: Any,
                 reset_grace: float, max_gap: float) -> _Run:
    """The run of a track observed now at anchor ``(x, y)`` pixels.

    Args:
        prev: its previous run, or None for a track the runs do not know.
        move: ``(along, across)`` metres from its previous anchor (:func:`_move_fallback`,
            :func:`_move_calibrated`); None when ``prev`` is None.
        at: the run's ``at`` (see :data:`_Run`).
    """
    if prev is None or move is None:
        return (x, y, now, now, 0.0, 0.0, 0.0, now, math.nan, False, at)
    last_seen, origin_at, along, across, furthest, furthest_at, with_since, reported = prev[2:10]
    ds, dc = move
    gap = now - last_seen
    if not (gap <= max_gap and _hypot_within(ds, dc, _MAX_SPEED_MPS * gap)):
        ds = dc = 0.0
    along, across = along + ds, across + dc
    with_move = ds > 0
    with_since = (last_seen if with_since != with_since else with_since) if with_move else math.nan
    if along >= 0 or (with_move and now - with_since > reset_grace):
        return (x, y, now, now, 0.0, 0.0, 0.0, now, with_since, reported, at)
    if along < furthest:
        return (x, y, now, origin_at, along, across, along, now, with_since, reported, at)
    return (x, y, now, origin_at, along, across, furthest, furthest_at, with_since, reported, at)


def _forget(by_id: dict[int, _Run], now: float, forget_after: float) -> tuple[dict[int, _Run], float]:
    """``by_id`` (a fresh dict, changed in place) without the tracks unseen for more than ``forget_after``
    seconds, and the oldest ``last_seen`` left (inf when empty)."""
    for tid in [t for t, r in by_id.items() if not now - r[2] <= forget_after]:
        del by_id[tid]
    return by_id, min((r[2] for r in by_id.values()), default=math.inf)


class WrongWayRule:
    """Pure wrong-way rule; see the module docstring for the semantics.

    Cost: a frame's handful of tracks are handled as Python values (cheaper than dozens of numpy calls on
    arrays of 6), with zone membership, ground positions, scales and speeds from the frame's shared view;
    the state is rebuilt only for the tracks observed, and a frame with no watched track in the zone and
    nothing to forget or close returns the state as it was.
    """

    def __init__(self, config: WrongWayConfig) -> None:
        self.config = config
        self._wanted = frozenset(class_ids_from_names(config.classes))
        self._lifecycle = Lifecycle("wrong_way", config.id, 0.0, config.end_grace)
        self._cached: _Scene | None = None

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> WrongWayState:
        return WrongWayState()

    def close(self, state: WrongWayState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close the open events at the last time each track was wrong way."""
        return self._lifecycle.close_all(state.life, now, context=context)

    def _scene(self, context: RuleContext) -> _Scene:
        """The zone, its direction and the homography; ValueError when the zone has no allowed direction."""
        cached = self._cached
        if cached is not None and cached.geometry is context.geometry:
            return cached
        zone = context.geometry.zone(self.config.zone)
        if zone.allowed_direction is None:
            raise ValueError(f"rule {self.id!r}: zone {zone.id!r} has no allowed_direction")
        cal = context.geometry.calibration
        h = None if cal is None else tuple(np.asarray(cal.homography, np.float64).reshape(9).tolist())
        direction = np.asarray(zone.allowed_direction, dtype=np.float64).tolist()
        self._cached = _Scene(context.geometry, zone, (direction[0], direction[1]), h)
        return self._cached

    def wakes(self, frames: LogFrames) -> np.ndarray:
        """Frames with a watched track in the zone (:class:`analytics.rules.base.Sleeps`)."""
        watched = frames.present() & np.isin(frames.tracks.class_id, sorted(self._wanted))
        return frames.count(watched & frames.in_zone(self.config.zone)) > 0

    def rows(self, frames: LogFrames) -> np.ndarray:
        """The rows of the tracks that could ever be wrong way (:class:`analytics.rules.base.Selects`).

        A run's displacement against the direction never exceeds the sum of the track's moves against it
        (each move between two observations of the track, its along-component when negative): moves with the
        direction, moves not counted (a gap, an implausible speed) and restarts only bring the run back. A
        track whose sum stays below ``min_displacement_m`` (less a margin for rounding) makes no event and
        changes nothing for the other tracks, so its rows are left out. All rows are kept when the log has
        several frame sizes or a track twice in a frame, and a track's when a move is not finite.
        """
        cfg, tracks = self.config, frames.tracks
        if len(frames.views) != 1:
            return np.ones(len(tracks), bool)
        walk = frames.walk((tracks.state == _CONFIRMED) & np.isin(tracks.class_id, sorted(self._wanted))
                           & frames.in_zone(cfg.zone))
        if walk is None:  # a track twice in a frame: its moves are not those between consecutive rows
            return np.ones(len(tracks), bool)
        observed, ids, same = walk.rows, walk.ids, walk.same
        cur, prev = observed[1:][same], observed[:-1][same]
        scene = self._scene(RuleContext("", frames.size_of[0], 0, frames.geometry))
        u0, u1 = scene.direction
        anchor = tracks.anchor.astype(np.float64)
        with np.errstate(all="ignore"):
            if scene.homography is None:
                scale = frames.column(("mpp", ""), _mpp)[cur]
                along = (anchor[cur, 0] - anchor[prev, 0]) * scale * u0 + (anchor[cur, 1] - anchor[prev, 1]) * scale * u1
            else:
                ground = frames.column(("ground", ""), _ground)
                wh = np.asarray(frames.size_of[0], dtype=np.float64)
                step = np.array([u0, u1]) * _DIRECTION_STEP_PX
                ahead = apply_homography((anchor[cur] + step) / wh, frames.geometry.calibration.homography)
                here = ground[cur]
                u = ahead - here
                u /= np.maximum(np.hypot(u[:, 0], u[:, 1]), 1e-12)[:, None]
                along = ((here - ground[prev]) * u).sum(axis=1)
            against = np.where(np.isfinite(along), np.maximum(-along, 0.0), np.inf)
        track_ids, which = np.unique(ids[1:][same], return_inverse=True)
        total = np.bincount(which, weights=against, minlength=len(track_ids))
        suspects = track_ids[~(total < cfg.min_displacement_m * (1.0 - 1e-6))]
        return np.isin(tracks.track_id, suspects)

    def asleep_until(self, state: WrongWayState) -> float:
        """Asleep for good while the rule remembers no track and has no open event; else every frame counts."""
        return math.inf if not state.runs.by_id and not state.life.episodes else -math.inf

    def step(self, tracks: Tracks, state: WrongWayState, now: float, *,
             context: RuleContext) -> tuple[WrongWayState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by track id."""
        cfg, scene = self.config, self._scene(context)
        runs, life = state.runs, state.life
        idle = not runs.by_id and not life.episodes
        wanted, tentative = self._wanted, _TENTATIVE
        cls = tracks.class_id.tolist()
        states = tracks.state.tolist()
        rows = [i for i, (c, s) in enumerate(zip(cls, states)) if s != tentative and c in wanted]
        if idle and not rows:
            return state, []
        view = frame_view(tracks, context)
        if rows:
            inside = view.in_zone(cfg.zone).tolist()
            rows = [i for i in rows if inside[i]]
        if idle and not rows:
            return state, []
        t = float(now)
        ids = tracks.track_id.tolist()
        by_id = self._observe(tracks, view, rows, ids, states, runs.by_id, t, scene) if rows else None
        oldest = runs.oldest if by_id is None or runs.oldest < t else t
        if t - oldest > cfg.forget_after:
            by_id, oldest = _forget(dict(runs.by_id) if by_id is None else by_id, t, cfg.forget_after)
        if by_id is not None:
            runs = Runs(by_id, oldest)
        candidates = self._candidates(runs, rows, ids, cls, view, life) if rows and runs.by_id else []
        life, events = self._lifecycle.advance(life, candidates, now, context=context)
        if life.episodes:
            runs = _mark_reported(runs, life)
        if runs is state.runs and life is state.life:
            return state, events
        return WrongWayState(runs, life), events

    def _observe(self, tracks: Tracks, view: FrameView, rows: list[int], ids: list[int], states: list[int],
                 old: Mapping[int, _Run], now: float, scene: _Scene) -> dict[int, _Run] | None:
        """The runs with those of the confirmed tracks among ``rows`` (watched, in the zone) advanced to
        ``now`` (a new dict), or None when none of them is confirmed."""
        confirmed, reset_grace, max_gap = _CONFIRMED, self.config.reset_grace, self.config.max_gap
        observed = [i for i in rows if states[i] == confirmed]
        if not observed:
            return None
        by_id = dict(old)
        anchor = tracks.anchor.tolist()
        calibrated, size = scene.homography is not None, view.frame_size
        ground = view.ground().tolist() if calibrated else None
        scale = None if calibrated else view.metres_per_px().tolist()
        for i in observed:
            tid, (x, y) = ids[i], anchor[i]
            prev = old.get(tid)
            at = (scene, size, *ground[i]) if calibrated else None
            move = None
            if prev is not None:
                if calibrated:
                    move = _move_calibrated(prev, x, y, at, scene)
                else:
                    move = _move_fallback(prev[0], prev[1], x, y, scale[i], scene.direction)
            by_id[tid] = _advance_run(prev, x, y, now, move, at, reset_grace, max_gap)
        return by_id

    def _candidates(self, runs: Runs, rows: list[int], ids: list[int], cls: list[int], view: FrameView,
                    life: LifecycleState) -> list[Candidate]:
        """Present tracks in the zone (``rows``) that are wrong way now (and not yet reported, unless their
        event is open), by track id."""
        cfg, by_id = self.config, runs.by_id
        sel = sorted(rows, key=ids.__getitem__)
        found = [by_id.get(ids[i]) for i in sel]
        if not any(r is not None and -r[4] >= cfg.min_displacement_m and r[7] - r[3] >= cfg.min_duration
                   for r in found):
            return []
        angle = _angles(found, cfg.min_angle_deg)
        source = "calibrated" if view.geometry.calibration is not None else "fallback"
        speed, out = None, []
        for i, r, a in zip(sel, found, angle, strict=True):
            if r is None:
                continue
            disp, secs, tid = -r[4], r[7] - r[3], ids[i]
            if not (disp >= cfg.min_displacement_m and secs >= cfg.min_duration and a > cfg.min_angle_deg):
                continue
            if r[9] and tid not in life.episodes:
                continue
            if speed is None:
                speed = view.ground_speed().tolist()
            name = CLASS_NAMES.get(cls[i], str(cls[i]))
            evidence: dict[str, Any] = {
                "class": name,
                "displacement_m": round(disp, 2),
                "moving_against_s": round(secs, 3),
                "angle_deg": round(a, 1),
                "speed_mps": round(speed[i], 2),
                "mean_speed_mps": round(disp / secs, 2),
                "speed_source": source,
                "min_displacement_m": cfg.min_displacement_m,
                "min_duration": cfg.min_duration,
                "min_angle_deg": cfg.min_angle_deg,
            }
            score = min(1.0, 0.5 + 0.5 * (disp - cfg.min_displacement_m) / cfg.min_displacement_m)
            out.append(Candidate(tid, r[3], (tid,), (name,), score, evidence, zone_id=cfg.zone))
        return out


def _angles(found: list[_Run | None], threshold: float) -> list[float]:
    """Degrees between each run's net motion and the allowed direction (0 for None), as
    ``np.degrees(np.arctan2(|across|, along))`` over the rows gives them. ``math.atan2`` may differ from
    numpy's by an ulp or so, which can only matter for an angle within rounding of ``threshold`` or of a
    rounding boundary of the evidence (0.1 degree); then numpy computes them all, as before."""
    out = []
    for r in found:
        a = 0.0 if r is None else math.atan2(abs(r[5]), r[4]) * _RAD_TO_DEG
        lo, hi = a - 1e-9, a + 1e-9
        if not (math.isfinite(a) and (hi < threshold or lo > threshold) and round(lo, 1) == round(hi, 1)):
            return np.degrees(np.arctan2(np.abs(np.array([0.0 if r is None else r[5] for r in found])),
                                         np.array([0.0 if r is None else r[4] for r in found]))).tolist()
        out.append(a)
    return out


def _move_fallback(px: float, py: float, x: float, y: float, scale: float,
                   direction: tuple[float, float]) -> tuple[float, float]:
    """Without a calibration: the move from ``(px, py)`` to ``(x, y)`` pixels, scaled by ``scale`` metres per
    pixel, as (along, across) the direction, metres."""
    d0, d1 = (x - px) * scale, (y - py) * scale
    u0, u1 = direction
    return d0 * u0 + d1 * u1, u0 * d1 - u1 * d0


def _move_calibrated(prev: _Run, x: float, y: float, at: tuple, scene: _Scene) -> tuple[float, float]:
    """With a calibration: the move from the run's last anchor to ``(x, y)`` pixels on the ground, as (along,
    across) the direction mapped to the ground at ``(x, y)``, metres; ``at``: the new ``at`` of the run
    (its ground position ``at[2:]``). The same float operations as :func:`analytics.geometry.apply_homography`
    and ``numpy.linalg.norm``, so the same values as the vectorised computation."""
    h, size = scene.homography, at[1]
    w, hh = size
    step_x, step_y = scene.direction[0] * _DIRECTION_STEP_PX, scene.direction[1] * _DIRECTION_STEP_PX
    ahead_x, ahead_y = _to_ground((x + step_x) / w, (y + step_y) / hh, h)
    last = prev[10]
    if last is not None and last[0] is scene and last[1] == size:
        before_x, before_y = last[2], last[3]
    else:
        before_x, before_y = _to_ground(prev[0] / w, prev[1] / hh, h)
    here_x, here_y = at[2], at[3]
    d0, d1 = here_x - before_x, here_y - before_y
    u0, u1 = ahead_x - here_x, ahead_y - here_y
    norm = math.sqrt(u0 * u0 + u1 * u1)
    if not norm >= 1e-12 and norm == norm:
        norm = 1e-12
    u0, u1 = _div(u0, norm), _div(u1, norm)
    return d0 * u0 + d1 * u1, u0 * d1 - u1 * d0


def _mark_reported(runs: Runs, life: LifecycleState) -> Runs:
    """``runs`` with the tracks whose event is open marked reported (``runs`` itself when they all are)."""
    by_id, new = runs.by_id, None
    for tid in life.episodes:
        r = by_id.get(tid)
        if r is not None and not r[9]:
            if new is None:
                new = dict(by_id)
            new[tid] = (*r[:9], True, r[10])
    return runs if new is None else Runs(new, runs.oldest)
