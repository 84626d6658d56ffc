"""Adaptive rules as data: defaults, operators, first match wins, bad documents refused."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from otp_core.rules import decide, load_rules

RULES = load_rules(
    json.dumps(
        {
            "actions": {
                "withdraw": {
                    "default": "CHALLENGE_REQUIRED",
                    "rules": [
                        {"outcome": "BLOCK", "when": [{"attribute": "custom.riskScore", "op": "gt", "value": 90}]},
                        {
                            "outcome": "BLOCK",
                            "when": [{"attribute": "ipAddress", "op": "in", "value": ["203.0.113.9"]}],
                        },
                        {
                            "outcome": "ALLOW",
                            "when": [
                                {"attribute": "custom.amount", "op": "lte", "value": 10},
                                {"attribute": "userAgent", "op": "equals", "value": "trusted-app"},
                            ],
                        },
                    ],
                },
                "signIn": {
                    "rules": [{"outcome": "CHALLENGE_REQUIRED", "when": [{"attribute": "deviceId", "op": "newDevice"}]}]
                },
            }
        }
    )
)


def outcome(action, attributes, *, enrolled=True, new_device=False):
    return decide(RULES, action, attributes, enrolled=enrolled, is_new_device=lambda: new_device)


def test_shipped_default_challenges_enrolled_users_only():
    rules = load_rules("")
    assert decide(rules, "anything", {}, enrolled=True, is_new_device=lambda: True) == "CHALLENGE_REQUIRED"
    assert decide(rules, "anything", {}, enrolled=False, is_new_device=lambda: True) == "ALLOW"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"custom": {"riskScore": 95}}, "BLOCK"),
        ({"custom": {"riskScore": 90}}, "CHALLENGE_REQUIRED"),
        ({"custom": {"riskScore": "95"}}, "CHALLENGE_REQUIRED"),
        ({"custom": {"riskScore": True}}, "CHALLENGE_REQUIRED"),
        ({"ipAddress": "203.0.113.9"}, "BLOCK"),
        ({"custom": {"amount": 5}, "userAgent": "trusted-app"}, "ALLOW"),
        ({"custom": {"amount": 5}, "userAgent": "other"}, "CHALLENGE_REQUIRED"),
        ({}, "CHALLENGE_REQUIRED"),
    ],
)
def test_conditions_and_first_match(attributes, expected):
    assert outcome("withdraw", attributes) == expected


def test_new_device_rule_asks_only_when_a_device_is_given():
    asked = []

    def is_new() -> bool:
        asked.append(True)
        return True

    assert decide(RULES, "signIn", {}, enrolled=False, is_new_device=is_new) == "ALLOW"
    assert asked == []
    assert decide(RULES, "signIn", {"deviceId": "d"}, enrolled=False, is_new_device=is_new) == "CHALLENGE_REQUIRED"
    assert outcome("signIn", {"deviceId": "d"}, enrolled=False, new_device=False) == "ALLOW"


@pytest.mark.parametrize(
    "document",
    [
        {"actions": {"a": {"default": "MAYBE"}}},
        {"actions": {"a": {"rules": [{"outcome": "ALLOW", "when": []}]}}},
        {"actions": {"a": {"rules": [{"outcome": "ALLOW", "when": [{"attribute": "password", "op": "equals"}]}]}}},
        {"actions": {"a": {"rules": [{"outcome": "ALLOW", "when": [{"attribute": "ipAddress", "op": "regex"}]}]}}},
        {"unknown": 1},
    ],
)
def test_invalid_rule_documents_are_refused(document):
    with pytest.raises(ValidationError):
        load_rules(json.dumps(document))
