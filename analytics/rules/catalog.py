"""The rule catalogue: every rule config in one discriminated union on ``kind``, and the factory.

A camera's ``rules:`` list in the YAML config is validated against :data:`RuleConfig`, so an unknown kind or
a misspelt threshold fails at load time. :func:`build_rule` turns a validated config into its rule object.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from analytics.rules.abnormal_flow import AbnormalFlowConfig, AbnormalFlowRule
from analytics.rules.base import Rule
from analytics.rules.congestion import CongestionConfig, CongestionRule
from analytics.rules.gathering import GatheringConfig, GatheringRule
from analytics.rules.intrusion import IntrusionConfig, IntrusionRule
from analytics.rules.line_count import LineCountConfig, LineCountRule
from analytics.rules.loitering import LoiteringConfig, LoiteringRule
from analytics.rules.occupancy import OccupancyConfig, OccupancyRule
from analytics.rules.speeding import SpeedingConfig, SpeedingRule
from analytics.rules.wrong_way import WrongWayConfig, WrongWayRule

#: kind -> (config class, rule class).
RULES: dict[str, tuple[type, type]] = {
    "gathering": (GatheringConfig, GatheringRule),
    "loitering": (LoiteringConfig, LoiteringRule),
    "occupancy": (OccupancyConfig, OccupancyRule),
    "intrusion": (IntrusionConfig, IntrusionRule),
    "line_count": (LineCountConfig, LineCountRule),
    "abnormal_flow": (AbnormalFlowConfig, AbnormalFlowRule),
    "congestion": (CongestionConfig, CongestionRule),
    "wrong_way": (WrongWayConfig, WrongWayRule),
    "speeding": (SpeedingConfig, SpeedingRule),
}

RuleConfig = Annotated[Union[tuple(config for config, _ in RULES.values())], Field(discriminator="kind")]  # noqa: UP007


def build_rule(config: Any) -> Rule:
    """The rule object for a validated rule config (one of :data:`RuleConfig`)."""
    try:
        _, rule_cls = RULES[config.kind]
    except (KeyError, AttributeError):
        raise ValueError(f"not a rule config: {config!r}; expected one of kinds {sorted(RULES)}") from None
    return rule_cls(config)
