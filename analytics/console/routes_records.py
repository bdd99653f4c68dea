"""Recorded video, requisitions and the police relay.

* Recordings (supervisor and above): the segment list by camera and time, playback of a segment, and the
  segment at a given moment (to jump to an alert). Every playback is audited.
* Requisitions (supervisor and above): record one (its segments are held at once), export it (one watermarked
  clip per camera, a manifest signed with Ed25519: :mod:`analytics.recording.export`), download the export's
  files, release the hold. All audited. A requisition reference may contain '/', so it travels in the query
  string or the body, not in the path.
* Relay (admin grants; ``police`` accounts view): a police account sees, during its grant's window only, the
  live frames (and, if granted, the recordings) of the granted cameras; anything else is refused (403) and
  every view is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import Field

from analytics.console.accounts import User
from analytics.console.auth import context, current_user, require
from analytics.console.context import ConsoleContext
from analytics.console.routes_alerts import live_frame
from analytics.console.schemas import _Body

router = APIRouter()
UNPROCESSABLE = 422
supervisor = require("supervisor")
admin = require("admin")
police = require("police")


class RequisitionBody(_Body):
    reference: str = Field(min_length=1, max_length=64)
    authority: str = Field(min_length=1, max_length=200)
    officer: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    cameras: list[str] = Field(min_length=1, max_length=200)
    start: float = Field(ge=0)
    end: float = Field(ge=0)


class ReferenceBody(_Body):
    reference: str = Field(min_length=1, max_length=64)


class GrantBody(_Body):
    username: str = Field(min_length=1, max_length=64)
    cameras: list[str] = Field(min_length=1, max_length=200)
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    recorded: bool = False


def _segment_out(segment: Any) -> dict[str, Any]:
    return {"id": segment.id, "camera_id": segment.camera_id, "start": segment.start, "end": segment.end,
            "wall_start": segment.wall_start, "wall_end": segment.wall_end, "frames": segment.frames,
            "bytes": segment.bytes, "held": segment.held, "url": f"/api/recordings/{segment.id}.mp4"}


def _requisition_out(req: Any) -> dict[str, Any]:
    return {"reference": req.id, "authority": req.authority, "officer": req.officer, "reason": req.reason,
            "cameras": list(req.cameras), "start": req.start, "end": req.end, "created_by": req.created_by,
            "created_at": req.created_at, "released_by": req.released_by, "released_at": req.released_at,
            "open": req.open}


def _grant_out(grant: Any) -> dict[str, Any]:
    return {"id": grant.id, "username": grant.username, "cameras": list(grant.cameras), "start": grant.start,
            "end": grant.end, "recorded": grant.recorded, "granted_by": grant.granted_by,
            "granted_at": grant.granted_at, "revoked_by": grant.revoked_by, "revoked_at": grant.revoked_at}


def _check_cameras(ctx: ConsoleContext, cameras: list[str]) -> None:
    unknown = sorted(set(cameras) - set(ctx.camera_ids()))
    if unknown:
        raise HTTPException(UNPROCESSABLE, f"unknown cameras {unknown}; cameras: {ctx.camera_ids()}")


def _inside(path: Path, root: Path | None, what: str) -> Path:
    """``path`` if it is an existing file under ``root`` (never serve a file from elsewhere)."""
    resolved = path.resolve()
    if root is None or not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} is missing on disk")
    return resolved


# -- recordings --------------------------------------------------------------------------------------------------

@router.get("/api/recordings")
def list_recordings(request: Request, camera: str | None = Query(None, max_length=64),
                    since: float | None = Query(None, ge=0), until: float | None = Query(None, ge=0),
                    _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    ctx = context(request)
    if camera is not None:
        _check_cameras(ctx, [camera])
    return [_segment_out(s) for s in ctx.index().segments(camera_id=camera, since=since, until=until)]


@router.get("/api/recordings/at")
def recording_at(request: Request, camera: str = Query(..., max_length=64), t: float = Query(..., ge=0),
                 _user: User = Depends(supervisor)) -> dict[str, Any]:
    """The segment of ``camera`` recorded at wall time ``t`` and the offset into it (jump to an alert)."""
    ctx = context(request)
    _check_cameras(ctx, [camera])
    found = [s for s in ctx.index().segments(camera_id=camera, since=t, until=t + 1e-6)]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording of {camera!r} at {t}")
    segment = found[0]
    return {**_segment_out(segment), "offset": max(0.0, t - segment.wall_start)}


def _play(ctx: ConsoleContext, segment_id: int, user: User, request: Request) -> FileResponse:
    segment = ctx.index().segment(segment_id)
    if segment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recording {segment_id}")
    if user.role == "police":
        grants = ctx.index().grants(username=user.username)
        if not any(g.allows(segment.camera_id, ctx.clock(), recorded=True) for g in grants):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"no grant lets {user.username!r} see recordings of "
                                                           f"{segment.camera_id!r} now")
    path = _inside(Path(segment.path), ctx.recordings_dir, f"recording {segment_id}")
    if request.headers.get("range", "bytes=0-") == "bytes=0-":
        ctx.store.audit(user.username, "recording.view", segment.camera_id,
                        {"segment": segment_id, "wall_start": segment.wall_start}, at=ctx.clock())
    return FileResponse(path, media_type="video/mp4")


@router.get("/api/recordings/{segment_id}.mp4")
def play_recording(segment_id: int, request: Request, user: User = Depends(supervisor)) -> FileResponse:
    return _play(context(request), segment_id, user, request)


# -- requisitions ------------------------------------------------------------------------------------------------

@router.get("/api/requisitions")
def list_requisitions(request: Request, _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    return [_requisition_out(r) for r in context(request).index().requisitions()]


@router.get("/api/requisitions/detail")
def requisition_detail(request: Request, reference: str = Query(..., max_length=64),
                       _user: User = Depends(supervisor)) -> dict[str, Any]:
    ctx = context(request)
    req = ctx.index().requisition(reference)
    if req is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no requisition {reference!r}")
    export = _export_dir(ctx, reference)
    files = sorted(p.name for p in export.iterdir()) if export.is_dir() else []
    return {**_requisition_out(req), "segments": [_segment_out(s) for s in ctx.index().requisition_segments(
        reference)], "export_files": files}


@router.post("/api/requisitions", status_code=status.HTTP_201_CREATED)
def create_requisition(body: RequisitionBody, request: Request, user: User = Depends(supervisor)) -> dict[str, Any]:
    ctx = context(request)
    _check_cameras(ctx, body.cameras)
    try:
        req = ctx.index().create_requisition(body.reference, authority=body.authority, officer=body.officer,
                                             reason=body.reason, cameras=body.cameras, start=body.start,
                                             end=body.end, user=user.username, at=ctx.clock())
    except ValueError as err:
        code = status.HTTP_409_CONFLICT if "already exists" in str(err) else UNPROCESSABLE
        raise HTTPException(code, str(err)) from None
    return _requisition_out(req)


@router.post("/api/requisitions/release")
def release_requisition(body: ReferenceBody, request: Request, user: User = Depends(supervisor)) -> dict[str, Any]:
    ctx = context(request)
    try:
        return _requisition_out(ctx.index().release(body.reference, user=user.username, at=ctx.clock()))
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no requisition {body.reference!r}") from None
    except ValueError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None


def _export_dir(ctx: ConsoleContext, reference: str) -> Path:
    from analytics.recording.export import export_folder

    assert ctx.exports_dir is not None
    return export_folder(ctx.exports_dir, reference)


@router.post("/api/requisitions/export")
def export(body: ReferenceBody, request: Request, user: User = Depends(supervisor)) -> dict[str, Any]:
    from analytics.recording.export import export_requisition, load_or_create_key

    ctx = context(request)
    if ctx.index().requisition(body.reference) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no requisition {body.reference!r}")
    if ctx.exports_dir is None or ctx.signing_key is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this console has no export folder or signing key configured")
    try:
        key = load_or_create_key(ctx.signing_key)
        folder = export_requisition(ctx.index(), body.reference, ctx.exports_dir, key=key, user=user.username,
                                    clock=ctx.clock)
    except FileExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"requisition {body.reference!r} was already exported; its "
                                                      "files are listed in its detail") from None
    except ValueError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return {"reference": body.reference, "files": sorted(p.name for p in folder.iterdir())}


@router.get("/api/requisitions/export-file")
def export_file(request: Request, reference: str = Query(..., max_length=64), name: str = Query(..., max_length=200),
                user: User = Depends(supervisor)) -> FileResponse:
    ctx = context(request)
    folder = _export_dir(ctx, reference)
    if "/" in name or name.startswith("."):
        raise HTTPException(UNPROCESSABLE, f"invalid file name {name!r}")
    path = _inside(folder / name, ctx.exports_dir, f"export file {name!r}")
    ctx.store.audit(user.username, "export.download", reference, {"file": name}, at=ctx.clock())
    return FileResponse(path, filename=name)


# -- police relay ------------------------------------------------------------------------------------------------

@router.get("/api/relay/grants")
def list_grants(request: Request, _user: User = Depends(admin)) -> list[dict[str, Any]]:
    return [_grant_out(g) for g in context(request).index().grants()]


@router.post("/api/relay/grants", status_code=status.HTTP_201_CREATED)
def create_grant(body: GrantBody, request: Request, user: User = Depends(admin)) -> dict[str, Any]:
    ctx = context(request)
    _check_cameras(ctx, body.cameras)
    try:
        grant = ctx.index().grant(body.username, body.cameras, start=body.start, end=body.end,
                                  recorded=body.recorded, user=user.username, at=ctx.clock())
    except ValueError as err:
        raise HTTPException(UNPROCESSABLE, str(err)) from None
    return _grant_out(grant)


@router.post("/api/relay/grants/{grant_id}/revoke")
def revoke_grant(grant_id: int, request: Request, user: User = Depends(admin)) -> dict[str, Any]:
    ctx = context(request)
    try:
        return _grant_out(ctx.index().revoke(grant_id, user=user.username, at=ctx.clock()))
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no grant {grant_id}") from None


def _granted(ctx: ConsoleContext, user: User, camera_id: str, *, recorded: bool = False) -> None:
    """403 unless one of ``user``'s grants covers ``camera_id`` now (console staff are not relayed)."""
    if user.role != "police":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the relay is for police accounts; the console shows "
                                                       "cameras to centre staff")
    now = ctx.clock()
    if not any(g.allows(camera_id, now, recorded=recorded) for g in ctx.index().grants(username=user.username)):
        ctx.store.audit(user.username, "relay.refused", camera_id, {"recorded": recorded}, at=now)
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"no grant lets {user.username!r} see {camera_id!r} now "
                                                       "(outside its window, revoked, or another camera)")


@router.get("/api/relay/cameras")
def relay_cameras(request: Request, user: User = Depends(police)) -> list[dict[str, Any]]:
    """The cameras ``user`` may see now, with the end of each grant window."""
    ctx = context(request)
    now = ctx.clock()
    out: dict[str, dict[str, Any]] = {}
    for g in ctx.index().grants(username=user.username):
        for cam in g.cameras:
            if g.allows(cam, now):
                seen = out.setdefault(cam, {"id": cam, "until": g.end, "recorded": g.recorded})
                seen["until"] = max(seen["until"], g.end)
                seen["recorded"] = seen["recorded"] or g.recorded
    return sorted(out.values(), key=lambda c: c["id"])


@router.get("/api/relay/cameras/{camera_id}/frame.jpg")
def relay_frame(camera_id: str, request: Request, user: User = Depends(current_user)) -> Response:
    ctx = context(request)
    _granted(ctx, user, camera_id)
    return live_frame(ctx, camera_id, user)


@router.get("/api/relay/recordings")
def relay_recordings(request: Request, camera: str = Query(..., max_length=64), since: float | None = Query(None),
                     until: float | None = Query(None), user: User = Depends(current_user)) -> list[dict[str, Any]]:
    ctx = context(request)
    _granted(ctx, user, camera, recorded=True)
    # without the held flag: a police account need not learn of another requisition
    return [{**{k: v for k, v in _segment_out(s).items() if k != "held"}, "url": f"/api/relay/recordings/{s.id}.mp4"}
            for s in ctx.index().segments(camera_id=camera, since=since, until=until)]


@router.get("/api/relay/recordings/{segment_id}.mp4")
def relay_play(segment_id: int, request: Request, user: User = Depends(current_user)) -> FileResponse:
    ctx = context(request)
    if user.role != "police":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the relay is for police accounts")
    return _play(ctx, segment_id, user, request)
