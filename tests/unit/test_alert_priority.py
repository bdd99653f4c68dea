"""Alert priority: the documented formula on hand-computed inputs, its floors and its monotonicity."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.alerts.config import AlertsConfig
from analytics.alerts.model import Alert
from analytics.alerts.priority import priority

NOW = 1_700_000_000.0
CONFIG = AlertsConfig(zone_weights={"cam1/gate": 1.0, "gate": 0.2, "bridge": 0.0}, recency_half_life=300.0)


def _alert(**kw) -> Alert:
    base = dict(id="cam1:gathering:1", camera_id="cam1", kind="gathering", rule_id="crowd", start=10.0, end=20.0,
                created_at=NOW, updated_at=NOW, zone_id="gate", severity=0.8, score=0.5,
                evidence={"mean_confidence": 0.9, "size": 7, "centroid_px": [1.0, 2.0]})
    base.update(kw)
    return Alert(**base)


def test_hand_computed_example_of_the_docstring():
    # 0.82 x 0.7 x 1.0 x 0.97 x 0.75
    value, b = priority(_alert(updated_at=NOW - 300.0), NOW, CONFIG)
    assert value == pytest.approx(0.417585, abs=1e-12)
    assert b["severity"] == {"factor": pytest.approx(0.82), "severity": 0.8}
    assert b["evidence"]["factor"] == pytest.approx(0.7) and b["evidence"]["score"] == 0.5
    assert b["evidence"]["facts"] == {"size": 7}  # explanatory facts only, lists left out
    assert b["zone"] == {"factor": 1.0, "weight": 1.0, "place": "gate", "key": "cam1/gate"}
    assert b["confidence"] == {"factor": pytest.approx(0.97), "mean_confidence": 0.9}
    assert b["recency"] == {"factor": 0.75, "age_s": 300.0, "half_life_s": 300.0}
    assert b["value"] == value and b["at"] == NOW
    assert json.loads(json.dumps(b)) == b  # JSON types only


@pytest.mark.parametrize(("kw", "expected"), [
    # no zone: default weight 0.5 -> 0.75; no mean_confidence -> 1; fresh -> recency 1
    (dict(zone_id=None, evidence={}), 0.82 * 0.7 * 0.75 * 1.0 * 1.0),
    # "gate" on another camera: the plain zone key (0.2) -> 0.6
    (dict(camera_id="cam2"), 0.82 * 0.7 * 0.6 * 0.97 * 1.0),
    # a line is weighted like a zone when there is no zone
    (dict(zone_id=None, line_id="bridge", evidence={}), 0.82 * 0.7 * 0.5 * 1.0 * 1.0),
    # every input at its worst: the floors keep the rank above zero
    (dict(zone_id="bridge", severity=0.0, score=0.0, evidence={"mean_confidence": 0.0}, updated_at=NOW - 1e9),
     0.1 * 0.4 * 0.5 * 0.7 * 0.5),
    # every input at its best
    (dict(severity=1.0, score=1.0, camera_id="cam1", evidence={"mean_confidence": 1.0}), 1.0),
    # a confidence out of range is clipped, a non-number ignored
    (dict(evidence={"mean_confidence": 1.7}), 0.82 * 0.7 * 1.0 * 1.0),
    (dict(evidence={"mean_confidence": -2}), 0.82 * 0.7 * 1.0 * 0.7),
    (dict(evidence={"mean_confidence": "high"}), 0.82 * 0.7 * 1.0 * 1.0),
])
def test_formula_values(kw, expected):
    value, _ = priority(_alert(**kw), NOW, CONFIG)
    assert value == pytest.approx(expected, abs=1e-12)
    assert 0.0 < value <= 1.0


def test_age_is_never_negative_and_the_function_is_pure():
    alert = _alert(updated_at=NOW + 50.0)  # a clock running behind: no bonus above 1
    first = priority(alert, NOW, CONFIG)
    assert first[1]["recency"]["age_s"] == 0.0 and first[1]["recency"]["factor"] == 1.0
    assert priority(alert, NOW, CONFIG) == first
    assert alert.priority == 0.0 and alert.breakdown == {}  # the input is not changed


def test_recency_halves_its_bonus_every_half_life():
    fresh = priority(_alert(), NOW, CONFIG)[0]
    ages = [priority(_alert(updated_at=NOW - k * 300.0), NOW, CONFIG)[0] / fresh for k in range(4)]
    assert ages == pytest.approx([1.0, 0.75, 0.625, 0.5625])


unit = st.floats(0.0, 1.0)


def _ordered(draw_pair):
    a, b = draw_pair
    return (a, b) if a < b else (b, a)


pairs = st.tuples(unit, unit).filter(lambda p: abs(p[0] - p[1]) > 1e-3).map(_ordered)


@settings(max_examples=60, deadline=None)
@given(pair=pairs, severity=unit, score=unit, weight=unit, conf=unit, age=st.floats(0.0, 5000.0),
       which=st.sampled_from(["severity", "score", "weight", "confidence"]))
def test_priority_rises_with_each_input(pair, severity, score, weight, conf, age, which):
    lo, hi = pair

    def value(x: float) -> float:
        inputs = dict(severity=severity, score=score, weight=weight, confidence=conf) | {which: x}
        config = AlertsConfig(zone_weights={"z": inputs["weight"]})
        alert = _alert(zone_id="z", severity=inputs["severity"], score=inputs["score"], updated_at=NOW - age,
                       evidence={"mean_confidence": inputs["confidence"]})
        return priority(alert, NOW, config)[0]

    assert value(hi) > value(lo)


@settings(max_examples=40, deadline=None)
@given(young=st.floats(0.0, 5000.0), extra=st.floats(1.0, 5000.0), severity=unit, score=unit)
def test_priority_falls_with_age(young, extra, severity, score):
    alert = _alert(severity=severity, score=score)
    newer = priority(replace(alert, updated_at=NOW - young), NOW, CONFIG)[0]
    older = priority(replace(alert, updated_at=NOW - young - extra), NOW, CONFIG)[0]
    assert newer > older
