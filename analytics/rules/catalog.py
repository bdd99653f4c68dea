"""The rule catalogue: every rule config in one discriminated union on ``kind``, and the factory.

A camera's ``rules:`` list in the YAML config is validated against :data:`RuleConfig`, so an unknown kind or
a misspelt threshold fails at load time. :func:`build_rule` turns a validated config into its rule object.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from analytics.rules.base import Rule
from analytics.rules.line_count import LineCountConfig, LineCountRule

#: kind -> (config class, rule class).
RULES: dict[str, tuple[type, type]] = {
    "line_count": (LineCountConfig, LineCountRule),
}

RuleConfig = Annotated[LineCountConfig, Field(discriminator="kind")]


def build_rule(config: Any) -> Rule:
    """The rule object for a validated rule config (one of :data:`RuleConfig`)."""
    try:
        _, rule_cls = RULES[config.kind]
    except (KeyError, AttributeError):
        raise ValueError(f"not a rule config: {config!r}; expected one of kinds {sorted(RULES)}") from None
    return rule_cls(config)
