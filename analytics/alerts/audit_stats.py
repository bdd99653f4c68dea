"""Supervisor audit statistics: how precise the alerts are, how fast operators take charge, operator load.

Pure functions over a polars frame built once from stored alerts and their transitions
(:func:`alerts_frame`); charts (:func:`plot_png`) and exports (:func:`export`) read that frame. Nothing here
reads the wall clock: times are the alerts' and transitions' Unix seconds.

Metric definitions (exact):

* **Verdict** of an alert: the verdict of its *latest* transition to ``closed`` (by ``at``, ties in input
  order), so a supervisor's later review replaces the operator's verdict; ``closed_by`` is that latest
  closer. Without any ``closed`` transition, the alert record's own ``verdict``. **Reviewed**: verdict not
  null. ``closed_at`` is the *first* closing time; every other ``*_at`` / ``*_by`` is the first transition
  reaching that status.
* **Precision** of a group = ``true_alerts / (true_alerts + false_alarms)``, where the counts are alerts
  whose verdict is ``true_alert`` / ``false_alarm``. Duplicates are excluded (they are neither right nor
  wrong detections, only redundant ones); unreviewed alerts are excluded. Null when the denominator is 0.
* **Time to acknowledge** (``time_to_ack_s``, seconds) = ``at`` of the earliest transition to
  ``acknowledged``, ``escalated`` or ``closed`` (the moment an operator took charge, whichever way) minus
  the alert's ``created_at``. Merely ``seen`` does not count. Null if the alert was never taken in charge.
  ``taken_by`` is the user of that transition (equal to ``acknowledged_by`` whenever the alert was
  acknowledged, since acknowledging precedes escalating and closing in the life cycle).
  Percentiles (p50, p90) interpolate linearly between order statistics (numpy's default).
* **Day** and **shift** are local to the centre's time zone. The shift of an alert is the shift whose
  local start (HH:MM) is the latest at or before the local time of ``created_at``; before the earliest
  start of the day, it is the day's last shift (the night shift wraps past midnight: with starts
  06:00/14:00/22:00, 03:00 belongs to the 22:00 shift). ``day`` is the local calendar date of
  ``created_at`` (not the date the shift started).
* **Hours on duty** of a user = the length of the union of that user's login sessions (half-open
  ``[start, end)``, Unix seconds), in hours: overlapping sessions are not counted twice.
* **Operator-hour**: one operator logged in for one hour. ``operator_hours`` = sum over users of their hours
  on duty (two operators on duty for one hour = 2 operator-hours).
* **Alerts handled** by a user = distinct alerts whose ``acknowledged_by``, ``taken_by`` or ``closed_by`` is
  that user. ``handled_per_hour`` = alerts handled / hours on duty.
* **Alerts per operator-hour** = alerts created while at least one operator was on duty (``created_at``
  inside the union of all sessions) / ``operator_hours``; null when ``operator_hours`` is 0.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from analytics.alerts.model import Alert, Transition
from analytics.console.config import Shift

#: ``by`` -> the frame column it groups on (precision_by; ack_times uses ``taken_by`` for operator).
GROUPINGS: dict[str, str] = {"rule": "rule_id", "camera": "camera_id", "zone": "place", "shift": "shift",
                             "day": "day", "kind": "kind", "operator": "closed_by"}
PLOTS: tuple[str, ...] = ("precision_by_rule", "precision_by_camera", "precision_by_day", "ack_times",
                          "alerts_by_shift", "operator_load")
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")
ALL = "all"
_TAKE_CHARGE = ("acknowledged", "escalated", "closed")

_BASE_SCHEMA: dict[str, Any] = {
    "id": pl.String, "camera_id": pl.String, "kind": pl.String, "rule_id": pl.String, "place": pl.String,
    "created_at": pl.Float64, "status": pl.String, "verdict": pl.String, "priority": pl.Float64,
    "severity": pl.Float64, "score": pl.Float64, "seen_at": pl.Float64, "acknowledged_at": pl.Float64,
    "acknowledged_by": pl.String, "escalated_at": pl.Float64, "escalated_to": pl.String,
    "closed_at": pl.Float64, "closed_by": pl.String, "time_to_ack_s": pl.Float64, "taken_by": pl.String,
}
#: Column order of :func:`alerts_frame` (``created``, ``day``, ``shift``, ``reviewed`` are derived).
COLUMNS: tuple[str, ...] = (
    "id", "camera_id", "kind", "rule_id", "place", "created_at", "created", "day", "shift", "status", "verdict",
    "priority", "severity", "score", "seen_at", "acknowledged_at", "acknowledged_by", "escalated_at",
    "escalated_to", "closed_at", "closed_by", "time_to_ack_s", "taken_by", "reviewed",
)


# -- the frame ------------------------------------------------------------------------------------------------

def _life(alert: Alert, steps: Sequence[Transition]) -> dict[str, Any]:
    """The life-cycle columns of one alert from its transitions (already sorted by time)."""
    first: dict[str, Transition] = {}
    last_closed: Transition | None = None
    for step in steps:
        first.setdefault(step.status, step)
        if step.status == "closed":
            last_closed = step
    taken = min((first[s] for s in _TAKE_CHARGE if s in first), key=lambda t: t.at, default=None)

    def at(status: str) -> float | None:
        return first[status].at if status in first else None

    return {
        "verdict": last_closed.verdict if last_closed is not None else alert.verdict,
        "seen_at": at("seen"), "acknowledged_at": at("acknowledged"),
        "acknowledged_by": first["acknowledged"].user if "acknowledged" in first else None,
        "escalated_at": at("escalated"),
        "escalated_to": first["escalated"].authority if "escalated" in first else None,
        "closed_at": at("closed"), "closed_by": last_closed.user if last_closed is not None else None,
        "time_to_ack_s": None if taken is None else float(taken.at) - float(alert.created_at),
        "taken_by": None if taken is None else taken.user,
    }


def _shift_expr(local: pl.Expr, shifts: Sequence[Shift]) -> pl.Expr:
    """Name of the shift containing each local datetime (latest start at or before it, wrapping midnight)."""
    ordered = sorted(shifts, key=lambda s: s.minute)
    minute = local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)
    expr: pl.Expr = pl.lit(ordered[-1].name, dtype=pl.String)  # before the day's first start: last night's shift
    for shift in ordered:
        expr = pl.when(minute >= shift.minute).then(pl.lit(shift.name, dtype=pl.String)).otherwise(expr)
    return expr


def _check_shifts(shifts: Sequence[Shift]) -> None:
    if not shifts:
        raise ValueError("shifts must name at least one shift")
    starts = [s.start for s in shifts]
    if len(set(starts)) != len(starts):
        raise ValueError(f"shift starts must be unique, got {starts}")


def alerts_frame(alerts: Sequence[Alert], transitions: Sequence[Transition], *, timezone: str,
                 shifts: Sequence[Shift]) -> pl.DataFrame:
    """One row per alert with its life cycle, local day and shift; columns in :data:`COLUMNS` order.

    Args:
        alerts: the alerts to audit (e.g. ``store.list_alerts()``).
        transitions: their transitions, any order; those of alerts not in ``alerts`` are ignored.
        timezone: IANA name of the centre's zone (``ConsoleConfig.timezone``).
        shifts: the centre's shifts (``ConsoleConfig.shifts``), any order.

    Returns:
        Times ``*_at`` are Unix seconds (Float64); ``created`` is ``Datetime("us", timezone)``, ``day`` a local
        ``Date``; ``time_to_ack_s`` seconds. See the module docstring for each definition.
    """
    _check_shifts(shifts)
    by_alert: dict[str, list[Transition]] = {a.id: [] for a in alerts}
    for step in sorted(transitions, key=lambda t: t.at):  # stable: ties keep their input order
        if step.alert_id in by_alert:
            by_alert[step.alert_id].append(step)
    rows = [{"id": a.id, "camera_id": a.camera_id, "kind": a.kind, "rule_id": a.rule_id,
             "place": a.zone_id if a.zone_id is not None else a.line_id, "created_at": float(a.created_at),
             "status": a.status, "priority": float(a.priority), "severity": float(a.severity),
             "score": float(a.score), **_life(a, by_alert[a.id])} for a in alerts]
    base = pl.DataFrame(rows, schema=_BASE_SCHEMA, orient="row") if rows else pl.DataFrame(schema=_BASE_SCHEMA)
    created = ((pl.col("created_at") * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
               .dt.convert_time_zone(timezone))
    out = base.with_columns(created.alias("created"))
    out = out.with_columns(pl.col("created").dt.date().alias("day"),
                           _shift_expr(pl.col("created"), shifts).alias("shift"),
                           pl.col("verdict").is_not_null().alias("reviewed"))
    return out.select(COLUMNS)


# -- precision and times to acknowledge ----------------------------------------------------------------------

def _column_for(by: str, groupings: dict[str, str]) -> str:
    if by not in groupings:
        raise ValueError(f"unknown grouping {by!r}; expected one of {sorted(groupings)}")
    return groupings[by]


def precision_by(frame: pl.DataFrame, by: str) -> pl.DataFrame:
    """Verdict counts and precision per group, sorted by key (null key last).

    Args:
        frame: from :func:`alerts_frame`.
        by: one of :data:`GROUPINGS` (rule, camera, zone = zone or line id, shift, day, kind,
            operator = ``closed_by``, the latest closer).

    Returns:
        key (the grouped column's dtype), alerts, reviewed, true_alerts, false_alarms, duplicates, unreviewed
        (Int64), precision (Float64, ``true / (true + false)``, null when both are 0).
    """
    col = _column_for(by, GROUPINGS)
    verdict = pl.col("verdict")
    counts = frame.group_by(pl.col(col).alias("key")).agg(
        pl.len().cast(pl.Int64).alias("alerts"),
        verdict.is_not_null().sum().cast(pl.Int64).alias("reviewed"),
        (verdict == "true_alert").sum().cast(pl.Int64).alias("true_alerts"),
        (verdict == "false_alarm").sum().cast(pl.Int64).alias("false_alarms"),
        (verdict == "duplicate").sum().cast(pl.Int64).alias("duplicates"),
        verdict.is_null().sum().cast(pl.Int64).alias("unreviewed"),
    )
    judged = pl.col("true_alerts") + pl.col("false_alarms")
    precision = pl.when(judged > 0).then(pl.col("true_alerts") / judged).otherwise(None).cast(pl.Float64)
    return counts.with_columns(precision.alias("precision")).sort("key", nulls_last=True, maintain_order=True)


def _ack_stats() -> list[pl.Expr]:
    t = pl.col("time_to_ack_s")
    return [t.count().cast(pl.Int64).alias("count"),
            t.quantile(0.5, "linear").cast(pl.Float64).alias("p50"),
            t.quantile(0.9, "linear").cast(pl.Float64).alias("p90"),
            t.mean().cast(pl.Float64).alias("mean"), t.max().cast(pl.Float64).alias("max")]


def ack_times(frame: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Times to acknowledge (seconds): count, p50, p90, mean, max, overall or per group.

    Args:
        frame: from :func:`alerts_frame`.
        by: None for one row keyed ``"all"``; else as :func:`precision_by`, except operator groups on
            ``taken_by`` (who took charge: the acknowledging user when there was one).

    Returns:
        key, count (Int64, alerts taken in charge), p50, p90, mean, max (Float64 seconds; null with count 0).
        Grouped: every group of ``frame`` appears, even with count 0; sorted by key (null last).
    """
    if by is None:
        return frame.select(pl.lit(ALL, dtype=pl.String).alias("key"), *_ack_stats())
    col = _column_for(by, {**GROUPINGS, "operator": "taken_by"})
    out = frame.group_by(pl.col(col).alias("key")).agg(*_ack_stats())
    return out.sort("key", nulls_last=True, maintain_order=True)


# -- operator load --------------------------------------------------------------------------------------------

def _merge(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of half-open intervals, as disjoint sorted intervals."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _sessions(duty: Sequence[tuple[str, float, float]]) -> dict[str, list[tuple[float, float]]]:
    sessions: dict[str, list[tuple[float, float]]] = {}
    for entry in duty:
        user, start, end = entry
        if user == ALL:
            raise ValueError(f"a user may not be named {ALL!r}: it names the total row")
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"a duty session needs finite start <= end (Unix seconds), got {entry!r}")
        sessions.setdefault(user, []).append((float(start), float(end)))
    return sessions


def _inside(times: np.ndarray, merged: list[tuple[float, float]]) -> np.ndarray:
    """Mask of ``times`` inside the disjoint sorted half-open ``merged`` intervals."""
    if not merged:
        return np.zeros(times.shape, dtype=bool)
    starts = np.array([s for s, _ in merged])
    ends = np.array([e for _, e in merged])
    idx = np.searchsorted(starts, times, side="right") - 1
    return (idx >= 0) & (times < ends[np.clip(idx, 0, None)])


def _per_hour(count: int, hours: float) -> float | None:
    return count / hours if hours > 0 else None


_LOAD_SCHEMA: dict[str, Any] = {
    "user": pl.String, "hours_on_duty": pl.Float64, "alerts_handled": pl.Int64, "handled_per_hour": pl.Float64,
    "operator_hours": pl.Float64, "alerts": pl.Int64, "alerts_per_operator_hour": pl.Float64,
}


def operator_load(frame: pl.DataFrame, duty: Sequence[tuple[str, float, float]]) -> pl.DataFrame:
    """Per operator: hours on duty, alerts handled, handled per hour; then an ``"all"`` row.

    Args:
        frame: from :func:`alerts_frame`.
        duty: login sessions ``(user, start, end)``, Unix seconds, half-open; overlaps allowed.

    Returns:
        One row per user of ``duty`` (sorted), then ``user == "all"``. Per-user rows fill user, hours_on_duty,
        alerts_handled, handled_per_hour (null with 0 hours); operator_hours, alerts, alerts_per_operator_hour
        are null there. The ``"all"`` row fills every column: hours_on_duty = operator_hours (sum of users'
        hours), alerts_handled = distinct alerts handled by any of them, alerts = alerts created while at
        least one operator was on duty, alerts_per_operator_hour = alerts / operator_hours.
    """
    sessions = _sessions(duty)
    handlers = pl.concat([frame.select("id", pl.col(c).alias("user"))
                          for c in ("acknowledged_by", "taken_by", "closed_by")]).drop_nulls().unique()
    handled = dict(handlers.group_by("user").len().iter_rows())
    rows = []
    for user in sorted(sessions):
        hours = sum(e - s for s, e in _merge(sessions[user])) / 3600.0
        count = int(handled.get(user, 0))
        rows.append({"user": user, "hours_on_duty": hours, "alerts_handled": count,
                     "handled_per_hour": _per_hour(count, hours)})
    total_hours = float(sum(r["hours_on_duty"] for r in rows))
    total_handled = handlers.filter(pl.col("user").is_in(list(sessions)))["id"].n_unique()
    everyone = _merge([iv for ivs in sessions.values() for iv in ivs])
    on_duty = int(_inside(frame["created_at"].to_numpy().astype(np.float64), everyone).sum())
    rows.append({"user": ALL, "hours_on_duty": total_hours, "alerts_handled": total_handled,
                 "handled_per_hour": _per_hour(total_handled, total_hours), "operator_hours": total_hours,
                 "alerts": on_duty, "alerts_per_operator_hour": _per_hour(on_duty, total_hours)})
    return pl.DataFrame(rows, schema=_LOAD_SCHEMA, orient="row")


# -- charts ---------------------------------------------------------------------------------------------------

def _bar_precision(ax: Any, table: pl.DataFrame, title: str) -> None:
    labels = [str(k) for k in table["key"]]
    values = [0.0 if p is None else p for p in table["precision"]]
    bars = ax.bar(range(len(labels)), values, color="#4c72b0")
    for bar, row in zip(bars, table.iter_rows(named=True)):
        share = "n/a" if row["precision"] is None else f"{row['precision']:.0%}"
        note = f"{share}\n{row['true_alerts']}/{row['true_alerts'] + row['false_alarms']}"
        note += f"\n+{row['duplicates']} dup, {row['unreviewed']} open"
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylim(0.0, 1.35)
    ax.set_ylabel("precision = true / (true + false)")
    ax.set_title(title)


def _plot_precision(by: str) -> Callable[[Any, pl.DataFrame, Sequence[tuple[str, float, float]]], bool]:
    def plot(fig: Any, frame: pl.DataFrame, _duty: Sequence[tuple[str, float, float]]) -> bool:
        table = precision_by(frame, by)
        if table.is_empty():
            return False
        _bar_precision(fig.add_subplot(), table, f"Alert precision by {by}")
        return True
    return plot


def _plot_precision_day(fig: Any, frame: pl.DataFrame, _duty: Sequence[tuple[str, float, float]]) -> bool:
    table = precision_by(frame, "day").drop_nulls("key")
    judged = table.drop_nulls("precision")
    if judged.is_empty():
        return False
    ax = fig.add_subplot()
    ax.plot(judged["key"].to_list(), judged["precision"].to_list(), marker="o")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("precision = true / (true + false)")
    ax.set_title("Alert precision by day (local)")
    fig.autofmt_xdate()
    return True


def _plot_ack(fig: Any, frame: pl.DataFrame, _duty: Sequence[tuple[str, float, float]]) -> bool:
    times = frame["time_to_ack_s"].drop_nulls().to_numpy()
    if times.size == 0:
        return False
    ax = fig.add_subplot()
    ax.hist(times, bins=min(30, max(5, int(np.sqrt(times.size)))), color="#55a868")
    stats = ack_times(frame).row(0, named=True)
    ax.set_title(f"Time to acknowledge (n={stats['count']}, p50={stats['p50']:.0f} s, p90={stats['p90']:.0f} s)")
    ax.set_xlabel("seconds from creation to acknowledge / escalate / close")
    ax.set_ylabel("alerts")
    return True


def _plot_shift(fig: Any, frame: pl.DataFrame, _duty: Sequence[tuple[str, float, float]]) -> bool:
    table = precision_by(frame, "shift")
    if table.is_empty():
        return False
    ax = fig.add_subplot()
    bars = ax.bar([str(k) for k in table["key"]], table["alerts"].to_list(), color="#c44e52")
    ax.bar_label(bars)
    ax.set_ylabel("alerts")
    ax.set_title("Alerts by shift")
    return True


def _plot_load(fig: Any, frame: pl.DataFrame, duty: Sequence[tuple[str, float, float]]) -> bool:
    table = operator_load(frame, duty).filter(pl.col("user") != ALL)
    if table.is_empty():
        return False
    ax = fig.add_subplot()
    values = [0.0 if v is None else v for v in table["handled_per_hour"]]
    bars = ax.bar(table["user"].to_list(), values, color="#8172b2")
    ax.bar_label(bars, labels=[f"{n} / {h:.1f} h" for n, h in zip(table["alerts_handled"], table["hours_on_duty"])])
    ax.set_ylabel("alerts handled per hour on duty")
    ax.set_title("Operator load")
    return True


_PLOTTERS: dict[str, Callable[[Any, pl.DataFrame, Sequence[tuple[str, float, float]]], bool]] = {
    "precision_by_rule": _plot_precision("rule"), "precision_by_camera": _plot_precision("camera"),
    "precision_by_day": _plot_precision_day, "ack_times": _plot_ack, "alerts_by_shift": _plot_shift,
    "operator_load": _plot_load,
}


def plot_png(name: str, frame: pl.DataFrame, *, duty: Sequence[tuple[str, float, float]] = ()) -> bytes:
    """One audit chart as PNG bytes (800 x 480 px); a chart with nothing to show says "no data".

    Args:
        name: one of :data:`PLOTS`.
        frame: from :func:`alerts_frame`.
        duty: login sessions, for ``"operator_load"`` only (see :func:`operator_load`).

    Uses a bare :class:`matplotlib.figure.Figure` on the Agg canvas: no pyplot, no global backend change.
    """
    if name not in _PLOTTERS:
        raise ValueError(f"unknown chart {name!r}; expected one of {PLOTS}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if not _PLOTTERS[name](fig, frame, duty):
        fig.clear()
        fig.text(0.5, 0.5, f"{name}: no data", ha="center", va="center", fontsize=16)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# -- exports --------------------------------------------------------------------------------------------------

def export(frame: pl.DataFrame, fmt: str) -> bytes:
    """The frame as ``"csv"`` (header row, ISO dates) or ``"parquet"`` bytes."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {EXPORT_FORMATS}")
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_parquet(buffer)
    return buffer.getvalue()
