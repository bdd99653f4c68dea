"""``analytics audit verify``: exit 0 on an intact chain, 1 naming the entry after tampering."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.alerts.store import AlertStore, engine_for
from analytics.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "pets09.yaml"


def test_audit_verify_names_an_edited_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    with AlertStore.open(url) as store:
        for i in range(3):
            store.audit("ana", "recording.view", "pets09", {"from": i}, at=100.0 + i)
    assert main(["audit", "verify", str(CONFIG), "--out", str(tmp_path)]) == 0
    assert "intact (3 entries" in capsys.readouterr().out
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.exec_driver_sql("UPDATE audit_log SET \"user\" = 'someone-else' WHERE id = 3")
    engine.dispose()
    assert main(["audit", "verify", str(CONFIG), "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "audit entry 3 (recording.view by 'someone-else') was edited" in out and "BROKEN" in out
