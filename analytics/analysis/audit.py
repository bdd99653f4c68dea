"""Alert audit inputs: open an alert store by path or URL and build the audit frame of
:mod:`analytics.alerts.audit_stats` for a period, with the operators' duty sessions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import polars as pl


def store_url(value: str | Path) -> str:
    """An alert store URL: a URL (``sqlite:///``, ``postgresql://``) as is; a path as ``sqlite:///<absolute
    path>``, which must exist (opening a store creates it, and an empty new store is never what is meant)."""
    text = str(value)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no alert store at {path}; give the path of a run's alerts.db or a store URL")
    return f"sqlite:///{path}"


def day_bounds(since: str, until: str, *, timezone: str) -> tuple[float | None, float | None]:
    """Unix seconds of local midnight starting ``since`` and ending ``until`` (dates ``YYYY-MM-DD``, both
    included); ``""`` leaves that side open."""
    zone = ZoneInfo(timezone)

    def midnight(day: str, plus: int) -> float:
        date = dt.date.fromisoformat(day) + dt.timedelta(days=plus)
        return dt.datetime.combine(date, dt.time(), tzinfo=zone).timestamp()

    return (midnight(since, 0) if since else None, midnight(until, 1) if until else None)


class Audit(NamedTuple):
    """What the audit reads: the alerts frame (``audit_stats.alerts_frame``) and the operators' sessions."""

    frame: pl.DataFrame
    duty: list[tuple[str, float, float]]
    url: str


def load_audit(url: str, *, timezone: str, shifts: Any, since: float | None = None,
               until: float | None = None) -> Audit:
    """Alerts created in ``[since, until)`` with their transitions, and operators' duty sessions in that window
    (none when the store has no console tables)."""
    from analytics.alerts.audit_stats import alerts_frame
    from analytics.alerts.store import AlertStore

    with AlertStore.open(url) as store:
        alerts = store.list_alerts(since=since, until=until)
        steps = store.all_transitions(since=since)
        frame = alerts_frame(alerts, steps, timezone=timezone, shifts=shifts)
        duty = _duty(store, since, until)
        return Audit(frame, duty, store.url)


def _duty(store: Any, since: float | None, until: float | None) -> list[tuple[str, float, float]]:
    from analytics.console.accounts import Accounts

    return Accounts(store).duty(since=since, until=until)


def rules_to_tune(frame: pl.DataFrame, *, precision_below: float, min_reviewed: int) -> pl.DataFrame:
    """Rules (per camera) whose precision is below ``precision_below`` with at least ``min_reviewed`` judged
    alerts (true + false), worst first: the candidates for the threshold-tuning notebook."""
    from analytics.alerts.audit_stats import precision_by

    rows = []
    for camera in frame["camera_id"].unique().sort().to_list():
        table = precision_by(frame.filter(pl.col("camera_id") == camera), "rule")
        rows.append(table.with_columns(pl.lit(camera).alias("camera_id")))
    if not rows:
        return pl.DataFrame()
    judged = pl.col("true_alerts") + pl.col("false_alarms")
    return (pl.concat(rows).rename({"key": "rule_id"})
            .filter((judged >= min_reviewed) & (pl.col("precision") < precision_below))
            .select("camera_id", "rule_id", "alerts", "true_alerts", "false_alarms", "duplicates", "precision")
            .sort("precision"))
