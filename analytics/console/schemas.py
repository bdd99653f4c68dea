"""Request bodies (validated strictly: unknown fields are refused) and the alert's JSON form."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from analytics.alerts.config import AlertsConfig
from analytics.alerts.model import Alert, Transition
from analytics.alerts.priority import priority

Verdict = Literal["true_alert", "false_alarm", "duplicate"]
Role = Literal["police", "operator", "supervisor", "admin"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class CommentBody(_Body):
    comment: str = Field("", max_length=2000)


class EscalateBody(_Body):
    authority: str = Field(min_length=1, max_length=64)
    comment: str = Field("", max_length=2000)


class CloseBody(_Body):
    verdict: Verdict
    comment: str = Field("", max_length=2000)


class HoldBody(_Body):
    hold: bool


class NewUserBody(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    role: Role


class UserPatchBody(_Body):
    role: Role | None = None
    password: str | None = Field(None, min_length=1, max_length=256)
    disabled: bool | None = None


def alert_out(alert: Alert, *, now: float | None = None, config: AlertsConfig | None = None,
              critical_priority: float = 1.0, evidence: dict[str, str] | None = None) -> dict[str, Any]:
    """An alert as the console's JSON: its fields, the priority recomputed at ``now`` when given (the rank
    ages), ``critical``, and links to its evidence files."""
    value, breakdown = alert.priority, alert.breakdown
    if now is not None and config is not None and alert.is_open:
        value, breakdown = priority(alert, now, config)
    base = f"/api/alerts/{alert.id}"
    evidence = evidence or {}
    return {
        "id": alert.id, "camera_id": alert.camera_id, "kind": alert.kind, "rule_id": alert.rule_id,
        "zone_id": alert.zone_id, "line_id": alert.line_id, "status": alert.status, "verdict": alert.verdict,
        "comment": alert.comment, "start": alert.start, "end": alert.end, "created_at": alert.created_at,
        "updated_at": alert.updated_at, "member_ids": list(alert.member_ids), "classes": list(alert.classes),
        "severity": alert.severity, "score": alert.score, "priority": value, "breakdown": breakdown,
        "critical": value >= critical_priority, "evidence": alert.evidence, "best_frame_seq": alert.best_frame_seq,
        "legal_hold": alert.legal_hold,
        "snapshot_url": f"{base}/snapshot.jpg" if "snapshot" in evidence else None,
        "clip_url": f"{base}/clip.mp4" if "clip" in evidence else None,
    }


def transition_out(step: Transition) -> dict[str, Any]:
    return {"status": step.status, "user": step.user, "at": step.at, "verdict": step.verdict,
            "comment": step.comment, "authority": step.authority}
