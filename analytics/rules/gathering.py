"""``gathering``: at least ``min_people`` people standing close together for at least ``min_duration``.

What counts, each frame:

* **Eligible people**: present tracks (confirmed, or lost and still predicted: see
  :meth:`analytics.rules.view.FrameView.present`) of ``classes`` (persons by default), with the ground anchor (bottom
  centre of the box) inside ``zone`` when one is set, and a ground speed (:meth:`~analytics.rules.view.FrameView.
  ground_speed`, m/s) of at most ``max_speed_mps``. Walkers are not eligible, so people crossing each other
  never make a group; only people standing or strolling do. (Eligibility by speed is the only "stillness"
  test: no fraction of still members is required.)
* **Clusters**: connected components (single linkage) of the graph "ground distance <= ``radius_m``" among
  eligible people (from :meth:`~analytics.rules.view.FrameView.ground`, or the pixel distance scaled by the pair's
  mean :meth:`~analytics.rules.view.FrameView.metres_per_px`). With the camera's ground calibration
  distances are metres on the ground plane; without it they fall back on the assumed person height
  (1.7 m / box height in pixels near each pair), which is fair for people standing next to each other.
  Clusters smaller than ``end_min_people`` are ignored.
* **Group identity**: each cluster is matched to the groups remembered from earlier frames by shared member
  track ids: pairs (group, cluster) are taken greedily by most shared members, ties to the oldest group
  (lowest key), then to the larger cluster; a group is claimed by one cluster at most and a cluster takes one
  group at most; unmatched clusters get new group keys from a counter in the state. A group's remembered
  members are those of the last cluster it was matched to; unmatched groups are remembered for
  ``max(grace, end_grace)`` seconds, so a group whose members are hidden for a moment gets its key back.
  Members may come and go: as long as each frame's cluster shares members with the group, it stays one
  group and one event. When two groups merge, the merged cluster keeps the key it shares most members with
  and the other group's event closes after ``end_grace``; when a group splits, the part sharing the most
  members keeps the key.

Hysteresis and life cycle (:mod:`analytics.rules.lasting`):

* **start**: a group *holds* while its size is >= ``min_people``; :func:`~analytics.rules.lasting.
  update_timers` keeps the time it began to hold across gaps (size below the threshold, or the group not
  seen) of up to ``grace`` seconds. The event **opens** once the group has held for ``min_duration``; its
  ``start`` is when it began to hold.
* while open, the group keeps the event alive with a size of at least ``end_min_people`` (default
  ``min_people - 1``, at least 2: one member hidden or stepping away does not end a gathering). The event
  is **updated** when its members change, and every ``update_every`` seconds to refresh the evidence.
* **end**: the event **closes** once the group has not had ``end_min_people`` members for ``end_grace``
  seconds; ``end`` is the last time it had. :meth:`GatheringRule.close` closes what is still open at the
  end of a stream.

Members of the event are the current members (ascending track ids). Evidence: ``size``, ``max_size`` (the
largest size seen for this group), ``centroid_px`` (mean anchor, pixels) and ``centroid_norm`` (normalised
to the frame), ``diameter_m`` (largest distance between two members), ``mean_speed_mps``, ``unit``
(``"m"`` with a calibration, ``"person-height fallback"`` without), the ``thresholds`` used, and
``duration`` (seconds, added by the life cycle).

Score, in [0, 1): ``0.5 * (1 - exp(-size / min_people)) + 0.5 * (1 - exp(-held / max(min_duration, 1 s)))``,
with ``held`` the seconds since the group began to hold. It saturates with both the size relative to the
threshold and the duration: 0.63 for a group of exactly ``min_people`` that just reached ``min_duration``,
0.82 for twice the people held three times as long. The best frame of the event is its highest score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from analytics.geometry import SceneGeometry
from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.rules.lasting import Candidate, Episode, Lifecycle, LifecycleState, update_timers
from analytics.rules.view import LUT_SIZE, LogFrames, _ground, _ground_speed, _mpp, _zone_fn, class_lut
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, TrackState, class_ids_from_names

_FALLBACK_UNIT = "person-height fallback"
#: From this many eligible people on, the pairwise distances are computed with numpy (same values, element
#: by element); below, in plain Python, which is cheaper for a handful of people.
_NUMPY_PAIRS_FROM = 16
#: Below this many values numpy's mean adds them one after the other (its pairwise summation starts at 8), so
#: a plain Python loop gives the very same float; from it on, numpy itself.
_NUMPY_MEAN_FROM = 8
#: The two shortcuts of :meth:`GatheringRule.step` (the same clusters as the previous frame keep their keys
#: without matching; a frame where the life cycle has nothing to emit defers its episode updates, see
#: :class:`_Held`). Tests turn them off to check they change nothing.
_SHORTCUTS = True


class GatheringConfig(RuleConfigBase):
    """Config of one gathering rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["gathering"] = Field(description="rule type selector")
    min_people: int = Field(3, ge=2, description="people needed for a gathering (group size that opens an "
                            "event); range 3-20")
    radius_m: float = Field(2.0, gt=0.0, description="metres: two eligible people within this ground distance "
                            "are in the same group (single linkage); range 1-5")
    min_duration: float = Field(10.0, ge=0.0, description="seconds the group must hold (size >= min_people) "
                                "before the event opens; range 5-120")
    max_speed_mps: float = Field(0.5, gt=0.0, description="metres per second: people faster than this are not "
                                 "counted (walkers passing by); range 0.3-1.0")
    grace: float = Field(2.0, ge=0.0, description="seconds the group may drop below min_people (or be unseen) "
                         "before its start timer resets (detector flicker); range 0-5")
    end_grace: float = Field(5.0, gt=0.0, description="seconds without at least end_min_people members before "
                             "an open event closes; range 2-30")
    end_min_people: int | None = Field(None, ge=2, description="size that keeps an open event alive (a lower "
                                       "end threshold); null: min_people - 1 (at least 2); range 2-min_people")
    update_every: float = Field(5.0, gt=0.0, description="seconds between 'updated' records when only the "
                                "evidence changes (member changes are always reported); range 2-30")
    zone: str | None = Field(None, description="zone id: only people whose ground anchor is inside count; "
                             "null: the whole frame")
    classes: tuple[str, ...] = Field(("person",), description=f"class names counted, any of {sorted(CLASS_IDS)}")


    @model_validator(mode="after")
    def _end_threshold_not_above_start(self) -> GatheringConfig:
        if self.end_min_people is not None and self.end_min_people > self.min_people:
            raise ValueError(f"end_min_people ({self.end_min_people}) must not exceed min_people "
                             f"({self.min_people})")
        return self

    @property
    def end_threshold(self) -> int:
        """The effective ``end_min_people``: as configured, or ``max(min_people - 1, 2)``."""
        return self.end_min_people if self.end_min_people is not None else max(self.min_people - 1, 2)


class GroupMemory(NamedTuple):
    """A group remembered across frames.

    Attributes:
        key: group id (from the state's counter; lower is older).
        members: track ids of the last cluster matched to it, ascending.
        last_seen: seconds, when it was last matched to a cluster.
        max_size: largest cluster size matched to it so far.
    """

    key: int
    members: tuple[int, ...]
    last_seen: float
    max_size: int


class _Held(NamedTuple):
    """What the life cycle would write into an open episode on a frame where its group holds and nothing is
    emitted (no new members, no update due, nothing opens or closes): kept aside, and written into the
    :class:`~analytics.rules.lasting.Episode` (:meth:`GatheringRule._episodes`) only on the next frame that
    needs the life cycle, so a quiet frame builds no Candidate and no Episode."""

    members: tuple[int, ...]
    classes: tuple[str, ...]
    score: float
    evidence: Mapping[str, Any]
    last_true: float
    best_score: float
    best_seq: int


class GatheringState(NamedTuple):
    """Immutable state of one gathering rule.

    Attributes:
        groups: remembered groups, ordered by key.
        timers: start hysteresis per group key: ``key -> (since, last_true)`` seconds (size >= min_people).
        lifecycle: open events of the :class:`~analytics.rules.lasting.Lifecycle`; see ``held``.
        next_group: counter for new group keys.
        held: per open event, the quiet frames' update of its episode not yet written into ``lifecycle``
            (:class:`_Held`); empty after any frame that ran the life cycle.
        last: the previous frame's clusters (member ids) and their group keys, when it had clusters (the
            same clusters get the same keys again: see :meth:`GatheringRule.step`).
    """

    groups: tuple[GroupMemory, ...] = ()
    timers: Mapping[int, tuple[float, float]] = {}  # never mutated: each frame builds new mappings
    lifecycle: LifecycleState = LifecycleState()
    next_group: int = 0
    held: Mapping[int, _Held] = {}
    last: tuple[tuple[tuple[int, ...], ...], tuple[int, ...]] | None = None


#: Columns of :func:`_people_fn`: position (ground metres, or anchor pixels without calibration), metres per
#: pixel (the fallback scale; 1 with a calibration), anchor pixels, ground speed m/s, eligible (1 or 0).
_PX, _PY, _SCALE, _AX, _AY, _SPEED, _ELIGIBLE = range(7)
_FIRST = itemgetter(0)
_new = tuple.__new__  # builds a named tuple from a tuple of its fields, without its Python-level __new__


@lru_cache(maxsize=256)
def _people_fn(class_ids: tuple[int, ...], max_speed_mps: float, zone: str | None) -> Callable:
    """The rule's column (see the indices above): element-wise, the very floats of the view's ``ground``,
    ``anchor``, ``metres_per_px`` and ``ground_speed``; eligible: present, of the classes, slow enough (and
    inside the zone)."""
    lut = class_lut(class_ids)
    in_zone = None if zone is None else _zone_fn(zone)

    def people(t: Tracks, size: tuple[int, int], g: SceneGeometry) -> np.ndarray:
        speed = _ground_speed(t, size, g)
        c = t.class_id
        eligible = (t.state != TrackState.TENTATIVE) & (c >= 0) & (c < LUT_SIZE - 1) & lut[np.clip(c, 0, LUT_SIZE - 1)]
        eligible &= speed <= max_speed_mps  # NaN is not eligible, as with a Python <=
        if in_zone is not None:
            eligible &= in_zone(t, size, g)
        out = np.full((len(speed), 7), np.nan)  # only eligible rows are read: only theirs are computed
        out[:, _SPEED] = speed
        out[:, _ELIGIBLE] = eligible
        sub = t[eligible]
        anchor = sub.anchor.astype(np.float64)
        ground = _ground(sub, size, g)
        out[eligible, _PX:_PY + 1] = anchor if ground is None else ground
        out[eligible, _SCALE] = _mpp(sub, size, g) if ground is None else 1.0
        out[eligible, _AX:_AY + 1] = anchor
        return out
    return people


def _distance(a: list[float], b: list[float], calibrated: bool) -> float:
    """Ground distance of two rows of :func:`_people`, metres: the very float of the pair loops (Python or
    numpy, element by element)."""
    dx = a[_PX] - b[_PX]
    dy = a[_PY] - b[_PY]
    if calibrated:
        return math.sqrt(dx * dx + dy * dy)
    return math.sqrt(dx * dx + dy * dy) * (a[_SCALE] + b[_SCALE]) / 2


class _Evidence(Mapping):
    """The evidence of one candidate, built on first read (most candidates are never emitted).

    It reads only values fixed when the candidate was made (the frame's column of the view, which nobody
    writes to, and arrays of its own), so when it is built does not change what it holds.
    """

    __slots__ = ("_args", "_dict")

    def __init__(self, *args: Any) -> None:
        self._args: tuple | None = args
        self._dict: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        d = self._dict
        if d is None:
            d = self._dict = _evidence(*self._args)
            self._args = None
        return d

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def __deepcopy__(self, memo: dict) -> _Evidence:
        return self  # immutable as seen from outside

    def __reduce__(self) -> tuple:
        return (dict, (self._get(),))


def _evidence(data: np.ndarray, sel: np.ndarray, comp: list[int], groups: tuple[GroupMemory, ...], key: int,
              calibrated: bool, frame_size: tuple[int, int], thresholds: dict[str, Any]) -> dict[str, Any]:
    """Evidence of the cluster of group ``key`` (``groups``: as remembered after its frame): its members are
    rows ``sel[comp]`` (ascending track ids) of the frame's column ``data`` of :func:`_people_fn`."""
    max_size = next(g.max_size for g in groups if g.key == key)
    people = data[sel[comp]].tolist()
    size = len(people)
    if size < _NUMPY_MEAN_FROM:  # numpy's own order of summation for so few values: one after the other
        first = people[0]
        cx, cy, mean_speed = first[_AX], first[_AY], first[_SPEED]
        for p in people[1:]:
            cx += p[_AX]
            cy += p[_AY]
            mean_speed += p[_SPEED]
        cx, cy = cx / size, cy / size
        mean_speed /= size
    else:
        cx, cy = np.asarray([p[_AX:_AY + 1] for p in people], dtype=np.float64).mean(axis=0).tolist()
        mean_speed = float(np.asarray([p[_SPEED] for p in people], dtype=np.float64).mean())
    diameter = max(_distance(a, b, calibrated) for n, a in enumerate(people) for b in people[n + 1:])
    return {
        "size": size,
        "max_size": int(max_size),
        "centroid_px": [round(cx, 1), round(cy, 1)],
        "centroid_norm": [round(cx / frame_size[0], 4), round(cy / frame_size[1], 4)],
        "diameter_m": round(float(diameter), 3),
        "mean_speed_mps": round(mean_speed, 3),
        "unit": "m" if calibrated else _FALLBACK_UNIT,
        "thresholds": dict(thresholds),
    }


def connected_components(adjacency: np.ndarray) -> np.ndarray:
    """Component labels of an undirected graph.

    Args:
        adjacency: (N, N) bool, symmetric; the diagonal is ignored.

    Returns:
        (N,) int64: each node's label is the smallest node index of its component.
    """
    n = len(adjacency)
    labels = np.arange(n)
    if n == 0 or adjacency.all():
        return np.zeros(n, np.int64)
    adj = adjacency | np.eye(n, dtype=bool)
    while True:
        new = np.where(adj, labels[None, :], n).min(axis=1)
        new = new[new]  # pointer jumping: follow labels to their own label
        if np.array_equal(new, labels):
            return labels
        labels = new


def match_groups(clusters: list[tuple[int, ...]], groups: tuple[GroupMemory, ...],
                 next_group: int) -> tuple[list[int], int]:
    """Group keys for this frame's clusters, by shared members with the remembered groups.

    Pairs (group, cluster) sharing members are taken greedily by most shared members, then oldest group
    (lowest key), then larger cluster, then cluster order; each group and each cluster is taken once.
    Clusters left over get new keys ``next_group, next_group + 1...`` in cluster order. (Plain Python over
    the remembered members: a few dozen per frame, faster than numpy's fixed costs at that size.)

    Args:
        clusters: member track ids of each cluster (ascending, disjoint).
        groups: remembered groups, ordered by key.
        next_group: the counter for new keys.

    Returns:
        The key of each cluster, and the new counter.
    """
    keys = [-1] * len(clusters)
    if clusters and groups:
        cluster_of = {tid: c for c, members in enumerate(clusters) for tid in members}
        shared: dict[tuple[int, int], int] = {}
        get = cluster_of.get
        for g, group in enumerate(groups):
            for tid in group.members:
                c = get(tid)
                if c is not None:
                    shared[g, c] = shared.get((g, c), 0) + 1
        if shared:
            # groups are ordered by key, so the group's index orders as its key
            ranked = sorted([(-count, g, -len(clusters[c]), c) for (g, c), count in shared.items()])
            taken: set[int] = set()
            for _, g, _, c in ranked:
                if keys[c] == -1 and g not in taken:
                    keys[c] = groups[g].key
                    taken.add(g)
    for c, key in enumerate(keys):
        if key == -1:
            keys[c] = next_group
            next_group += 1
    return keys, next_group


class GatheringRule:
    """Pure gathering rule; see the module docstring for the semantics."""

    def __init__(self, config: GatheringConfig) -> None:
        self.config = config
        wanted = tuple(sorted(set(class_ids_from_names(config.classes))))
        self._class_names = [CLASS_NAMES.get(i, str(i)) for i in range(max(CLASS_NAMES) + 2)]
        # every eligible row has this class when only one is counted
        self._single_class = self._class_names[wanted[0]] if len(wanted) == 1 else None
        self._people_key = ("gathering:people", f"{wanted}|{config.max_speed_mps!r}|{config.zone}")
        self._people = _people_fn(wanted, config.max_speed_mps, config.zone)
        self._end_threshold = config.end_threshold
        self._lifecycle = Lifecycle("gathering", config.id, config.min_duration, config.end_grace,
                                    config.update_every)
        assert self._lifecycle.update_on_members  # the quiet-frame test in step() assumes it
        self._retention = max(config.grace, config.end_grace)
        self._thresholds = {"min_people": config.min_people, "end_min_people": config.end_threshold,
                            "radius_m": config.radius_m, "max_speed_mps": config.max_speed_mps,
                            "min_duration": config.min_duration}

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> GatheringState:
        return GatheringState()

    def close(self, state: GatheringState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close every open gathering at the last time it held."""
        return self._lifecycle.close_all(self._episodes(state), now, context=context)

    def _episodes(self, state: GatheringState) -> LifecycleState:
        """The life cycle's state with the quiet frames' updates written in (see :class:`_Held`): the very
        episodes :meth:`Lifecycle.advance` would have made on those frames."""
        lifecycle = state.lifecycle
        if not state.held:
            return lifecycle
        episodes = dict(lifecycle.episodes)
        zone = self.config.zone
        for key, h in state.held.items():
            ep = episodes[key]
            cand = Candidate(key=key, since=float(ep.start), members=h.members, classes=h.classes, score=h.score,
                             evidence=h.evidence, zone_id=zone)
            episodes[key] = Episode(ep.event_id, cand, ep.start, h.last_true, ep.last_emit, ep.emitted_members,
                                    h.best_score, h.best_seq)
        return LifecycleState(episodes, lifecycle.next_event)

    def _clusters(self, columns: list[list[float]], calibrated: bool) -> list[list[int]]:
        """Indices of people (ascending) of each cluster of at least ``end_threshold`` people, ordered by their
        first index: connected components of "distance <= radius_m" (single linkage). ``columns``: x, y (and
        the scale without a calibration) of each person, columns of :func:`_people_fn`."""
        xs, ys = columns[0], columns[1]
        n = len(xs)
        radius = self.config.radius_m
        if n >= _NUMPY_PAIRS_FROM:  # the same floats, element by element, as the loops below
            x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
            with np.errstate(invalid="ignore"):  # NaN or inf positions: near no one, as in the loops
                dx, dy = x[:, None] - x[None, :], y[:, None] - y[None, :]
                dist = np.sqrt(dx * dx + dy * dy)
                if not calibrated:
                    s = np.asarray(columns[2], dtype=np.float64)
                    dist = dist * (s[:, None] + s[None, :]) / 2
                ii, jj = np.nonzero(np.triu(dist <= radius, 1))
            edges = list(zip(ii.tolist(), jj.tolist()))
        else:
            # pairs in order of x: a pair further apart along x than ``reach`` is beyond the radius (its
            # distance is at least that gap times the smallest scale, less a few ulps): never computed
            sqrt = math.sqrt
            edges = []
            if calibrated:
                reach = -radius * (1.0 + 1e-9)
                people = zip(xs, ys, range(n))
            else:
                scale = columns[2]
                smallest = min(scale)
                reach = -radius * (1.0 + 1e-9) / smallest if smallest > 0.0 else -math.inf
                people = zip(xs, ys, range(n), scale)
            if math.isfinite(sum(xs)):
                people = sorted(people, key=_FIRST)
            else:  # NaN would break the order; NaN or inf is near no one anyway
                people = sorted([p for p in people if math.isfinite(p[0])], key=_FIRST)
            if calibrated:
                for a, (xi, yi, i) in enumerate(people):
                    for xj, yj, j in people[a + 1:]:
                        dx = xi - xj
                        if dx < reach:
                            break
                        dy = yi - yj
                        if sqrt(dx * dx + dy * dy) <= radius:
                            edges.append((i, j))
            else:
                for a, (xi, yi, i, si) in enumerate(people):
                    for xj, yj, j, sj in people[a + 1:]:
                        dx = xi - xj
                        if dx < reach:
                            break
                        dy = yi - yj
                        if sqrt(dx * dx + dy * dy) * (si + sj) / 2 <= radius:
                            edges.append((i, j))
        if not edges:
            return []
        # components by merging the few edges' end points (each person's component list is shared; a
        # component merged into another is emptied)
        component_of: dict[int, list[int]] = {}
        components = []
        for i, j in edges:
            ci = component_of.get(i)
            cj = component_of.get(j)
            if ci is None:
                if cj is None:
                    component_of[i] = component_of[j] = ci = [i, j]
                    components.append(ci)
                else:
                    cj.append(i)
                    component_of[i] = cj
            elif cj is None:
                ci.append(j)
                component_of[j] = ci
            elif ci is not cj:
                ci.extend(cj)
                for v in cj:
                    component_of[v] = ci
                cj.clear()
        need = self._end_threshold
        clusters = [sorted(c) for c in components if len(c) >= need]  # need >= 2: no emptied one
        clusters.sort()  # by first index (components are disjoint)
        return clusters

    def wakes(self, frames: LogFrames) -> np.ndarray:
        """Frames with two eligible people within ``radius_m`` of each other, the least a cluster needs
        (:class:`analytics.rules.base.Sleeps`); the distances of :meth:`_clusters` with a hair more radius, so
        that no frame with a cluster is missed whatever the rounding."""
        data = frames.column(self._people_key, self._people)
        frame_of = frames.frame_of_row()
        rows = np.flatnonzero((data[:, _ELIGIBLE] != 0) & (frame_of >= 0))
        out = np.zeros(len(frames), bool)
        if len(rows) < 2:
            return out
        fr = frame_of[rows]
        # every pair of eligible rows of a frame: row i with each later row of its frame
        last = np.searchsorted(fr, fr, side="right")  # rows are in frame order
        later = last - np.arange(len(rows)) - 1
        i = np.repeat(np.arange(len(rows)), later)
        j = i + 1 + (np.arange(int(later.sum())) - np.repeat(np.cumsum(later) - later, later))
        a, b = data[rows[i]], data[rows[j]]
        with np.errstate(invalid="ignore", over="ignore"):
            dist = np.hypot(a[:, _PX] - b[:, _PX], a[:, _PY] - b[:, _PY])
            if frames.geometry.calibration is None:
                dist = dist * (a[:, _SCALE] + b[:, _SCALE]) / 2
            near = dist <= self.config.radius_m * (1.0 + 1e-9)
        out[fr[i[near]]] = True
        return out

    def asleep_until(self, state: GatheringState) -> float:
        """Without clusters, a frame changes nothing (:meth:`_without_clusters`) until a remembered group or a
        timer expires or an open event closes; but the frame right after one with clusters counts (it resets
        ``last``)."""
        if state.last is not None or not _SHORTCUTS:
            return -math.inf
        until = math.inf
        if state.groups:
            until = min(g.last_seen for g in state.groups) + self._retention
        if state.timers:
            until = min(until, min(last for _, last in state.timers.values()) + self.config.grace)
        held = state.held
        for key, ep in state.lifecycle.episodes.items():
            h = held.get(key)
            until = min(until, (h.last_true if h is not None else ep.last_true) + self.config.end_grace)
        return until

    def step(self, tracks: Tracks, state: GatheringState, now: float, *,
             context: RuleContext) -> tuple[GatheringState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by group key."""
        need = self._end_threshold
        episodes = state.lifecycle.episodes
        idle = not (state.groups or state.timers or episodes)
        if idle and len(tracks) < need:
            return state, []
        view = frame_view(tracks, context)
        data = view.column(self._people_key, self._people)
        sel = data[:, _ELIGIBLE].nonzero()[0]
        clusters = None
        if len(sel) >= need:
            calibrated = view.geometry.calibration is not None  # as view.ground() is not None
            ids = tracks.track_id[sel].tolist()
            if ids != sorted(ids):  # by track id, stable like the argsort it replaces
                order = sorted(range(len(ids)), key=ids.__getitem__)
                ids = [ids[k] for k in order]
                sel = sel[order]
            clusters = self._clusters(data[sel, :2 if calibrated else 3].T.tolist(), calibrated)
        if not clusters:
            if idle:
                return state, []
            return self._without_clusters(state, now, context)
        cfg = self.config
        members = tuple([tuple([ids[k] for k in comp]) for comp in clusters])
        # Group identity. When the previous frame had these very clusters, their matching gives the keys it
        # gave them then: the remembered groups are now those it matched (members = these clusters: each
        # shares all of its cluster and nothing else) and groups it left unmatched, unchanged or expired; an
        # unmatched group sharing all of a cluster ranked after that cluster's group then, so it does again.
        last = state.last
        if last is not None and last[0] == members and _SHORTCUTS:
            keys, next_group = last[1], state.next_group
        else:
            keys, next_group = match_groups(members, state.groups, state.next_group)
            keys = tuple(keys)
        last = (members, keys)
        groups = self._remember(state.groups, keys, members, now)
        min_people = cfg.min_people
        timers = update_timers(state.timers, [k for k, m in zip(keys, members) if len(m) >= min_people], now,
                               grace=cfg.grace)
        # the candidates, as (key, since, members, classes, score, evidence), and whether the life cycle has
        # anything to do this frame (open, update or close an event); if not, only its quiet update (_Held)
        holding = []
        busy = not _SHORTCUTS
        min_duration, update_every = cfg.min_duration, cfg.update_every
        score_size, score_held = min_people, max(min_duration, 1.0)
        single_class, frame_size, thresholds = self._single_class, context.frame_size, self._thresholds
        exp = math.exp
        open_held = 0  # open events held this frame
        for key, comp, m in zip(keys, clusters, members):
            size = len(m)
            episode = episodes.get(key)
            if episode is None:
                if size < min_people:
                    continue
                since = float(timers[key][0])
                if now - since < min_duration:
                    continue  # the life cycle would not open it yet: no candidate needed
                busy = True
            else:
                open_held += 1
                since = float(episode.start)
                if m != episode.emitted_members or now - episode.last_emit >= update_every:
                    busy = True
            held = now - since
            if 0.0 > held:  # max(held, 0.0)
                held = 0.0
            score = 0.5 * (1.0 - exp(-size / score_size)) + 0.5 * (1.0 - exp(-held / score_held))
            if single_class is not None:
                classes = (single_class,) * size
            else:
                names, top = self._class_names, len(self._class_names) - 1
                classes = tuple([names[min(max(c, 0), top)] for c in tracks.class_id[sel[comp]].tolist()])
            evidence = _Evidence(data, sel, comp, groups, key, calibrated, frame_size, thresholds)
            holding.append((key, since, m, classes, score if 0.0 <= score <= 1.0 else min(max(score, 0.0), 1.0),
                            evidence))
        if not busy and open_held < len(episodes):
            busy = self._closing(state, now, {h[0] for h in holding})
        if not busy:
            if not holding:
                return GatheringState(groups, timers, state.lifecycle, next_group, state.held, last), []
            held_all = dict(state.held)
            seq = context.seq
            for key, _, m, classes, score, evidence in holding:
                h = held_all.get(key)
                if h is None:
                    ep = episodes[key]
                    best, best_seq = ep.best_score, ep.best_seq
                else:
                    best, best_seq = h.best_score, h.best_seq
                if score > best:
                    best, best_seq = score, seq
                held_all[key] = _new(_Held, (m, classes, score, evidence, now, best, best_seq))
            return _new(GatheringState, (groups, timers, state.lifecycle, next_group, held_all, last)), []
        zone = cfg.zone
        candidates = [Candidate(key=key, since=since, members=m, classes=classes, score=score, evidence=evidence,
                                zone_id=zone) for key, since, m, classes, score, evidence in holding]
        lifecycle, events = self._lifecycle.advance(self._episodes(state), candidates, now, context=context)
        return GatheringState(groups, timers, lifecycle, next_group, {}, last), events

    def _closing(self, state: GatheringState, now: float, holding: set[int] | frozenset[int]) -> bool:
        """Whether an open event not held this frame closes now (as :meth:`Lifecycle.advance` decides)."""
        end_grace = self.config.end_grace
        held = state.held
        for key, ep in state.lifecycle.episodes.items():
            if key in holding:
                continue
            h = held.get(key)
            if now - (h.last_true if h is not None else ep.last_true) >= end_grace:
                return True
        return False

    def _without_clusters(self, state: GatheringState, now: float,
                          context: RuleContext) -> tuple[GatheringState, list[Event]]:
        """A frame without clusters: groups and timers age, open events may close."""
        groups = self._remember(state.groups, [], [], now)
        timers = update_timers(state.timers, (), now, grace=self.config.grace)
        if state.lifecycle.episodes and (self._closing(state, now, frozenset()) or not _SHORTCUTS):
            lifecycle, events = self._lifecycle.advance(self._episodes(state), (), now, context=context)
            return GatheringState(groups, timers, lifecycle, state.next_group), events
        if groups is state.groups and len(timers) == len(state.timers) and state.last is None:
            return state, []  # nothing expired: the same state (timers without true keys only drop)
        return GatheringState(groups, timers, state.lifecycle, state.next_group, state.held), []

    def _remember(self, old: tuple[GroupMemory, ...], keys: Sequence[int], members: Sequence[tuple[int, ...]],
                  now: float) -> tuple[GroupMemory, ...]:
        """Matched groups with their new members; unmatched ones kept for ``max(grace, end_grace)``."""
        retention = self._retention
        if not keys:
            kept = tuple([g for g in old if now - g.last_seen <= retention])
            return old if len(kept) == len(old) else kept
        now = float(now)
        matched = dict(zip(keys, members))
        out = []
        for g in old:  # ordered by key
            m = matched.pop(g.key, None)
            if m is not None:
                size = len(m)
                out.append(_new(GroupMemory, (g.key, m, now, size if size > g.max_size else g.max_size)))
            elif now - g.last_seen <= retention:
                out.append(g)
        if matched:  # new keys, from the counter: above every remembered one
            for k in sorted(matched):
                out.append(GroupMemory(k, matched[k], now, len(matched[k])))
        return tuple(out)
