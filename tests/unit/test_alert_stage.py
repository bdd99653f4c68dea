"""The alert stage between the rules and the store: every change saved at once, restored after a restart."""

from __future__ import annotations

from pathlib import Path

from analytics.alerts.config import AlertsConfig
from analytics.alerts.store import AlertStore
from analytics.config import parse_config
from analytics.pipeline.alerting import AlertStage
from analytics.rules.base import Event

CAMERAS = parse_config({"cameras": [{
    "id": "cam", "source": "x.mp4",
    "scene": {"zones": [{"id": "square", "polygon": [[0, 0], [1, 0], [1, 1]]}]},
    "rules": [{"kind": "gathering", "id": "group", "zone": "square", "severity": 0.9}],
}]}, path=Path("c.yaml")).cameras


def _event(n: int, status: str, start: float, end: float, members: tuple[int, ...]) -> Event:
    return Event(f"cam:group:{n}", "gathering", "group", "cam", status, start, end, members,
                 ("person",) * len(members), 0.7, {"size": len(members)}, 3, "square")


def test_changes_are_saved_before_process_returns_and_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    clock = iter(range(1000, 2000)).__next__
    with AlertStore.open(url) as store:
        stage = AlertStage(AlertsConfig(), store, CAMERAS, clock=clock)
        changes = stage.process([_event(0, "open", 10.0, 20.0, (1, 2, 3))])
        assert [c.change for c in changes] == ["created"]
        alert_id = changes[0].alert.id
        stored = store.get_alert(alert_id)
        assert stored is not None and stored.event_ids == ("cam:group:0",) and stored.severity == 0.9
    with AlertStore.open(url) as store:  # a new process: the open alert is restored, not duplicated
        stage = AlertStage(AlertsConfig(), store, CAMERAS, clock=clock)
        changes = stage.process([_event(0, "updated", 10.0, 30.0, (1, 2, 3, 4)),
                                 _event(1, "open", 60.0, 65.0, (7, 8, 9))])  # within merge_gap of 30 s
        assert [(c.alert.id, c.change) for c in changes] == [(alert_id, "updated")]
        alerts = store.list_alerts()
        assert len(alerts) == 1 and alerts[0].member_ids == (1, 2, 3, 4, 7, 8, 9)
        assert alerts[0].event_ids == ("cam:group:0", "cam:group:1") and alerts[0].end == 65.0


def test_a_closure_made_at_the_console_reaches_the_running_stage(tmp_path: Path) -> None:
    """The console (another process) closes an alert in the store: the run's next event is then judged
    against a CLOSED alert (suppressed within the cooldown) instead of being merged into it."""
    from analytics.alerts.manager import transition_alert

    clock = iter(range(1000, 2000)).__next__
    with AlertStore.open(f"sqlite:///{tmp_path / 'alerts.db'}") as store:
        stage = AlertStage(AlertsConfig(), store, CAMERAS, clock=clock, refresh_seconds=0.0)
        alert = stage.process([_event(0, "open", 10.0, 20.0, (1, 2, 3))])[0].alert
        closed, step = transition_alert(store.get_alert(alert.id), "closed", user="op", now=1500.0,
                                        config=AlertsConfig(), verdict="false_alarm")
        store.record_transition(closed, step)  # as the console does
        changes = stage.process([_event(1, "open", 40.0, 45.0, (4, 5))])  # within merge gap and cooldown
        assert [(c.alert.id, c.change) for c in changes] == [(alert.id, "suppressed")]
        assert store.get_alert(alert.id).status == "closed"
        assert store.get_alert(alert.id).verdict == "false_alarm"


def test_rule_settings_changed_at_the_console_apply_to_the_running_stage(tmp_path: Path) -> None:
    clock = iter(range(1000, 2000)).__next__
    with AlertStore.open(f"sqlite:///{tmp_path / 'alerts.db'}") as store:
        stage = AlertStage(AlertsConfig(), store, CAMERAS, clock=clock, refresh_seconds=0.0)
        store.set_rule_settings("cam/group", {"min_score": 0.9, "cooldown": 60.0, "merge_gap": 30.0}, user="adm",
                                at=1.0)
        assert stage.process([_event(0, "open", 10.0, 20.0, (1, 2, 3))]) == []  # score 0.7 < 0.9: no alert
        store.set_rule_settings("cam/group", {"min_score": 0.5, "cooldown": 60.0, "merge_gap": 30.0}, user="adm",
                                at=2.0)
        assert [c.change for c in stage.process([_event(0, "updated", 10.0, 25.0, (1, 2, 3))])] == ["created"]
