"""The alert store's tables and its ordered schema migrations (SQLite and PostgreSQL alike).

A database records the migrations applied to it in ``schema_version`` (one row per version). At open,
:func:`apply_migrations` applies the missing ones in order, inside the caller's transaction, so a database is
either fully upgraded or left as it was. A migration is history: it never changes once released, and it builds
its own frozen table definitions rather than the latest ones below (a test checks that applying them all gives
exactly the latest tables).

Versions:

1. ``alerts`` (one row per alert; tuples and dicts as JSON text) and ``transitions`` (its life cycle: who, when).
2. ``alerts.legal_hold``, an index for retention, the append-only ``audit_log`` (triggers refuse UPDATE and
   DELETE) and ``id_counters`` (the highest id counter of purged alerts, so ids are never reused).
3. The console's ``users`` (argon2 password hashes, roles) and ``sessions`` (only a SHA-256 of each session
   token is kept), ``evidence_files`` (an alert's snapshot and clip paths) and ``rule_settings`` (alert
   settings an admin changed from the console, by ``camera_id/rule_id``).
4. Recording and requisitions: ``recordings`` (one row per video segment: camera, media and wall times,
   file), ``requisitions`` (a police requisition: reference, authority, officer, cameras, time range, reason;
   its segments are held while it is open) and ``requisition_holds``, ``relay_grants`` (a police account's
   view of chosen cameras for a time window); the audit log becomes a hash chain (``prev_hash``, ``hash``;
   existing entries are chained in id order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

__all__ = ["GENESIS", "LATEST_VERSION", "MIGRATIONS", "AlertStoreError", "Migration", "apply_migrations",
           "chain_hash", "current_version"]

#: pg_advisory_xact_lock key: serialises migrations of processes opening the same PostgreSQL database at once.
_PG_MIGRATION_LOCK = 0x616C657274  # "alert"


class AlertStoreError(RuntimeError):
    """The alert store cannot be opened or used (bad URL, unreachable database, schema from newer code)."""


def _id_type() -> sa.types.TypeEngine:
    """BIGSERIAL on PostgreSQL; INTEGER PRIMARY KEY (the rowid, auto-increasing) on SQLite."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# -- the latest schema (what the store reads and writes) -----------------------------------------------------------

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.current_timestamp()),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("camera_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("start", sa.Double, nullable=False),
    sa.Column("end", sa.Double, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("zone_id", sa.Text),
    sa.Column("line_id", sa.Text),
    sa.Column("verdict", sa.Text),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("event_ids", sa.Text, nullable=False),  # JSON list of str
    sa.Column("member_ids", sa.Text, nullable=False),  # JSON list of int
    sa.Column("classes", sa.Text, nullable=False),  # JSON list of str
    sa.Column("severity", sa.Double, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON object
    sa.Column("priority", sa.Double, nullable=False),
    sa.Column("breakdown", sa.Text, nullable=False),  # JSON object
    sa.Column("best_frame_seq", sa.BigInteger),
    sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),  # v2
)

transitions = sa.Table(
    "transitions", metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),  # recording order
    sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("user", sa.Text, nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("verdict", sa.Text),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("authority", sa.Text),
)

audit_log = sa.Table(  # v2
    "audit_log", metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("user", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # JSON object
    sa.Column("prev_hash", sa.Text),  # v4: the previous entry's hash (GENESIS for the first)
    sa.Column("hash", sa.Text),  # v4: see analytics.alerts.store.entry_hash
)

id_counters = sa.Table(  # v2
    "id_counters", metadata,
    sa.Column("prefix", sa.Text, primary_key=True),
    sa.Column("last", sa.BigInteger, nullable=False),
)


users = sa.Table(  # v3
    "users", metadata,
    sa.Column("username", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

sessions = sa.Table(  # v3
    "sessions", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("ended_at", sa.Double),
)

evidence_files = sa.Table(  # v3
    "evidence_files", metadata,
    sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

rule_settings = sa.Table(  # v3
    "rule_settings", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("settings", sa.Text, nullable=False),  # JSON object (AlertRuleSettings fields)
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)


recordings = sa.Table(  # v4
    "recordings", metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.Text, nullable=False),
    sa.Column("start", sa.Double, nullable=False),  # media time of the first frame (the frames' time base)
    sa.Column("end", sa.Double, nullable=False),  # media time just after the last frame
    sa.Column("wall_start", sa.Double, nullable=False),  # Unix seconds when the first frame was recorded
    sa.Column("wall_end", sa.Double, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

requisitions = sa.Table(  # v4
    "requisitions", metadata,
    sa.Column("id", sa.Text, primary_key=True),  # the reference number
    sa.Column("authority", sa.Text, nullable=False),
    sa.Column("officer", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("cameras", sa.Text, nullable=False),  # JSON list of camera ids
    sa.Column("start", sa.Double, nullable=False),  # Unix seconds (wall clock)
    sa.Column("end", sa.Double, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("released_by", sa.Text),
    sa.Column("released_at", sa.Double),
)

requisition_holds = sa.Table(  # v4
    "requisition_holds", metadata,
    sa.Column("requisition_id", sa.Text, sa.ForeignKey("requisitions.id"), primary_key=True),
    sa.Column("recording_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
              sa.ForeignKey("recordings.id"), primary_key=True),
)

relay_grants = sa.Table(  # v4
    "relay_grants", metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("username", sa.Text, sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
    sa.Column("cameras", sa.Text, nullable=False),  # JSON list of camera ids
    sa.Column("start", sa.Double, nullable=False),  # Unix seconds
    sa.Column("end", sa.Double, nullable=False),
    sa.Column("recorded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("granted_by", sa.Text, nullable=False),
    sa.Column("granted_at", sa.Double, nullable=False),
    sa.Column("revoked_by", sa.Text),
    sa.Column("revoked_at", sa.Double),
)


# -- migrations (frozen history: never edit a released one, append a new one) --------------------------------------

@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply(conn)`` runs inside the open transaction and takes the schema to ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_alerts_and_transitions(conn: Connection) -> None:
    meta = sa.MetaData()
    v1_alerts = sa.Table(
        "alerts", meta,
        sa.Column("id", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("camera_id", "kind", "rule_id")),
        *(sa.Column(name, sa.Double, nullable=False) for name in ("start", "end", "created_at", "updated_at")),
        sa.Column("status", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text) for name in ("zone_id", "line_id", "verdict")),
        *(sa.Column(name, sa.Text, nullable=False) for name in ("comment", "event_ids", "member_ids", "classes")),
        *(sa.Column(name, sa.Double, nullable=False) for name in ("severity", "score")),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("priority", sa.Double, nullable=False),
        sa.Column("breakdown", sa.Text, nullable=False),
        sa.Column("best_frame_seq", sa.BigInteger),
        sa.Index("ix_alerts_camera_status", "camera_id", "status"),
        sa.Index("ix_alerts_status", "status"),
    )
    sa.Table(
        "transitions", meta,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Text, sa.ForeignKey(v1_alerts.c.id, ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("verdict", sa.Text),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("authority", sa.Text),
        sa.Index("ix_transitions_alert_id", "alert_id"),
    )
    meta.create_all(conn, checkfirst=False)


_AUDIT_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}


def _v2_audit_legal_hold_retention(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE alerts ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE")
    conn.exec_driver_sql("CREATE INDEX ix_alerts_updated_at ON alerts (updated_at)")
    meta = sa.MetaData()
    sa.Table(
        "audit_log", meta,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Index("ix_audit_log_target", "target"),
        sa.Index("ix_audit_log_at", "at"),
    )
    sa.Table(
        "id_counters", meta,
        sa.Column("prefix", sa.Text, primary_key=True),
        sa.Column("last", sa.BigInteger, nullable=False),
    )
    meta.create_all(conn, checkfirst=False)
    for statement in _AUDIT_APPEND_ONLY[conn.dialect.name]:
        conn.exec_driver_sql(statement)


def _v3_console(conn: Connection) -> None:
    meta = sa.MetaData()
    sa.Table("alerts", meta, sa.Column("id", sa.Text, primary_key=True))  # referenced only
    v3_users = sa.Table(
        "users", meta,
        sa.Column("username", sa.Text, primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    v3_sessions = sa.Table(
        "sessions", meta,
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("username", sa.Text, sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double),
        sa.Index("ix_sessions_username", "username"),
    )
    v3_evidence = sa.Table(
        "evidence_files", meta,
        sa.Column("alert_id", sa.Text, sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    v3_rules = sa.Table(
        "rule_settings", meta,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
    )
    for table in (v3_users, v3_sessions, v3_evidence, v3_rules):
        table.create(conn, checkfirst=False)


#: The chain's start: the ``prev_hash`` of the first audit entry.
GENESIS = "0" * 64


def chain_hash(prev_hash: str, entry_id: int, at: float, user: str, action: str, target: str, details: str) -> str:
    """SHA-256 (hex) of an audit entry chained to the previous one (its ``details`` as stored, JSON text)."""
    import hashlib
    import json

    body = json.dumps([prev_hash, int(entry_id), repr(float(at)), user, action, target, details],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _v4_recording_requisitions_relay_chain(conn: Connection) -> None:
    meta = sa.MetaData()
    sa.Table("users", meta, sa.Column("username", sa.Text, primary_key=True))  # referenced only
    int_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    v4 = [
        sa.Table(
            "recordings", meta,
            sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
            sa.Column("camera_id", sa.Text, nullable=False),
            *(sa.Column(n, sa.Double, nullable=False) for n in ("start", "end", "wall_start", "wall_end")),
            sa.Column("frames", sa.Integer, nullable=False),
            sa.Column("bytes", sa.BigInteger, nullable=False),
            sa.Column("path", sa.Text, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Index("ix_recordings_camera_wall", "camera_id", "wall_start"),
            sa.Index("ix_recordings_wall_end", "wall_end"),
        ),
        sa.Table(
            "requisitions", meta,
            sa.Column("id", sa.Text, primary_key=True),
            *(sa.Column(n, sa.Text, nullable=False) for n in ("authority", "officer", "reason", "cameras")),
            sa.Column("start", sa.Double, nullable=False),
            sa.Column("end", sa.Double, nullable=False),
            sa.Column("created_by", sa.Text, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("released_by", sa.Text),
            sa.Column("released_at", sa.Double),
        ),
        sa.Table(
            "requisition_holds", meta,
            sa.Column("requisition_id", sa.Text, sa.ForeignKey("requisitions.id"), primary_key=True),
            sa.Column("recording_id", int_id, sa.ForeignKey("recordings.id"), primary_key=True),
            sa.Index("ix_requisition_holds_recording", "recording_id"),
        ),
        sa.Table(
            "relay_grants", meta,
            sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
            sa.Column("username", sa.Text, sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
            sa.Column("cameras", sa.Text, nullable=False),
            sa.Column("start", sa.Double, nullable=False),
            sa.Column("end", sa.Double, nullable=False),
            sa.Column("recorded", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("granted_by", sa.Text, nullable=False),
            sa.Column("granted_at", sa.Double, nullable=False),
            sa.Column("revoked_by", sa.Text),
            sa.Column("revoked_at", sa.Double),
            sa.Index("ix_relay_grants_username", "username"),
        ),
    ]
    for table in v4:
        table.create(conn, checkfirst=False)
    # Chain the existing audit entries: the append-only triggers are lifted for this one migration only.
    dialect = conn.dialect.name
    drops = {"sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
             "postgresql": ["DROP TRIGGER audit_log_no_change ON audit_log",
                            "DROP TRIGGER audit_log_no_truncate ON audit_log",
                            "DROP FUNCTION audit_log_append_only()"]}[dialect]
    for statement in drops:
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql("ALTER TABLE audit_log ADD COLUMN prev_hash TEXT")
    conn.exec_driver_sql("ALTER TABLE audit_log ADD COLUMN hash TEXT")
    prev = GENESIS
    rows = conn.exec_driver_sql('SELECT id, at, "user", action, target, details FROM audit_log ORDER BY id').all()
    for r in rows:
        digest = chain_hash(prev, r.id, r.at, r.user, r.action, r.target, r.details)
        conn.execute(sa.text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                     {"p": prev, "h": digest, "i": r.id})
        prev = digest
    for statement in _AUDIT_APPEND_ONLY[dialect]:
        conn.exec_driver_sql(statement)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "alerts and their transitions", _v1_alerts_and_transitions),
    Migration(2, "legal hold, retention index, append-only audit log, id counters", _v2_audit_legal_hold_retention),
    Migration(3, "console users and sessions, evidence files, rule settings", _v3_console),
    Migration(4, "recordings, requisitions and holds, relay grants, hash-chained audit log",
              _v4_recording_requisitions_relay_chain),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The database's schema version (0: empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def apply_migrations(conn: Connection, *, upto: int | None = None) -> int:
    """Apply the migrations the database lacks, up to ``upto`` (default: all), in ``conn``'s transaction.

    Returns the version reached.

    Raises:
        AlertStoreError: the database is at a version newer than this code knows.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
    schema_version.create(conn, checkfirst=True)
    current = current_version(conn)
    if current > LATEST_VERSION:
        raise AlertStoreError(f"the database is at schema version {current}, newer than this code's "
                              f"{LATEST_VERSION}; upgrade analytics (or open another database)")
    target = LATEST_VERSION if upto is None else upto
    for migration in MIGRATIONS:
        if current < migration.version <= target:
            log.info("alert store: migrating to schema version %d (%s)", migration.version, migration.description)
            migration.apply(conn)
            conn.execute(sa.insert(schema_version).values(version=migration.version,
                                                          description=migration.description))
            current = migration.version
    return current
