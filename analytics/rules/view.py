"""Per-frame measurements shared by every rule of a camera, each computed at most once.

Several rules of one camera ask the same questions of a frame (which tracks are present, which are in the
``path`` zone, how fast each moves on the ground). :class:`FrameView` answers them lazily and caches the
answers, so each is computed once per frame whatever the number of rules. In a replay the engine goes
further: :class:`LogView` answers each question for *every row of the track log at once* (one numpy call
instead of one per frame) and each frame's view is a slice of those columns.

Exactness: every measurement here is computed element by element (no reduction across rows, no matrix
product), so the value for a row is the same whether it is computed with its frame alone (live) or with
the whole log (replay). The live / replay equality tests hold the rules to it.

Which tracks count: rules use tracks that are **confirmed** (matched this frame) or **lost** (predicted for
a short while after their last match, so a person hidden for a moment is still there). Tentative tracks
(not yet confirmed) are ignored: they are mostly flicker, and a real object is confirmed within
``min_hits`` frames.

Units on the ground:

* with the camera's ground calibration, positions are metres on the ground plane (homography of the ground
  anchor, the bottom centre of the box) and speeds are metres per second;
* without it, distances and speeds fall back on the **assumed height of the object**
  (:data:`CLASS_HEIGHT_M`: a person is 1.7 m tall, a car 1.5 m...): ``metres per pixel = height_m /
  box_height_px`` near each object. That ignores perspective across the frame, so it is right for
  distances between nearby objects (members of a group) and rough for speeds; rules that need true
  speeds (``speeding``) require a calibration.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from analytics.geometry import PERSON_HEIGHT_M, SceneGeometry, apply_homography, points_in_polygon
from analytics.types import CLASS_IDS, TrackState, Tracks

#: Assumed real height of each class, metres (fallback scale without calibration).
CLASS_HEIGHT_M: dict[str, float] = {
    "person": PERSON_HEIGHT_M, "bicycle": PERSON_HEIGHT_M, "motorcycle": 1.5, "car": 1.5, "bus": 3.0, "truck": 3.0,
}
#: Class ids are looked up in tables of this size (COCO ids are below 91).
LUT_SIZE = 256
_HEIGHT_BY_ID = np.full(LUT_SIZE, PERSON_HEIGHT_M)
for _name, _h in CLASS_HEIGHT_M.items():
    _HEIGHT_BY_ID[CLASS_IDS[_name]] = _h

#: Time step used to turn an image velocity into a ground velocity through the homography, seconds.
_DT = 0.5

Size = tuple[int, int]


def class_lut(class_ids: tuple[int, ...] | list[int]) -> np.ndarray:
    """(256,) bool table, True at the given COCO ids: ``lut[tracks.class_id]`` selects those classes (much
    cheaper than ``np.isin`` per frame)."""
    ids = list(class_ids)
    if any(not 0 <= i < LUT_SIZE - 1 for i in ids):
        raise ValueError(f"class ids must be in [0, {LUT_SIZE - 2}], got {ids}")
    lut = np.zeros(LUT_SIZE, bool)  # the last entry stays False: out-of-range ids are clipped onto it
    lut[ids] = True
    return lut


def _lut_index(class_id: np.ndarray) -> np.ndarray:
    """Class ids as indices into the tables; ids outside [0, 254] map to the last entry ("other")."""
    c = class_id.astype(np.intp)
    return np.where((c < 0) | (c >= LUT_SIZE - 1), LUT_SIZE - 1, c)


# -- element-wise measurements (one value per track row) --------------------------------------------------


def _anchor(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
    return t.anchor


def _present(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
    return t.state != TrackState.TENTATIVE


def _confirmed(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
    return t.state == TrackState.CONFIRMED


def _mpp(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
    heights = np.maximum(t.xyxy[:, 3].astype(np.float64) - t.xyxy[:, 1], 1.0)
    return _HEIGHT_BY_ID[_lut_index(t.class_id)] / heights


def _ground(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray | None:
    if g.calibration is None:
        return None
    norm = t.anchor.astype(np.float64) / np.asarray(size, dtype=np.float64)
    return apply_homography(norm, g.calibration.homography)


def _ground_velocity(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
    vel = t.velocity.astype(np.float64)
    if g.calibration is None:
        return vel * _mpp(t, size, g)[:, None]
    wh = np.asarray(size, dtype=np.float64)
    anchor = t.anchor.astype(np.float64)
    here = apply_homography(anchor / wh, g.calibration.homography)
    there = apply_homography((anchor + vel * _DT) / wh, g.calibration.homography)
    return (there - here) / _DT


def _ground_speed(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
    v = _ground_velocity(t, size, g)
    return np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1])


@lru_cache(maxsize=1024)  # one function per zone id, so a cached answer costs no closure
def _zone_fn(zone_id: str) -> Callable:
    def in_zone(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
        zone = g.zone(zone_id)
        poly = zone.polygon_px(size)
        anchor = t.anchor
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        inside_box = (anchor[:, 0] >= lo[0]) & (anchor[:, 0] <= hi[0]) & (anchor[:, 1] >= lo[1]) & (anchor[:, 1] <= hi[1])
        out = np.zeros(len(anchor), bool)
        if inside_box.any():
            out[inside_box] = points_in_polygon(anchor[inside_box], poly)
        return out
    return in_zone


@lru_cache(maxsize=1024)
def _line_fn(line_id: str) -> Callable:
    def distance(t: Tracks, size: Size, g: SceneGeometry) -> np.ndarray:
        line = g.line(line_id)
        ax, ay = line.a[0] * size[0], line.a[1] * size[1]
        bx, by = line.b[0] * size[0], line.b[1] * size[1]
        length = float(np.linalg.norm(np.array([bx - ax, by - ay])))  # as geometry.signed_distance
        anchor = t.anchor.astype(np.float64)
        return ((bx - ax) * (anchor[:, 1] - ay) - (by - ay) * (anchor[:, 0] - ax)) / length
    return distance


_BASIC = {"present": _present, "confirmed": _confirmed, "mpp": _mpp, "ground": _ground,
          "ground_velocity": _ground_velocity, "ground_speed": _ground_speed}


class LogView:
    """Every measurement of :class:`FrameView` for all rows of a track log at once (computed on demand).

    Args:
        tracks: all rows of the log, in replay order (frames are contiguous row ranges).
        frame_size: (width, height) shared by the rows this view serves.
        geometry: the camera's scene.
    """

    def __init__(self, tracks: Tracks, frame_size: Size, geometry: SceneGeometry) -> None:
        self.tracks = tracks
        self.frame_size = frame_size
        self.geometry = geometry
        self._columns: dict[tuple[str, str], np.ndarray | None] = {}

    def column(self, key: tuple[str, str], fn: Callable) -> np.ndarray | None:
        if key not in self._columns:
            self._columns[key] = fn(self.tracks, self.frame_size, self.geometry)
        return self._columns[key]


class FrameView:
    """Cached measurements of one frame's tracks (see the module docstring).

    Args:
        tracks: the frame's tracks.
        frame_size: (width, height) of the decoded frame, pixels.
        geometry: the camera's scene.
        log: in a replay, the whole log's view; ``rows`` are this frame's rows in it.
    """

    __slots__ = ("tracks", "frame_size", "geometry", "_log", "_rows", "_cache")

    def __init__(self, tracks: Tracks, frame_size: Size, geometry: SceneGeometry, *, log: LogView | None = None,
                 rows: slice | None = None) -> None:
        self.tracks = tracks
        self.frame_size = frame_size
        self.geometry = geometry
        self._log = log
        self._rows = rows
        self._cache: dict[tuple[str, str], np.ndarray | None] = {}

    def column(self, key: tuple[str, str], fn: Callable) -> np.ndarray | None:
        """A rule's own element-wise measurement ``fn(tracks, frame_size, geometry) -> (N, ...)``, cached
        under ``key`` and, in a replay, computed once for the whole log. ``fn`` must be element-wise (see the
        module docstring) and ``key`` unique to it, e.g. ``("loitering:candidates", rule_id)``."""
        return self._get(key, fn)

    def _get(self, key: tuple[str, str], fn: Callable) -> np.ndarray | None:
        cache = self._cache
        if key in cache:
            return cache[key]
        if self._log is not None:
            col = self._log.column(key, fn)
            value = None if col is None else col[self._rows]
        else:
            value = fn(self.tracks, self.frame_size, self.geometry)
        cache[key] = value
        return value

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def anchor(self) -> np.ndarray:
        """(N, 2) float32 ground anchors, pixels (a slice of the whole log's in a replay)."""
        return self._get(("anchor", ""), _anchor)

    def present(self) -> np.ndarray:
        """(N,) bool: confirmed or briefly lost tracks (not tentative): the tracks rules use."""
        return self._get(("present", ""), _present)

    def confirmed(self) -> np.ndarray:
        """(N,) bool: tracks matched to a detection in this frame."""
        return self._get(("confirmed", ""), _confirmed)

    def of_classes(self, lut: np.ndarray) -> np.ndarray:
        """(N,) bool: present tracks whose class is set in ``lut`` (see :func:`class_lut`)."""
        return self.present() & lut[_lut_index(self.tracks.class_id)]

    def in_zone(self, zone_id: str) -> np.ndarray:
        """(N,) bool: ground anchor inside the zone."""
        return self._get(("zone", zone_id), _zone_fn(zone_id))

    def line_distance(self, line_id: str) -> np.ndarray:
        """(N,) float64 signed distance of each anchor to the line, pixels (positive side: see ``Line``)."""
        return self._get(("line", line_id), _line_fn(line_id))

    def metres_per_px(self) -> np.ndarray:
        """(N,) float64 fallback scale near each object (assumed class height / box height)."""
        return self._get(("mpp", ""), _mpp)

    def ground(self) -> np.ndarray | None:
        """(N, 2) float64 ground positions in metres, or None without a calibration."""
        return self._get(("ground", ""), _ground)

    def ground_velocity(self) -> np.ndarray:
        """(N, 2) float64 ground velocity, m/s (calibrated, or the class-height fallback)."""
        return self._get(("ground_velocity", ""), _ground_velocity)

    def ground_speed(self) -> np.ndarray:
        """(N,) float64 ground speed, m/s (calibrated, or the class-height fallback)."""
        return self._get(("ground_speed", ""), _ground_speed)


def wake_margin(t: float) -> float:
    """How much earlier than a time ``t`` written ``last + grace`` a replay looks for the frame where a rule's
    ``now - last > grace`` (or ``>=``) first holds: the two round differently, by far less than this, so that
    frame is never missed; looking early only costs a few comparisons (or a step of a sleeping rule)."""
    return 1e-6 + 1e-12 * abs(t)


class TrackWalk(NamedTuple):
    """Some rows of a log grouped by track, each track's rows in time order (:meth:`LogFrames.walk`).

    Attributes:
        rows: (K,) the rows, indices into the log.
        ids: (K,) their track ids (ascending: rows of one track are consecutive).
        frame: (K,) their frames.
        same: (K - 1,) bool, row ``k + 1`` is of the same track as row ``k``.
        in_gap: (K - 1,) bool, and some frame lies strictly between them: the track had no such row there.
        gap: (K - 1,) seconds from row ``k`` to the last frame before row ``k + 1``: a step on that frame is
            the last that sees the track missing; meaningful where ``in_gap``.
    """

    rows: np.ndarray
    ids: np.ndarray
    frame: np.ndarray
    same: np.ndarray
    in_gap: np.ndarray
    gap: np.ndarray


class LogFrames:
    """Every frame of a stored track log at once, for a replay (see :meth:`RuleEngine.replay
    <analytics.rules.engine.RuleEngine.replay>`): all rows, each frame's row range, seq, time and size, and
    the log-wide measurements of :class:`LogView`.

    Rules read the columns over all rows at once to take the whole log at once
    (:class:`analytics.rules.base.Replays`), to say on which frames they must be stepped
    (:class:`~analytics.rules.base.Sleeps`) or which tracks matter to them (:class:`~analytics.rules.base.Selects`);
    the replay then builds a frame's view (:meth:`frame`) only when some rule is stepped on it.

    Args:
        tracks: all rows, in frame order (each frame's rows are ``starts[f]:ends[f]``).
        seq, time: (F,) each frame's ``Frame.seq`` and timestamp (seconds, not decreasing).
        sizes: (F, 2) each frame's (width, height), pixels.
        starts, ends: (F,) each frame's row range in ``tracks``.
        geometry: the camera's scene.
    """

    def __init__(self, tracks: Tracks, seq: np.ndarray, time: np.ndarray, sizes: np.ndarray, starts: np.ndarray,
                 ends: np.ndarray, geometry: SceneGeometry) -> None:
        self.tracks = tracks
        self.seq = np.asarray(seq, dtype=np.int64)
        self.time = np.asarray(time, dtype=np.float64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)
        self.geometry = geometry
        wh = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.size_of: list[Size] = list(zip(wh[:, 0].tolist(), wh[:, 1].tolist(), strict=True))
        self.views: dict[Size, LogView] = {s: LogView(tracks, s, geometry) for s in dict.fromkeys(self.size_of)}
        self._stitched: dict[tuple[str, str], np.ndarray | None] = {}
        self._empty = tracks[:0]
        self._frame_of_row: np.ndarray | None = None
        self._times: list[float] = self.time.tolist()

    def __len__(self) -> int:
        return len(self.time)

    def column(self, key: tuple[str, str], fn: Callable) -> np.ndarray | None:
        """``fn`` (element-wise, as :meth:`FrameView.column`) over every row, each with its frame's size; the
        very values each frame's view reads."""
        if len(self.views) == 1:
            return next(iter(self.views.values())).column(key, fn)
        if key not in self._stitched:
            out = None
            for size, view in self.views.items():
                col = view.column(key, fn)
                if col is None:
                    continue
                if out is None:
                    out = np.zeros_like(col)
                for f in (i for i, s in enumerate(self.size_of) if s == size):
                    out[self.starts[f]:self.ends[f]] = col[self.starts[f]:self.ends[f]]
            self._stitched[key] = out
        return self._stitched[key]

    def frame_of_row(self) -> np.ndarray:
        """(R,) int64: the frame of each row (-1 for a row of no frame, which no step sees)."""
        if self._frame_of_row is None:
            out = np.full(len(self.tracks), -1, dtype=np.int64)
            counts = self.ends - self.starts
            first = np.cumsum(counts) - counts  # position of each frame's first row among the framed rows
            framed = np.arange(int(counts.sum())) + np.repeat(self.starts - first, counts)
            out[framed] = np.repeat(np.arange(len(counts)), counts)
            self._frame_of_row = out
        return self._frame_of_row

    def next_flagged(self, flags: np.ndarray) -> list[int]:
        """For each frame, the first frame at or after it set in ``flags`` (F,) bool (``len(self)`` when none),
        and ``len(self)`` once more at the end."""
        n = len(self.time)
        first = np.full(n + 1, n, dtype=np.int64)
        first[:n][flags] = np.flatnonzero(flags)
        return np.minimum.accumulate(first[::-1])[::-1].tolist()

    def first_elapsed(self, last: float, seconds: float, lo: int) -> int:
        """The first frame from ``lo`` on at which a step finds ``seconds`` elapsed since ``last``
        (``now - last >= seconds``, the very comparison), ``len(self)`` when none."""
        times = self._times
        due = last + seconds
        f = max(bisect_left(times, due - wake_margin(due)), lo)
        while f < len(times) and not times[f] - last >= seconds:
            f += 1
        return f

    def walk(self, mask: np.ndarray) -> TrackWalk | None:
        """The rows set in the per-row ``mask`` (and in a frame) grouped by track, in time order; None when a
        track has two of them in one frame (per-track rules then step frame by frame)."""
        frame_of = self.frame_of_row()
        rows = np.flatnonzero(mask & (frame_of >= 0))
        ids = self.tracks.track_id[rows]
        order = np.lexsort((rows, ids))
        rows, ids = rows[order], ids[order]
        frame = frame_of[rows]
        same = ids[1:] == ids[:-1]
        if (same & (frame[1:] == frame[:-1])).any():
            return None
        before = np.maximum(frame[1:] - 1, 0)
        gap = self.time[before] - self.time[frame[:-1]]
        return TrackWalk(rows, ids, frame, same, same & (frame[1:] - 1 > frame[:-1]), gap)

    def line_distance(self, line_id: str) -> np.ndarray:
        """(R,) float64, as :meth:`FrameView.line_distance` for every row."""
        return self.column(("line", line_id), _line_fn(line_id))

    def present(self) -> np.ndarray:
        """(R,) bool, as :meth:`FrameView.present` for every row."""
        return self.column(("present", ""), _present)

    def confirmed(self) -> np.ndarray:
        """(R,) bool, as :meth:`FrameView.confirmed` for every row."""
        return self.column(("confirmed", ""), _confirmed)

    def in_zone(self, zone_id: str) -> np.ndarray:
        """(R,) bool, as :meth:`FrameView.in_zone` for every row."""
        return self.column(("zone", zone_id), _zone_fn(zone_id))

    def ground_speed(self) -> np.ndarray:
        """(R,) float64, as :meth:`FrameView.ground_speed` for every row."""
        return self.column(("ground_speed", ""), _ground_speed)

    def count(self, mask: np.ndarray) -> np.ndarray:
        """(F,) int64: the number of rows of each frame set in the per-row ``mask``."""
        total = np.zeros(len(mask) + 1, dtype=np.int64)
        np.cumsum(mask, out=total[1:])
        return total[self.ends] - total[self.starts]

    def subset(self, rows: np.ndarray) -> LogFrames:
        """The same frames with only the rows set in ``rows`` (R,) bool."""
        kept = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(rows, out=kept[1:])
        sizes = np.array(self.size_of, dtype=np.int64).reshape(-1, 2)
        return LogFrames(self.tracks[np.flatnonzero(rows)], self.seq, self.time, sizes, kept[self.starts],
                         kept[self.ends], self.geometry)

    def frame(self, f: int) -> FrameView:
        """Frame ``f``'s view: its tracks and their measurements, slices of the whole log's."""
        a, b = int(self.starts[f]), int(self.ends[f])
        size = self.size_of[f]
        tracks = self.tracks[a:b] if b > a else self._empty
        return FrameView(tracks, size, self.geometry, log=self.views[size], rows=slice(a, b))
