"""``abnormal_flow``: surges and drops of the traffic over a line or into a zone, against a learned baseline.

What is counted
    With ``line``: crossings of the tripwire, each track counted once per line, by the code of
    :mod:`analytics.rules.line_count` itself (same hysteresis band and segment test; lost tracks are not
    used). With ``zone``: entries; a confirmed track is counted when its ground anchor (bottom centre) is
    inside the zone and was not on its previous confirmed frame, so a track first seen inside counts, one that
    leaves and comes back counts again, and a track unseen for ``forget_after`` seconds starts afresh. Only
    the ``classes`` count. :class:`FlowCounter` is this counting as a pure state machine, shared with the
    baseline learner (:func:`analytics.baseline.learn_from_track_logs`), so live and learned counts agree.

Windows
    A window count is the number of tracks counted in ``(t - window, t]``. Windows are evaluated at the
    first frame at or after each boundary ``t0 + window + k * hop`` (``t0``: the first frame), so nothing is
    evaluated before a full window has been seen and there is no false drop at start-up. A gap of more than
    ``max_gap`` seconds between two frames (a stream outage) restarts that clock. The total over the classes
    is scored; the evidence gives the count per class and, for a line, per direction. To watch one class on
    its own (buses), make a rule with just that class.

Expected count
    The ``baseline`` file (:class:`analytics.baseline.Baseline`, learned with ``analytics baseline learn``)
    holds the mean and variance of the window count per time bucket. A window's bucket is that of its end
    time, read as Unix seconds in UTC shifted by ``utc_offset_hours``: ``hour_of_week`` (168 buckets),
    ``hour_of_day`` (24) or ``none`` (1). Recorded files have media time from 0 (1970-01-01 00:00, a
    Thursday), so every window of a clip shorter than an hour falls in one bucket; learn and watch clips
    with ``bucket: none`` unless their timestamps are real. A bucket with fewer than ``min_windows`` windows
    uses the statistics pooled over all buckets. Without a baseline file (missing: a warning, then the
    fallback), or with too few windows even pooled, the fixed thresholds apply: a surge above ``max_count``,
    a drop below ``min_count`` per window. With neither, the rule does nothing.

Score
    Against a baseline of mean ``m`` (floored at 0.1, so an empty bucket still gives finite odds) and
    variance ``v``, the window count ``X`` is modelled as Poisson(``m``), or as a negative binomial of mean
    ``m`` and variance ``v`` when over-dispersed (``v > 1.001 m``). An observed count ``n > m`` is a surge
    with ``p = P(X >= n)``, ``n < m`` a drop with ``p = P(X <= n)`` (tails summed in log space from
    ``math.lgamma``; a few dozen terms for city counts, a conservative bound for extreme over-dispersion).
    A window is flagged when ``p < p_value`` and ``|n - m| >= min_difference`` (no alarm on 2 cars instead
    of 0). Score: ``min(1, log10(1/p) / (2 log10(1/p_value)))``: 0.5 at the threshold, 1 at
    ``p = p_value**2``, rising with the improbability of the count. The evidence adds the z-score
    ``(n - m) / sqrt(max(v, m))``. With fixed thresholds: ``score = min(1, 0.5 + 0.5 * excess /
    max(threshold, 1))``, where excess is how far past the threshold the count is.

Events
    Kind ``abnormal_flow``, key 0 a surge, 1 a drop, through :class:`~analytics.rules.lasting.Lifecycle`: the
    first flagged window opens the event at once, starting at that window's start; each further flagged
    window in the same direction refreshes it (an ``updated`` record at most every half window, with the
    latest window's evidence); it closes one hop after its last flagged window, ending at that window's end.
    The score is the best window's. Evidence: direction, observed and expected counts, variance, p-value,
    z-score, thresholds, window and hop, window start and end, bucket, baseline source (``"learned
    bucket"``, ``"pooled"``, ``"fixed threshold"``) and windows behind it, counts and expected counts per
    class, counts per direction (lines).

Cost: between window boundaries a frame costs the counting only (a line-count step, or a lookup of the
confirmed tracks' zone membership in the frame's shared view and a few dict updates); the score is computed
once per hop.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, field_validator, model_validator

from analytics.baseline import Baseline, BucketStats, bucket_label, bucket_of
from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.geometry import SceneGeometry
from analytics.rules.lasting import Candidate, Lifecycle, LifecycleState
from analytics.rules.line_count import LineCountConfig, LineCountRule
from analytics.rules.view import FrameView, LogFrames
from analytics.types import CLASS_IDS, TrackState, Tracks, check_class_names, class_ids_from_names

log = logging.getLogger(__name__)

_MEAN_FLOOR = 0.1  # counts per window: expected counts below this are taken as this
_OVERDISPERSED = 1.001  # variance / mean above which the negative binomial is used
_MAX_TERMS = 2_000  # terms of an upper-tail sum before the geometric remainder is added
_DIRECTIONS = {1: "positive", -1: "negative"}
_CONFIRMED = int(TrackState.CONFIRMED)


class AbnormalFlowConfig(RuleConfigBase):
    """Config of one abnormal-flow rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)
    line_fields = ("line",)

    kind: Literal["abnormal_flow"] = Field(description="rule type selector")
    line: str | None = Field(None, description="id of the line whose crossings are counted; give line or zone")
    zone: str | None = Field(None, description="id of the zone whose entries are counted; give line or zone")
    classes: tuple[str, ...] = Field(("car", "bus", "truck", "motorcycle"),
                                     description=f"class names counted, any of {sorted(CLASS_IDS)}")
    window: float = Field(60.0, ge=10.0, le=900.0, description="counting window, seconds; range 30-300 "
                          "(longer for sparse traffic, so a window holds several tracks)")
    hop: float = Field(10.0, ge=1.0, description="seconds between two window evaluations, at most window; "
                       "range 5-60")
    baseline: str | None = Field(None, description="path of the baseline JSON learned by 'analytics baseline "
                                 "learn' (relative to the working directory); a missing file logs a warning "
                                 "and the fixed thresholds apply; null: fixed thresholds only")
    bucket: Literal["hour_of_week", "hour_of_day", "none"] = Field(
        "hour_of_week", description="time buckets of the baseline: hour_of_week (168), hour_of_day (24) or "
        "none (1; for recorded clips, whose media time starts at 0)")
    utc_offset_hours: float = Field(0.0, ge=-12.0, le=14.0, description="local time minus UTC, hours, for the "
                                    "buckets (timestamps are Unix seconds in UTC); must match the baseline")
    min_windows: int = Field(6, ge=1, description="windows a bucket needs in the baseline, else the pooled "
                             "statistics are used; range 6-60")
    p_value: float = Field(0.001, ge=1e-6, le=0.05, description="a window is flagged when its count is this "
                           "unlikely under the baseline (one tail); range 1e-5-0.01 (lower: fewer alarms)")
    min_difference: float = Field(3.0, ge=0.0, description="a flagged window also differs from the expected "
                                  "count by at least this many tracks; range 2-20")
    max_count: int | None = Field(None, ge=0, description="without a baseline: a surge when a window counts "
                                  "more than this; null: no surge without a baseline")
    min_count: int | None = Field(None, ge=0, description="without a baseline: a drop when a window counts "
                                  "fewer than this; null: no drop without a baseline")
    hysteresis_px: float = Field(8.0, ge=0.0, description="lines: half-width of the dead band around the line, "
                                 "pixels (see line_count); range 4-40")
    forget_after: float = Field(10.0, gt=0.0, description="seconds after which an unseen track is forgotten (it "
                                "may then be counted again); longer than the tracker's lost_ttl; range 5-60")
    max_gap: float = Field(5.0, gt=0.0, description="seconds between two frames beyond which the stream counts as "
                           "interrupted and a full window is awaited again; above the frame interval; range 2-30")

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"classes must be distinct, got {list(value)}")
        return check_class_names(value)

    @model_validator(mode="after")
    def _coherent(self) -> AbnormalFlowConfig:
        if (self.line is None) == (self.zone is None):
            raise ValueError(f"rule {self.id!r}: give exactly one of line or zone "
                             f"(got line={self.line!r}, zone={self.zone!r})")
        if self.hop > self.window:
            raise ValueError(f"rule {self.id!r}: hop {self.hop} s must not exceed window {self.window} s")
        if self.min_count is not None and self.max_count is not None and self.min_count > self.max_count:
            raise ValueError(f"rule {self.id!r}: min_count {self.min_count} exceeds max_count {self.max_count}")
        return self


# --------------------------------------------------------------------------------------------------
# Counting: a pure state machine shared by the rule and the baseline learner
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowCount:
    """One evaluated window.

    Attributes:
        end: seconds, frame time of the evaluation; the window is ``(end - window, end]``.
        window: window length, seconds.
        total: tracks counted in the window.
        by_class: ``((class name, count), ...)`` in config order, zeros included.
        by_direction: lines: ``(("positive", n), ("negative", n))``; zones: ``()``.
    """

    end: float
    window: float
    total: int
    by_class: tuple[tuple[str, int], ...]
    by_direction: tuple[tuple[str, int], ...] = ()

    def counts(self) -> dict[str, int]:
        """``{"total": n, class: n, ...}``."""
        return {"total": self.total, **dict(self.by_class)}


class ZoneEntryState(NamedTuple):
    """Per-track memory of zone entries (immutable: ``memory`` is never written after creation).

    Attributes:
        memory: track id -> ``(inside, last_seen)``: the anchor was inside the zone on the track's last
            confirmed frame; the time of that frame, seconds.
        oldest: seconds, at most the oldest ``last_seen`` in ``memory`` (inf when empty): tracks to forget
            are looked for only once ``now - oldest`` exceeds ``forget_after``.

    The properties ``track_id``, ``inside`` and ``last_seen`` give the memory as arrays sorted by track id.
    """

    memory: Mapping[int, tuple[bool, float]] = {}  # noqa: RUF012 -- never written (a new dict each frame)
    oldest: float = math.inf

    @classmethod
    def empty(cls) -> ZoneEntryState:
        return cls({})

    @property
    def track_id(self) -> np.ndarray:
        """(K,) int64, ascending."""
        return np.array(sorted(self.memory), np.int64)

    @property
    def inside(self) -> np.ndarray:
        """(K,) bool, the anchor was inside the zone on the track's last confirmed frame."""
        return np.array([self.memory[t][0] for t in sorted(self.memory)], bool)

    @property
    def last_seen(self) -> np.ndarray:
        """(K,) float64 seconds, last confirmed frame."""
        return np.array([self.memory[t][1] for t in sorted(self.memory)], np.float64)


def zone_entries(tracks: Tracks, state: ZoneEntryState, now: float, *, view: FrameView, zone_id: str,
                 class_ids: frozenset[int], forget_after: float) -> tuple[ZoneEntryState, list[int]]:
    """One frame of zone-entry counting (see the module docstring).

    Args:
        view: the frame's measurements (zone membership of the anchors: :meth:`FrameView.in_zone`).
        zone_id: the zone.
        class_ids: the counted class ids.

    Returns:
        The new state (``state`` itself when nothing changed) and the class ids of the tracks entering at
        this frame, ordered by track id.
    """
    now = float(now)
    confirmed = _CONFIRMED
    cls = tracks.class_id.tolist()
    rows = [i for i, (c, s) in enumerate(zip(cls, tracks.state.tolist())) if s == confirmed and c in class_ids]
    memory = state.memory
    if not rows:
        if now - state.oldest <= forget_after:
            return state, []
        return ZoneEntryState(*_forget(dict(memory), now, forget_after)), []
    ids, inside = tracks.track_id.tolist(), view.in_zone(zone_id).tolist()
    mem = dict(memory)
    entered = []
    for i in rows:
        tid, now_inside = ids[i], inside[i]
        if now_inside and not memory.get(tid, _OUTSIDE)[0]:
            entered.append((tid, cls[i]))
        mem[tid] = (now_inside, now)
    oldest = state.oldest if state.oldest < now else now
    if now - oldest > forget_after:
        mem, oldest = _forget(mem, now, forget_after)
    if len(entered) > 1:
        entered.sort()
    return ZoneEntryState(mem, oldest), [c for _, c in entered]


_OUTSIDE = (False, -math.inf)


def _forget(memory: dict[int, tuple[bool, float]], now: float,
            forget_after: float) -> tuple[dict[int, tuple[bool, float]], float]:
    """``memory`` (a fresh dict, changed in place) without the tracks unseen for more than ``forget_after``
    seconds, and the oldest ``last_seen`` left (inf when empty)."""
    for tid in [t for t, m in memory.items() if not now - m[1] <= forget_after]:
        del memory[tid]
    return memory, min((m[1] for m in memory.values()), default=math.inf)


class FlowState(NamedTuple):
    """State of :class:`FlowCounter` (immutable; a named tuple, cheaper to build each frame).

    Attributes:
        counter: the line-count state (lines) or :class:`ZoneEntryState` (zones).
        recent: ``((time, class index, direction), ...)`` of the tracks counted since the window before the
            last evaluation, in time order; direction +1/-1 for lines, 0 for zones.
        start: seconds, first frame since the start or the last gap; None before the first frame.
        last_time: seconds, the previous frame.
        evaluated: windows evaluated since ``start``.
    """

    counter: Any
    recent: tuple[tuple[float, int, int], ...] = ()
    start: float | None = None
    last_time: float | None = None
    evaluated: int = 0


class FlowCounter:
    """Counts crossings of a line or entries into a zone and yields a window count every hop (pure).

    Used by :class:`AbnormalFlowRule` and by :func:`analytics.baseline.learn_from_track_logs`.
    """

    def __init__(self, config: AbnormalFlowConfig) -> None:
        self.config = config
        self._class_ids = np.asarray(class_ids_from_names(config.classes), dtype=np.int16)
        self._index = {name: i for i, name in enumerate(config.classes)}
        self._index_by_id = {int(cid): i for i, cid in enumerate(self._class_ids)}
        self._class_set = frozenset(self._index_by_id)
        self._checked: SceneGeometry | None = None  # the last scene whose zone was looked up
        self._line_rule = None
        if config.line is not None:
            self._line_rule = LineCountRule(LineCountConfig(
                kind="line_count", id=config.id, line=config.line, classes=config.classes,
                hysteresis_px=config.hysteresis_px, forget_after=config.forget_after))

    def initial_state(self) -> FlowState:
        return FlowState(self._line_rule.initial_state() if self._line_rule else ZoneEntryState.empty())

    def counted(self, frames: LogFrames, camera_id: str) -> list[tuple[int, int, int]] | None:
        """What the counting steps count over a whole log at once: ``(frame, class index, direction)`` in step
        order; None when the line's whole-log count is not exact for this log
        (:meth:`LineCountRule.replay`) or, for a zone, a track is twice in a frame."""
        if self._line_rule is not None:
            crossings = self._line_rule.replay(frames, camera_id)
            if crossings is None:
                return None
            return [(f, self._index[e.evidence["class"]], int(e.evidence["direction"])) for f, e in crossings]
        # zone entries: per track, its confirmed rows of the classes in time order; a row inside the zone
        # enters when the track's previous such row was outside, or it is the first one since the track was
        # (re)met: first seen, or forgotten at a frame more than forget_after after its previous row
        cls = frames.tracks.class_id
        walk = frames.walk((frames.tracks.state == _CONFIRMED) & np.isin(cls, sorted(self._class_set)))
        if walk is None:
            return None
        rows, ids, fr, same, in_gap, gap = walk
        forgotten = in_gap & ~(gap <= self.config.forget_after)
        inside = frames.in_zone(str(self.config.zone))[rows]
        was_inside = np.zeros(len(rows), bool)
        was_inside[1:] = same & ~forgotten & inside[:-1]
        entered = np.flatnonzero(inside & ~was_inside)
        e_frame, e_id, e_cls = fr[entered], ids[entered], cls[rows[entered]]
        order = np.lexsort((e_cls, e_id, e_frame))  # each frame's entries by track id, as the step sorts them
        index = self._index_by_id
        return [(f, index[c], 0) for f, c in zip(e_frame[order].tolist(), e_cls[order].tolist(), strict=True)]

    def _count(self, tracks: Tracks, counter: Any, now: float,
               context: RuleContext) -> tuple[Any, tuple[tuple[float, int, int], ...]]:
        """The counting step: new counter state and the tracks counted at this frame."""
        if self._line_rule is not None:
            counter, crossings = self._line_rule.step(tracks, counter, now, context=context)
            if not crossings:
                return counter, ()
            return counter, tuple((now, self._index[e.evidence["class"]], int(e.evidence["direction"]))
                                  for e in crossings)
        zone_id = str(self.config.zone)
        if context.geometry is not self._checked:
            context.geometry.zone(zone_id)  # KeyError naming the known zones
            self._checked = context.geometry
        counter, cls = zone_entries(tracks, counter, now, view=frame_view(tracks, context), zone_id=zone_id,
                                    class_ids=self._class_set, forget_after=self.config.forget_after)
        if not cls:
            return counter, ()
        return counter, tuple((now, self._index_by_id[c], 0) for c in cls)

    def step(self, tracks: Tracks, state: FlowState, now: float, *,
             context: RuleContext) -> tuple[FlowState, WindowCount | None]:
        """Count one frame; returns the new state and the window count when a window boundary was reached."""
        cfg, now = self.config, float(now)
        start, recent, evaluated = state.start, state.recent, state.evaluated
        if start is None or (state.last_time is not None and now - state.last_time > cfg.max_gap):
            start, recent, evaluated = now, (), 0
        counter, new = self._count(tracks, state.counter, now, context)
        if new:
            recent = recent + new
        if now < start + cfg.window + evaluated * cfg.hop:
            return FlowState(counter, recent, start, now, evaluated), None
        low = now - cfg.window
        recent = tuple(e for e in recent if e[0] > low)
        evaluated = max(evaluated + 1, math.floor((now - start - cfg.window) / cfg.hop) + 1)
        return FlowState(counter, recent, start, now, evaluated), self._window(recent, now)

    def _window(self, recent: tuple[tuple[float, int, int], ...], now: float) -> WindowCount:
        per_class = [0] * len(self.config.classes)
        per_direction = {1: 0, -1: 0}
        for _, c, d in recent:
            per_class[c] += 1
            if d:
                per_direction[d] += 1
        return WindowCount(
            end=now, window=self.config.window, total=len(recent),
            by_class=tuple(zip(self.config.classes, per_class, strict=True)),
            by_direction=tuple((_DIRECTIONS[d], n) for d, n in per_direction.items()) if self._line_rule else (),
        )


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def _nb_params(mean: float, variance: float) -> tuple[float, float] | None:
    """(r, q) of the negative binomial of this mean and variance (q = 1 - mean / variance), None: Poisson."""
    if variance <= mean * _OVERDISPERSED:
        return None
    return mean * mean / (variance - mean), 1.0 - mean / variance


def _log_pmf(k: int, mean: float, nb: tuple[float, float] | None) -> float:
    if nb is None:
        return k * math.log(mean) - mean - math.lgamma(k + 1)
    r, q = nb
    return math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + r * math.log1p(-q) + k * math.log(q)


def _ratio(j: int, mean: float, nb: tuple[float, float] | None) -> float:
    """pmf(j + 1) / pmf(j)."""
    if nb is None:
        return mean / (j + 1)
    r, q = nb
    return (j + r) * q / (j + 1)


def _log_upper_sum(k: int, mean: float, nb: tuple[float, float] | None) -> float:
    """log P(X >= k) summed upwards from k; for k above the mean, where the terms decrease. Past
    ``_MAX_TERMS`` terms (variance hundreds of times the mean) the rest is bounded by a geometric series, so
    the p-value is then slightly overestimated (fewer alarms), never underestimated."""
    total, term, j = 1.0, 1.0, k
    ratio = _ratio(j, mean, nb)
    for _ in range(_MAX_TERMS):
        ratio = _ratio(j, mean, nb)
        term *= ratio
        total += term
        j += 1
        if term <= total * 1e-17:
            break
    else:  # a very heavy tail: add a geometric bound of the rest (the ratios tend to q from either side)
        bound = ratio if nb is None else max(ratio, nb[1])
        if bound < 1.0:
            total += term * bound / (1.0 - bound)
    return _log_pmf(k, mean, nb) + math.log(total)


def _log_lower_sum(k: int, mean: float, nb: tuple[float, float] | None) -> float:
    """log P(X <= k) summed downwards from k (k >= 0, below the mean)."""
    total, term = 1.0, 1.0
    for j in range(k, 0, -1):
        term /= _ratio(j - 1, mean, nb)
        total += term
        if term <= total * 1e-17:
            break
    return _log_pmf(k, mean, nb) + math.log(total)


def _log1m_exp(log_x: float) -> float:
    """log(1 - exp(log_x)) for log_x < 0."""
    return math.log1p(-min(math.exp(log_x), 1.0 - 1e-16))


def log_tail_probabilities(observed: int, mean: float, variance: float) -> tuple[float, float]:
    """Natural logs of ``(P(X >= observed), P(X <= observed))`` for a count of this mean and variance.

    ``X`` is Poisson(mean), or negative binomial when ``variance > 1.001 * mean``; the mean is floored at
    0.1. Each tail is summed directly on its own side of the mean (exact for tiny p) and taken as one minus
    the other tail on the other side.
    """
    mean = max(float(mean), _MEAN_FLOOR)
    nb = _nb_params(mean, max(float(variance), 0.0))
    n = int(observed)
    if n <= 0:
        upper = 0.0
    elif n > mean:
        upper = _log_upper_sum(n, mean, nb)
    else:
        upper = _log1m_exp(_log_lower_sum(n - 1, mean, nb))
    if n < 0:
        lower = -math.inf
    elif n < mean:
        lower = _log_lower_sum(n, mean, nb)
    else:
        lower = _log1m_exp(_log_upper_sum(n + 1, mean, nb))
    return min(upper, 0.0), min(lower, 0.0)


@dataclass(frozen=True)
class Assessment:
    """How abnormal one window count is.

    Attributes:
        direction: ``"surge"``, ``"drop"``, or None when the count is the expected one.
        observed: the window count.
        score: [0, 1], see the module docstring.
        flagged: the window is abnormal.
        p_value: the tail probability in ``direction`` (baseline only; 1.0 without a direction).
        z_score: ``(observed - expected) / sqrt(max(variance, expected))`` (baseline only).
    """

    direction: str | None
    observed: int
    score: float
    flagged: bool
    p_value: float | None = None
    z_score: float | None = None


def assess(observed: int, expected: float, variance: float, *, p_value: float, min_difference: float) -> Assessment:
    """Score a window count against a baseline mean and variance (see the module docstring)."""
    log_upper, log_lower = log_tail_probabilities(observed, expected, variance)
    if observed > expected:
        direction, log_p = "surge", log_upper
    elif observed < expected:
        direction, log_p = "drop", log_lower
    else:
        direction, log_p = None, 0.0
    score = min(1.0, max(0.0, log_p / (2.0 * math.log(p_value))))
    z = (observed - expected) / math.sqrt(max(variance, expected, _MEAN_FLOOR))
    flagged = direction is not None and log_p < math.log(p_value) and abs(observed - expected) >= min_difference
    return Assessment(direction, int(observed), score, flagged, math.exp(log_p), z)


def assess_fixed(observed: int, *, max_count: int | None, min_count: int | None) -> Assessment:
    """Fixed thresholds: a surge above ``max_count``, a drop below ``min_count`` (None: no such check)."""
    if max_count is not None and observed > max_count:
        excess, threshold, direction = observed - max_count, max_count, "surge"
    elif min_count is not None and observed < min_count:
        excess, threshold, direction = min_count - observed, min_count, "drop"
    else:
        return Assessment(None, int(observed), 0.0, False)
    return Assessment(direction, int(observed), min(1.0, 0.5 + 0.5 * excess / max(threshold, 1)), True)


# --------------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------------


class AbnormalFlowState(NamedTuple):
    """The counting state and the open events (immutable)."""

    flow: FlowState
    life: LifecycleState = LifecycleState()


def load_rule_baseline(config: AbnormalFlowConfig) -> Baseline | None:
    """The config's baseline, checked against it; None (with a warning) when the file is missing.

    Raises:
        ValueError: a malformed file, or one learned with another window, hop, bucket scheme, offset, classes
            or target; the message names the file.
    """
    if config.baseline is None:
        return None
    path = Path(config.baseline)
    if not path.is_file():
        log.warning("rule %s: baseline %s not found; fixed thresholds apply (max_count=%s, min_count=%s) until "
                    "one is learned", config.id, path, config.max_count, config.min_count)
        return None
    baseline = Baseline.load(path)
    target = {"line": config.line} if config.line is not None else {"zone": config.zone}
    mine = (config.window, config.hop, config.bucket, config.utc_offset_hours, sorted(config.classes), target)
    theirs = (baseline.window, baseline.hop, baseline.bucket, baseline.utc_offset_hours, sorted(baseline.classes),
              dict(baseline.target))
    names = ("window", "hop", "bucket", "utc_offset_hours", "classes", "target")
    for name, a, b in zip(names, mine, theirs, strict=True):
        if a != b:
            raise ValueError(f"rule {config.id!r}: baseline {path} was learned with {name} {b!r}, the rule has "
                             f"{a!r}; learn it again with this config")
    if baseline.rule_id != config.id:
        log.warning("rule %s: baseline %s was learned for rule %r", config.id, path, baseline.rule_id)
    return baseline


class AbnormalFlowRule:
    """Pure abnormal-flow rule; see the module docstring for the semantics."""

    def __init__(self, config: AbnormalFlowConfig) -> None:
        self.config = config
        self.counter = FlowCounter(config)
        self.baseline = load_rule_baseline(config)
        self._life = Lifecycle("abnormal_flow", config.id, min_duration=0.0, end_grace=config.hop,
                               update_every=config.window / 2)
        self._active = self.baseline is not None or config.max_count is not None or config.min_count is not None

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> AbnormalFlowState:
        return AbnormalFlowState(self.counter.initial_state())

    def close(self, state: AbnormalFlowState, now: float, *, context: RuleContext) -> list[Event]:
        return self._life.close_all(state.life, now, context=context)

    def step(self, tracks: Tracks, state: AbnormalFlowState, now: float, *,
             context: RuleContext) -> tuple[AbnormalFlowState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        if not self._active:
            return state, []
        flow, window = self.counter.step(tracks, state.flow, now, context=context)
        if window is None and not state.life.episodes:
            return AbnormalFlowState(flow, state.life), []
        candidates = self._candidates(window) if window is not None else []
        life, events = self._life.advance(state.life, candidates, now, context=context)
        return AbnormalFlowState(flow, life), events

    def replay(self, frames: LogFrames, camera_id: str) -> list[tuple[int, Event]] | None:
        """Every event of a whole log at once (:class:`analytics.rules.base.Replays`): exactly those of
        :meth:`step` on every frame and :meth:`close` at the end.

        The counting is done for the whole log (:meth:`FlowCounter.counted`); then only the frames where a
        step does something are visited: each window boundary (the first frame at or after it, found by
        bisection on the frame times with the step's own comparison), the frames where an open event closes,
        and the gaps longer than ``max_gap`` that restart the clock. Returns None when the counting does.
        """
        if not self._active:
            return []
        items = self.counter.counted(frames, camera_id)
        if items is None:
            return None
        cfg, n = self.config, len(frames)
        t, seq, sizes, geometry = frames.time.tolist(), frames.seq.tolist(), frames.size_of, frames.geometry
        item_frame = [f for f, _, _ in items]
        item_time = [t[f] for f in item_frame]
        recent_all = [(t[f], c, d) for f, c, d in items]
        starts = [0, *(np.flatnonzero(np.diff(frames.time) > cfg.max_gap) + 1).tolist(), n]
        end_grace = self._life.end_grace
        events: list[tuple[int, Event]] = []
        life = LifecycleState()

        def context(f: int) -> RuleContext:
            return RuleContext(camera_id, sizes[f], seq[f], geometry)

        def closing(lo: int) -> int:
            """The first frame from ``lo`` at which an open event closes (n: none)."""
            return min(frames.first_elapsed(ep.last_true, end_grace, lo) for ep in life.episodes.values())

        for s0, s1 in zip(starts[:-1], starts[1:]):
            start, evaluated, f = t[s0], 0, s0
            i0 = bisect_left(item_frame, s0)
            while True:
                e = bisect_left(t, start + cfg.window + evaluated * cfg.hop, f)  # not now < boundary
                while life.episodes:
                    c = closing(f)
                    if c >= min(e, s1):
                        break
                    life, new = self._life.advance(life, [], t[c], context=context(c))
                    events.extend((c, ev) for ev in new)
                    f = c + 1
                if e >= s1:
                    break
                now = t[e]
                i1 = bisect_right(item_frame, e)
                i0 = bisect_right(item_time, now - cfg.window, i0, i1)
                evaluated = max(evaluated + 1, math.floor((now - start - cfg.window) / cfg.hop) + 1)
                window = self.counter._window(tuple(recent_all[i0:i1]), now)
                life, new = self._life.advance(life, self._candidates(window), now, context=context(e))
                events.extend((e, ev) for ev in new)
                f = e + 1
        events.extend((n, ev) for ev in self._life.close_all(life, t[n - 1], context=context(n - 1)))
        return events

    def reference(self, end: float) -> tuple[BucketStats | None, str, int]:
        """The statistics a window ending at ``end`` is compared with, their source, and its bucket."""
        cfg = self.config
        bucket = bucket_of(end, cfg.bucket, cfg.utc_offset_hours)
        if self.baseline is not None:
            stats = self.baseline.buckets.get(bucket)
            if stats is not None and stats.windows >= cfg.min_windows:
                return stats, "learned bucket", bucket
            if self.baseline.pooled.windows >= cfg.min_windows:
                return self.baseline.pooled, "pooled", bucket
        return None, "fixed threshold", bucket

    def _candidates(self, window: WindowCount) -> list[Candidate]:
        cfg = self.config
        stats, source, bucket = self.reference(window.end)
        if stats is None:
            verdict = assess_fixed(window.total, max_count=cfg.max_count, min_count=cfg.min_count)
        else:
            verdict = assess(window.total, stats.mean["total"], stats.variance["total"], p_value=cfg.p_value,
                             min_difference=cfg.min_difference)
        if not verdict.flagged:
            return []
        evidence = self._evidence(window, verdict, stats, source, bucket)
        return [Candidate(key=0 if verdict.direction == "surge" else 1, since=window.end - window.window,
                          score=verdict.score, evidence=evidence, zone_id=cfg.zone, line_id=cfg.line)]

    def _evidence(self, window: WindowCount, verdict: Assessment, stats: BucketStats | None, source: str,
                  bucket: int) -> dict[str, Any]:
        cfg = self.config
        evidence: dict[str, Any] = {
            "direction": verdict.direction, "observed": window.total,
            "expected": None if stats is None else round(stats.mean["total"], 3),
            "variance": None if stats is None else round(stats.variance["total"], 3),
            "p_value": verdict.p_value, "z_score": None if verdict.z_score is None else round(verdict.z_score, 3),
            "p_threshold": cfg.p_value, "min_difference": cfg.min_difference,
            "max_count": cfg.max_count, "min_count": cfg.min_count,
            "window": cfg.window, "hop": cfg.hop,
            "window_start": round(window.end - window.window, 3), "window_end": round(window.end, 3),
            "bucket": bucket, "bucket_label": bucket_label(bucket, cfg.bucket), "baseline": source,
            "baseline_windows": None if stats is None else stats.windows,
            "counts": dict(window.by_class),
        }
        if stats is not None:
            evidence["expected_counts"] = {c: round(stats.mean.get(c, 0.0), 3) for c in cfg.classes}
        if window.by_direction:
            evidence["directions"] = dict(window.by_direction)
        return evidence

