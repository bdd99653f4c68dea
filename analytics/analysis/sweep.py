"""Threshold sweeps: replay a track log through one rule at many settings, score each, pick one per rule.

Rules are independent of one another (each steps on the tracks with its own state), so a rule is swept on
its own: the camera is replayed with that rule alone at each setting of its grid, which costs the sum of
the grids, not their product. The tuned camera takes each rule's chosen setting.

Grid (``{rule id or kind: {field: [values...]}}``): each rule of the camera whose id or kind is a key gets
the cartesian product of its values (a rule id key wins over a kind key); fields are the rule config's own
(:mod:`analytics.rules`), validated as the config would be, so an impossible combination (``end_min_people``
above ``min_people``...) is skipped and reported. The rule's current setting is always part of its sweep.

Selection (:func:`choose`), per rule: among the settings whose alert volume (final events per hour of the
log) is at most ``max_events_per_hour`` (0: no cap; when no setting fits, the lowest volume is taken), the
highest F1 of the added-up counts (:class:`~analytics.analysis.targets.Score`); ties go to the current setting
when it is among them (no change without evidence), then to the lowest volume, then to the fewest changed
fields, then to grid order.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from analytics.analysis.targets import Score, Targets
from analytics.config import CameraConfig
from analytics.tracklog import frames_path_for
from analytics.yamlio import problems

log = logging.getLogger(__name__)

#: Columns of :func:`run_sweep`'s frame before the per-source counts.
SWEEP_COLUMNS: tuple[str, ...] = ("rule_id", "kind", "setting", "values", "changed", "original", "events",
                                  "events_per_hour", "ignored", "unjudged", "tp", "fp", "fn", "precision",
                                  "recall", "f1")


@dataclass(frozen=True)
class Setting:
    """One point of a rule's grid.

    Attributes:
        rule_id: the rule swept.
        values: field -> value for the swept fields (as validated by the rule's config model).
        changed: the fields whose value differs from the configured one.
    """

    rule_id: str
    values: dict[str, Any]
    changed: tuple[str, ...]

    @property
    def label(self) -> str:
        """``"min_people=3, radius_m=1.5"``; ``"(as configured)"`` without a field."""
        return ", ".join(f"{k}={v}" for k, v in self.values.items()) or "(as configured)"


def rule_by_id(camera: CameraConfig, rule_id: str) -> Any:
    """The camera's rule config of that id (KeyError naming the ids there)."""
    for rule in camera.rules:
        if rule.id == rule_id:
            return rule
    raise KeyError(f"camera {camera.id!r} has no rule {rule_id!r}; rules: {[r.id for r in camera.rules]}")


def with_values(rule: Any, values: Mapping[str, Any]) -> Any:
    """A validated copy of ``rule`` with ``values`` set (ValueError naming the rule and the problem)."""
    unknown = sorted(set(values) - set(type(rule).model_fields))
    if unknown:
        raise ValueError(f"rule {rule.id!r} ({rule.kind}) has no field {unknown}; fields: "
                         f"{sorted(type(rule).model_fields)}")
    try:
        return type(rule).model_validate({**rule.model_dump(), **values})
    except ValidationError as err:
        raise ValueError(f"rule {rule.id!r} with {dict(values)}: {problems(err, top=rule.id)}") from None


def camera_with(camera: CameraConfig, changes: Mapping[str, Mapping[str, Any]], *,
                only: str | None = None) -> CameraConfig:
    """A copy of ``camera`` whose rules take ``changes`` (``{rule id: {field: value}}``); with ``only``, that
    rule alone. The input is not modified."""
    for rule_id in changes:
        rule_by_id(camera, rule_id)  # unknown ids fail here
    rules = tuple(with_values(r, changes.get(r.id, {})) for r in camera.rules if only is None or r.id == only)
    if only is not None and not rules:
        raise KeyError(f"camera {camera.id!r} has no rule {only!r}")
    return camera.model_copy(update={"rules": rules})


def rule_grid(camera: CameraConfig, grid: Mapping[str, Mapping[str, Sequence[Any]]]) -> tuple[list[Setting], list[str]]:
    """Every setting to sweep, and notes: combinations skipped as invalid, and rule kinds of the grid that the
    camera does not have (a grid may cover several cameras).

    Raises:
        ValueError: a grid key that is neither a rule id of the camera nor a rule kind, a field the rule does
            not have, or a field given an empty list of values.
    """
    from analytics.rules.catalog import RULES

    present = {r.id for r in camera.rules} | {r.kind for r in camera.rules}
    stray = sorted(k for k in grid if k not in present and k not in RULES)
    if stray:
        raise ValueError(f"grid keys {stray} are neither rule ids of camera {camera.id!r} nor rule kinds; "
                         f"rule ids and kinds there: {sorted(present)}, kinds: {sorted(RULES)}")
    notes = [f"camera {camera.id!r} has no {k} rule: not swept" for k in grid if k not in present]
    settings: list[Setting] = []
    for rule in camera.rules:
        fields = grid.get(rule.id, grid.get(rule.kind))
        if fields is None:
            continue
        settings_r, skipped_r = _rule_settings(rule, fields)
        settings += settings_r
        notes += skipped_r
    return settings, notes


def _rule_settings(rule: Any, fields: Mapping[str, Sequence[Any]]) -> tuple[list[Setting], list[str]]:
    empty = [k for k, v in fields.items() if not isinstance(v, list | tuple) or not v]
    if empty:
        raise ValueError(f"rule {rule.id!r}: grid fields {empty} need a non-empty list of values")
    unknown = sorted(set(fields) - set(type(rule).model_fields))
    if unknown:
        raise ValueError(f"rule {rule.id!r} ({rule.kind}) has no field {unknown}; fields: "
                         f"{sorted(type(rule).model_fields)}")
    names = list(fields)
    current = {k: getattr(rule, k) for k in names}
    combos = [dict(zip(names, c, strict=True)) for c in itertools.product(*(fields[k] for k in names))]
    settings, skipped, seen = [], [], set()
    for combo in [current, *combos]:
        try:
            checked = with_values(rule, combo)
        except ValueError as err:
            skipped.append(str(err))
            continue
        values = {k: getattr(checked, k) for k in names}
        key = json.dumps(values, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            settings.append(Setting(rule.id, values, tuple(k for k in names if values[k] != getattr(rule, k))))
    return settings, skipped


def log_span(track_log: str | Path) -> tuple[float, int, int]:
    """(seconds covered, first seq, last seq) of a track log: from its frame index when there is one (empty
    frames included), else from its rows; one frame's duration is added (the median frame interval)."""
    index = frames_path_for(track_log)
    frame = pl.read_parquet(index if index.is_file() else track_log, columns=["seq", "timestamp"]).unique("seq")
    frame = frame.sort("seq")
    if frame.is_empty():
        return 0.0, 0, -1
    times = frame["timestamp"]
    step = float(times.diff().median() or 0.0) if len(times) > 1 else 0.0
    return float(times.max() - times.min()) + step, int(frame["seq"].min()), int(frame["seq"].max())


def compare(track_log: str | Path, cameras: Mapping[str, CameraConfig], targets: Targets, *,
            frame_size: tuple[int, int] | None = None) -> tuple[pl.DataFrame, dict[str, list[Any]]]:
    """Replay the whole camera under each named config (``{"configured": cam, "tuned": cam2}``) and score it.

    Returns:
        A frame with one row per (config, rule) and a ``rule_id == "all"`` row per config (counts added up):
        config, rule_id, events, ignored, unjudged, tp, fp, fn, precision, recall, f1; and each config's
        event records.
    """
    from analytics.event_eval import MatchCounts
    from analytics.replay import replay

    rows, records = [], {}
    for name, camera in cameras.items():
        events = records[name] = replay(track_log, camera, frame_size=frame_size)
        scores = {rule.id: targets.score(events, rule) for rule in camera.rules}
        for rule_id, score in scores.items():
            rows.append({"config": name, "rule_id": rule_id, **_compare_row(score.total, score)})
        total = MatchCounts(*(sum(getattr(s.total, k) for s in scores.values()) for k in ("tp", "fp", "fn")))
        sums = {k: sum(getattr(s, k) for s in scores.values()) for k in ("events", "ignored", "unjudged")}
        rows.append({"config": name, "rule_id": "all", **_compare_row(total, None), **sums})
    return pl.DataFrame(rows, orient="row"), records


def _compare_row(counts: Any, score: Score | None) -> dict[str, Any]:
    extra = {"events": score.events, "ignored": score.ignored, "unjudged": score.unjudged} if score else {}
    return {**extra, **counts.to_dict()}


def event_changes(before: Sequence[Any], after: Sequence[Any]) -> pl.DataFrame:
    """Final events present under one config and not the other (same rule, start, end and members, times to
    0.01 s): ``change`` ("removed" / "added"), rule_id, kind, start, end, members."""
    from analytics.event_eval import final_events

    def keyed(events: Sequence[Any]) -> dict[tuple, Any]:
        return {(e.rule_id, round(e.start, 2), round(e.end, 2), e.member_ids): e for e in final_events(events)}

    old, new = keyed(before), keyed(after)
    rows = [{"change": change, "rule_id": e.rule_id, "kind": e.kind, "start": round(e.start, 2),
             "end": round(e.end, 2), "members": list(e.member_ids)}
            for change, side, other in (("removed", old, new), ("added", new, old))
            for key, e in side.items() if key not in other]
    schema = {"change": pl.String, "rule_id": pl.String, "kind": pl.String, "start": pl.Float64, "end": pl.Float64,
              "members": pl.List(pl.Int64)}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("start", "rule_id")


def run_sweep(track_log: str | Path, camera: CameraConfig, settings: Sequence[Setting], targets: Targets, *,
              frame_size: tuple[int, int] | None = None, hours: float | None = None) -> pl.DataFrame:
    """Replay each setting (its rule alone) and score it.

    Args:
        track_log: the Parquet track log (its frame index beside it is used when present).
        camera: the camera as configured.
        settings: from :func:`rule_grid`.
        targets: what to score against.
        frame_size: (width, height) pixels, for a log without a frame index.
        hours: the log's duration for the volume (default: :func:`log_span`).

    Returns:
        One row per setting: :data:`SWEEP_COLUMNS` (``values`` as JSON, ``changed`` the changed fields
        comma-separated, ``events_per_hour`` final events / hours), then ``<source>_tp/_fp/_fn``, then one
        column per swept field (null for other rules' rows).
    """
    from analytics.replay import replay

    hours = hours if hours is not None else log_span(track_log)[0] / 3600.0
    rows = []
    for s in settings:
        cam = camera_with(camera, {s.rule_id: s.values}, only=s.rule_id)
        rule = cam.rules[0]
        score = targets.score(replay(track_log, cam, frame_size=frame_size), rule)
        per_hour = score.events / hours if hours > 0 else float("nan")
        rows.append({"rule_id": s.rule_id, "kind": rule.kind, "setting": s.label,
                     "values": json.dumps(s.values, default=str), "changed": ",".join(s.changed),
                     "original": not s.changed, "events_per_hour": per_hour, **score.row(),
                     **{f"p.{k}": v for k, v in s.values.items()}})
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    if frame.is_empty():
        return frame
    extra = [c for c in frame.columns if c not in SWEEP_COLUMNS]
    return frame.select(*SWEEP_COLUMNS, *sorted(c for c in extra if not c.startswith("p.")),
                        *[c for c in extra if c.startswith("p.")])


def choose(sweep: pl.DataFrame, *, max_events_per_hour: float = 0.0) -> pl.DataFrame:
    """The chosen setting of each rule (module docstring), with ``reason``; one row per rule, sweep order."""
    if sweep.is_empty():
        return sweep
    indexed = sweep.with_row_index("order")
    chosen = []
    for rule_id in indexed["rule_id"].unique(maintain_order=True):
        rows = indexed.filter(pl.col("rule_id") == rule_id)
        capped = rows.filter(pl.col("events_per_hour") <= max_events_per_hour) if max_events_per_hour > 0 else rows
        reason = "max F1"
        if capped.is_empty():
            capped = rows.filter(pl.col("events_per_hour") == rows["events_per_hour"].min())
            reason = f"no setting under {max_events_per_hour:g} events/h: lowest volume, then max F1"
        elif max_events_per_hour > 0:
            reason = f"max F1 with at most {max_events_per_hour:g} events/h"
        n_changed = pl.col("changed").str.split(",").list.len() * (pl.col("changed") != "").cast(pl.Int64)
        best = (capped.filter(pl.col("f1") >= capped["f1"].max() - 1e-12)
                .sort([pl.col("original").not_(), "events_per_hour", n_changed, "order"]).head(1))
        chosen.append(best.with_columns(pl.lit(reason).alias("reason")))
    return pl.concat(chosen, how="diagonal_relaxed").drop("order")


def changes_from(chosen: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """``{rule id: {field: value}}`` of the chosen settings that differ from the config (only changed fields)."""
    out: dict[str, dict[str, Any]] = {}
    for row in chosen.iter_rows(named=True):
        changed = [k for k in row["changed"].split(",") if k]
        if changed:
            values = json.loads(row["values"])
            out[row["rule_id"]] = {k: values[k] for k in changed}
    return out
