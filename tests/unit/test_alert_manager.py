"""Alert manager: merging, de-duplication, cooldown, hysteresis, the ranked queue, the life cycle, restore."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from analytics.alerts.config import AlertRuleSettings, AlertsConfig, Authority
from analytics.alerts.manager import AlertManager, severities_from_cameras
from analytics.alerts.model import TransitionError
from analytics.rules.base import Event

NOW = 1_700_000_000.0  # wall clock, Unix seconds
POLICE = Authority(id="pm", name="Police municipale", kind="municipal_police", phone="+33 1 23 45 67 89",
                   protocol=("call the duty desk", "send the best frame"))
CONFIG = AlertsConfig(default=AlertRuleSettings(min_score=0.0, cooldown=60.0, merge_gap=30.0),
                      authorities=(POLICE,))


def ev(eid: str = "cam1:crowd:0", *, start: float = 100.0, end: float | None = None, status: str = "open",
       camera: str = "cam1", rule: str = "crowd", kind: str = "gathering", zone: str | None = "square",
       line: str | None = None, score: float = 0.6, members: tuple[int, ...] = (1, 2, 3), seq: int | None = 7,
       evidence: dict | None = None) -> Event:
    return Event(id=eid, kind=kind, rule_id=rule, camera_id=camera, status=status, start=start,
                 end=start + 5.0 if end is None else end, member_ids=members,
                 classes=("person",) * len(members), score=score,
                 evidence={"size": len(members)} if evidence is None else evidence, best_frame_seq=seq,
                 zone_id=zone, line_id=line)


def manager(config: AlertsConfig = CONFIG, **kw) -> AlertManager:
    return AlertManager(config, **kw)


def cooled(*, cooldown: float, merge_gap: float = 30.0, min_score: float = 0.0) -> AlertsConfig:
    return AlertsConfig(default=AlertRuleSettings(cooldown=cooldown, merge_gap=merge_gap, min_score=min_score),
                        authorities=(POLICE,))


# -- de-duplication and merging ------------------------------------------------------------------------------

def test_ten_records_of_one_gathering_make_one_alert_updated_not_ten():
    m = manager()
    records = [ev(status="open", end=105.0, score=0.5, members=(1, 2, 3), seq=10)]
    records += [ev(status="updated", end=105.0 + 5 * k, score=s, members=mem, seq=10 + k,
                   evidence={"size": len(mem), "k": k})
                for k, s, mem in zip(range(1, 9), [0.55, 0.7, 0.9, 0.8, 0.6, 0.6, 0.6, 0.6],
                                     [(1, 2, 3), (1, 2, 3, 4)] + [(2, 3, 4, 9)] * 6)]
    records.append(ev(status="closed", end=150.0, score=0.4, members=(2, 3), seq=99, evidence={"size": 2}))
    assert len(records) == 10
    changes = [m.ingest([r], NOW + i) for i, r in enumerate(records)]
    assert [c[0].change for c in changes] == ["created"] + ["updated"] * 9
    assert len({c[0].alert.id for c in changes}) == 1
    (alert,) = m.alerts()
    assert alert.id == "cam1:gathering:1"
    assert alert.event_ids == ("cam1:crowd:0",)
    assert (alert.start, alert.end) == (100.0, 150.0)
    assert alert.member_ids == (1, 2, 3, 4, 9) and alert.classes == ("person",) * 5
    assert alert.score == 0.9 and alert.best_frame_seq == 13  # the best-scored record's frame
    assert alert.evidence == {"size": 2}  # the latest
    assert (alert.created_at, alert.updated_at) == (NOW, NOW + 9)


def test_one_batch_reports_one_change_per_alert():
    m = manager()
    changes = m.ingest([ev(status="open"), ev(status="updated", end=110.0), ev(status="updated", end=115.0)], NOW)
    assert [(c.alert.id, c.change) for c in changes] == [("cam1:gathering:1", "created")]
    assert changes[0].alert.end == 115.0


def test_two_events_of_one_place_within_merge_gap_make_one_alert():
    m = manager()
    m.ingest([ev("cam1:crowd:0", start=100.0, end=120.0, members=(1, 2))], NOW)
    (change,) = m.ingest([ev("cam1:crowd:1", start=140.0, end=150.0, members=(5, 6))], NOW + 1)  # 20 s gap
    assert change.change == "updated"
    (alert,) = m.alerts()
    assert alert.event_ids == ("cam1:crowd:0", "cam1:crowd:1")
    assert (alert.start, alert.end, alert.member_ids) == (100.0, 150.0, (1, 2, 5, 6))


def test_overlapping_events_of_two_rules_of_one_kind_merge_and_keep_the_highest_severity():
    m = manager(severities={("cam1", "crowd"): 0.4, ("cam1", "crowd_big"): 0.9})
    m.ingest([ev("cam1:crowd:0"), ev("cam1:crowd_big:0", rule="crowd_big", start=102.0)], NOW)
    (alert,) = m.alerts()
    assert alert.severity == 0.9 and alert.rule_id == "crowd"


@pytest.mark.parametrize("other", [
    dict(zone="bus_stop"),               # another zone
    dict(camera="cam2"),                 # another camera
    dict(kind="loitering"),              # another kind
    dict(zone=None, line="north_gate"),  # a line instead of a zone
])
def test_another_place_or_kind_makes_a_second_alert(other):
    m = manager()
    m.ingest([ev("a:crowd:0")], NOW)
    (change,) = m.ingest([ev("b:crowd:0", **other)], NOW)
    assert change.change == "created"
    assert len(m.alerts()) == 2


@pytest.mark.parametrize(("gap", "alerts"), [(29.0, 1), (30.0, 1), (31.0, 2)])
def test_merge_gap_boundary(gap, alerts):
    m = manager(cooled(cooldown=0.0, merge_gap=30.0))  # no cooldown: only merge_gap joins
    m.ingest([ev("cam1:crowd:0", start=100.0, end=110.0)], NOW)
    m.ingest([ev("cam1:crowd:1", start=110.0 + gap)], NOW + 1)
    assert len(m.alerts()) == alerts


def test_ids_count_per_camera_and_kind():
    m = manager(cooled(cooldown=0.0, merge_gap=0.0))
    m.ingest([ev("e0", start=0.0), ev("e1", start=100.0), ev("e2", camera="cam2"), ev("e3", kind="loitering")],
             NOW)
    assert [a.id for a in m.alerts()] == ["cam1:gathering:1", "cam1:gathering:2", "cam2:gathering:1",
                                          "cam1:loitering:1"]


def test_alert_does_not_share_the_events_evidence():
    event = ev(evidence={"size": 3, "centroid": [1.0, 2.0]})
    (change,) = manager().ingest([event], NOW)
    change.alert.evidence["centroid"].append(9.0)
    assert event.evidence == {"size": 3, "centroid": [1.0, 2.0]}


# -- cooldown -------------------------------------------------------------------------------------------------

def test_cooldown_merges_into_an_acknowledged_alert_beyond_merge_gap():
    m = manager(cooled(cooldown=60.0, merge_gap=10.0))
    (c,) = m.ingest([ev("cam1:crowd:0", start=100.0, end=110.0)], NOW)
    m.transition(c.alert.id, "acknowledged", user="op1", now=NOW + 5)
    (change,) = m.ingest([ev("cam1:crowd:1", start=150.0)], NOW + 10)  # 40 s after: > merge_gap, < cooldown
    assert change.change == "updated" and change.alert.id == c.alert.id
    assert change.alert.status == "acknowledged"
    assert change.alert.event_ids == ("cam1:crowd:0", "cam1:crowd:1")


def test_cooldown_merges_into_an_escalated_alert():
    m = manager(cooled(cooldown=60.0, merge_gap=10.0))
    (c,) = m.ingest([ev("cam1:crowd:0", start=100.0, end=110.0)], NOW)
    m.transition(c.alert.id, "escalated", user="op1", now=NOW + 5, authority="pm")
    (change,) = m.ingest([ev("cam1:crowd:1", start=160.0)], NOW + 10)
    assert (change.change, change.alert.status, len(m.alerts())) == ("updated", "escalated", 1)


def test_cooldown_after_close_suppresses_and_counts_then_lets_a_new_alert_through():
    m = manager(cooled(cooldown=60.0, merge_gap=10.0))
    (c,) = m.ingest([ev("cam1:crowd:0", start=100.0, end=110.0)], NOW)
    m.transition(c.alert.id, "closed", user="op1", now=NOW + 5, verdict="false_alarm")
    (s1,) = m.ingest([ev("cam1:crowd:1", start=115.0)], NOW + 10)  # even within merge_gap: closed
    assert s1.change == "suppressed" and s1.alert.id == c.alert.id and s1.alert.status == "closed"
    assert s1.alert.evidence["suppressed_events"] == 1
    assert m.ingest([ev("cam1:crowd:1", start=115.0, end=200.0, status="updated")], NOW + 11) == []  # counted once
    (s2,) = m.ingest([ev("cam1:crowd:2", start=165.0)], NOW + 12)
    assert s2.alert.evidence["suppressed_events"] == 2
    assert s2.alert.evidence["suppressed_event_ids"] == ["cam1:crowd:1", "cam1:crowd:2"]
    assert s2.alert.event_ids == ("cam1:crowd:0",) and s2.alert.end == 110.0  # not extended
    assert len(m.alerts()) == 1
    (new,) = m.ingest([ev("cam1:crowd:3", start=171.0)], NOW + 13)  # 61 s after the end
    assert (new.change, new.alert.id) == ("created", "cam1:gathering:2")
    assert m.queue(NOW + 13)[0].id == "cam1:gathering:2"


def test_later_records_of_a_closed_alerts_own_event_are_dropped():
    m = manager()
    (c,) = m.ingest([ev("cam1:crowd:0")], NOW)
    m.transition(c.alert.id, "closed", user="op1", now=NOW + 1, verdict="true_alert", comment="dispersed")
    assert m.ingest([ev("cam1:crowd:0", status="updated", end=300.0, score=1.0)], NOW + 2) == []
    assert m.get(c.alert.id).end == 105.0 and m.get(c.alert.id).comment == "dispersed"


def test_cooldown_is_per_rule_a_closed_alert_does_not_suppress_another_rule():
    m = manager()
    (c,) = m.ingest([ev("cam1:crowd:0")], NOW)
    m.transition(c.alert.id, "closed", user="op1", now=NOW + 1, verdict="duplicate")
    (change,) = m.ingest([ev("cam1:other:0", rule="other", start=106.0)], NOW + 2)
    assert change.change == "created"


def test_per_rule_settings_by_camera_rule_id_then_kind():
    config = AlertsConfig(rules={"cam1/crowd": AlertRuleSettings(min_score=0.9),
                                 "crowd": AlertRuleSettings(min_score=0.5),
                                 "gathering": AlertRuleSettings(min_score=0.2)})
    assert config.settings_for("cam1", "crowd", "gathering").min_score == 0.9
    assert config.settings_for("cam2", "crowd", "gathering").min_score == 0.5
    assert config.settings_for("cam2", "huddle", "gathering").min_score == 0.2
    assert config.settings_for("cam2", "huddle", "loitering") == config.default
    m = manager(config)
    assert m.ingest([ev("cam1:crowd:0", score=0.7)], NOW) == []                   # 0.7 < 0.9
    assert len(m.ingest([ev("cam2:crowd:0", camera="cam2", score=0.7)], NOW)) == 1  # 0.7 >= 0.5


# -- hysteresis and ignored kinds -----------------------------------------------------------------------------

def test_min_score_hysteresis():
    m = manager(cooled(cooldown=60.0, min_score=0.5))
    assert m.ingest([ev(status="open", score=0.3)], NOW) == []
    assert m.alerts() == []
    (opened,) = m.ingest([ev(status="updated", end=120.0, score=0.6, seq=20)], NOW + 1)
    assert opened.change == "created" and opened.alert.start == 100.0 and opened.alert.best_frame_seq == 20
    (low,) = m.ingest([ev(status="updated", end=130.0, score=0.1, seq=30)], NOW + 2)
    assert low.change == "updated" and low.alert.end == 130.0
    assert low.alert.score == 0.6 and low.alert.best_frame_seq == 20
    # a weak new event of the same place joins the open alert too
    (joined,) = m.ingest([ev("cam1:crowd:1", start=125.0, score=0.05)], NOW + 3)
    assert joined.change == "updated" and len(m.alerts()) == 1


def test_ignored_kinds():
    crossing = ev("cam1:door:0", kind="line_crossing", rule="door", zone=None, line="door", status="closed")
    assert manager().ingest([crossing], NOW) == []
    m = manager(AlertsConfig(ignore_kinds=("loitering",)))
    assert m.ingest([ev(kind="loitering")], NOW) == []
    assert len(m.ingest([crossing], NOW)) == 1  # no longer ignored


# -- the ranked queue -----------------------------------------------------------------------------------------

def test_queue_ranks_across_cameras_by_severity_and_zone():
    config = AlertsConfig(zone_weights={"cam3/square": 1.0})
    m = manager(config, severities={("cam1", "crowd"): 0.3, ("cam2", "crowd"): 0.9, "crowd": 0.6})
    m.ingest([ev("a", camera="cam1"), ev("b", camera="cam2"), ev("c", camera="cam3"), ev("d", camera="cam4")],
             NOW)
    assert [a.camera_id for a in m.queue(NOW)] == ["cam2", "cam3", "cam4", "cam1"]
    assert [a.severity for a in m.queue(NOW)] == [0.9, 0.6, 0.6, 0.3]


def test_queue_reranks_when_evidence_grows():
    m = manager()
    m.ingest([ev("cam1:crowd:0", camera="cam1", score=0.5), ev("cam2:crowd:0", camera="cam2", score=0.6)], NOW)
    assert [a.camera_id for a in m.queue(NOW)] == ["cam2", "cam1"]
    m.ingest([ev("cam1:crowd:0", camera="cam1", status="updated", end=130.0, score=0.9)], NOW)
    ranked = m.queue(NOW)
    assert [a.camera_id for a in ranked] == ["cam1", "cam2"]
    assert ranked[0].breakdown["evidence"]["score"] == 0.9


def test_queue_recency_decay_lets_fresh_evidence_overtake():
    m = manager()
    m.ingest([ev("cam1:crowd:0", camera="cam1", score=0.9)], NOW)
    m.ingest([ev("cam2:crowd:0", camera="cam2", score=0.6)], NOW + 600.0)
    # at NOW + 600 the first is two half-lives old: 0.94 x 0.625 = 0.5875 < 0.76 x 1
    ranked = m.queue(NOW + 600.0)
    assert [a.camera_id for a in ranked] == ["cam2", "cam1"]
    assert ranked[1].breakdown["recency"]["age_s"] == 600.0
    assert m.get(ranked[1].id).priority > ranked[1].priority  # held alert keeps its priority at last change


def test_queue_ties_newer_first_then_id_and_closed_excluded():
    m = manager()
    m.ingest([ev("x", camera="cam2"), ev("y", camera="cam1")], NOW)
    m.ingest([ev("z", camera="cam3")], NOW + 10.0)
    # at NOW no alert has aged (ages clip at 0): equal priorities, so the newer first, then by id
    ranked = m.queue(NOW)
    assert len({a.priority for a in ranked}) == 1
    assert [a.id for a in ranked] == ["cam3:gathering:1", "cam1:gathering:1", "cam2:gathering:1"]
    m.transition("cam1:gathering:1", "closed", user="op1", now=NOW, verdict="false_alarm")
    assert "cam1:gathering:1" not in [a.id for a in m.queue(NOW)]
    assert "cam1:gathering:1" in [a.id for a in m.queue(NOW, include_closed=True)]


def test_priority_is_stored_with_its_breakdown():
    (c,) = manager().ingest([ev(evidence={"size": 3, "mean_confidence": 0.8})], NOW)
    # severity 0.5, score 0.6, no weight for "square", confidence 0.8, fresh
    assert c.alert.priority == pytest.approx(0.55 * 0.76 * 0.75 * 0.94 * 1.0)
    assert c.alert.breakdown["value"] == c.alert.priority
    assert set(c.alert.breakdown) >= {"severity", "evidence", "zone", "confidence", "recency"}


# -- life cycle -----------------------------------------------------------------------------------------------

def test_life_cycle_allowed_path_and_records():
    m = manager()
    (c,) = m.ingest([ev()], NOW)
    aid = c.alert.id
    assert m.transition(aid, "seen", user="op1", now=NOW + 1)[0].status == "seen"
    assert m.transition(aid, "acknowledged", user="op1", now=NOW + 2)[0].status == "acknowledged"
    alert, step = m.transition(aid, "escalated", user="op1", now=NOW + 3, authority="pm", comment="ref 42")
    assert (alert.status, step.authority, step.comment, step.at) == ("escalated", "pm", "ref 42", NOW + 3)
    alert, step = m.transition(aid, "closed", user="sup", now=NOW + 4, verdict="true_alert", comment="handled")
    assert (alert.status, alert.verdict, alert.comment) == ("closed", "true_alert", "handled")
    assert (step.alert_id, step.status, step.user, step.verdict) == (aid, "closed", "sup", "true_alert")
    assert alert.updated_at == NOW  # transitions are dated by their records, not updated_at


@pytest.mark.parametrize(("path", "status", "kw", "match"), [
    ([], "closed", {}, "needs a verdict"),
    ([], "closed", {"verdict": "maybe"}, "needs a verdict"),
    ([], "escalated", {}, r"needs an authority id, one of \['pm'\]"),
    ([], "escalated", {"authority": "army"}, r"unknown authority 'army'.*\['pm'\]"),
    ([], "seen", {"verdict": "true_alert"}, "only given when closing"),
    ([], "seen", {"authority": "pm"}, "only named when escalating"),
    (["acknowledged"], "seen", {}, "cannot go from 'acknowledged' to 'seen'"),
    (["closed"], "acknowledged", {}, "cannot go from 'closed' to 'acknowledged'"),
    ([], "dismissed", {}, "unknown alert status 'dismissed'"),
])
def test_life_cycle_refusals(path, status, kw, match):
    m = manager()
    (c,) = m.ingest([ev()], NOW)
    for step in path:
        m.transition(c.alert.id, step, user="op1", now=NOW, verdict="duplicate" if step == "closed" else None)
    before = m.get(c.alert.id)
    with pytest.raises(TransitionError, match=match):
        m.transition(c.alert.id, status, user="op1", now=NOW + 1, **kw)
    assert m.get(c.alert.id) == before


def test_transition_needs_a_known_alert_and_a_user():
    m = manager()
    with pytest.raises(KeyError, match="no alert 'cam9:x:1'"):
        m.transition("cam9:x:1", "seen", user="op1", now=NOW)
    (c,) = m.ingest([ev()], NOW)
    with pytest.raises(ValueError, match="needs the user"):
        m.transition(c.alert.id, "seen", user="", now=NOW)


# -- config ---------------------------------------------------------------------------------------------------

def test_retention_above_15_days_is_rejected_naming_15():
    assert AlertsConfig(retention_days=15).retention_days == 15
    with pytest.raises(ValidationError, match=r"retention_days is at most 15.*more than 15 days \(got 16\)"):
        AlertsConfig(retention_days=16)
    with pytest.raises(ValidationError):
        AlertsConfig(retention_days=0)


@pytest.mark.parametrize(("data", "match"), [
    ({"authorities": [POLICE.model_dump(), POLICE.model_dump()]}, r"authority ids must be unique.*\['pm'\]"),
    ({"zone_weights": {"gate": 1.5}}, "less than or equal to 1"),
    ({"zone_weights": {"a/b/c": 0.5}}, "camera_id/id"),
    ({"default": {"merge_gap": -1}}, "greater than or equal to 0"),
    ({"retention": 7}, "Extra inputs are not permitted"),
    ({"authorities": [{"id": "x", "name": "X", "kind": "army"}]}, "municipal_police"),
    ({"authorities": [{"id": "x", "name": "X", "kind": "other", "email": "nope"}]}, "email"),
])
def test_config_is_strict(data, match):
    with pytest.raises(ValidationError, match=match):
        AlertsConfig.model_validate(data)


def test_every_config_field_is_described():
    for model in (AlertsConfig, AlertRuleSettings, Authority):
        assert all(f.description for f in model.model_fields.values()), model


# -- severities -----------------------------------------------------------------------------------------------

def test_severities_from_camera_configs_mapping_and_callable():
    class Rule:
        def __init__(self, rid, severity):
            self.id, self.severity = rid, severity

    class Cam:
        id, rules = "cam1", (Rule("crowd", 0.9), Rule("loiter", 0.2))

    assert severities_from_cameras([Cam()]) == {("cam1", "crowd"): 0.9, ("cam1", "loiter"): 0.2}
    (c,) = manager(severities=severities_from_cameras([Cam()])).ingest([ev()], NOW)
    assert c.alert.severity == 0.9
    (c,) = manager(severities=lambda camera, rule: 0.7 if camera == "cam1" else 0.1).ingest([ev()], NOW)
    assert c.alert.severity == 0.7
    (c,) = manager(severities={("cam2", "crowd"): 0.9}).ingest([ev()], NOW)
    assert c.alert.severity == 0.5  # default
    with pytest.raises(ValueError, match="severity of cam1/crowd must be in"):
        manager(severities={("cam1", "crowd"): 2.0})
    with pytest.raises(ValueError, match="must be in"):
        manager(severities=lambda camera, rule: -1).ingest([ev()], NOW)


# -- restore --------------------------------------------------------------------------------------------------

def test_restore_after_restart_continues_ids_and_merging():
    first = manager(cooled(cooldown=0.0, merge_gap=0.0))
    first.ingest([ev("cam1:crowd:0", start=0.0), ev("cam1:crowd:1", start=100.0), ev("cam2:crowd:0", camera="cam2")],
                 NOW)
    first.transition("cam1:gathering:1", "closed", user="op1", now=NOW, verdict="false_alarm")
    kept = first.alerts()  # what a store gives back

    second = manager(cooled(cooldown=0.0, merge_gap=0.0))
    second.restore(kept)
    assert second.counters == {"cam1:gathering": 3, "cam2:gathering": 2}
    (upd,) = second.ingest([ev("cam1:crowd:1", start=100.0, end=130.0, status="updated")], NOW + 5)
    assert (upd.change, upd.alert.id, upd.alert.end) == ("updated", "cam1:gathering:2", 130.0)
    (new,) = second.ingest([ev("cam1:crowd:9", start=500.0)], NOW + 6)
    assert (new.change, new.alert.id) == ("created", "cam1:gathering:3")
    assert len({a.id for a in second.alerts()}) == len(second.alerts()) == 4


def test_reused_event_id_far_from_its_alert_makes_a_new_alert():
    m = manager(cooled(cooldown=0.0, merge_gap=0.0))
    m.ingest([ev("cam1:crowd:0", start=100.0)], NOW)
    (c,) = m.ingest([ev("cam1:crowd:0", start=5000.0)], NOW + 1)  # the rules restarted their counter
    assert (c.change, c.alert.id) == ("created", "cam1:gathering:2")


def test_start_counters_and_bad_restore():
    m = manager(start_counters={"cam1:gathering": 41})
    (c,) = m.ingest([ev()], NOW)
    assert c.alert.id == "cam1:gathering:41" and m.counters == {"cam1:gathering": 42}
    with pytest.raises(ValueError, match="start_counters"):
        manager(start_counters={"cam1": 3})
    with pytest.raises(ValueError, match="not of the form"):
        m.restore([replace(c.alert, id="oops")])


def test_prune_forgets_old_closed_alerts_but_not_their_numbers():
    m = manager(cooled(cooldown=0.0, merge_gap=0.0))
    m.ingest([ev("e0", start=0.0), ev("e1", start=100.0)], NOW)
    m.transition("cam1:gathering:1", "closed", user="op1", now=NOW, verdict="duplicate")
    assert m.prune(before=NOW) == []
    assert m.prune(before=NOW + 1) == ["cam1:gathering:1"]
    assert [a.id for a in m.alerts()] == ["cam1:gathering:2"]
    (c,) = m.ingest([ev("e2", start=1000.0)], NOW + 2)
    assert c.alert.id == "cam1:gathering:3"
