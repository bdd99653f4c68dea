"""SIGKILL of a process writing alerts loses nothing it reported committed (SQLite, WAL, synchronous=FULL)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from analytics.alerts.store import AlertStore

pytestmark = pytest.mark.integration

WRITES_BEFORE_KILL = 300  # alerts saved + acknowledgements recorded

# Saves alerts and acknowledges each, unthrottled, printing a line only AFTER the write returned (committed).
CHILD = textwrap.dedent("""
    import dataclasses, sys
    from analytics.alerts.model import Alert, Transition
    from analytics.alerts.store import AlertStore

    store = AlertStore.open(sys.argv[1])
    n = 0
    while True:
        n += 1
        alert = Alert(id=f"cam1:intrusion:{n}", camera_id="cam1", kind="intrusion", rule_id="r1", start=float(n),
                      end=n + 1.0, created_at=1e9 + n, updated_at=1e9 + n, event_ids=(f"e{n}",),
                      evidence={"n": n, "text": "é" * 200})
        store.save_alert(alert)
        print("committed alert", alert.id, flush=True)
        acked = dataclasses.replace(alert, status="acknowledged")
        store.record_transition(acked, Transition(alert.id, "acknowledged", "operator", 2e9 + n, comment=f"ack {n}"))
        print("committed ack", alert.id, flush=True)
""")


def test_sigkill_mid_run_loses_no_committed_alert_or_acknowledgement(tmp_path: Path) -> None:
    db = tmp_path / "store" / "alerts.db"
    url = f"sqlite:///{db}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    watchdog = threading.Timer(60, child.kill)  # a stuck child must not hang the test
    watchdog.start()
    lines: list[str] = []
    try:
        while len(lines) < WRITES_BEFORE_KILL:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"the writer ended early (rc {child.wait()}) after {len(lines)} writes:\n"
                            f"{child.stderr.read()}")
            lines.append(line)
        os.kill(child.pid, signal.SIGKILL)  # mid-run: it was writing flat out
        assert child.wait(timeout=10) == -signal.SIGKILL
        lines += child.stdout.read().splitlines(keepends=True)  # reported before it died: committed too
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    reported = [line.split() for line in lines if line.endswith("\n")]  # a torn last line is not a report
    alert_ids = [ids for _, what, ids in reported if what == "alert"]
    acked_ids = [ids for _, what, ids in reported if what == "ack"]
    assert len(alert_ids) + len(acked_ids) >= WRITES_BEFORE_KILL
    assert Path(f"{db}-wal").exists()  # the killed writer left its WAL for recovery

    with AlertStore.open(url) as store:
        for alert_id in alert_ids:
            alert = store.get_alert(alert_id)
            assert alert is not None, f"alert {alert_id} was reported committed but is lost"
            assert alert.evidence["n"] == int(alert_id.rsplit(":", 1)[1])
        for alert_id in acked_ids:
            assert store.get_alert(alert_id).status == "acknowledged", alert_id
            steps = store.transitions(alert_id)
            assert [(t.status, t.user) for t in steps] == [("acknowledged", "operator")], alert_id
            assert [e.action for e in store.audit_entries(target=alert_id)] == ["alert.transition"]
        # Nothing half-done either: every stored acknowledgement has its transition (one transaction).
        for alert in store.list_alerts(status="acknowledged"):
            assert len(store.transitions(alert.id)) == 1
        assert len(store.list_alerts(status="new")) <= 1  # at most the one saved as the kill came
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
