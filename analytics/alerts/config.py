"""Alert settings: merging, cooldown and hysteresis per rule, ranking weights, authorities and retention.

Declared once and validated strictly (``extra="forbid"``, frozen, a description and tuning range on every
field). Validation has no side effects.

Time units: ``cooldown`` and ``merge_gap`` are seconds in the **frames' time base** (they compare event
``start`` / alert ``end``, so a replay merges exactly as live did); ``recency_half_life`` is seconds of
**wall clock** (it ages ``Alert.updated_at`` at the ``now`` the manager is given).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The longest that recordings and alerts may be kept (legal limit), days.
MAX_RETENTION_DAYS = 15

_ID = r"^[A-Za-z0-9_.-]{1,64}$"
Weight = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertRuleSettings(_Strict):
    """How the events of one rule (or one kind of rule) become alerts."""

    min_score: float = Field(0.0, ge=0.0, le=1.0, description="event score needed to OPEN an alert "
                             "(hysteresis: once open, an alert is updated by its events whatever their score); "
                             "range 0-0.8, raise it to quiet a noisy rule")
    cooldown: float = Field(60.0, ge=0.0, le=86_400.0, description="seconds (frame time) after an alert's end "
                            "during which a new event of the same camera, rule and zone/line joins it even if "
                            "acknowledged or escalated, and is only counted as suppressed if it is closed; "
                            "range 0-600")
    merge_gap: float = Field(30.0, ge=0.0, le=86_400.0, description="seconds (frame time): an event of the same "
                             "camera, kind and zone/line starting at most this long after an open alert's end "
                             "(or overlapping it) joins that alert; range 0-300")


class Authority(_Strict):
    """An authority alerts may be escalated to (the console shows its contacts and protocol)."""

    id: str = Field(pattern=_ID, description="unique id, named by escalation transitions")
    name: str = Field(min_length=1, description="display name, e.g. 'Police municipale - poste central'")
    kind: Literal["municipal_police", "national_police", "other"] = Field(description="which service it is")
    phone: str = Field("", pattern=r"^$|^\+?[0-9 ().-]{3,32}$", description="phone number to call (digits, "
                       "spaces, + ( ) . -), empty if none")
    email: str = Field("", pattern=r"^$|^[^@\s]+@[^@\s]+$", description="e-mail address, empty if none")
    protocol: tuple[str, ...] = Field((), description="the steps an operator follows when escalating, in order")


class EvidenceConfig(_Strict):
    """What is kept to show an alert: a snapshot and a short clip from each camera's ring buffer."""

    enabled: bool = Field(True, description="write a snapshot and a clip for each new alert")
    pre_seconds: float = Field(5.0, ge=0.0, le=60.0, description="seconds of frames before the alert kept in the "
                               "clip (the ring buffer's length); range 2-15")
    post_seconds: float = Field(5.0, ge=0.0, le=60.0, description="seconds of frames after the alert added to the "
                                "clip before it is written; range 2-15")
    max_width: int = Field(960, ge=160, le=3840, description="frames wider than this are scaled down for the "
                           "snapshot, the clip and the live view (pixels); range 480-1920")
    jpeg_quality: int = Field(80, ge=30, le=100, description="JPEG quality of snapshots, buffered frames and live "
                              "frames; range 60-95")
    dir: str | None = Field(None, description="where evidence files go; null: <output dir>/evidence")


class AlertsConfig(_Strict):
    """Alert manager settings (see :mod:`analytics.alerts.manager` and :mod:`analytics.alerts.priority`)."""

    rules: dict[str, AlertRuleSettings] = Field(default_factory=dict, description="settings by rule id; a key "
                                                "may also be 'camera_id/rule_id' (one camera) or an event kind "
                                                "(every rule of that kind); see settings_for()")
    default: AlertRuleSettings = Field(default_factory=AlertRuleSettings, description="settings of the rules "
                                       "that rules names neither by id nor by kind")
    ignore_kinds: tuple[str, ...] = Field(("line_crossing",), description="event kinds that never make alerts "
                                          "(line crossings are counts, not incidents)")
    zone_weights: dict[str, Weight] = Field(default_factory=dict, description="importance of a place for the "
                                            "ranking, keyed 'camera_id/zone_id' or 'zone_id' (a line id works "
                                            "too); range 0-1")
    default_zone_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of places zone_weights does not "
                                       "name, and of alerts without zone or line; range 0-1")
    recency_half_life: float = Field(300.0, gt=0.0, le=86_400.0, description="wall-clock seconds after which an "
                                     "alert's recency bonus halves; range 60-3600")
    authorities: tuple[Authority, ...] = Field((), description="authorities alerts may be escalated to")
    store: str | None = Field(None, description="alert store URL: sqlite:///path.db or postgresql://user@host/db; "
                              "null: sqlite:///<output dir>/alerts.db")
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig, description="snapshots and clips")
    retention_days: int = Field(15, ge=1, description=f"days alerts and recordings are kept (legal_hold "
                                f"excepted); range 1-{MAX_RETENTION_DAYS}, at most {MAX_RETENTION_DAYS}")

    @field_validator("retention_days")
    @classmethod
    def _legal_retention(cls, value: int) -> int:
        if value > MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days is at most {MAX_RETENTION_DAYS}: recordings and alerts may not be "
                             f"kept more than {MAX_RETENTION_DAYS} days (got {value})")
        return value

    @field_validator("rules", "zone_weights")
    @classmethod
    def _keys(cls, value: dict) -> dict:
        bad = sorted(k for k in value if not k or k.count("/") > 1 or k.startswith("/") or k.endswith("/"))
        if bad:
            raise ValueError(f"keys must be 'id' or 'camera_id/id', got {bad}")
        return value

    @model_validator(mode="after")
    def _unique_authorities(self) -> AlertsConfig:
        ids = [a.id for a in self.authorities]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"authority ids must be unique, repeated: {dupes}")
        return self

    def settings_for(self, camera_id: str, rule_id: str, kind: str) -> AlertRuleSettings:
        """The settings of a rule: ``rules["camera_id/rule_id"]``, else ``rules[rule_id]``, else
        ``rules[kind]``, else ``default``."""
        for key in (f"{camera_id}/{rule_id}", rule_id, kind):
            found = self.rules.get(key)
            if found is not None:
                return found
        return self.default

    def zone_weight(self, camera_id: str, place: str | None) -> tuple[float, str | None]:
        """Weight of a zone (or line) id and the key that gave it (None: the default weight)."""
        if place is not None:
            for key in (f"{camera_id}/{place}", place):
                if key in self.zone_weights:
                    return self.zone_weights[key], key
        return self.default_zone_weight, None

    def authority(self, authority_id: str) -> Authority | None:
        """The authority with this id, or None."""
        return next((a for a in self.authorities if a.id == authority_id), None)

    def with_rule_settings(self, overrides: dict[str, dict]) -> AlertsConfig:
        """This config with ``rules`` entries replaced by ``overrides`` (``{"camera_id/rule_id": settings}``, as
        an admin stored them from the console); each is validated.

        Raises:
            pydantic.ValidationError: an override that is not valid :class:`AlertRuleSettings`.
        """
        if not overrides:
            return self
        rules = {**self.rules, **{key: AlertRuleSettings.model_validate(value) for key, value in overrides.items()}}
        return self.model_copy(update={"rules": rules})

