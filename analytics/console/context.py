"""What the console's routes share: the store, the accounts, the run config, the live frames, the clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.alerts.config import AlertsConfig
from analytics.alerts.store import AlertStore
from analytics.console.accounts import Accounts
from analytics.config import RunConfig


@dataclass
class ConsoleContext:
    """Everything a request handler may use (one per app).

    Attributes:
        config: the run config (cameras, alert settings, console settings).
        store: the alert store (source of truth for alerts, users, sessions, audit).
        accounts: users and sessions over ``store``.
        live_dir: where a run writes live frames and camera health (may not exist yet).
        evidence_dir: where a run writes snapshots and clips (files are only served from under it).
        recordings_dir: where a run writes video segments (served only from under it).
        exports_dir: where requisition exports are written.
        signing_key: the Ed25519 key file that signs exports (created on the first export).
        clock: wall clock, Unix seconds.
    """

    config: RunConfig
    store: AlertStore
    accounts: Accounts
    live_dir: Path
    evidence_dir: Path
    recordings_dir: Path | None = None
    exports_dir: Path | None = None
    signing_key: Path | None = None
    clock: Callable[[], float] = time.time
    changed: asyncio.Event | None = None  # set by an action so the hub pushes at once
    failed_logins: dict[str, list[float]] = field(default_factory=dict)
    viewed: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (user, what, target) -> last audit

    def audit_view(self, user: str, action: str, target: str, details: dict | None = None, *,
                   every: float = 300.0) -> None:
        """Audit a view (live frames are fetched twice a second: one entry per user, camera and ``every``
        seconds is the record of who watched what, not a flood)."""
        now = self.clock()
        key = (user, action, target)
        if now - self.viewed.get(key, -float("inf")) >= every:
            self.viewed[key] = now
            self.store.audit(user, action, target, details or {}, at=now)

    def index(self) -> Any:
        from analytics.recording.index import RecordingIndex

        return RecordingIndex(self.store)

    def alerts_config(self) -> AlertsConfig:
        """The alert settings in force: the config's, with the rule settings admins changed in the store."""
        return self.config.alerts.with_rule_settings(self.store.rule_settings())

    def camera_ids(self) -> list[str]:
        return [c.id for c in self.config.cameras]

    def notify(self) -> None:
        if self.changed is not None:
            self.changed.set()

    def live(self) -> Any:
        from analytics.pipeline.live import LiveFrames

        return LiveFrames(self.live_dir)
