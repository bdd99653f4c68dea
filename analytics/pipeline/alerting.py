"""The alert stage: events in, ranked alerts out, persisted as they change.

It sits at the edge between the pure alert logic (:class:`~analytics.alerts.manager.AlertManager`, which is
given the time) and the store: this stage reads the wall clock (the alerts' ``created_at`` / ``updated_at``
and recency are wall-clock times) and writes every created or updated alert before returning, so a crash
loses nothing that was reported. On start it restores the open alerts and the id counters from the store,
so a restarted run goes on updating them instead of duplicating them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from analytics.alerts.config import AlertsConfig
from analytics.alerts.manager import AlertChange, AlertManager, severities_from_cameras
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
    """

    def __init__(self, config: AlertsConfig, store: AlertStore, cameras: Sequence[Any], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()  # events may come from several analysis threads
        self.manager = AlertManager(config, severities=severities_from_cameras(cameras),
                                    start_counters=store.next_counters())
        self.manager.restore(store.list_alerts(open_only=True))
        self.changes = 0

    def process(self, events: Iterable[Event]) -> list[AlertChange]:
        """Ingest events; every created or updated alert is saved before this returns."""
        with self._lock:
            changes = self.manager.ingest(events, self._clock())
            for change in changes:
                self.store.save_alert(change.alert)
            self.changes += len(changes)
        return changes
