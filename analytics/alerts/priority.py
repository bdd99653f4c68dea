"""Alert priority: one documented score in [0, 1] that ranks every open alert of every camera.

Formula (multiplicative, every factor in [0, 1] and floored so that no single factor zeroes the rank)::

    priority = severity_f x evidence_f x zone_f x confidence_f x recency_f

    severity_f   = 0.1 + 0.9 * severity          severity: the rule's severity [0, 1] (camera config)
    evidence_f   = 0.4 + 0.6 * score             score: the alert's best event score [0, 1]; each rule folds its
                                                 evidence into it (group size and duration for gatherings,
                                                 dwell time for loitering, improbability for abnormal flow...)
    zone_f       = 0.5 + 0.5 * zone_weight       zone_weight [0, 1]: config zone_weights of the alert's zone
                                                 (or line), else default_zone_weight
    confidence_f = 0.7 + 0.3 * c                 c: evidence["mean_confidence"] clipped to [0, 1], 1 when absent
    recency_f    = 0.5 + 0.5 * 0.5 ** (age / half_life)
                                                 age: now - alert.updated_at, wall-clock seconds (>= 0);
                                                 half_life: config recency_half_life

Severity has the widest span (x10 between an informative and a critical rule), then evidence (x2.5), zone
and recency (x2) and detection confidence (x1.43). Example: severity 0.8, score 0.5, zone weight 1,
confidence 0.9, updated 300 s ago with half-life 300 s:
0.82 x 0.7 x 1.0 x 0.97 x 0.75 = 0.417585.

The breakdown stored with the alert gives each factor with its input (JSON types), so a console can say why
an alert ranks where it does. Everything here is pure: ``now`` is an argument.
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from analytics.alerts.config import AlertsConfig
from analytics.alerts.model import Alert

FORMULA = "severity_f x evidence_f x zone_f x confidence_f x recency_f"

#: Evidence facts copied into the breakdown when present (to explain the score, not used by the formula).
_FACTS = ("size", "max_size", "duration", "count", "observed", "expected", "z_score", "p_value", "speed_kmh",
          "mean_speed_mps")


def _clip01(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _confidence(evidence: dict[str, Any]) -> float:
    c = evidence.get("mean_confidence", 1.0)
    if isinstance(c, bool) or not isinstance(c, int | float) or not isfinite(c):
        return 1.0
    return _clip01(float(c))


def recency_factor(updated_at: float, now: float, half_life: float) -> float:
    """``recency_f`` of the formula: 1 for an alert updated at ``now``, halving its bonus every ``half_life``."""
    return 0.5 + 0.5 * 0.5 ** (max(0.0, float(now) - float(updated_at)) / half_life)


def priority(alert: Alert, now: float, config: AlertsConfig) -> tuple[float, dict[str, Any]]:
    """The priority of ``alert`` at ``now`` and its breakdown.

    Args:
        alert: reads severity, score, evidence, camera_id, zone_id / line_id and updated_at.
        now: wall clock, Unix seconds (an argument: nothing here reads the clock).
        config: zone weights and recency half-life.

    Returns:
        ``(value, breakdown)``: value in [0, 1]; breakdown ``{"formula", "value", "at", "severity",
        "evidence", "zone", "confidence", "recency"}``, each factor a dict with its ``factor`` and inputs.
    """
    severity = _clip01(float(alert.severity))
    score = _clip01(float(alert.score))
    place = alert.zone_id if alert.zone_id is not None else alert.line_id
    weight, weight_key = config.zone_weight(alert.camera_id, place)
    c = _confidence(alert.evidence)
    age = max(0.0, float(now) - float(alert.updated_at))
    half_life = config.recency_half_life

    severity_f = 0.1 + 0.9 * severity
    evidence_f = 0.4 + 0.6 * score
    zone_f = 0.5 + 0.5 * weight
    confidence_f = 0.7 + 0.3 * c
    recency_f = recency_factor(alert.updated_at, now, half_life)
    value = severity_f * evidence_f * zone_f * confidence_f * recency_f

    facts = {k: alert.evidence[k] for k in _FACTS
             if isinstance(alert.evidence.get(k), int | float | str)}
    breakdown: dict[str, Any] = {
        "formula": FORMULA,
        "value": value,
        "at": float(now),
        "severity": {"factor": severity_f, "severity": severity},
        "evidence": {"factor": evidence_f, "score": score, "members": len(alert.member_ids),
                     "span_s": round(alert.end - alert.start, 3), "events": len(alert.event_ids), "facts": facts},
        "zone": {"factor": zone_f, "weight": weight, "place": place, "key": weight_key},
        "confidence": {"factor": confidence_f, "mean_confidence": c},
        "recency": {"factor": recency_f, "age_s": age, "half_life_s": half_life},
    }
    return value, breakdown
