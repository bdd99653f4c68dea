"""Admin routes: users (roles, passwords, disabling) and the alert settings of each rule.

Supervisors may read the rule settings; only admins change them or users. Every change is audited (by
:class:`~analytics.console.accounts.Accounts` and :meth:`AlertStore.set_rule_settings`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import ValidationError

from analytics.alerts.config import AlertRuleSettings
from analytics.console.accounts import AccountError, User
from analytics.console.auth import context, require
from analytics.console.schemas import NewUserBody, UserPatchBody
from analytics.yamlio import problems

router = APIRouter()
UNPROCESSABLE = 422  # starlette renamed its constant; the number is what clients see
admin = require("admin")
supervisor = require("supervisor")


def _user_out(user: User) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "disabled": user.disabled, "created_at": user.created_at}


@router.get("/api/users")
def list_users(request: Request, _user: User = Depends(admin)) -> list[dict[str, Any]]:
    return [_user_out(u) for u in context(request).accounts.list_users()]


@router.post("/api/users", status_code=status.HTTP_201_CREATED)
def create_user(body: NewUserBody, request: Request, user: User = Depends(admin)) -> dict[str, Any]:
    try:
        made = context(request).accounts.create_user(body.username, body.password, body.role, by=user.username)
    except AccountError as err:
        code = status.HTTP_409_CONFLICT if "already exists" in str(err) else UNPROCESSABLE
        raise HTTPException(code, str(err)) from None
    return _user_out(made)


@router.patch("/api/users/{username}")
def update_user(username: str, body: UserPatchBody, request: Request, user: User = Depends(admin)) -> dict[str, Any]:
    try:
        changed = context(request).accounts.update_user(username, by=user.username, role=body.role,
                                                        password=body.password, disabled=body.disabled)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}") from None
    except AccountError as err:
        raise HTTPException(UNPROCESSABLE, str(err)) from None
    return _user_out(changed)


@router.get("/api/rules")
def list_rules(request: Request, _user: User = Depends(supervisor)) -> list[dict[str, Any]]:
    ctx = context(request)
    config = ctx.alerts_config()
    return [{"camera_id": cam.id, "rule_id": rule.id, "kind": rule.kind, "severity": rule.severity,
             "settings": config.settings_for(cam.id, rule.id, rule.kind).model_dump()}
            for cam in ctx.config.cameras for rule in cam.rules]


@router.put("/api/rules/{camera_id}/{rule_id}")
def set_rule(camera_id: str, rule_id: str, body: dict[str, Any], request: Request,
             user: User = Depends(admin)) -> dict[str, Any]:
    ctx = context(request)
    cams = {c.id: c for c in ctx.config.cameras}
    if camera_id not in cams:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera {camera_id!r}; cameras: {sorted(cams)}")
    rules = {r.id: r for r in cams[camera_id].rules}
    if rule_id not in rules:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no rule {rule_id!r}; rules: "
                                                       f"{sorted(rules)}")
    try:
        settings = AlertRuleSettings.model_validate(body)
    except ValidationError as err:
        raise HTTPException(UNPROCESSABLE, f"invalid alert settings: {problems(err, top='body')}") from None
    ctx.store.set_rule_settings(f"{camera_id}/{rule_id}", settings.model_dump(), user=user.username, at=ctx.clock())
    rule = rules[rule_id]
    return {"camera_id": camera_id, "rule_id": rule_id, "kind": rule.kind, "severity": rule.severity,
            "settings": settings.model_dump()}
