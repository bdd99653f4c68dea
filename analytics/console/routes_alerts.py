"""Operator routes: cameras and their live frames, the ranked alerts, their evidence, and the life-cycle
actions (seen, acknowledge, escalate, close), plus the supervisor's verdict review and legal hold.

Every action is checked against the life cycle and the config (unknown authority, closing without a
verdict: 409 / 422 with the reason), written to the store with who and when, and audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse

from analytics.alerts.manager import transition_alert
from analytics.alerts.model import Alert, TransitionError
from analytics.console.accounts import User
from analytics.console.auth import context, require
from analytics.console.context import ConsoleContext
from analytics.console.schemas import CloseBody, CommentBody, EscalateBody, HoldBody, alert_out, transition_out

router = APIRouter()
UNPROCESSABLE = 422  # starlette renamed its constant; the number is what clients see
operator = require("operator")
supervisor = require("supervisor")

#: Which statuses each ``status=`` filter of the alert list shows.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "queue": ("new", "seen"),
    "in_hand": ("acknowledged", "escalated"),
    "open": ("new", "seen", "acknowledged", "escalated"),
    "closed": ("closed",),
    "all": ("new", "seen", "acknowledged", "escalated", "closed"),
}


def cameras_out(ctx: ConsoleContext) -> list[dict[str, Any]]:
    """Every configured camera with its latest health from the run (nulls when no run has reported it)."""
    health = {c.get("id"): c for c in ctx.live().health().get("cameras", []) if isinstance(c, dict)}
    out = []
    for cam in ctx.config.cameras:
        h = health.get(cam.id, {})
        out.append({"id": cam.id, "name": getattr(cam, "name", None) or cam.id,
                    **{k: h.get(k) for k in ("health", "fps", "frames", "dropped", "reconnects", "tracks", "error",
                                             "last_frame_at", "recording")}})
    return out


def ranked(ctx: ConsoleContext, statuses: tuple[str, ...], *, camera: str | None = None,
           limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts in ``statuses`` as JSON, highest priority (recomputed now) first, then latest updated; closed
    alerts only (for review): the most recently created first."""
    now, config = ctx.clock(), ctx.alerts_config()
    crit = ctx.config.console.critical_priority
    found = ctx.store.list_alerts(statuses=statuses, camera_id=camera)
    files = ctx.store.evidence_of(a.id for a in found)
    out = [alert_out(a, now=now, config=config, critical_priority=crit, evidence=files.get(a.id)) for a in found]
    if statuses == STATUS_FILTERS["closed"]:
        out.sort(key=lambda a: (-a["created_at"], a["id"]))
    else:
        out.sort(key=lambda a: (-a["priority"], -a["updated_at"], a["id"]))
    return out[:limit] if limit is not None else out


def _alert(ctx: ConsoleContext, alert_id: str) -> Alert:
    alert = ctx.store.get_alert(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id!r}")
    return alert


def _out(ctx: ConsoleContext, alert: Alert) -> dict[str, Any]:
    return alert_out(alert, now=ctx.clock(), config=ctx.alerts_config(),
                     critical_priority=ctx.config.console.critical_priority, evidence=ctx.store.evidence(alert.id))


def _step(ctx: ConsoleContext, alert_id: str, target: str, user: User, **kwargs: Any) -> dict[str, Any]:
    """One life-cycle step, checked against the stored status (409 when the life cycle refuses it)."""
    alert = _alert(ctx, alert_id)
    try:
        updated, step = transition_alert(alert, target, user=user.username, now=ctx.clock(),
                                         config=ctx.alerts_config(), **kwargs)
        ctx.store.record_transition(updated, step)
    except TransitionError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    ctx.notify()
    return _out(ctx, _alert(ctx, alert_id))


@router.get("/api/settings")
def settings(request: Request, _user: User = Depends(operator)) -> dict[str, Any]:
    console = context(request).config.console
    return {"critical_priority": console.critical_priority, "timezone": console.timezone,
            "shifts": [s.model_dump() for s in console.shifts], "live_fps": console.live_fps}


@router.get("/api/cameras")
def cameras(request: Request, _user: User = Depends(operator)) -> list[dict[str, Any]]:
    return cameras_out(context(request))


@router.get("/api/cameras/{camera_id}/frame.jpg")
def camera_frame(camera_id: str, request: Request, user: User = Depends(operator)) -> Response:
    ctx = context(request)
    if camera_id not in ctx.camera_ids():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera_id!r}; cameras: {ctx.camera_ids()}")
    return live_frame(ctx, camera_id, user)


def live_frame(ctx: ConsoleContext, camera_id: str, user: User) -> Response:
    """A camera's latest annotated (and privacy-masked) frame; the view is audited."""
    data = ctx.live().frame(camera_id)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no live frame yet (is a run "
                                                       "writing to this console's live folder?)")
    ctx.audit_view(user.username, "live.view", camera_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/api/authorities")
def authorities(request: Request, _user: User = Depends(operator)) -> list[dict[str, Any]]:
    return [{**a.model_dump(), "protocol": list(a.protocol)} for a in context(request).config.alerts.authorities]


@router.get("/api/alerts")
def list_alerts(request: Request, status_filter: str = Query("queue", alias="status"),
                camera: str | None = Query(None, max_length=64), limit: int = Query(200, ge=1, le=5000),
                _user: User = Depends(operator)) -> list[dict[str, Any]]:
    if status_filter not in STATUS_FILTERS:
        raise HTTPException(UNPROCESSABLE,
                            f"status must be one of {sorted(STATUS_FILTERS)}, got {status_filter!r}")
    return ranked(context(request), STATUS_FILTERS[status_filter], camera=camera, limit=limit)


@router.get("/api/alerts/{alert_id}")
def get_alert(alert_id: str, request: Request, _user: User = Depends(operator)) -> dict[str, Any]:
    ctx = context(request)
    out = _out(ctx, _alert(ctx, alert_id))
    out["transitions"] = [transition_out(t) for t in ctx.store.transitions(alert_id)]
    return out


@router.post("/api/alerts/{alert_id}/seen")
def seen(alert_id: str, request: Request, user: User = Depends(operator)) -> dict[str, Any]:
    ctx = context(request)
    if _alert(ctx, alert_id).status != "new":  # opening an alert twice is not an error
        return _out(ctx, _alert(ctx, alert_id))
    return _step(ctx, alert_id, "seen", user)


@router.post("/api/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: str, request: Request, body: CommentBody | None = None,
                user: User = Depends(operator)) -> dict[str, Any]:
    return _step(context(request), alert_id, "acknowledged", user, comment=(body or CommentBody()).comment)


@router.post("/api/alerts/{alert_id}/escalate")
def escalate(alert_id: str, body: EscalateBody, request: Request, user: User = Depends(operator)) -> dict[str, Any]:
    return _step(context(request), alert_id, "escalated", user, authority=body.authority, comment=body.comment)


@router.post("/api/alerts/{alert_id}/close")
def close(alert_id: str, body: CloseBody, request: Request, user: User = Depends(operator)) -> dict[str, Any]:
    return _step(context(request), alert_id, "closed", user, verdict=body.verdict, comment=body.comment)


@router.post("/api/alerts/{alert_id}/review")
def review(alert_id: str, body: CloseBody, request: Request, user: User = Depends(supervisor)) -> dict[str, Any]:
    ctx = context(request)
    _alert(ctx, alert_id)
    try:
        updated = ctx.store.record_review(alert_id, verdict=body.verdict, comment=body.comment, user=user.username,
                                          at=ctx.clock())
    except TransitionError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    ctx.notify()
    return _out(ctx, updated)


@router.post("/api/alerts/{alert_id}/legal-hold")
def legal_hold(alert_id: str, body: HoldBody, request: Request, user: User = Depends(supervisor)) -> dict[str, Any]:
    ctx = context(request)
    _alert(ctx, alert_id)
    updated = ctx.store.set_legal_hold(alert_id, hold=body.hold, user=user.username, at=ctx.clock())
    ctx.notify()
    return _out(ctx, updated)


def _evidence_file(ctx: ConsoleContext, alert_id: str, kind: str) -> Path:
    """The path of an alert's evidence file, only if it lies under the evidence folder and exists."""
    _alert(ctx, alert_id)
    linked = ctx.store.evidence(alert_id).get(kind)
    if linked is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id!r} has no {kind} (yet)")
    path, root = Path(linked).resolve(), ctx.evidence_dir.resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the {kind} of alert {alert_id!r} is missing on disk")
    return path


@router.get("/api/alerts/{alert_id}/snapshot.jpg")
def snapshot(alert_id: str, request: Request, user: User = Depends(operator)) -> FileResponse:
    ctx = context(request)
    path = _evidence_file(ctx, alert_id, "snapshot")
    ctx.store.audit(user.username, "evidence.view", alert_id, {"kind": "snapshot"}, at=ctx.clock())
    return FileResponse(path, media_type="image/jpeg")


@router.get("/api/alerts/{alert_id}/clip.mp4")
def clip(alert_id: str, request: Request, user: User = Depends(operator)) -> FileResponse:
    ctx = context(request)
    path = _evidence_file(ctx, alert_id, "clip")
    if request.headers.get("range", "bytes=0-") == "bytes=0-":  # a video fetches many ranges: audit the first
        ctx.store.audit(user.username, "evidence.view", alert_id, {"kind": "clip"}, at=ctx.clock())
    return FileResponse(path, media_type="video/mp4")
