"""The alert store on SQLite; :class:`StoreContract` is also run on PostgreSQL by the integration tests."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.alerts.model import Alert, Transition, TransitionError
from analytics.alerts.store import AlertStore, AlertStoreError, engine_for
from analytics.alerts.store_schema import (
    LATEST_VERSION,
    MIGRATIONS,
    alerts,
    apply_migrations,
    metadata,
    schema_version,
)
from support import free_port

DAY = 86400.0


def make_alert(n: int = 1, *, camera_id: str = "cam1", kind: str = "intrusion", **changes: object) -> Alert:
    base = Alert(id=f"{camera_id}:{kind}:{n}", camera_id=camera_id, kind=kind, rule_id=f"{kind}-rule",
                 start=100.0 + n, end=110.0 + n, created_at=1_700_000_000.0 + n, updated_at=1_700_000_000.0 + n)
    return dataclasses.replace(base, **changes)


FULL = make_alert(
    7, camera_id="caméra-Ω", kind="intrusion", status="closed", zone_id="zone-été", line_id="ligne 北",
    verdict="true_alert", comment="accusé ✓ — 日本語 \"quotes\" \\ 🚨\nsecond line", start=1_699_999_999.123456789,
    end=1_700_000_123.987654321, event_ids=("ev-1", "ev-ü-2", "ev:3"), member_ids=(2, 17, 2**40),
    classes=("person", "bicycle", "personne"), severity=0.75, score=0.912345678901, priority=0.3333333333333333,
    evidence={"boxes": [[1.5, 2.25, 3.0, 4.0]], "track": {"id": 17, "path": [[0, 1], [2, 3]], "note": "ñ"},
              "empty": {}, "none": None, "flag": True, "ratio": 1e-12, "names": ["é", "ß"]},
    breakdown={"factors": {"severity": 0.75, "recency": {"age_s": 12.0, "weight": 0.5}}, "rank": 3},
    best_frame_seq=2**40 + 3)
SPARSE = make_alert(8, zone_id=None, line_id=None, verdict=None, best_frame_seq=None)  # defaults and Nones


class StoreContract:
    """What every backend must do. Subclasses give ``new_url``: a callable returning a fresh, empty database URL."""

    @pytest.fixture
    def store(self, new_url: Callable[[], str]) -> Iterator[AlertStore]:
        with AlertStore.open(new_url()) as store:
            yield store

    @pytest.mark.parametrize("alert", [FULL, SPARSE], ids=["every-field", "defaults-and-nones"])
    def test_round_trip_keeps_every_field(self, store: AlertStore, alert: Alert) -> None:
        store.save_alert(alert)
        got = store.get_alert(alert.id)
        assert got == alert
        assert isinstance(got.event_ids, tuple) and isinstance(got.member_ids, tuple)
        assert store.get_alert("no:such:1") is None

    def test_upsert_updates_but_leaves_life_cycle_fields_to_transitions(self, store: AlertStore) -> None:
        alert = make_alert(1)
        store.save_alert(alert)
        newer = dataclasses.replace(alert, end=999.0, updated_at=alert.updated_at + 5, event_ids=("a", "b"),
                                    score=0.9, evidence={"n": 2}, status="closed", verdict="duplicate",
                                    comment="stale copy", legal_hold=True)
        store.save_alert(newer)
        expected = dataclasses.replace(newer, status="new", verdict=None, comment="", legal_hold=False)
        assert store.get_alert(alert.id) == expected
        assert len(store.list_alerts()) == 1

    def test_transitions_are_recorded_in_order_with_who_and_when(self, store: AlertStore) -> None:
        alert = make_alert(1)
        store.save_alert(alert)
        steps = [("seen", "ana", None, "", None), ("acknowledged", "ana", None, "on it", None),
                 ("escalated", "bob", None, "ref 42", "police-east"), ("closed", "bob", "true_alert", "done", None)]
        recorded = []
        for i, (status, user, verdict, comment, authority) in enumerate(steps):
            at = alert.updated_at + 10 * (i + 1)
            alert = dataclasses.replace(alert, status=status, updated_at=at, verdict=verdict,
                                        comment=comment or alert.comment)
            step = Transition(alert.id, status, user, at, verdict=verdict, comment=comment, authority=authority)
            store.record_transition(alert, step)
            recorded.append(step)
        assert store.transitions(alert.id) == recorded
        assert store.get_alert(alert.id) == alert
        audit = store.audit_entries(target=alert.id)
        assert [(e.user, e.action, e.at, e.details["status"]) for e in audit] == [
            (t.user, "alert.transition", t.at, t.status) for t in recorded]
        assert audit[2].details["authority"] == "police-east"

    def test_record_transition_is_atomic(self, store: AlertStore) -> None:
        alert = make_alert(1)
        store.save_alert(alert)
        acked = dataclasses.replace(alert, status="acknowledged", updated_at=alert.updated_at + 1, comment="x")
        bad = Transition(alert.id, "acknowledged", None, acked.updated_at)  # type: ignore[arg-type]  # NOT NULL
        with pytest.raises(sa.exc.IntegrityError):
            store.record_transition(acked, bad)
        assert store.get_alert(alert.id) == alert  # the alert row was updated first, then rolled back
        assert store.transitions(alert.id) == [] and store.audit_entries() == []

    def test_record_transition_checks_the_stored_status(self, store: AlertStore) -> None:
        alert = make_alert(1)
        store.save_alert(alert)
        acked = dataclasses.replace(alert, status="acknowledged")
        store.record_transition(acked, Transition(alert.id, "acknowledged", "ana", 1.0))
        with pytest.raises(TransitionError, match="'acknowledged' to 'acknowledged'"):  # a second console
            store.record_transition(acked, Transition(alert.id, "acknowledged", "bob", 2.0))
        with pytest.raises(ValueError, match="does not match"):
            store.record_transition(acked, Transition(alert.id, "closed", "bob", 2.0, verdict="duplicate"))
        assert [t.user for t in store.transitions(alert.id)] == ["ana"]

    def test_list_filters(self, store: AlertStore) -> None:
        a = make_alert(1, camera_id="c1")
        b = make_alert(2, camera_id="c2")
        c = make_alert(3, camera_id="c1")
        for alert in (c, a, b):
            store.save_alert(alert)
        store.record_transition(dataclasses.replace(b, status="acknowledged"), Transition(b.id, "acknowledged", "u", 1))
        closed = dataclasses.replace(c, status="closed", verdict="false_alarm")
        store.record_transition(closed, Transition(c.id, "closed", "u", 2, verdict="false_alarm"))
        ids = lambda found: [x.id for x in found]  # noqa: E731
        assert ids(store.list_alerts()) == [a.id, b.id, c.id]  # by created_at
        assert ids(store.list_alerts(camera_id="c1")) == [a.id, c.id]
        assert ids(store.list_alerts(status="acknowledged")) == [b.id]
        assert ids(store.list_alerts(open_only=True)) == [a.id, b.id]
        assert ids(store.list_alerts(camera_id="c1", open_only=True)) == [a.id]
        assert store.list_alerts(camera_id="c1", status="seen") == []
        with pytest.raises(ValueError, match="'acked'"):
            store.list_alerts(status="acked")

    def test_purge_respects_retention_and_legal_hold(self, store: AlertStore) -> None:
        now = 1_800_000_000.0
        old, held, fresh = (make_alert(n, updated_at=now - age * DAY) for n, age in ((1, 15.5), (2, 40), (3, 14.5)))
        for alert in (old, held, fresh):
            store.save_alert(alert)
        seen = Transition(old.id, "seen", "u", now - 20 * DAY)
        store.record_transition(dataclasses.replace(old, status="seen"), seen)
        assert store.set_legal_hold(held.id, hold=True, user="sup", at=now - DAY).legal_hold
        removed: list[str] = []
        assert store.purge(now, 15, evidence_cb=lambda alert: removed.append(alert.id)) == 1
        assert removed == [old.id]
        assert [a.id for a in store.list_alerts()] == [held.id, fresh.id]
        assert store.get_alert(old.id) is None and store.transitions(old.id) == []
        assert store.max_counter("cam1:intrusion") == 3
        store.set_legal_hold(held.id, hold=False, user="sup", at=now)
        assert store.purge(now, 15) == 1  # released: its retention had long run out
        assert [a.id for a in store.list_alerts()] == [fresh.id]
        actions = [(e.user, e.action, e.target) for e in store.audit_entries()]
        assert ("sup", "alert.legal_hold", held.id) in actions
        assert [e.details["ids"] for e in store.audit_entries(action="alerts.purge")] == [[old.id], [held.id]]

    def test_purge_keeps_an_alert_whose_evidence_could_not_be_removed(self, store: AlertStore,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
        for n in (1, 2):
            store.save_alert(make_alert(n, updated_at=0.0))

        def remove(alert: Alert) -> None:
            if alert.id.endswith(":1"):
                raise OSError("disk says no")

        with caplog.at_level(logging.ERROR):
            assert store.purge(20 * DAY, 15, evidence_cb=remove) == 1
        assert "cam1:intrusion:1" in caplog.text
        assert [a.id for a in store.list_alerts()] == ["cam1:intrusion:1"]

    @pytest.mark.parametrize("days", [16, 15.01, 365, -1])
    def test_purge_refuses_retention_beyond_15_days(self, store: AlertStore, days: float) -> None:
        store.save_alert(make_alert(1, updated_at=0.0))
        with pytest.raises(ValueError, match="15"):
            store.purge(1e9, days)
        assert len(store.list_alerts()) == 1

    def test_counters_resume_after_restart_and_purge(self, new_url: Callable[[], str]) -> None:
        url = new_url()
        with AlertStore.open(url) as store:
            for n in (1, 2, 11):
                store.save_alert(make_alert(n, updated_at=0.0))
            store.save_alert(make_alert(5, camera_id="cam_2%", updated_at=0.0))  # LIKE wildcards in the prefix
            store.save_alert(make_alert(4, camera_id="camX2%", updated_at=1e12))
            store.save_alert(make_alert(1, camera_id="odd", kind="id", updated_at=1e12, id="odd-id-without-n"))
            assert store.purge(20 * DAY, 15) == 4
        with AlertStore.open(url) as store:
            assert store.max_counter("cam1:intrusion") == 11
            assert store.max_counter("cam_2%:intrusion") == 5
            assert store.max_counter("nothing:here") == 0
            assert store.next_counters() == {"cam1:intrusion": 12, "cam_2%:intrusion": 6, "camX2%:intrusion": 5}

    def test_audit_is_append_only(self, store: AlertStore) -> None:
        first = store.audit("ana", "camera.view", "cam1", {"why": "patrol", "n": [1, 2]}, at=10.0)
        second = store.audit("bob", "export", "cam:intrusion:1", at=20.0)
        assert second > first
        entries = store.audit_entries()
        assert [(e.user, e.action, e.target, e.at, e.details) for e in entries] == [
            ("ana", "camera.view", "cam1", 10.0, {"why": "patrol", "n": [1, 2]}),
            ("bob", "export", "cam:intrusion:1", 20.0, {})]
        assert [e.user for e in store.audit_entries(since=15.0)] == ["bob"]
        assert [e.user for e in store.audit_entries(user="ana", until=15.0)] == ["ana"]
        public = {name for name in dir(store) if not name.startswith("_")}
        # appending (alone, or inside a caller's write transaction) and reading: no way to change an entry
        assert {name for name in public if "audit" in name} == {"audit", "audit_entries", "audit_in",
                                                                 "verify_audit_chain"}
        engine = engine_for(store_url(store))
        try:
            for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
                    conn.exec_driver_sql(statement)
        finally:
            engine.dispose()
        assert store.audit_entries() == entries

    def test_the_audit_chain_catches_an_edited_or_removed_entry(self, store: AlertStore) -> None:
        for i in range(5):
            store.audit(f"user{i}", "camera.view", f"cam{i}", {"i": i}, at=10.0 + i)
        assert store.verify_audit_chain() == []
        engine = engine_for(store_url(store))
        lift = {"sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
                "postgresql": ["ALTER TABLE audit_log DISABLE TRIGGER USER"]}[engine.dialect.name]
        try:
            with engine.begin() as conn:  # an intruder with write access to the database lifts the triggers
                for statement in lift:
                    conn.exec_driver_sql(statement)
                conn.exec_driver_sql("UPDATE audit_log SET target = 'cam9' WHERE id = 2")
            problems = store.verify_audit_chain()
            assert len(problems) == 1 and problems[0].startswith("audit entry 2 (camera.view by 'user1') was edited")
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE audit_log SET target = 'cam1' WHERE id = 2")  # put back
                conn.exec_driver_sql("DELETE FROM audit_log WHERE id = 4")
            problems = store.verify_audit_chain()
            assert len(problems) == 1 and problems[0].startswith("audit entry 5 (camera.view by 'user4') does not "
                                                                 "follow entry 3")
        finally:
            engine.dispose()

    def test_a_v3_audit_log_is_chained_by_the_upgrade(self, new_url: Callable[[], str]) -> None:
        url = new_url()
        engine = engine_for(url)
        try:
            with engine.begin() as conn:
                assert apply_migrations(conn, upto=3) == 3
                for i in range(3):
                    conn.exec_driver_sql("INSERT INTO audit_log (at, \"user\", action, target, details) "
                                         f"VALUES ({i}.5, 'ana', 'login', 'ana', '{{}}')")
        finally:
            engine.dispose()
        with AlertStore.open(url) as store:
            assert store.verify_audit_chain() == []
            store.audit("bob", "login", "bob", at=9.0)
            assert store.verify_audit_chain() == [] and [e.id for e in store.audit_entries()] == [1, 2, 3, 4]

    def test_a_v1_database_is_upgraded_with_its_data(self, new_url: Callable[[], str]) -> None:
        url = new_url()
        engine = engine_for(url)
        try:
            with engine.begin() as conn:
                assert apply_migrations(conn, upto=1) == 1
                conn.execute(sa.insert(alerts).values(v1_row(FULL)))
                conn.exec_driver_sql(
                    "INSERT INTO transitions (alert_id, status, \"user\", at, verdict, comment, authority) "
                    f"VALUES ('{FULL.id}', 'closed', 'ana', 5.0, 'true_alert', 'vu', NULL)")
        finally:
            engine.dispose()
        with AlertStore.open(url) as store:
            assert store.schema_version == LATEST_VERSION > 1
            assert store.get_alert(FULL.id) == FULL  # legal_hold defaulted to False
            assert store.transitions(FULL.id) == [Transition(FULL.id, "closed", "ana", 5.0, "true_alert", "vu")]
            store.set_legal_hold(FULL.id, hold=True, user="sup", at=6.0)  # the v2 features work
            assert [e.action for e in store.audit_entries()] == ["alert.legal_hold"]
        with AlertStore.open(url) as store:  # re-opening applies nothing twice
            assert store.get_alert(FULL.id).legal_hold

    def test_migrations_give_exactly_the_latest_tables(self, new_url: Callable[[], str]) -> None:
        assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
        url = new_url()
        AlertStore.open(url).close()
        engine = engine_for(url)
        try:
            inspector = sa.inspect(engine)
            assert set(inspector.get_table_names()) == set(metadata.tables)
            for table in metadata.tables.values():
                got = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
                assert got == {c.name: c.nullable for c in table.columns}, table.name
            with engine.connect() as conn:
                versions = conn.execute(sa.select(schema_version.c.version, schema_version.c.description)).all()
            assert [tuple(v) for v in versions] == [(m.version, m.description) for m in MIGRATIONS]
        finally:
            engine.dispose()

    def test_a_database_from_newer_code_is_refused(self, new_url: Callable[[], str]) -> None:
        url = new_url()
        AlertStore.open(url).close()
        engine = engine_for(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(schema_version).values(version=LATEST_VERSION + 1, description="future"))
        finally:
            engine.dispose()
        with pytest.raises(AlertStoreError, match=f"schema version {LATEST_VERSION + 1}, newer than this code's "
                                                  f"{LATEST_VERSION}"):
            AlertStore.open(url)


def v1_row(alert: Alert) -> dict[str, object]:
    """``alert`` as a v1 ``alerts`` row (no ``legal_hold``)."""
    row = {c: getattr(alert, c) for c in alerts.c.keys() if c != "legal_hold"}
    for name in ("event_ids", "member_ids", "classes", "evidence", "breakdown"):
        row[name] = json.dumps(row[name], ensure_ascii=False)
    return row


def store_url(store: AlertStore) -> str:
    """The store's URL (passwordless in these tests, so the masked URL is the URL)."""
    return store.url


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def new_url(self, tmp_path: Path) -> Callable[[], str]:
        counter = itertools.count(1)
        return lambda: f"sqlite:///{tmp_path}/db{next(counter)}/alerts.db"


# -- SQLite specifics and URLs -------------------------------------------------------------------------------------

def test_sqlite_is_wal_with_full_sync_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "alerts.db"
    with AlertStore.open(f"sqlite:///{path}") as store:
        store.save_alert(FULL)
        engine = engine_for(f"sqlite:///{path}")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        engine.dispose()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://ana:s3cret@db.example/alerts", "unsupported database 'mysql'"),
    ("sqlite://", "names no database file"),
    ("sqlite:///:memory:", "names no database file"),
    ("not a url at all", "does not parse"),
])
def test_bad_urls_fail_clearly(url: str, expected: str) -> None:
    with pytest.raises(AlertStoreError, match=expected) as caught:
        AlertStore.open(url)
    message = str(caught.value)
    assert "sqlite:///PATH.db" in message or "in-memory" in message
    assert "s3cret" not in message


def test_unreachable_postgresql_fails_naming_the_url_without_its_password() -> None:
    url = f"postgresql://ana:s3cret@127.0.0.1:{free_port()}/alerts"
    with pytest.raises(AlertStoreError) as caught:
        AlertStore.open(url)
    message = str(caught.value)
    assert "s3cret" not in message
    assert "postgresql://ana:***@127.0.0.1" in message and "cannot open" in message
    assert "expected" in message


def test_unwritable_sqlite_folder_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AlertStoreError, match="cannot create the folder"):
        AlertStore.open(f"sqlite:///{blocker}/sub/alerts.db")


def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = AlertStore.open(f"sqlite:///{tmp_path}/alerts.db")
    store.close()
    store.close()
    with pytest.raises(AlertStoreError, match="closed"):
        store.save_alert(FULL)


def test_one_writer_and_readers_in_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with AlertStore.open(f"sqlite:///{tmp_path}/alerts.db") as store:
        done = threading.Event()

        def read() -> None:
            try:
                while not done.is_set():
                    for alert in store.list_alerts(open_only=True):
                        store.transitions(alert.id)
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in readers:
            thread.start()
        for n in range(1, 41):
            alert = make_alert(n)
            store.save_alert(alert)
            store.record_transition(dataclasses.replace(alert, status="seen"), Transition(alert.id, "seen", "u", n))
        done.set()
        for thread in readers:
            thread.join(timeout=10)
        assert errors == []
        assert len(store.list_alerts(status="seen")) == 40
