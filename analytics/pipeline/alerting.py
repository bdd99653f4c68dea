"""The alert stage: events in, ranked alerts out, persisted as they change.

It sits at the edge between the pure alert logic (:class:`~analytics.alerts.manager.AlertManager`, which is
given the time) and the store: this stage reads the wall clock (the alerts' ``created_at`` / ``updated_at``
and recency are wall-clock times) and writes every created or updated alert before returning, so a crash
loses nothing that was reported. On start it restores the open alerts and the id counters from the store,
so a restarted run goes on updating them instead of duplicating them.

The store is the source of truth for what operators did: the console (maybe another process) records
acknowledgements and closures there, and admins change rule alert settings there. :meth:`AlertStage.refresh`
(called before each batch, at most every ``refresh_seconds``) reloads the alerts whose stored status differs
from the manager's, so an event after an operator closed its alert is handled as a closed alert's (cooldown,
then a new alert), and applies changed rule settings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from analytics.alerts.config import AlertsConfig
from analytics.alerts.manager import AlertChange, AlertManager, severities_from_cameras
from analytics.alerts.model import Alert
from analytics.alerts.store import AlertStore
from analytics.rules.base import Event

log = logging.getLogger(__name__)


class AlertStage:
    """Turns each batch of events into alert changes and saves them.

    Args:
        config: the alerts section of the run config.
        store: an open alert store (the stage does not close it).
        cameras: the camera configs (their rules' severities feed the ranking).
        clock: wall-clock source, ``time.time`` by default (injected by tests).
        on_created: called with each alert the stage creates, after it is saved (the evidence recorder).
        refresh_seconds: how often the store is checked for operators' and admins' changes.
    """

    def __init__(self, config: AlertsConfig, store: AlertStore, cameras: Sequence[Any], *,
                 clock: Callable[[], float] = time.time, on_created: Callable[[Alert], None] | None = None,
                 refresh_seconds: float = 1.0) -> None:
        self.store = store
        self._base = config
        self._clock = clock
        self._on_created = on_created
        self._refresh_seconds = refresh_seconds
        self._refreshed = -float("inf")
        self._overrides: dict[str, dict] = {}
        self._lock = threading.Lock()  # events may come from several analysis threads
        self.manager = AlertManager(config, severities=severities_from_cameras(cameras),
                                    start_counters=store.next_counters())
        self.manager.restore(store.list_alerts(open_only=True))
        self.changes = 0
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Pick up, from the store, status changes made by the console and changed rule settings."""
        now = time.monotonic()
        if not force and now - self._refreshed < self._refresh_seconds:
            return
        self._refreshed = now
        overrides = self.store.rule_settings()
        if overrides != self._overrides:
            try:
                self.manager.reconfigure(self._base.with_rule_settings(overrides))
                self._overrides = overrides
                log.info("alert settings changed from the console: %s", sorted(overrides))
            except ValidationError as err:
                log.error("ignoring invalid rule settings in the store: %s", err)
        held = {a.id: a.status for a in self.manager.alerts() if a.is_open}
        stored = self.store.statuses(held)
        changed = [alert_id for alert_id, status in stored.items() if held[alert_id] != status]
        if changed:
            self.manager.restore(filter(None, map(self.store.get_alert, changed)))

    def process(self, events: Iterable[Event]) -> list[AlertChange]:
        """Ingest events; every created or updated alert is saved before this returns."""
        with self._lock:
            self.refresh()
            changes = self.manager.ingest(events, self._clock())
            for change in changes:
                self.store.save_alert(change.alert)
            self.changes += len(changes)
        if self._on_created is not None:
            for change in changes:
                if change.change == "created":
                    self._on_created(change.alert)
        return changes
