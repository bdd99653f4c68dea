"""Flow baselines of the ``abnormal_flow`` rule: learned from track logs, saved and loaded as JSON.

A baseline says, for one camera and one ``abnormal_flow`` rule, how many tracks a counting window usually
holds in each time bucket: the mean and the variance of the window count (the total and each class) and the
number of windows behind them, plus the same statistics pooled over all buckets. It is learned by replaying
recorded track logs through the rule's own counting code
(:class:`analytics.rules.abnormal_flow.FlowCounter`), one window every ``hop`` seconds exactly as the live
rule evaluates them, so learned and live counts agree.

Buckets (:func:`bucket_of`): a window belongs to the bucket of its end time, read as Unix seconds in UTC
shifted by ``utc_offset_hours``:

* ``hour_of_week``: 168 buckets, ``day * 24 + hour`` with Monday = day 0;
* ``hour_of_day``: 24 buckets, the hour;
* ``none``: one bucket, 0.

Recorded files have media time from 0, that is 1970-01-01 00:00 UTC, a Thursday: every window of a clip
shorter than an hour falls in one bucket (Thursday 00h for ``hour_of_week``).

Variance: the sample variance (``n - 1`` denominator; 0 for a single window) of the window counts. Windows
overlap when ``hop < window``, so consecutive windows are correlated; the mean and the variance are still
those of a window count at that time of the week, which is what the rule compares with.

File format (JSON)::

    {"version": 1, "camera_id": "cam1", "rule_id": "flow", "target": {"line": "gate"},
     "classes": ["car", "bus"], "window": 60.0, "hop": 10.0, "bucket": "hour_of_week", "utc_offset_hours": 1.0,
     "created_from": ["logs/cam1.tracks.parquet"],
     "pooled": {"windows": 720, "mean": {"total": 12.1, "car": 11.0, "bus": 1.1},
                "variance": {"total": 9.3, "car": 8.0, "bus": 1.0}},
     "buckets": {"32": {"windows": 360, "mean": {...}, "variance": {...}}, ...}}

This module imports the rule and the replay only inside :func:`learn_from_track_logs`: the rule imports this
module (to load its baseline), and the camera config imports the rule catalogue, so importing them here at
module level would be an import cycle.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analytics.rules.abnormal_flow import AbnormalFlowConfig, WindowCount

log = logging.getLogger(__name__)

#: Version of the baseline file format written by :meth:`Baseline.save`.
BASELINE_VERSION = 1

#: Bucket scheme -> number of buckets.
BUCKET_SCHEMES: dict[str, int] = {"hour_of_week": 168, "hour_of_day": 24, "none": 1}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def bucket_of(timestamp: float, scheme: str, utc_offset_hours: float = 0.0) -> int:
    """The bucket of a time: see the module docstring.

    Args:
        timestamp: seconds, Unix time in UTC (media time for files, which starts at 1970-01-01 00:00).
        scheme: ``"hour_of_week"``, ``"hour_of_day"`` or ``"none"``.
        utc_offset_hours: local time minus UTC, hours (1.0 for Paris in winter).
    """
    if scheme == "none":
        return 0
    hours = math.floor((timestamp + utc_offset_hours * 3600.0) / 3600.0)
    hour = hours % 24
    if scheme == "hour_of_day":
        return hour
    if scheme == "hour_of_week":
        return ((hours // 24 + _EPOCH_WEEKDAY) % 7) * 24 + hour
    raise ValueError(f"unknown bucket scheme {scheme!r}; expected one of {sorted(BUCKET_SCHEMES)}")


def bucket_label(bucket: int, scheme: str) -> str:
    """Readable bucket: ``"Tue 08:00-09:00"``, ``"08:00-09:00"`` or ``"all times"``."""
    if scheme == "none":
        return "all times"
    hour = bucket % 24
    span = f"{hour:02d}:00-{hour + 1:02d}:00"
    return f"{_DAYS[bucket // 24]} {span}" if scheme == "hour_of_week" else span


@dataclass(frozen=True)
class BucketStats:
    """Window-count statistics of one bucket (or pooled).

    Attributes:
        windows: number of windows behind the statistics.
        mean: ``"total"`` and each class name -> mean count per window.
        variance: same keys -> variance of the count per window (counts squared).
    """

    windows: int
    mean: Mapping[str, float]
    variance: Mapping[str, float]

    @classmethod
    def from_counts(cls, rows: Sequence[Mapping[str, int]], names: Sequence[str]) -> BucketStats:
        """Statistics of window counts (each row: name -> count; missing names count 0)."""
        n = len(rows)
        mean: dict[str, float] = {}
        var: dict[str, float] = {}
        for name in names:
            values = [float(r.get(name, 0)) for r in rows]
            m = sum(values) / n if n else 0.0
            mean[name] = m
            var[name] = sum((v - m) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, var)

    def to_json(self) -> dict[str, Any]:
        return {"windows": self.windows, "mean": {k: round(v, 6) for k, v in self.mean.items()},
                "variance": {k: round(v, 6) for k, v in self.variance.items()}}

    @classmethod
    def from_json(cls, data: Any, where: str) -> BucketStats:
        """Parse and check one statistics object; ValueError naming ``where`` when malformed."""
        if not isinstance(data, dict) or set(data) != {"windows", "mean", "variance"}:
            raise ValueError(f"{where}: expected an object with windows, mean and variance, got {data!r:.200}")
        windows = data["windows"]
        if not isinstance(windows, int) or isinstance(windows, bool) or windows < 0:
            raise ValueError(f"{where}.windows: expected a count >= 0, got {windows!r}")
        parts = {}
        for key in ("mean", "variance"):
            values = data[key]
            if not isinstance(values, dict) or "total" not in values:
                raise ValueError(f"{where}.{key}: expected an object with a 'total', got {values!r:.200}")
            for name, v in values.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    raise ValueError(f"{where}.{key}.{name}: expected a finite number >= 0, got {v!r}")
            parts[key] = {str(k): float(v) for k, v in values.items()}
        return cls(windows, parts["mean"], parts["variance"])


@dataclass(frozen=True)
class Baseline:
    """Learned window-count statistics of one ``abnormal_flow`` rule of one camera.

    Attributes:
        camera_id: the camera the logs came from.
        rule_id: the rule whose counting was replayed.
        target: ``{"line": id}`` or ``{"zone": id}``, what was counted.
        classes: the class names counted.
        window: window length, seconds.
        hop: seconds between windows.
        bucket: bucket scheme (:data:`BUCKET_SCHEMES`).
        utc_offset_hours: the offset the buckets were computed with.
        buckets: bucket index -> statistics (buckets without windows are absent).
        pooled: statistics over all windows.
        created_from: the track logs learned from.
        version: file format version.
    """

    camera_id: str
    rule_id: str
    target: Mapping[str, str]
    classes: tuple[str, ...]
    window: float
    hop: float
    bucket: str
    utc_offset_hours: float
    buckets: Mapping[int, BucketStats]
    pooled: BucketStats
    created_from: tuple[str, ...] = ()
    version: int = field(default=BASELINE_VERSION)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the file format (plain types, bucket keys as strings)."""
        return {
            "version": self.version, "camera_id": self.camera_id, "rule_id": self.rule_id,
            "target": dict(self.target), "classes": list(self.classes), "window": self.window, "hop": self.hop,
            "bucket": self.bucket, "utc_offset_hours": self.utc_offset_hours,
            "created_from": list(self.created_from), "pooled": self.pooled.to_json(),
            "buckets": {str(b): s.to_json() for b, s in sorted(self.buckets.items())},
        }

    def save(self, path: str | Path) -> None:
        """Write the baseline as JSON (parent folders created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline file.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not JSON or not a valid baseline; the message names the file and the key.
        """
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"baseline {path} is not valid JSON: {err}") from None
        try:
            return cls.from_json(data)
        except ValueError as err:
            raise ValueError(f"baseline {path} is malformed: {err}") from None

    @classmethod
    def from_json(cls, data: Any) -> Baseline:
        """Parse and check the JSON object of the file format; ValueError naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("version") != BASELINE_VERSION:
            raise ValueError(f"version: expected {BASELINE_VERSION}, got {data.get('version')!r}")
        expected = {"version", "camera_id", "rule_id", "target", "classes", "window", "hop", "bucket",
                    "utc_offset_hours", "created_from", "pooled", "buckets"}
        if set(data) != expected:
            raise ValueError(f"keys: missing {sorted(expected - set(data))}, unknown {sorted(set(data) - expected)}")
        scheme = data["bucket"]
        if scheme not in BUCKET_SCHEMES:
            raise ValueError(f"bucket: expected one of {sorted(BUCKET_SCHEMES)}, got {scheme!r}")
        target = data["target"]
        if not isinstance(target, dict) or len(target) != 1 or next(iter(target)) not in ("line", "zone"):
            raise ValueError(f"target: expected {{'line': id}} or {{'zone': id}}, got {target!r}")
        for key in ("window", "hop", "utc_offset_hours"):
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{key}: expected a number, got {v!r}")
        if not isinstance(data["classes"], list) or not all(isinstance(c, str) for c in data["classes"]):
            raise ValueError(f"classes: expected a list of class names, got {data['classes']!r}")
        if not isinstance(data["created_from"], list):
            raise ValueError(f"created_from: expected a list of paths, got {data['created_from']!r:.200}")
        if not isinstance(data["buckets"], dict):
            raise ValueError(f"buckets: expected an object, got {data['buckets']!r:.200}")
        return cls(
            camera_id=str(data["camera_id"]), rule_id=str(data["rule_id"]),
            target={str(k): str(v) for k, v in target.items()}, classes=tuple(data["classes"]),
            window=float(data["window"]), hop=float(data["hop"]), bucket=scheme,
            utc_offset_hours=float(data["utc_offset_hours"]),
            buckets={_bucket_key(k, scheme): BucketStats.from_json(v, f"buckets.{k}")
                     for k, v in data["buckets"].items()},
            pooled=BucketStats.from_json(data["pooled"], "pooled"),
            created_from=tuple(str(p) for p in data["created_from"]),
        )


def _bucket_key(key: str, scheme: str) -> int:
    try:
        bucket = int(key)
    except ValueError:
        raise ValueError(f"buckets: key {key!r} is not a bucket number") from None
    if not 0 <= bucket < BUCKET_SCHEMES[scheme]:
        raise ValueError(f"buckets: key {key!r} is outside 0-{BUCKET_SCHEMES[scheme] - 1} for {scheme!r}")
    return bucket


def learn_baseline(window_counts: Iterable[WindowCount], *, config: AbnormalFlowConfig, camera_id: str,
                   created_from: Sequence[str] = ()) -> Baseline:
    """Aggregate window counts into a baseline, per bucket of each window's end time and pooled.

    Args:
        window_counts: the windows evaluated by :class:`analytics.rules.abnormal_flow.FlowCounter` (anything
            with ``end`` in seconds and ``counts()`` -> ``{"total": n, class: n}``).
        config: the rule config they were counted with (window, hop, bucket scheme, offset, classes, target).
        camera_id: the camera's id.
        created_from: the track logs they came from, recorded in the file.
    """
    names = ("total", *config.classes)
    per_bucket: dict[int, list[Mapping[str, int]]] = {}
    everything: list[Mapping[str, int]] = []
    for w in window_counts:
        counts = w.counts()
        per_bucket.setdefault(bucket_of(w.end, config.bucket, config.utc_offset_hours), []).append(counts)
        everything.append(counts)
    target = {"line": config.line} if config.line is not None else {"zone": str(config.zone)}
    return Baseline(
        camera_id=camera_id, rule_id=config.id, target=target, classes=tuple(config.classes),
        window=float(config.window), hop=float(config.hop), bucket=config.bucket,
        utc_offset_hours=float(config.utc_offset_hours),
        buckets={b: BucketStats.from_counts(rows, names) for b, rows in sorted(per_bucket.items())},
        pooled=BucketStats.from_counts(everything, names), created_from=tuple(created_from),
    )


def learn_from_track_logs(paths: Sequence[str | Path], camera: Any, rule_id: str | None = None, *,
                          frame_size: tuple[int, int] | None = None,
                          camera_id: str | None = None) -> dict[str, Baseline]:
    """Learn the baseline of a camera's ``abnormal_flow`` rules by replaying track logs through their counting.

    Each log is replayed on its own (counting restarts at its first frame, so no window spans two logs);
    the windows of all logs are then pooled per bucket.

    Args:
        paths: Parquet track logs (with their frame index beside them, or give ``frame_size``).
        camera: the camera config (anything with ``.id``, ``.scene`` and ``.rules``).
        rule_id: learn only this rule; default every ``abnormal_flow`` rule of the camera.
        frame_size: (width, height) pixels, for logs without a frame index.
        camera_id: replay only this camera's rows (default: every row of each log).

    Returns:
        rule id -> baseline, in config order. Save each with :meth:`Baseline.save`.

    Raises:
        ValueError: no such ``abnormal_flow`` rule, a rule whose line or zone the scene lacks, or logs
            holding no full window for a rule.
        analytics.replay.ReplayError: unreadable logs.
    """
    from analytics.replay import load_frames  # imported here: see the module docstring
    from analytics.rules.abnormal_flow import FlowCounter
    from analytics.rules.base import RuleContext

    configs = [r for r in camera.rules if getattr(r, "kind", None) == "abnormal_flow"
               and (rule_id is None or r.id == rule_id)]
    if not configs:
        known = [r.id for r in camera.rules if getattr(r, "kind", None) == "abnormal_flow"]
        raise ValueError(f"camera {camera.id!r} has no abnormal_flow rule {rule_id!r} (abnormal_flow rules: {known})"
                         if rule_id is not None else f"camera {camera.id!r} has no abnormal_flow rule")
    for cfg in configs:
        cfg.check_geometry(camera.scene)
    counters = [FlowCounter(cfg) for cfg in configs]
    windows: list[list[WindowCount]] = [[] for _ in configs]
    for path in paths:
        states = [c.initial_state() for c in counters]
        for f in load_frames(path, frame_size=frame_size, camera_id=camera_id):
            context = RuleContext(camera.id, f.frame_size, f.seq, camera.scene)
            for i, counter in enumerate(counters):
                states[i], window = counter.step(f.tracks, states[i], f.timestamp, context=context)
                if window is not None:
                    windows[i].append(window)
    sources = [str(p) for p in paths]
    out: dict[str, Baseline] = {}
    for cfg, found in zip(configs, windows, strict=True):
        if not found:
            raise ValueError(f"camera {camera.id!r}, rule {cfg.id!r}: the track logs {sources} hold no full "
                             f"window of {cfg.window:g} s; nothing to learn")
        out[cfg.id] = learn_baseline(found, config=cfg, camera_id=camera.id, created_from=sources)
        log.info("rule %s: learned %d windows in %d buckets", cfg.id, len(found), len(out[cfg.id].buckets))
    return out
