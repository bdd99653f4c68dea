"""Alert persistence: SQLite by default (WAL), PostgreSQL by URL, with ordered schema migrations.

One code path (SQLAlchemy Core) serves both databases. Every write commits before it returns, so an alert, a
transition or an audit entry that a caller saw written survives a SIGKILL of the process:

* SQLite runs in WAL mode with ``synchronous=FULL``: each commit appends to the WAL and fsyncs it. (``NORMAL``
  with WAL would already survive a killed *process*, since the WAL write is in the OS page cache; ``FULL`` also
  survives an OS crash or power cut, at one fsync per commit, cheap at alert rates.)
* PostgreSQL commits are durable under the server's default ``synchronous_commit=on``.

Ownership of fields, so a stale in-memory copy cannot undo another process's work:

* ``status``, ``verdict`` and ``comment`` change only through :meth:`AlertStore.record_transition`, which also
  appends the :class:`~analytics.alerts.model.Transition` and an audit entry in the same transaction;
  :meth:`AlertStore.save_alert` writes them when it inserts an alert and leaves them alone when it updates one.
* ``legal_hold`` changes only through :meth:`AlertStore.set_legal_hold` (audited).

Times are arguments (Unix seconds); nothing here reads the wall clock, except the database's own
``CURRENT_TIMESTAMP`` stamped on ``schema_version`` rows.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

from analytics.alerts.config import MAX_RETENTION_DAYS  # the law's longest retention, days
from analytics.alerts.model import STATUSES, Alert, Transition, TransitionError, check_transition
from analytics.alerts.store_schema import (
    GENESIS,
    AlertStoreError,
    chain_hash,
    alerts,
    apply_migrations,
    audit_log,
    evidence_files,
    id_counters,
    rule_settings,
    transitions,
)

__all__ = ["MAX_RETENTION_DAYS", "AlertStore", "AlertStoreError", "AuditEntry", "engine_for", "mask_url"]

log = logging.getLogger(__name__)

_EXPECTED_URL = "sqlite:///PATH.db (the default) or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
#: Set in the life cycle only by record_transition / set_legal_hold: save_alert does not update them.
_OWNED_FIELDS = ("status", "verdict", "comment", "legal_hold")
_JSON_FIELDS = ("event_ids", "member_ids", "classes", "evidence", "breakdown")
#: pg_advisory_xact_lock key serialising audit appends (the hash chain) across processes.
_PG_AUDIT_LOCK = 0x6175646974  # "audit"


@dataclass(frozen=True)
class AuditEntry:
    """One line of the append-only audit log.

    Attributes:
        id: increasing with insertion order.
        at: Unix seconds, the caller's clock.
        user: who acted (login name) or ``"system"``.
        action: what, dotted (``"alert.transition"``, ``"alert.legal_hold"``, ``"alerts.purge"``, ...).
        target: on what (an alert id, a camera id, ...).
        details: JSON types.
    """

    id: int
    at: float
    user: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str | None = None
    hash: str | None = None


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also for strings that do not parse as a URL)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def engine_for(url: str) -> Engine:
    """A SQLAlchemy engine for a store URL, configured for durability; no connection is made yet.

    ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` (parent folders are created), or
    ``postgresql://...`` (driven by psycopg 3; ``postgresql+psycopg://`` is accepted too).

    Raises:
        AlertStoreError: the URL is malformed or names another database, or the SQLite folder cannot be made.
    """
    masked = mask_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as err:
        raise AlertStoreError(f"alert store URL {masked!r} does not parse ({err}); expected {_EXPECTED_URL}") from None
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return _sqlite_engine(parsed, masked)
    if parsed.drivername in ("postgresql", "postgresql+psycopg"):
        engine = sa.create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True,
                                  connect_args={"connect_timeout": 10})
        return engine
    raise AlertStoreError(f"alert store URL {masked!r}: unsupported database {parsed.drivername!r}; "
                          f"expected {_EXPECTED_URL}")


def _sqlite_engine(parsed: sa.engine.URL, masked: str) -> Engine:
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        raise AlertStoreError(f"alert store URL {masked!r} names no database file (an in-memory database cannot "
                              f"be durable); expected {_EXPECTED_URL}")
    try:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AlertStoreError(f"alert store URL {masked!r}: cannot create the folder of {parsed.database!r}: "
                              f"{err}") from None
    engine = sa.create_engine(parsed, connect_args={"timeout": 30.0})  # busy wait on another writer's lock

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (below): transactional DDL, real BEGIN
        cursor = dbapi_connection.cursor()
        try:
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise AlertStoreError(f"alert store {masked!r}: SQLite refused WAL mode (got {mode!r}); "
                                      "put the database on a local file system")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front (IMMEDIATE): no deadlock upgrading a read lock between processes.
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('analytics_begin', 'DEFERRED')}")

    return engine


def _dumps(alert_id: str, name: str, value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise TypeError(f"alert {alert_id!r}: field {name!r} is not JSON-serialisable: {err}") from None


def _alert_values(alert: Alert) -> dict[str, Any]:
    values = {name: getattr(alert, name) for name in alerts.c.keys()}
    for name in _JSON_FIELDS:
        values[name] = _dumps(alert.id, name, values[name])
    return values


def _row_to_alert(row: sa.Row) -> Alert:
    m = row._mapping
    return Alert(
        id=m["id"], camera_id=m["camera_id"], kind=m["kind"], rule_id=m["rule_id"], start=m["start"], end=m["end"],
        created_at=m["created_at"], updated_at=m["updated_at"], status=m["status"], zone_id=m["zone_id"],
        line_id=m["line_id"], verdict=m["verdict"], comment=m["comment"],
        event_ids=tuple(json.loads(m["event_ids"])), member_ids=tuple(int(i) for i in json.loads(m["member_ids"])),
        classes=tuple(json.loads(m["classes"])), severity=m["severity"], score=m["score"],
        evidence=json.loads(m["evidence"]), priority=m["priority"], breakdown=json.loads(m["breakdown"]),
        best_frame_seq=m["best_frame_seq"], legal_hold=bool(m["legal_hold"]),
    )


def _row_to_transition(row: sa.Row) -> Transition:
    m = row._mapping
    return Transition(alert_id=m["alert_id"], status=m["status"], user=m["user"], at=m["at"], verdict=m["verdict"],
                      comment=m["comment"], authority=m["authority"])


def _upsert_insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` (same API on SQLite and PostgreSQL)."""
    return (pg_dialect.insert if conn.dialect.name == "postgresql" else sqlite_dialect.insert)(table)


def _split_id(alert_id: str) -> tuple[str, int] | None:
    """``"cam:kind:12"`` -> ``("cam:kind", 12)``; None when the id does not end in ``:<digits>``."""
    prefix, sep, number = alert_id.rpartition(":")
    return (prefix, int(number)) if sep and number.isdigit() else None


class AlertStore:
    """Alerts, their transitions and the audit log in SQLite or PostgreSQL.

    Thread-safe for one writing thread and any number of readers (writes are serialised by a lock; SQLite's
    file lock and PostgreSQL serialise writers of other processes). Use :meth:`open`, not the constructor.

    Example (``alert`` from the manager's ``ingest``, ``acked, step`` from its ``transition``)::

        store = AlertStore.open("sqlite:///var/lib/analytics/alerts.db")
        store.save_alert(alert)
        store.record_transition(acked, step)
        manager = AlertManager(config, start_counters=store.next_counters())
        manager.restore(store.list_alerts())
    """

    def __init__(self, engine: Engine, *, url: str, schema_version: int) -> None:
        self._engine = engine
        self._writer = engine.execution_options(analytics_begin="IMMEDIATE")
        self._lock = threading.Lock()
        self._closed = False
        self.url = url  # password masked
        self.schema_version = schema_version

    # -- life --------------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> AlertStore:
        """Open (creating or upgrading the schema in one transaction) the store at ``url``.

        Raises:
            AlertStoreError: bad URL, unreachable database (the message names the URL, password masked), or a
                database written by newer code.
        """
        masked = mask_url(url)
        engine = engine_for(url)
        try:
            with engine.execution_options(analytics_begin="IMMEDIATE").begin() as conn:
                version = apply_migrations(conn)
        except AlertStoreError as err:
            engine.dispose()
            raise AlertStoreError(f"alert store {masked!r}: {err}") from None
        except sa.exc.DBAPIError as err:
            engine.dispose()
            reason = str(err.orig).strip() or type(err.orig).__name__
            password = sa.engine.make_url(url).password
            if password:
                reason = reason.replace(str(password), "***")
            raise AlertStoreError(f"cannot open the alert store at {masked!r}: {reason}; expected {_EXPECTED_URL}, "
                                  "with the database reachable and writable") from None
        log.info("alert store %s open, schema version %d", masked, version)
        return cls(engine, url=masked, schema_version=version)

    def close(self) -> None:
        """Release the connections (idempotent); the store cannot be used afterwards."""
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def writing(self) -> Any:
        """A write transaction for the console's tables in the same database (see :mod:`analytics.console`)."""
        return self._write()

    def reading(self) -> Any:
        """A read connection (see :meth:`writing`)."""
        return self._read()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, committed (durably) before the block's caller returns."""
        self._check_open()
        with self._lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self._check_open()
        with self._engine.connect() as conn:
            yield conn

    def _check_open(self) -> None:
        if self._closed:
            raise AlertStoreError(f"alert store {self.url!r} is closed")

    # -- alerts ------------------------------------------------------------------------------------------------

    def save_alert(self, alert: Alert) -> None:
        """Insert ``alert``, or update it by id, leaving the stored status, verdict, comment and legal hold."""
        with self._write() as conn:
            self._upsert(conn, alert, keep=_OWNED_FIELDS)

    def _upsert(self, conn: Connection, alert: Alert, *, keep: tuple[str, ...]) -> None:
        values = _alert_values(alert)
        stmt = _upsert_insert(conn, alerts).values(values)
        changed = {name: stmt.excluded[name] for name in values if name != "id" and name not in keep}
        conn.execute(stmt.on_conflict_do_update(index_elements=[alerts.c.id], set_=changed))

    def get_alert(self, alert_id: str) -> Alert | None:
        """The stored alert, or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
        return None if row is None else _row_to_alert(row)

    def list_alerts(self, *, status: str | None = None, camera_id: str | None = None,
                    open_only: bool = False, statuses: Iterable[str] | None = None, since: float | None = None,
                    until: float | None = None) -> list[Alert]:
        """Alerts matching all the given filters (``since <= created_at < until``), oldest ``created_at`` first
        (then by id)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown alert status {status!r}; expected one of {STATUSES}")
        query = sa.select(alerts).order_by(alerts.c.created_at, alerts.c.id)
        if status is not None:
            query = query.where(alerts.c.status == status)
        if camera_id is not None:
            query = query.where(alerts.c.camera_id == camera_id)
        if open_only:
            query = query.where(alerts.c.status != "closed")
        if statuses is not None:
            query = query.where(alerts.c.status.in_(list(statuses)))
        if since is not None:
            query = query.where(alerts.c.created_at >= since)
        if until is not None:
            query = query.where(alerts.c.created_at < until)
        with self._read() as conn:
            return [_row_to_alert(row) for row in conn.execute(query)]

    # -- life cycle --------------------------------------------------------------------------------------------

    def record_transition(self, alert: Alert, transition: Transition) -> None:
        """Store ``alert`` (its new state) and append ``transition`` and its audit entry, in ONE transaction.

        ``alert.status`` must be ``transition.status``. The move is checked against the *stored* status, so two
        consoles acknowledging the same alert cannot both succeed.

        Raises:
            ValueError: the alert and the transition disagree.
            TransitionError: the stored alert cannot move to ``transition.status``.
        """
        if transition.alert_id != alert.id or transition.status != alert.status:
            raise ValueError(f"transition {transition!r} does not match alert {alert.id!r} in status "
                             f"{alert.status!r}")
        details = {"status": transition.status, "verdict": transition.verdict, "comment": transition.comment,
                   "authority": transition.authority}
        with self._write() as conn:
            current = conn.execute(sa.select(alerts.c.status).where(alerts.c.id == alert.id).with_for_update())
            stored = current.scalar()
            if stored is not None:
                check_transition(stored, transition.status, verdict=transition.verdict)
            self._upsert(conn, alert, keep=("legal_hold",))
            conn.execute(sa.insert(transitions).values(
                alert_id=transition.alert_id, status=transition.status, user=transition.user, at=transition.at,
                verdict=transition.verdict, comment=transition.comment, authority=transition.authority))
            self.audit_in(conn, transition.user, "alert.transition", alert.id, details, at=transition.at)

    def record_review(self, alert_id: str, *, verdict: str, comment: str, user: str, at: float) -> Alert:
        """A supervisor's review of a CLOSED alert's verdict: sets verdict and comment, appends a ``closed``
        transition carrying the new verdict and an ``alert.review`` audit entry, in one transaction.

        Raises:
            KeyError: no such alert.
            TransitionError: the alert is not closed, or the verdict is unknown.
        """
        check_transition("new", "closed", verdict=verdict)  # validates the verdict
        with self._write() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id).with_for_update()).first()
            if row is None:
                raise KeyError(f"no alert {alert_id!r} in {self.url!r}")
            if row.status != "closed":
                raise TransitionError(f"alert {alert_id!r} is {row.status!r}: only a closed alert's verdict can be "
                                      "reviewed; close it first")
            conn.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(verdict=verdict, comment=comment))
            conn.execute(sa.insert(transitions).values(alert_id=alert_id, status="closed", user=user, at=at,
                                                       verdict=verdict, comment=comment, authority=None))
            self.audit_in(conn, user, "alert.review", alert_id,
                        {"verdict": verdict, "previous": row.verdict, "comment": comment}, at=at)
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).one()
        return _row_to_alert(row)

    def alert_versions(self, statuses: Iterable[str]) -> dict[str, tuple[str, float, bool, str | None]]:
        """``{alert id: (status, updated_at, legal_hold, verdict)}`` of the alerts in ``statuses``: a cheap
        query to find which alerts changed since a caller last read them (the console's live queue)."""
        query = (sa.select(alerts.c.id, alerts.c.status, alerts.c.updated_at, alerts.c.legal_hold, alerts.c.verdict)
                 .where(alerts.c.status.in_(list(statuses))))
        with self._read() as conn:
            return {r.id: (r.status, r.updated_at, bool(r.legal_hold), r.verdict) for r in conn.execute(query)}

    def get_alerts(self, alert_ids: Iterable[str]) -> list[Alert]:
        """The stored alerts among ``alert_ids`` (unknown ids are skipped), in no particular order."""
        ids = list(alert_ids)
        found: list[Alert] = []
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(alerts).where(alerts.c.id.in_(ids[start:start + 500]))
                found += [_row_to_alert(row) for row in conn.execute(query)]
        return found

    def statuses(self, alert_ids: Iterable[str]) -> dict[str, str]:
        """``{alert id: stored status}`` for the ids that exist (a cheap check for changes made elsewhere)."""
        ids = list(alert_ids)
        found: dict[str, str] = {}
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(alerts.c.id, alerts.c.status).where(alerts.c.id.in_(ids[start:start + 500]))
                found.update({r.id: r.status for r in conn.execute(query)})
        return found

    def all_transitions(self, *, since: float | None = None, until: float | None = None) -> list[Transition]:
        """Every transition (``since <= at < until``), in recording order (for the supervisor audit)."""
        query = sa.select(transitions).order_by(transitions.c.id)
        if since is not None:
            query = query.where(transitions.c.at >= since)
        if until is not None:
            query = query.where(transitions.c.at < until)
        with self._read() as conn:
            return [_row_to_transition(row) for row in conn.execute(query)]

    def transitions(self, alert_id: str) -> list[Transition]:
        """The alert's transitions in the order they were recorded."""
        query = sa.select(transitions).where(transitions.c.alert_id == alert_id).order_by(transitions.c.id)
        with self._read() as conn:
            return [_row_to_transition(row) for row in conn.execute(query)]

    def set_legal_hold(self, alert_id: str, *, hold: bool, user: str, at: float) -> Alert:
        """Keep (``hold=True``) or release an alert beyond retention; audited. Returns the updated alert.

        ``updated_at`` is left as it is: a released alert's retention runs on from its last change.

        Raises:
            KeyError: no such alert.
        """
        with self._write() as conn:
            result = conn.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(legal_hold=bool(hold)))
            if result.rowcount == 0:
                raise KeyError(f"no alert {alert_id!r} in {self.url!r}")
            self.audit_in(conn, user, "alert.legal_hold", alert_id, {"hold": bool(hold)}, at=at)
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).one()
        return _row_to_alert(row)

    # -- evidence and rule settings ----------------------------------------------------------------------------

    def add_evidence(self, alert_id: str, kind: str, path: str | Path, *, at: float) -> None:
        """Link an evidence file (``kind``: snapshot or clip) to an alert; replaces an earlier link of that kind.

        Raises:
            KeyError: no such alert (the file is not linked).
        """
        with self._write() as conn:
            if conn.execute(sa.select(alerts.c.id).where(alerts.c.id == alert_id)).first() is None:
                raise KeyError(f"no alert {alert_id!r} in {self.url!r}")
            stmt = _upsert_insert(conn, evidence_files).values(alert_id=alert_id, kind=kind, path=str(path),
                                                               created_at=at)
            conn.execute(stmt.on_conflict_do_update(index_elements=[evidence_files.c.alert_id, evidence_files.c.kind],
                                                    set_={"path": stmt.excluded.path,
                                                          "created_at": stmt.excluded.created_at}))

    def evidence_of(self, alert_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """``{alert id: {kind: path}}`` for many alerts in one query per 500 ids (alerts without files absent)."""
        ids = list(alert_ids)
        found: dict[str, dict[str, str]] = {}
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(evidence_files).where(evidence_files.c.alert_id.in_(ids[start:start + 500]))
                for r in conn.execute(query):
                    found.setdefault(r.alert_id, {})[r.kind] = r.path
        return found

    def evidence(self, alert_id: str) -> dict[str, str]:
        """``{kind: path}`` of an alert's evidence files."""
        query = sa.select(evidence_files.c.kind, evidence_files.c.path).where(evidence_files.c.alert_id == alert_id)
        with self._read() as conn:
            return {r.kind: r.path for r in conn.execute(query)}

    def rule_settings(self) -> dict[str, dict[str, Any]]:
        """``{"camera_id/rule_id": settings}`` changed from the console (they override the config's)."""
        with self._read() as conn:
            return {r.key: json.loads(r.settings) for r in conn.execute(sa.select(rule_settings))}

    def set_rule_settings(self, key: str, settings: Mapping[str, Any], *, user: str, at: float) -> None:
        """Store the alert settings of one rule (``camera_id/rule_id``), audited with the previous value."""
        text = _dumps(key, "settings", dict(settings))
        with self._write() as conn:
            before = conn.execute(sa.select(rule_settings.c.settings).where(rule_settings.c.key == key)).scalar()
            stmt = _upsert_insert(conn, rule_settings).values(key=key, settings=text, updated_at=at, updated_by=user)
            conn.execute(stmt.on_conflict_do_update(index_elements=[rule_settings.c.key], set_={
                "settings": stmt.excluded.settings, "updated_at": stmt.excluded.updated_at,
                "updated_by": stmt.excluded.updated_by}))
            self.audit_in(conn, user, "rules.settings", key,
                        {"settings": dict(settings), "previous": None if before is None else json.loads(before)},
                        at=at)

    # -- audit -------------------------------------------------------------------------------------------------

    def audit(self, user: str, action: str, target: str, details: Mapping[str, Any] | None = None, *,
              at: float) -> int:
        """Append one audit entry (there is no API to change or delete one); returns its id."""
        with self._write() as conn:
            return self.audit_in(conn, user, action, target, dict(details or {}), at=at)

    @staticmethod
    def audit_in(conn: Connection, user: str, action: str, target: str, details: dict[str, Any], *, at: float) -> int:
        """Append an audit entry inside the caller's write transaction (from :meth:`writing`).

        Each entry carries the previous entry's hash and its own (:func:`chain_hash` over its id, fields and
        the previous hash), so editing, removing or reordering entries breaks the chain
        (:meth:`verify_audit_chain`). Appends are serialised (SQLite's write lock; an advisory lock on
        PostgreSQL), so the chain has no forks.
        """
        text = _dumps(target, "details", details)
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_AUDIT_LOCK)))
        last = conn.execute(sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc())
                            .limit(1)).first()
        entry_id, prev = (1, GENESIS) if last is None else (int(last.id) + 1, last.hash or GENESIS)
        digest = chain_hash(prev, entry_id, at, user, action, target, text)
        conn.execute(sa.insert(audit_log).values(id=entry_id, at=at, user=user, action=action, target=target,
                                                 details=text, prev_hash=prev, hash=digest))
        return entry_id

    def verify_audit_chain(self) -> list[str]:
        """Check the audit log's hash chain; returns the problems found (empty: intact), each naming the entry:
        an entry whose content no longer gives its hash (edited), or whose ``prev_hash`` is not the hash of the
        entry before it (an entry removed or inserted before it)."""
        problems: list[str] = []
        prev_hash, prev_id = GENESIS, 0
        query = sa.select(audit_log).order_by(audit_log.c.id)
        with self._read() as conn:
            for r in conn.execute(query):
                if r.prev_hash != prev_hash or r.id != prev_id + 1:
                    problems.append(f"audit entry {r.id} ({r.action} by {r.user!r}) does not follow entry {prev_id}: "
                                    "an entry before it was removed, inserted or edited")
                if r.hash != chain_hash(r.prev_hash or "", r.id, r.at, r.user, r.action, r.target, r.details):
                    problems.append(f"audit entry {r.id} ({r.action} by {r.user!r}) was edited: its content no "
                                    "longer gives its hash")
                prev_hash, prev_id = r.hash, r.id
        return problems

    def audit_entries(self, *, target: str | None = None, user: str | None = None, action: str | None = None,
                      since: float | None = None, until: float | None = None) -> list[AuditEntry]:
        """Audit entries matching all the given filters (``since <= at < until``), in insertion order."""
        query = sa.select(audit_log).order_by(audit_log.c.id)
        for column, value in ((audit_log.c.target, target), (audit_log.c.user, user), (audit_log.c.action, action)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        if until is not None:
            query = query.where(audit_log.c.at < until)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(id=r.id, at=r.at, user=r.user, action=r.action, target=r.target,
                           details=json.loads(r.details), prev_hash=r.prev_hash, hash=r.hash) for r in rows]

    # -- retention ---------------------------------------------------------------------------------------------

    def purge(self, now: float, retention_days: float, *, evidence_cb: Callable[[Alert], None] | None = None,
              user: str = "system") -> int:
        """Delete the alerts (and their transitions) unchanged for ``retention_days``, except those on legal hold.

        An alert goes when ``updated_at < now - retention_days * 86400``, open or closed. ``evidence_cb(alert)``
        is called for each one first, inside the transaction, to delete its evidence; an alert whose callback
        raises is logged and kept for the next purge (so the callback must be idempotent: a crash after it and
        before the commit calls it again). Audited when anything was deleted. Returns the number deleted.

        Raises:
            ValueError: ``retention_days`` outside ``[0, 15]``.
        """
        if not 0 <= retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days must be within [0, {MAX_RETENTION_DAYS}] (the legal maximum is "
                             f"{MAX_RETENTION_DAYS} days); got {retention_days!r}")
        cutoff = now - retention_days * 86400.0
        with self._write() as conn:
            due = conn.execute(sa.select(alerts).where(alerts.c.updated_at < cutoff, alerts.c.legal_hold.is_(False))
                               .order_by(alerts.c.id).with_for_update()).all()
            gone = [alert for alert in map(_row_to_alert, due) if self._evidence_removed(alert, evidence_cb)]
            if not gone:
                return 0
            ids = [alert.id for alert in gone]
            self._raise_counters(conn, ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                conn.execute(sa.delete(transitions).where(transitions.c.alert_id.in_(chunk)))
                conn.execute(sa.delete(evidence_files).where(evidence_files.c.alert_id.in_(chunk)))
                conn.execute(sa.delete(alerts).where(alerts.c.id.in_(chunk)))
            self.audit_in(conn, user, "alerts.purge", "alerts",
                        {"retention_days": retention_days, "cutoff": cutoff, "count": len(ids), "ids": ids}, at=now)
        return len(ids)

    @staticmethod
    def _evidence_removed(alert: Alert, evidence_cb: Callable[[Alert], None] | None) -> bool:
        if evidence_cb is None:
            return True
        try:
            evidence_cb(alert)
        except Exception:  # noqa: BLE001 - one alert's evidence must not stop the purge of the others
            log.exception("purge: removing the evidence of alert %s failed; keeping it for the next purge", alert.id)
            return False
        return True

    @staticmethod
    def _raise_counters(conn: Connection, ids: list[str]) -> None:
        """Remember the highest counter of each purged prefix, so ids are never reused after a purge."""
        highest: dict[str, int] = {}
        for prefix, number in filter(None, map(_split_id, ids)):
            highest[prefix] = max(number, highest.get(prefix, 0))
        for prefix, number in highest.items():
            stmt = _upsert_insert(conn, id_counters).values(prefix=prefix, last=number)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[id_counters.c.prefix],
                set_={"last": sa.case((id_counters.c.last > stmt.excluded.last, id_counters.c.last),
                                      else_=stmt.excluded.last)}))

    # -- id counters -------------------------------------------------------------------------------------------

    def next_counters(self) -> dict[str, int]:
        """``{"camera:kind": next n}`` past every id ``"{camera}:{kind}:{n}"`` ever stored, purged ones included.

        Ready for ``AlertManager(start_counters=...)``: after a restart no id is reused.
        """
        with self._read() as conn:
            ids = conn.execute(sa.select(alerts.c.id)).scalars().all()
            highest = {r.prefix: int(r.last) for r in conn.execute(sa.select(id_counters))}
        for prefix, number in filter(None, map(_split_id, ids)):
            highest[prefix] = max(number, highest.get(prefix, 0))
        return {prefix: number + 1 for prefix, number in highest.items()}

    def max_counter(self, prefix: str) -> int:
        """The highest ``n`` of the ids ``"{prefix}:{n}"`` ever stored (purged ones included), 0 when none."""
        with self._read() as conn:
            ids = conn.execute(sa.select(alerts.c.id).where(alerts.c.id.startswith(f"{prefix}:", autoescape=True)))
            numbers = [split[1] for split in map(_split_id, ids.scalars()) if split and split[0] == prefix]
            kept = conn.execute(sa.select(id_counters.c.last).where(id_counters.c.prefix == prefix)).scalar()
        return max([*numbers, int(kept or 0), 0])
