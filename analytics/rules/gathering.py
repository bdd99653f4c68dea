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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.rules.view import FrameView
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, check_class_names, class_ids_from_names

_FALLBACK_UNIT = "person-height fallback"
#: From this many eligible people on, the pairwise distances are computed with numpy (same values, element
#: by element); below, in plain Python, which is cheaper for a handful of people.
_NUMPY_PAIRS_FROM = 16
#: Below this many values numpy's mean adds them one after the other (its pairwise summation starts at 8), so
#: a plain Python loop gives the very same float; from it on, numpy itself.
_NUMPY_MEAN_FROM = 8


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

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)

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


@dataclass(frozen=True)
class GroupMemory:
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


@dataclass(frozen=True)
class GatheringState:
    """Immutable state of one gathering rule.

    Attributes:
        groups: remembered groups, ordered by key.
        timers: start hysteresis per group key: ``key -> (since, last_true)`` seconds (size >= min_people).
        lifecycle: open events of the :class:`~analytics.rules.lasting.Lifecycle`.
        next_group: counter for new group keys.
    """

    groups: tuple[GroupMemory, ...] = ()
    timers: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    lifecycle: LifecycleState = field(default_factory=LifecycleState)
    next_group: int = 0


class _Frame:
    """Eligible people of one frame, sorted by track id (plain Python lists, aligned), for clusters and evidence.

    ``dist[i][j]`` (for ``i < j`` at least) is the ground distance of people ``i`` and ``j``, metres (the
    formula of :meth:`analytics.rules.view.FrameView.pairwise_distance_m`, element by element).
    """

    __slots__ = ("rows", "track_id", "class_id", "speed", "dist", "calibrated", "_tracks", "_anchor")

    def __init__(self, tracks: Tracks, rows: list[int], track_id: list[int], class_id: list[int],
                 speed: list[float], dist: list[list[float]], calibrated: bool,
                 anchor: list[list[float]] | None) -> None:
        self.rows = rows  # rows of the frame's tracks
        self.track_id = track_id  # ascending
        self.class_id = class_id
        self.speed = speed  # m/s
        self.dist = dist
        self.calibrated = calibrated
        self._tracks = tracks
        self._anchor = anchor  # the whole frame's anchors (pixels), when already read

    def anchor(self) -> list[list[float]]:
        """The whole frame's anchors, pixels (float32 read as float, exactly as ``astype(float64)``)."""
        if self._anchor is None:
            self._anchor = self._tracks.anchor.tolist()
        return self._anchor


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
        for g, group in enumerate(groups):
            for tid in group.members:
                c = cluster_of.get(tid)
                if c is not None:
                    shared[(g, c)] = shared.get((g, c), 0) + 1
        ranked = sorted(shared, key=lambda gc: (-shared[gc], gc[0], -len(clusters[gc[1]]), gc[1]))
        taken: set[int] = set()
        for g, c in ranked:
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
        self._wanted = frozenset(class_ids_from_names(config.classes))
        self._class_names = [CLASS_NAMES.get(i, str(i)) for i in range(max(CLASS_NAMES) + 2)]
        self._end_threshold = config.end_threshold
        self._lifecycle = Lifecycle("gathering", config.id, config.min_duration, config.end_grace,
                                    config.update_every)
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
        return self._lifecycle.close_all(state.lifecycle, now, context=context)

    def _frame(self, tracks: Tracks, rows: list[int], speed: list[float], view: FrameView) -> _Frame:
        """The eligible people (``rows`` of the frame, ascending; ``speed`` of every row), sorted by track id,
        with their pairwise distances."""
        track_id = tracks.track_id.tolist()
        rows = sorted(rows, key=track_id.__getitem__)  # stable, like the argsort it replaces
        n = len(rows)
        ground = view.ground()
        calibrated = ground is not None
        anchor = None
        if n >= _NUMPY_PAIRS_FROM:
            sel = np.asarray(rows, dtype=np.intp)
            if calibrated:
                g = ground[sel]
                d = g[:, None, :] - g[None, :, :]
                dist = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
            else:
                xy = tracks.anchor[sel].astype(np.float64)
                scale = view.metres_per_px()[sel]
                d = xy[:, None, :] - xy[None, :, :]
                dist = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) * (scale[:, None] + scale[None, :]) / 2
            dist_l = dist.tolist()
        else:
            sqrt = math.sqrt
            dist_l = []
            if calibrated:
                everywhere = ground.tolist()
                xy = [everywhere[i] for i in rows]
                for i in range(n):
                    xi, yi = xy[i]
                    row = [0.0] * (i + 1)
                    for j in range(i + 1, n):
                        dx = xi - xy[j][0]
                        dy = yi - xy[j][1]
                        row.append(sqrt(dx * dx + dy * dy))
                    dist_l.append(row)
            else:
                anchor = tracks.anchor.tolist()  # float32 -> float, exactly as astype(float64)
                mpp = view.metres_per_px().tolist()
                xy = [anchor[i] for i in rows]
                scale = [mpp[i] for i in rows]
                for i in range(n):
                    xi, yi = xy[i]
                    si = scale[i]
                    row = [0.0] * (i + 1)
                    for j in range(i + 1, n):
                        dx = xi - xy[j][0]
                        dy = yi - xy[j][1]
                        row.append(sqrt(dx * dx + dy * dy) * (si + scale[j]) / 2)
                    dist_l.append(row)
        class_id = tracks.class_id.tolist()
        return _Frame(tracks, rows, [track_id[i] for i in rows], [class_id[i] for i in rows],
                      [speed[i] for i in rows], dist_l, calibrated, anchor)

    def _clusters(self, frame: _Frame) -> list[list[int]]:
        """Indices into ``frame`` (ascending) of each cluster of at least ``end_threshold`` people, ordered by
        their first index: connected components of "distance <= radius_m" (single linkage)."""
        n = len(frame.track_id)
        need = self._end_threshold
        if n < need:
            return []
        radius = self.config.radius_m
        dist = frame.dist
        adjacent: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            row, near_i = dist[i], adjacent[i]
            for j in range(i + 1, n):
                if row[j] <= radius:
                    near_i.append(j)
                    adjacent[j].append(i)
        seen = [False] * n
        clusters = []
        for i in range(n):
            if seen[i]:
                continue
            seen[i] = True
            component, todo = [i], [i]
            while todo:
                for v in adjacent[todo.pop()]:
                    if not seen[v]:
                        seen[v] = True
                        component.append(v)
                        todo.append(v)
            if len(component) >= need:
                component.sort()
                clusters.append(component)
        return clusters

    def step(self, tracks: Tracks, state: GatheringState, now: float, *,
             context: RuleContext) -> tuple[GatheringState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by group key."""
        cfg = self.config
        need = self._end_threshold
        idle = not (state.groups or state.timers or state.lifecycle.episodes)
        if idle and len(tracks) < need:
            return state, []
        view = frame_view(tracks, context)
        # plain Python over the frame's few rows: cheaper than a chain of numpy calls at that size
        wanted = self._wanted
        present, classes = view.present().tolist(), tracks.class_id.tolist()
        if cfg.zone is None:
            rows = [i for i, (p, c) in enumerate(zip(present, classes)) if p and c in wanted]
        else:
            rows = [i for i, (p, z, c) in enumerate(zip(present, view.in_zone(cfg.zone).tolist(), classes))
                    if p and z and c in wanted]
        if idle and len(rows) < need:
            return state, []
        speed = view.ground_speed().tolist()
        limit = cfg.max_speed_mps
        rows = [i for i in rows if speed[i] <= limit]
        if len(rows) < need:  # no cluster this frame
            if idle:
                return state, []
            return self._without_clusters(state, now, context)
        frame = self._frame(tracks, rows, speed, view)
        clusters = self._clusters(frame)
        if not clusters:
            if idle:
                return state, []
            return self._without_clusters(state, now, context)
        ids = frame.track_id
        members = [tuple([ids[k] for k in comp]) for comp in clusters]
        keys, next_group = match_groups(members, state.groups, state.next_group)
        groups = self._remember(state.groups, keys, members, now)
        holding = [k for k, m in zip(keys, members) if len(m) >= cfg.min_people]
        timers = update_timers(state.timers, holding, now, grace=cfg.grace)
        max_size = {g.key: g.max_size for g in groups}
        candidates = []
        episodes = state.lifecycle.episodes
        for key, comp, m in zip(keys, clusters, members):
            episode = episodes.get(key)
            if episode is None and len(m) < cfg.min_people:
                continue
            since = episode.start if episode is not None else timers[key][0]
            candidates.append(self._candidate(key, since, comp, m, frame, max_size[key], now, context))
        lifecycle, events = self._lifecycle.advance(state.lifecycle, candidates, now, context=context)
        return GatheringState(groups, timers, lifecycle, next_group), events

    def _without_clusters(self, state: GatheringState, now: float,
                          context: RuleContext) -> tuple[GatheringState, list[Event]]:
        """A frame without clusters: groups and timers age, open events may close."""
        groups = self._remember(state.groups, [], [], now)
        timers = update_timers(state.timers, (), now, grace=self.config.grace)
        lifecycle, events = self._lifecycle.advance(state.lifecycle, (), now, context=context)
        if (groups is state.groups and lifecycle is state.lifecycle and len(timers) == len(state.timers)):
            return state, events  # nothing expired: the same state (timers without true keys only drop)
        return GatheringState(groups, timers, lifecycle, state.next_group), events

    def _remember(self, old: tuple[GroupMemory, ...], keys: Sequence[int], members: Sequence[tuple[int, ...]],
                  now: float) -> tuple[GroupMemory, ...]:
        """Matched groups with their new members; unmatched ones kept for ``max(grace, end_grace)``."""
        if not keys:
            kept = tuple(g for g in old if now - g.last_seen <= self._retention)
            return old if len(kept) == len(old) else kept
        previous = {g.key: g for g in old}
        out = {k: GroupMemory(k, m, float(now), max(len(m), previous[k].max_size if k in previous else 0))
               for k, m in zip(keys, members)}
        for g in old:
            if g.key not in out and now - g.last_seen <= self._retention:
                out[g.key] = g
        return tuple(out[k] for k in sorted(out))

    def _candidate(self, key: int, since: float, comp: list[int], ids: tuple[int, ...], frame: _Frame,
                   max_size: int, now: float, context: RuleContext) -> Candidate:
        """The lifecycle candidate of one cluster (``comp``: indices into ``frame``), with evidence and score."""
        cfg = self.config
        size = len(ids)
        held = max(now - since, 0.0)
        score = (0.5 * (1.0 - math.exp(-size / cfg.min_people))
                 + 0.5 * (1.0 - math.exp(-held / max(cfg.min_duration, 1.0))))
        everywhere, rows = frame.anchor(), frame.rows
        anchor = [everywhere[rows[k]] for k in comp]
        speeds = [frame.speed[k] for k in comp]
        if size < _NUMPY_MEAN_FROM:  # numpy's own order of summation for so few values: one after the other
            cx, cy = anchor[0]
            for x, y in anchor[1:]:
                cx += x
                cy += y
            cx, cy = cx / size, cy / size
            mean_speed = speeds[0]
            for v in speeds[1:]:
                mean_speed += v
            mean_speed /= size
        else:
            cx, cy = np.asarray(anchor, dtype=np.float64).mean(axis=0).tolist()
            mean_speed = float(np.asarray(speeds, dtype=np.float64).mean())
        dist = frame.dist
        diameter = max(dist[i][j] for n, i in enumerate(comp) for j in comp[n + 1:])
        evidence: dict[str, Any] = {
            "size": size,
            "max_size": int(max_size),
            "centroid_px": [round(cx, 1), round(cy, 1)],
            "centroid_norm": [round(cx / context.frame_size[0], 4), round(cy / context.frame_size[1], 4)],
            "diameter_m": round(float(diameter), 3),
            "mean_speed_mps": round(mean_speed, 3),
            "unit": "m" if frame.calibrated else _FALLBACK_UNIT,
            "thresholds": dict(self._thresholds),
        }
        names, last = self._class_names, len(self._class_names) - 1
        class_id = frame.class_id
        classes = tuple([names[min(max(class_id[k], 0), last)] for k in comp])
        return Candidate(key=key, since=float(since), members=ids, classes=classes,
                         score=min(max(score, 0.0), 1.0), evidence=evidence, zone_id=cfg.zone)
