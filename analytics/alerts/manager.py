"""The alert manager: turns rule events into alerts, merges duplicates and ranks one queue for all cameras.

An event record (``open`` / ``updated`` / ``closed``, see :mod:`analytics.rules.base`) is applied in this order:

1. its kind is in ``ignore_kinds``: dropped (line crossings are counts, not incidents);
2. its **id** already belongs to an alert (and its start lies within that alert's span, which guards against
   ids reused after a pipeline restart): an open alert is **updated**; a closed one drops it (the later
   records of its own events, or of an event it already counted as suppressed: the operator closed that
   incident);
3. an **open** alert of the same camera, kind, zone_id and line_id overlaps it in time, or ends at most
   ``merge_gap`` seconds before it starts: that alert is **updated** (one incident, one alert, not ten);
4. an alert of the same camera, **rule**, zone_id and line_id ended at most ``cooldown`` seconds before it
   starts: an open one (even acknowledged or escalated) is **updated**; a closed one only counts the event as
   **suppressed** (``evidence["suppressed_events"]`` and ``evidence["suppressed_event_ids"]``), and no new alert
   is opened within the cooldown;
5. its score is at least the rule's ``min_score``: a new alert is **created** (hysteresis: a weak event opens
   nothing, a later record of it that is strong enough opens the alert; once open, any score updates it);
6. otherwise it is dropped.

Times: ``merge_gap`` and ``cooldown`` compare event ``start`` with alert ``end``, both in the frames' time base,
so a replay merges exactly as live did. ``now`` (wall clock, Unix seconds) is always an argument: it dates
``created_at`` / ``updated_at`` and ages the recency factor of the priority. Nothing here reads the clock.

An update takes the union of members, appends the new event id, widens ``start`` / ``end``, keeps the best
score (and that event's ``best_frame_seq``), takes the latest evidence and recomputes the priority
(:mod:`analytics.alerts.priority`). Alert ids are ``"{camera}:{kind}:{n}"``, ``n`` counting from 1 per camera
and kind; :meth:`AlertManager.restore` (or ``start_counters``) resumes them after a restart.

:class:`~analytics.alerts.model.Alert` and :class:`~analytics.alerts.model.Transition` are the only data that
cross to a store: it saves what :meth:`AlertManager.ingest` and :meth:`AlertManager.transition` return and
gives the alerts back to :meth:`AlertManager.restore` at start-up. ``updated_at`` changes with evidence (and
suppression counts), not with life-cycle transitions, which the :class:`Transition` records date.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal, NamedTuple

from analytics.alerts.config import AlertRuleSettings, AlertsConfig
from analytics.alerts.model import STATUSES, Alert, Transition, TransitionError, check_transition
from analytics.alerts.priority import priority
from analytics.rules.base import Event

log = logging.getLogger(__name__)

ChangeKind = Literal["created", "updated", "suppressed"]
#: ``(camera_id, rule_id) -> severity`` in [0, 1].
SeverityFn = Callable[[str, str], float]
Severities = Mapping[tuple[str, str], float] | Mapping[str, float] | SeverityFn

DEFAULT_SEVERITY = 0.5
SUPPRESSED_COUNT = "suppressed_events"
SUPPRESSED_IDS = "suppressed_event_ids"
_EPS = 1e-3  # seconds: tolerance of the span check on event ids (a store may round times)
_RANK = {"suppressed": 0, "updated": 1, "created": 2}

_Place = tuple[str, str, str | None, str | None]  # camera_id, kind, zone_id, line_id


class AlertChange(NamedTuple):
    """What one :meth:`AlertManager.ingest` call did to one alert (its state after the call)."""

    alert: Alert
    change: ChangeKind


def severities_from_cameras(cameras: Iterable[Any]) -> dict[tuple[str, str], float]:
    """``(camera_id, rule_id) -> severity`` from camera configs (``CameraConfig``: ``id``, ``rules[*].id``,
    ``rules[*].severity``), for the ``severities`` argument of :class:`AlertManager`."""
    return {(cam.id, rule.id): float(rule.severity) for cam in cameras for rule in cam.rules}


def _check_severity(value: Any, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"severity of {where} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:  # also refuses NaN
        raise ValueError(f"severity of {where} must be in [0, 1], got {value!r}")
    return v


def _severity_fn(severities: Severities | None) -> SeverityFn:
    """A checked ``(camera_id, rule_id) -> severity``: a mapping is keyed ``(camera_id, rule_id)`` or
    ``rule_id`` (every camera), the former first; anything it does not name gets ``DEFAULT_SEVERITY``."""
    if severities is None:
        return lambda camera_id, rule_id: DEFAULT_SEVERITY
    if not isinstance(severities, Mapping):
        if not callable(severities):
            raise TypeError(f"severities must be a mapping or a callable, got {type(severities).__name__}")
        fn = severities
        return lambda camera_id, rule_id: _check_severity(fn(camera_id, rule_id), f"{camera_id}/{rule_id}")
    table: dict[Any, float] = {}
    for key, value in severities.items():
        ok = isinstance(key, str) or (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key))
        if not ok:
            raise ValueError(f"severities keys must be (camera_id, rule_id) or rule_id, got {key!r}")
        table[key] = _check_severity(value, "/".join(key) if isinstance(key, tuple) else key)
    return lambda camera_id, rule_id: table.get((camera_id, rule_id), table.get(rule_id, DEFAULT_SEVERITY))


def _near(alert: Alert, event: Event, gap: float) -> bool:
    """Whether ``event`` overlaps ``alert`` in frame time, or is at most ``gap`` seconds from it."""
    return event.start <= alert.end + gap and event.end >= alert.start - gap


def _counter_key(alert_id: str) -> tuple[str, int]:
    """``"cam:kind:7"`` -> ``("cam:kind", 7)``; ValueError for another shape."""
    prefix, _, n = alert_id.rpartition(":")
    if prefix.count(":") != 1 or not n.isdigit():
        raise ValueError(f"alert id {alert_id!r} is not of the form 'camera:kind:n'")
    return prefix, int(n)


def _members(alert: Alert, event: Event) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Union of the members (ascending) with aligned classes (the latest known class of each; ``""`` for a
    member whose event gave none, ``()`` when no event gave classes)."""
    classes: dict[int, str] = {}
    for ids, names in ((alert.member_ids, alert.classes), (event.member_ids, event.classes)):
        for i, tid in enumerate(ids):
            if names:
                classes[tid] = names[i]
    members = tuple(sorted(set(alert.member_ids) | set(event.member_ids)))
    if not classes:
        return members, ()
    return members, tuple(classes.get(tid, "") for tid in members)


def transition_alert(alert: Alert, status: str, *, user: str, now: float, config: AlertsConfig,
                     verdict: str | None = None, comment: str = "",
                     authority: str | None = None) -> tuple[Alert, Transition]:
    """One life-cycle step of ``alert``, checked (see :meth:`AlertManager.transition`); pure.

    The console (which holds no manager) and the manager share it, so both refuse the same steps.
    """
    alert_id = alert.id
    if not user:
        raise ValueError(f"alert {alert_id!r}: a transition needs the user who makes it")
    check_transition(alert.status, status, verdict=verdict)
    if verdict is not None and status != "closed":
        raise TransitionError(f"alert {alert_id!r}: a verdict is only given when closing, not with {status!r}")
    known = [a.id for a in config.authorities]
    if status == "escalated" and authority is None:
        raise TransitionError(f"escalating alert {alert_id!r} needs an authority id, one of {known}")
    if status == "escalated" and config.authority(authority) is None:
        raise TransitionError(f"escalating alert {alert_id!r}: unknown authority {authority!r}; the config "
                              f"knows {known}")
    if status != "escalated" and authority is not None:
        raise TransitionError(f"alert {alert_id!r}: an authority is only named when escalating, not with "
                              f"{status!r}")
    closing = status == "closed"
    updated = replace(alert, status=status, verdict=verdict if closing else alert.verdict,
                      comment=comment if closing else alert.comment)
    return updated, Transition(alert_id=alert_id, status=status, user=user, at=float(now), verdict=verdict,
                               comment=comment, authority=authority)


class AlertManager:
    """The stateful coordinator between rule events and operators (in memory; a store persists its output).

    Args:
        config: the alert settings.
        severities: rule severities in [0, 1]: a mapping keyed ``(camera_id, rule_id)`` or ``rule_id`` (see
            :func:`severities_from_cameras`), or a callable ``(camera_id, rule_id) -> severity``; rules it does
            not name get 0.5.
        start_counters: ``{"camera:kind": next n}`` to resume alert ids (see :attr:`counters`); a restored
            alert also advances its counter.

    Example:
        >>> from analytics.alerts.config import AlertsConfig
        >>> from analytics.rules.base import Event
        >>> m = AlertManager(AlertsConfig(), severities={("cam1", "crowd"): 0.8})
        >>> e = Event(id="cam1:crowd:0", kind="gathering", rule_id="crowd", camera_id="cam1", status="open",
        ...           start=10.0, end=15.0, score=0.6)
        >>> [(c.alert.id, c.change) for c in m.ingest([e], now=1_700_000_000.0)]
        [('cam1:gathering:1', 'created')]
    """

    def __init__(self, config: AlertsConfig, *, severities: Severities | None = None,
                 start_counters: Mapping[str, int] | None = None) -> None:
        self._config = config
        self._severity = _severity_fn(severities)
        self._alerts: dict[str, Alert] = {}
        self._by_event: dict[str, str] = {}  # event id -> alert id it was merged into
        self._suppressed: dict[str, str] = {}  # event id -> closed alert id that suppressed it
        self._by_place: dict[_Place, list[str]] = {}
        self._counters: dict[str, int] = {}
        for key, n in (start_counters or {}).items():
            if key.count(":") != 1 or isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"start_counters wants 'camera:kind' -> next n >= 1, got {key!r}: {n!r}")
            self._counters[key] = n

    @property
    def config(self) -> AlertsConfig:
        return self._config

    def reconfigure(self, config: AlertsConfig) -> None:
        """Use new settings from now on (an admin changed a rule's alert settings); held alerts are kept."""
        self._config = config

    @property
    def counters(self) -> dict[str, int]:
        """``{"camera:kind": next n}``: the next alert number of each camera and kind (a copy)."""
        return dict(self._counters)

    def get(self, alert_id: str) -> Alert:
        """The alert with this id (KeyError naming it if there is none)."""
        try:
            return self._alerts[alert_id]
        except KeyError:
            raise KeyError(f"no alert {alert_id!r}") from None

    def alerts(self) -> list[Alert]:
        """Every alert held, open or closed, in creation (or restore) order."""
        return list(self._alerts.values())

    # -- events -> alerts ------------------------------------------------------------------------------------

    def ingest(self, events: Iterable[Event], now: float) -> list[AlertChange]:
        """Apply event records in order (see the module docstring).

        Args:
            events: records from the rules, any cameras, in emission order (not mutated).
            now: wall clock, Unix seconds.

        Returns:
            One change per alert touched, in the order first touched, with the alert as it is after the whole
            call; the change is ``"created"`` if the call created it, else ``"updated"`` if an event joined it,
            else ``"suppressed"``.
        """
        changes: dict[str, ChangeKind] = {}
        for event in events:
            if event.kind in self._config.ignore_kinds:
                continue
            done = self._apply(event, float(now))
            if done is not None:
                alert_id, change = done
                prev = changes.get(alert_id)
                changes[alert_id] = change if prev is None or _RANK[change] > _RANK[prev] else prev
        return [AlertChange(self._alerts[a], c) for a, c in changes.items()]

    def _apply(self, event: Event, now: float) -> tuple[str, ChangeKind] | None:
        settings = self._config.settings_for(event.camera_id, event.rule_id, event.kind)
        owner = self._owner(event, settings)
        if owner is not None:
            return self._update(owner, event, now) if owner.is_open else None
        place = (event.camera_id, event.kind, event.zone_id, event.line_id)
        near = [self._alerts[i] for i in self._by_place.get(place, ())]
        merge = [a for a in near if a.is_open and _near(a, event, settings.merge_gap)]
        if merge:
            return self._update(max(merge, key=lambda a: (a.end, a.created_at)), event, now)
        cool = [a for a in near if a.rule_id == event.rule_id and _near(a, event, settings.cooldown)]
        if cool:
            alert = max(cool, key=lambda a: (a.is_open, a.end, a.created_at))
            return self._update(alert, event, now) if alert.is_open else self._suppress(alert, event, now)
        if event.score >= settings.min_score:
            return self._create(event, now)
        log.debug("event %s (score %.3f) is below min_score %.3f: no alert", event.id, event.score,
                  settings.min_score)
        return None

    def _owner(self, event: Event, settings: AlertRuleSettings) -> Alert | None:
        """The alert this event id was merged into or suppressed by, if its start fits that alert."""
        alert_id = self._by_event.get(event.id)
        gap = _EPS
        if alert_id is None:
            alert_id, gap = self._suppressed.get(event.id), settings.cooldown + _EPS
        alert = self._alerts.get(alert_id) if alert_id is not None else None
        if alert is None or alert.camera_id != event.camera_id or alert.kind != event.kind:
            return None
        if not alert.start - gap <= event.start <= alert.end + gap:
            return None  # an id reused after a restart of the rules: a new event
        return alert

    def _create(self, event: Event, now: float) -> tuple[str, ChangeKind]:
        key = f"{event.camera_id}:{event.kind}"
        n = self._counters.get(key, 1)
        while f"{key}:{n}" in self._alerts:
            n += 1
        self._counters[key] = n + 1
        alert = Alert(
            id=f"{key}:{n}", camera_id=event.camera_id, kind=event.kind, rule_id=event.rule_id,
            start=event.start, end=event.end, created_at=now, updated_at=now, zone_id=event.zone_id,
            line_id=event.line_id, event_ids=(event.id,), member_ids=tuple(event.member_ids),
            classes=tuple(event.classes), severity=self._severity(event.camera_id, event.rule_id),
            score=event.score, evidence=copy.deepcopy(dict(event.evidence)), best_frame_seq=event.best_frame_seq)
        self._put(alert, now)
        self._by_place.setdefault((alert.camera_id, alert.kind, alert.zone_id, alert.line_id), []).append(alert.id)
        self._by_event[event.id] = alert.id
        return alert.id, "created"

    def _update(self, alert: Alert, event: Event, now: float) -> tuple[str, ChangeKind]:
        members, classes = _members(alert, event)
        better = event.best_frame_seq is not None and (event.score > alert.score or alert.best_frame_seq is None)
        updated = replace(
            alert, start=min(alert.start, event.start), end=max(alert.end, event.end), updated_at=now,
            event_ids=alert.event_ids if event.id in alert.event_ids else (*alert.event_ids, event.id),
            member_ids=members, classes=classes, score=max(alert.score, event.score),
            severity=max(alert.severity, self._severity(event.camera_id, event.rule_id)),
            evidence=copy.deepcopy(dict(event.evidence)),
            best_frame_seq=event.best_frame_seq if better else alert.best_frame_seq)
        self._put(updated, now)
        self._by_event[event.id] = alert.id
        return alert.id, "updated"

    def _suppress(self, alert: Alert, event: Event, now: float) -> tuple[str, ChangeKind]:
        ids = [*alert.evidence.get(SUPPRESSED_IDS, ()), event.id]
        evidence = {**alert.evidence, SUPPRESSED_COUNT: len(ids), SUPPRESSED_IDS: ids}
        self._put(replace(alert, evidence=evidence, updated_at=now), now)
        self._suppressed[event.id] = alert.id
        log.info("event %s suppressed by closed alert %s (cooldown)", event.id, alert.id)
        return alert.id, "suppressed"

    def _put(self, alert: Alert, now: float) -> None:
        value, breakdown = priority(alert, now, self._config)
        self._alerts[alert.id] = replace(alert, priority=value, breakdown=breakdown)

    # -- operators -------------------------------------------------------------------------------------------

    def transition(self, alert_id: str, status: str, *, user: str, now: float, verdict: str | None = None,
                   comment: str = "", authority: str | None = None) -> tuple[Alert, Transition]:
        """Move an alert along its life cycle (:func:`analytics.alerts.model.check_transition`).

        Args:
            alert_id: the alert (KeyError if unknown).
            status: the status to reach.
            user: who does it (login name, or ``"system"``); not empty.
            now: wall clock, Unix seconds (dates the :class:`Transition`).
            verdict: required to close (true_alert, false_alarm, duplicate); refused otherwise.
            comment: the operator's note; stored on the alert when it closes.
            authority: required to escalate: the id of one of the config's authorities; refused otherwise.

        Returns:
            The alert after the step and the step's record.

        Raises:
            TransitionError (a ValueError): a step the life cycle does not allow, closing without a verdict,
            escalating without an authority or to one the config does not know.
        """
        updated, step = transition_alert(self.get(alert_id), status, user=user, now=now, config=self._config,
                                         verdict=verdict, comment=comment, authority=authority)
        self._alerts[alert_id] = updated
        return updated, step

    def queue(self, now: float, *, include_closed: bool = False) -> list[Alert]:
        """Every open alert of every camera, highest priority first, the priority recomputed at ``now``.

        Ties go to the most recently updated, then by id. The alerts returned carry the priority and breakdown
        at ``now``; the held alerts keep those of their last change (a read does not change state).
        """
        ranked = []
        for alert in self._alerts.values():
            if include_closed or alert.is_open:
                value, breakdown = priority(alert, now, self._config)
                ranked.append(replace(alert, priority=value, breakdown=breakdown))
        ranked.sort(key=lambda a: (-a.priority, -a.updated_at, a.id))
        return ranked

    # -- persistence -----------------------------------------------------------------------------------------

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Reload alerts kept by a store (after a restart): open ones to go on merging, recently closed ones
        for their cooldown. An alert replaces a held one with its id; counters move past every restored id,
        so new alerts never reuse one."""
        for alert in alerts:
            key, n = _counter_key(alert.id)
            if alert.status not in STATUSES:
                raise ValueError(f"alert {alert.id!r}: unknown status {alert.status!r}; expected one of {STATUSES}")
            if not (math.isfinite(alert.start) and math.isfinite(alert.end)):
                raise ValueError(f"alert {alert.id!r}: start and end must be finite seconds")
            if alert.id in self._alerts:
                self._unindex(self._alerts[alert.id])
            self._alerts[alert.id] = alert
            self._by_place.setdefault((alert.camera_id, alert.kind, alert.zone_id, alert.line_id), []).append(alert.id)
            for event_id in alert.event_ids:
                self._by_event[event_id] = alert.id
            for event_id in alert.evidence.get(SUPPRESSED_IDS, ()):
                self._suppressed[event_id] = alert.id
            self._counters[key] = max(self._counters.get(key, 1), n + 1)

    def prune(self, *, before: float) -> list[str]:
        """Forget closed alerts last updated before ``before`` (wall clock, Unix seconds), to bound memory in a
        long run (the store keeps them; counters stay, so ids are never reused). Choose ``before`` well past
        the longest cooldown: a forgotten alert suppresses nothing. Returns the ids forgotten."""
        gone = [a.id for a in self._alerts.values() if not a.is_open and a.updated_at < before]
        for alert_id in gone:
            self._unindex(self._alerts.pop(alert_id))
        return gone

    def _unindex(self, alert: Alert) -> None:
        place = self._by_place.get((alert.camera_id, alert.kind, alert.zone_id, alert.line_id), [])
        if alert.id in place:
            place.remove(alert.id)
        for index, event_ids in ((self._by_event, alert.event_ids),
                                 (self._suppressed, alert.evidence.get(SUPPRESSED_IDS, ()))):
            for event_id in event_ids:
                if index.get(event_id) == alert.id:
                    del index[event_id]
