"""Alert records: what operators see, act on and supervisors audit (numpy-free, plain data).

An alert gathers the events of one incident (same camera, kind and place, overlapping in time: see
:mod:`analytics.alerts.manager`) and carries its life cycle:

``new`` -> ``seen`` -> ``acknowledged`` -> ``escalated`` -> ``closed`` (with a verdict), where ``seen`` and
``escalated`` may be skipped and any open state may go straight to ``closed``. Every transition records who
made it and when (:class:`Transition`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AlertStatus = Literal["new", "seen", "acknowledged", "escalated", "closed"]
Verdict = Literal["true_alert", "false_alarm", "duplicate"]

STATUSES: tuple[str, ...] = ("new", "seen", "acknowledged", "escalated", "closed")
VERDICTS: tuple[str, ...] = ("true_alert", "false_alarm", "duplicate")

#: Allowed transitions: from -> the statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("seen", "acknowledged", "escalated", "closed"),
    "seen": ("acknowledged", "escalated", "closed"),
    "acknowledged": ("escalated", "closed"),
    "escalated": ("closed",),
    "closed": (),
}


class TransitionError(ValueError):
    """A status change the life cycle does not allow (the message names both statuses)."""


def check_transition(current: str, target: str, *, verdict: str | None = None) -> None:
    """Raise :class:`TransitionError` unless ``current -> target`` is allowed; closing needs a verdict."""
    if target not in STATUSES:
        raise TransitionError(f"unknown alert status {target!r}; expected one of {STATUSES}")
    if target not in TRANSITIONS.get(current, ()):
        raise TransitionError(f"an alert cannot go from {current!r} to {target!r}; from {current!r} it may go to "
                              f"{TRANSITIONS.get(current, ())}")
    if target == "closed" and verdict not in VERDICTS:
        raise TransitionError(f"closing an alert needs a verdict, one of {VERDICTS}; got {verdict!r}")


@dataclass(frozen=True)
class Transition:
    """One life-cycle step of an alert.

    Attributes:
        alert_id: the alert.
        status: the status reached.
        user: who made it (login name), or ``"system"``.
        at: when, Unix seconds (wall clock of the console or the manager).
        verdict: with ``closed``: true_alert, false_alarm or duplicate.
        comment: free text (the operator's note, the escalation's reference).
        authority: with ``escalated``: the authority's id from the config.
    """

    alert_id: str
    status: str
    user: str
    at: float
    verdict: str | None = None
    comment: str = ""
    authority: str | None = None


@dataclass(frozen=True)
class Alert:
    """One alert, as stored and shown.

    Attributes:
        id: stable id, ``"{camera}:{kind}:{n}"``.
        camera_id, kind, rule_id, zone_id, line_id: where and what (from its events).
        status: see the module docstring. verdict / comment: set when closed.
        start, end: seconds in the frames' time base: the earliest event start and latest event end.
        created_at, updated_at: Unix seconds (manager clock) when it was created and last changed.
        event_ids: the events merged into it, in arrival order.
        member_ids, classes: union of the members of its events (ascending ids, aligned classes).
        severity: the rule's severity [0, 1].
        score: the best event score so far [0, 1].
        evidence: the latest event's evidence (JSON types).
        priority: [0, 1], the rank key (see :mod:`analytics.alerts.priority`).
        breakdown: the factors of ``priority`` and their inputs, to explain the rank.
        best_frame_seq: the frame that best shows it (from the best-scored event).
        legal_hold: kept beyond retention while True.
    """

    id: str
    camera_id: str
    kind: str
    rule_id: str
    start: float
    end: float
    created_at: float
    updated_at: float
    status: str = "new"
    zone_id: str | None = None
    line_id: str | None = None
    verdict: str | None = None
    comment: str = ""
    event_ids: tuple[str, ...] = ()
    member_ids: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    severity: float = 0.5
    score: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    priority: float = 0.0
    breakdown: dict[str, Any] = field(default_factory=dict)
    best_frame_seq: int | None = None
    legal_hold: bool = False

    @property
    def is_open(self) -> bool:
        return self.status != "closed"
