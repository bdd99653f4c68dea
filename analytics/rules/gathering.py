"""``gathering``: at least ``min_people`` people standing close together for at least ``min_duration``.

What counts, each frame:

* **Eligible people**: present tracks (confirmed, or lost and still predicted: see
  :func:`analytics.rules.scene.present`) of ``classes`` (persons by default), with the ground anchor (bottom
  centre of the box) inside ``zone`` when one is set, and a ground speed (:func:`~analytics.rules.scene.
  ground_speed`, m/s) of at most ``max_speed_mps``. Walkers are not eligible, so people crossing each other
  never make a group; only people standing or strolling do. (Eligibility by speed is the only "stillness"
  test: no fraction of still members is required.)
* **Clusters**: connected components (single linkage) of the graph "ground distance <= ``radius_m``" among
  eligible people (:func:`~analytics.rules.scene.pairwise_distance_m`). With the camera's ground calibration
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from analytics.rules import scene
from analytics.rules.base import Event, RuleConfigBase, RuleContext
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState, update_timers
from analytics.types import CLASS_IDS, CLASS_NAMES, Tracks, check_class_names, class_ids_from_names

_FALLBACK_UNIT = "person-height fallback"


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


@dataclass(frozen=True)
class _Frame:
    """Eligible people of one frame, sorted by track id: the arrays the clusters and the evidence use."""

    track_id: np.ndarray  # (N,) int64, ascending
    class_id: np.ndarray  # (N,) int16
    anchor: np.ndarray  # (N, 2) float64 pixels
    speed: np.ndarray  # (N,) float64 m/s
    dist: np.ndarray  # (N, N) float64 metres
    calibrated: bool


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
        class_ids = np.asarray(class_ids_from_names(config.classes), dtype=np.int64)
        self._class_lut = np.zeros(max(CLASS_NAMES) + 2, bool)  # last entry: any other class id
        self._class_lut[class_ids] = True
        self._class_names = [CLASS_NAMES.get(i, str(i)) for i in range(len(self._class_lut))]
        self._lifecycle = Lifecycle("gathering", config.id, config.min_duration, config.end_grace,
                                    config.update_every)
        self._retention = max(config.grace, config.end_grace)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> GatheringState:
        return GatheringState()

    def close(self, state: GatheringState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close every open gathering at the last time it held."""
        return self._lifecycle.close_all(state.lifecycle, now, context=context)

    def _candidates_mask(self, tracks: Tracks, context: RuleContext) -> np.ndarray:
        """(N,) bool: present tracks of the classes, inside the zone when one is set (speed not tested)."""
        cls = np.clip(tracks.class_id, 0, len(self._class_lut) - 1)
        mask = scene.present(tracks) & self._class_lut[cls]
        if self.config.zone is not None and mask.any():
            mask &= scene.in_zone(tracks, self.config.zone, context)
        return mask

    def _frame(self, tracks: Tracks, mask: np.ndarray, context: RuleContext) -> _Frame:
        """The eligible people (``mask`` and slow enough), sorted by track id, with their distances."""
        speed = scene.ground_speed(tracks, context)
        rows = np.flatnonzero(mask & (speed <= self.config.max_speed_mps))
        rows = rows[np.argsort(tracks.track_id[rows], kind="stable")]
        sel = tracks[rows]
        return _Frame(sel.track_id, sel.class_id, sel.anchor.astype(np.float64), speed[rows],
                      scene.pairwise_distance_m(sel, context), context.geometry.calibration is not None)

    def _clusters(self, frame: _Frame) -> list[np.ndarray]:
        """Row indices (ascending) of each cluster of at least ``end_threshold`` people, by first row."""
        if len(frame.track_id) < self.config.end_threshold:
            return []
        labels = connected_components(frame.dist <= self.config.radius_m)
        counts = np.bincount(labels, minlength=len(labels))
        return [np.flatnonzero(labels == root) for root in np.flatnonzero(counts >= self.config.end_threshold)]

    def step(self, tracks: Tracks, state: GatheringState, now: float, *,
             context: RuleContext) -> tuple[GatheringState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`. Events: closed, then by group key."""
        mask = self._candidates_mask(tracks, context)
        idle = not (state.groups or state.timers or state.lifecycle.episodes)
        if idle and np.count_nonzero(mask) < self.config.end_threshold:
            return state, []
        frame = self._frame(tracks, mask, context)
        clusters = self._clusters(frame)
        members = [tuple(frame.track_id[rows].tolist()) for rows in clusters]
        keys, next_group = match_groups(members, state.groups, state.next_group)
        groups = self._remember(state.groups, keys, members, now)
        holding = [k for k, m in zip(keys, members) if len(m) >= self.config.min_people]
        timers = update_timers(state.timers, holding, now, grace=self.config.grace)
        max_size = {g.key: g.max_size for g in groups}
        candidates = []
        for key, rows, ids in zip(keys, clusters, members):
            episode = state.lifecycle.episodes.get(key)
            if episode is None and len(rows) < self.config.min_people:
                continue
            since = episode.start if episode is not None else timers[key][0]
            candidates.append(self._candidate(key, since, rows, ids, frame, max_size[key], now, context))
        lifecycle, events = self._lifecycle.advance(state.lifecycle, candidates, now, context=context)
        return GatheringState(groups, timers, lifecycle, next_group), events

    def _remember(self, old: tuple[GroupMemory, ...], keys: list[int], members: list[tuple[int, ...]],
                  now: float) -> tuple[GroupMemory, ...]:
        """Matched groups with their new members; unmatched ones kept for ``max(grace, end_grace)``."""
        previous = {g.key: g for g in old}
        out = {k: GroupMemory(k, m, float(now), max(len(m), previous[k].max_size if k in previous else 0))
               for k, m in zip(keys, members)}
        for g in old:
            if g.key not in out and now - g.last_seen <= self._retention:
                out[g.key] = g
        return tuple(out[k] for k in sorted(out))

    def _candidate(self, key: int, since: float, rows: np.ndarray, ids: tuple[int, ...], frame: _Frame,
                   max_size: int, now: float, context: RuleContext) -> Candidate:
        """The lifecycle candidate of one cluster, with its evidence and score."""
        cfg = self.config
        size = len(ids)
        held = max(now - since, 0.0)
        score = (0.5 * (1.0 - math.exp(-size / cfg.min_people))
                 + 0.5 * (1.0 - math.exp(-held / max(cfg.min_duration, 1.0))))
        cx, cy = frame.anchor[rows].mean(axis=0).tolist()
        evidence: dict[str, Any] = {
            "size": size,
            "max_size": int(max_size),
            "centroid_px": [round(cx, 1), round(cy, 1)],
            "centroid_norm": [round(cx / context.frame_size[0], 4), round(cy / context.frame_size[1], 4)],
            "diameter_m": round(float(frame.dist[np.ix_(rows, rows)].max()), 3),
            "mean_speed_mps": round(float(frame.speed[rows].mean()), 3),
            "unit": "m" if frame.calibrated else _FALLBACK_UNIT,
            "thresholds": {"min_people": cfg.min_people, "end_min_people": cfg.end_threshold,
                           "radius_m": cfg.radius_m, "max_speed_mps": cfg.max_speed_mps,
                           "min_duration": cfg.min_duration},
        }
        lut = len(self._class_names) - 1
        classes = tuple(self._class_names[min(max(c, 0), lut)] for c in frame.class_id[rows].tolist())
        return Candidate(key=key, since=float(since), members=ids, classes=classes,
                         score=min(max(score, 0.0), 1.0), evidence=evidence, zone_id=cfg.zone)
