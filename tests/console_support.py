"""Shared set-up for console tests: a store with users and alerts, and the console context over it."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from analytics.alerts.manager import AlertManager, severities_from_cameras
from analytics.alerts.store import AlertStore
from analytics.config import RunConfig, load_config
from analytics.console.accounts import Accounts
from analytics.console.context import ConsoleContext
from analytics.rules.base import Event

ROOT = Path(__file__).resolve().parents[1]
#: Still argon2id, at the lowest cost, so the API tests do not spend their time hashing.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORDS = {"ops": "operator-pass-1", "sup": "supervisor-pass-1", "adm": "admin-pass-123"}
ROLES = {"ops": "operator", "sup": "supervisor", "adm": "admin"}


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_780_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def default_config() -> RunConfig:
    return load_config(ROOT / "configs" / "default.yaml")


def make_context(tmp_path: Path, clock: Clock, config: RunConfig | None = None) -> ConsoleContext:
    """A context over a fresh SQLite store in ``tmp_path`` with the users of :data:`PASSWORDS`."""
    store = AlertStore.open(f"sqlite:///{tmp_path / 'alerts.db'}")
    accounts = Accounts(store, clock=clock, hasher=FAST_HASHER)
    for name, password in PASSWORDS.items():
        accounts.create_user(name, password, ROLES[name], by="test")
    return ConsoleContext(config=config or default_config(), store=store, accounts=accounts,
                          live_dir=tmp_path / "live", evidence_dir=tmp_path / "evidence", clock=clock)


def event(n: int, *, camera: str = "pets09-junction", kind: str = "gathering", rule: str = "group",
          zone: str | None = None, start: float = 0.0, score: float = 0.8, size: int = 4) -> Event:
    return Event(id=f"{camera}:{rule}:{n}", kind=kind, rule_id=rule, camera_id=camera, status="open",
                 start=start, end=start + 5.0, member_ids=tuple(range(size)), classes=("person",) * size,
                 score=score, evidence={"group_size": size}, best_frame_seq=int(start * 7), zone_id=zone)


def seed(ctx: ConsoleContext, events: list[Event]) -> list[str]:
    """Ingest events as a run's alert stage would and save the alerts; returns the alert ids created."""
    manager = AlertManager(ctx.config.alerts, severities=severities_from_cameras(ctx.config.cameras),
                           start_counters=ctx.store.next_counters())
    created = []
    for change in manager.ingest(events, ctx.clock()):
        ctx.store.save_alert(change.alert)
        if change.change == "created":
            created.append(change.alert.id)
    return created


def client_as(app, user: str | None, passwords: dict[str, str] = PASSWORDS):
    """A test client of ``app`` logged in as ``user`` (None: no session)."""
    from fastapi.testclient import TestClient

    client = TestClient(app)
    if user is not None:
        r = client.post("/api/login", json={"username": user, "password": passwords[user]})
        assert r.status_code == 200, r.text
    return client
