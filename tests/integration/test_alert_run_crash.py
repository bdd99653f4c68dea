"""SIGKILL during ``analytics run`` with open alerts: on restart nothing is lost and nothing is duplicated.

A real run (PETS09-S2L1 with ``configs/pets09.yaml``: detector, tracker, rules, alert stage, SQLite store)
is killed with SIGKILL once alerts exist and one has been acknowledged from outside (as a console would).
After the kill the store holds every alert and the acknowledgement, and passes SQLite's integrity check.
Running the same job again into the same store updates the restored alerts instead of creating copies, and
keeps the acknowledgement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.alerts.model import Transition
from analytics.alerts.store import AlertStore
from analytics.eventlog import read_events
from support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _run(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "analytics.cli", "run", str(ROOT / "configs" / "pets09.yaml"),
                             "--out", str(out), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _alerts(url: str) -> list:
    with AlertStore.open(url) as store:
        return store.list_alerts()


def test_sigkill_mid_run_loses_no_alert_or_acknowledgement(tmp_path: Path, footage: Path) -> None:
    out = tmp_path / "run"
    url = f"sqlite:///{out / 'alerts.db'}"
    proc = _run(out)
    try:
        wait_for(lambda: (out / "alerts.db").is_file() and len(_alerts(url)) >= 2, 300, "two alerts in the store")
        with AlertStore.open(url) as store:  # acknowledge one, as an operator at the console would
            first = store.list_alerts()[0]
            acked = replace(first, status="acknowledged")
            store.record_transition(acked, Transition(first.id, "acknowledged", "operator1", time.time()))
        before = {a.id: a for a in _alerts(url)}
        time.sleep(1.0)  # let the run go on writing
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    with AlertStore.open(url) as store:
        after = {a.id: a for a in store.list_alerts()}
        assert set(before) <= set(after)
        assert after[first.id].status == "acknowledged"
        assert [(t.status, t.user) for t in store.transitions(first.id)] == [("acknowledged", "operator1")]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()

    rerun = _run(out)  # the same job again, into the same store
    _, err = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, err.decode()[-2000:]
    final = _alerts(url)
    owners: dict[str, str] = {}
    for alert in final:
        for event_id in alert.event_ids:
            assert event_id not in owners, f"event {event_id} in {owners.get(event_id)} and {alert.id}"
            owners[event_id] = alert.id
    by_id = {a.id: a for a in final}
    assert set(after) <= set(by_id) and by_id[first.id].status == "acknowledged"
    # every incident event of the rerun (its event log starts afresh) is in exactly one alert, the restored
    # alerts included: the rerun updated them rather than opening copies
    rerun_events = {e.id for e in read_events(out / "pets09.events.jsonl") if e.kind != "line_crossing"}
    assert set(owners) == rerun_events
