"""Adaptive MFA rules: per action, a default outcome plus conditions on the tracked attributes.

Rules are data. The stack ships ``default_rules.json`` beside this module; the ``TRACK_RULES`` setting (the
``TrackRules`` stack parameter) replaces it with a JSON document of the same shape::

    {
      "actions": {
        "signInWithSms": {
          "default": "ENROLLED_CHALLENGE",
          "rules": [
            {"outcome": "BLOCK", "when": [{"attribute": "custom.riskScore", "op": "gt", "value": 90}]},
            {"outcome": "CHALLENGE_REQUIRED", "when": [{"attribute": "deviceId", "op": "newDevice"}]}
          ]
        }
      },
      "default": {"default": "ENROLLED_CHALLENGE", "rules": []}
    }

Rules are tried in order; the first whose conditions all hold decides. ``ENROLLED_CHALLENGE`` means
CHALLENGE_REQUIRED when the user has an SMS authenticator, otherwise ALLOW. Attributes are ``phoneNumber``,
``ipAddress``, ``userAgent``, ``deviceId``, ``redirectUrl`` and ``custom.<name>``; operators are ``equals``,
``notEquals``, ``in``, ``notIn``, ``gt``, ``gte``, ``lt``, ``lte`` and ``newDevice`` (the device was never
seen for this user: it has neither completed a challenge nor been allowed in).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Outcome = Literal["ALLOW", "CHALLENGE_REQUIRED", "BLOCK"]
DefaultOutcome = Literal["ALLOW", "CHALLENGE_REQUIRED", "BLOCK", "ENROLLED_CHALLENGE"]
Operator = Literal["equals", "notEquals", "in", "notIn", "gt", "gte", "lt", "lte", "newDevice"]
Attribute = Annotated[
    str, Field(pattern=r"^(phoneNumber|ipAddress|userAgent|deviceId|redirectUrl|custom\.[A-Za-z0-9_.-]{1,64})$")
]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: Attribute
    op: Operator
    value: Any = None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Outcome
    when: list[Condition] = Field(min_length=1)


class ActionRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: DefaultOutcome = "ENROLLED_CHALLENGE"
    rules: list[Rule] = Field(default_factory=list)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: dict[str, ActionRules] = Field(default_factory=dict)
    default: ActionRules = ActionRules()

    def for_action(self, action: str) -> ActionRules:
        return self.actions.get(action, self.default)


_RULE_SET = TypeAdapter(RuleSet)


def load_rules(document: str | None) -> RuleSet:
    """Parse a rule document, or the shipped defaults when ``document`` is empty.

    Raises
    ------
    ValueError
        The document is not a valid rule set (a deployment error, reported at cold start).
    """
    text = document or resources.files("otp_core").joinpath("default_rules.json").read_text()
    return _RULE_SET.validate_python(json.loads(text))


def _lookup(attributes: Mapping[str, Any], path: str) -> Any:
    if path.startswith("custom."):
        custom = attributes.get("custom") or {}
        return custom.get(path.removeprefix("custom.")) if isinstance(custom, Mapping) else None
    return attributes.get(path)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "equals":
        return bool(actual == expected)
    if op == "notEquals":
        return bool(actual != expected)
    if op in ("in", "notIn"):
        members = expected if isinstance(expected, list) else []
        return (actual in members) == (op == "in")
    numeric = (int, float)
    if not isinstance(actual, numeric) or isinstance(actual, bool) or not isinstance(expected, numeric):
        return False
    return {"gt": actual > expected, "gte": actual >= expected, "lt": actual < expected, "lte": actual <= expected}[op]


def decide(
    rules: RuleSet,
    action: str,
    attributes: Mapping[str, Any],
    *,
    enrolled: bool,
    is_new_device: Callable[[], bool],
) -> Outcome:
    """The outcome of ``action`` for these attributes (``is_new_device`` is asked only when a rule needs it)."""
    action_rules = rules.for_action(action)
    for rule in action_rules.rules:
        if all(_holds(condition, attributes, is_new_device) for condition in rule.when):
            return rule.outcome
    if action_rules.default == "ENROLLED_CHALLENGE":
        return "CHALLENGE_REQUIRED" if enrolled else "ALLOW"
    return action_rules.default


def _holds(condition: Condition, attributes: Mapping[str, Any], is_new_device: Callable[[], bool]) -> bool:
    if condition.op == "newDevice":
        return attributes.get("deviceId") is not None and is_new_device()
    return _compare(condition.op, _lookup(attributes, condition.attribute), condition.value)
