"""Supervisor audit routes: alert precision by rule, camera, zone, shift, day; time to acknowledge; alerts
per operator-hour; plots; CSV / Parquet exports for notebooks; the audit log.

The metrics are defined in :mod:`analytics.alerts.audit_stats`. ``since`` / ``until`` (Unix seconds) select
alerts by creation time; the default is the last 7 days.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from analytics.console.accounts import User
from analytics.console.auth import context, require
from analytics.console.context import ConsoleContext

router = APIRouter()
UNPROCESSABLE = 422  # starlette renamed its constant; the number is what clients see
supervisor = require("supervisor")
BY = ("rule", "camera", "zone", "shift", "day", "kind", "operator")
PLOTS = ("precision_by_rule", "precision_by_camera", "precision_by_day", "ack_times", "alerts_by_shift")
_WEEK = 7 * 86400.0


def _window(ctx: ConsoleContext, since: float | None, until: float | None) -> tuple[float, float | None]:
    """``[since, until)``: by default the 7 days up to now, with no upper bound (so nothing just made is left
    out)."""
    since = (ctx.clock() if until is None else until) - _WEEK if since is None else since
    if until is not None and since >= until:
        raise HTTPException(UNPROCESSABLE, f"since ({since}) must be before until ({until})")
    return since, until


def _frame(ctx: ConsoleContext, since: float, until: float | None) -> Any:
    from analytics.alerts.audit_stats import alerts_frame

    console = ctx.config.console
    return alerts_frame(ctx.store.list_alerts(since=since, until=until), ctx.store.all_transitions(since=since),
                        timezone=console.timezone, shifts=console.shifts)


def _check_by(by: str | None) -> None:
    if by is not None and by not in BY:
        raise HTTPException(UNPROCESSABLE, f"by must be one of {list(BY)}, got {by!r}")


def _rows(frame: Any) -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in frame.to_dicts()]


Since = Query(None, ge=0, description="Unix seconds (alerts created at or after)")
Until = Query(None, ge=0, description="Unix seconds (alerts created before)")


@router.get("/api/audit/precision")
def precision(request: Request, by: str = "rule", since: float | None = Since, until: float | None = Until,
              _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    from analytics.alerts.audit_stats import precision_by

    _check_by(by)
    ctx = context(request)
    return _rows(precision_by(_frame(ctx, *_window(ctx, since, until)), by))


@router.get("/api/audit/ack-times")
def ack(request: Request, by: str | None = None, since: float | None = Since, until: float | None = Until,
        _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    from analytics.alerts.audit_stats import ack_times

    _check_by(by)
    ctx = context(request)
    return _rows(ack_times(_frame(ctx, *_window(ctx, since, until)), by))


@router.get("/api/audit/operator-load")
def load(request: Request, since: float | None = Since, until: float | None = Until,
         _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    from analytics.alerts.audit_stats import operator_load

    ctx = context(request)
    window = _window(ctx, since, until)
    duty = ctx.accounts.duty(since=window[0], until=window[1])
    return _rows(operator_load(_frame(ctx, *window), duty))


@router.get("/api/audit/plots/{name}.png")
def plot(name: str, request: Request, since: float | None = Since, until: float | None = Until,
         _user: User = Depends(supervisor)) -> Response:
    from analytics.alerts.audit_stats import plot_png

    if name not in PLOTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no plot {name!r}; plots: {list(PLOTS)}")
    ctx = context(request)
    window = _window(ctx, since, until)
    png = plot_png(name, _frame(ctx, *window), duty=ctx.accounts.duty(since=window[0], until=window[1]))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/audit/export.{fmt}")
def export_alerts(fmt: str, request: Request, since: float | None = Since, until: float | None = Until,
                  user: User = Depends(supervisor)) -> Response:
    from analytics.alerts.audit_stats import export

    media = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
    if fmt not in media:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"export format must be one of {sorted(media)}, got {fmt!r}")
    ctx = context(request)
    window = _window(ctx, since, until)
    data = export(_frame(ctx, *window), fmt)
    ctx.store.audit(user.username, "audit.export", f"alerts.{fmt}", {"since": window[0], "until": window[1]},
                    at=ctx.clock())
    return Response(data, media_type=media[fmt],
                    headers={"Content-Disposition": f'attachment; filename="alerts.{fmt}"'})


@router.get("/api/audit/chain")
def audit_chain(request: Request, _user: User = Depends(supervisor)) -> dict[str, Any]:
    """Whether the audit log's hash chain is intact (``analytics audit verify`` does the same)."""
    store = context(request).store
    problems = store.verify_audit_chain()
    return {"intact": not problems, "problems": problems, "entries": len(store.audit_entries())}


@router.get("/api/audit/log/export.csv")
def audit_log_export(request: Request, since: float | None = Since, until: float | None = Until,
                     user: User = Depends(supervisor)) -> Response:
    """The audit log as CSV, with each entry's chain hashes (so an export can be checked against the chain)."""
    import csv
    import io
    import json

    ctx = context(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "at", "user", "action", "target", "details", "prev_hash", "hash"])
    for e in ctx.store.audit_entries(since=since, until=until):
        writer.writerow([e.id, repr(e.at), e.user, e.action, e.target,
                         json.dumps(e.details, ensure_ascii=False, sort_keys=True), e.prev_hash, e.hash])
    ctx.store.audit(user.username, "audit.log.export", "audit_log", {"since": since, "until": until},
                    at=ctx.clock())
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit_log.csv"'})


@router.get("/api/audit/log")
def audit_log(request: Request, limit: int = Query(200, ge=1, le=10_000), user: str | None = None,
              action: str | None = None, since: float | None = Since, until: float | None = Until,
              _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    entries = context(request).store.audit_entries(user=user, action=action, since=since, until=until)
    return [{"id": e.id, "at": e.at, "user": e.user, "action": e.action, "target": e.target, "details": e.details}
            for e in entries[::-1][:limit]]
