"""Assertions on template.yaml: routes, permissions, logging, keys, parameters, outputs and events."""

from __future__ import annotations

import ast
import functools
import json
import re
import typing
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from cfnlint.data import AdditionalSpecs
from cfnlint.decode import decode_str
from cfnlint.helpers import load_resource

from local.template import Resolver, Template, upper_snake
from otp_core.app_admin import KEY_CACHE_SECONDS
from otp_core.apps import APP_ONLY_SETTINGS
from otp_core.settings import Settings
from otp_core.sms.factory import stack_providers
from otp_core.sms.sns_events import OUTCOMES, PROGRESS_EVENTS
from otp_core.sms.vendors import KNOWN_PROVIDERS

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
EVENTS_DIR = REPO_ROOT / "events"

# (method, path) -> function: every route of the contract the template serves.
ROUTES = {
    ("POST", "/v1/challenges"): "CreateChallengeFunction",
    ("POST", "/v1/challenges/{challengeId}/verify"): "VerifyChallengeFunction",
    ("POST", "/v1/challenges/{challengeId}/resend"): "ResendChallengeFunction",
    ("POST", "/v1/challenges/{challengeId}/claim"): "ClaimChallengeFunction",
    ("GET", "/v1/challenges/{challengeId}"): "GetChallengeFunction",
    ("GET", "/.well-known/jwks.json"): "JwksFunction",
    ("GET", "/v1/health"): "HealthFunction",
    ("GET", "/v1/openapi.json"): "OpenApiFunction",
    ("GET", "/v1/hosted/challenge"): "HostedPageFunction",
    ("GET", "/v1/hosted/challenge.js"): "HostedPageFunction",
    ("GET", "/v1/hosted/challenge.css"): "HostedPageFunction",
    ("GET", "/v1/hosted/sms-otp.js"): "HostedPageFunction",
    ("POST", "/v1/track"): "TrackFunction",
    ("POST", "/v1/validate"): "ValidateFunction",
    ("POST", "/v1/users/{userId}/authenticators"): "EnrollAuthenticatorFunction",
    ("GET", "/v1/users/{userId}/authenticators"): "ListAuthenticatorsFunction",
    ("DELETE", "/v1/users/{userId}/authenticators/{authenticatorId}"): "DeleteAuthenticatorFunction",
    ("POST", "/v1/client/sms/enroll"): "ClientEnrollFunction",
    ("POST", "/v1/client/sms/challenge"): "ClientChallengeFunction",
    ("POST", "/v1/client/sms/verify"): "ClientVerifyFunction",
    ("OPTIONS", "/v1/client/sms/enroll"): "ClientPreflightFunction",
    ("OPTIONS", "/v1/client/sms/challenge"): "ClientPreflightFunction",
    ("OPTIONS", "/v1/client/sms/verify"): "ClientPreflightFunction",
    ("POST", "/v1/verification/sms/send"): "VerificationSendFunction",
    ("POST", "/v1/verification/sms/validate"): "VerificationValidateFunction",
    ("POST", "/v1/delivery-status/{provider}"): "DeliveryStatusFunction",
    ("GET", "/v1/admin/fraud/blocks"): "AdminListBlocksFunction",
    ("POST", "/v1/admin/fraud/blocks"): "AdminCreateBlockFunction",
    ("DELETE", "/v1/admin/fraud/blocks/{bucket}"): "AdminDeleteBlockFunction",
    ("GET", "/v1/admin/fraud/safe-list"): "AdminGetSafeListFunction",
    ("PUT", "/v1/admin/fraud/safe-list"): "AdminPutSafeListFunction",
    ("POST", "/v1/admin/apps"): "AdminCreateAppFunction",
    ("GET", "/v1/admin/apps"): "AdminListAppsFunction",
    ("GET", "/v1/admin/apps/{appId}"): "AdminGetAppFunction",
    ("PATCH", "/v1/admin/apps/{appId}"): "AdminUpdateAppFunction",
    ("DELETE", "/v1/admin/apps/{appId}"): "AdminDeleteAppFunction",
    ("POST", "/v1/admin/apps/{appId}/keys"): "AdminCreateKeyFunction",
    ("GET", "/v1/admin/apps/{appId}/keys"): "AdminListKeysFunction",
    ("DELETE", "/v1/admin/apps/{appId}/keys/{keyId}"): "AdminDeleteKeyFunction",
    ("POST", "/twilio/v2/Services/{ServiceSid}/Verifications"): "TwilioVerifyFunction",
    ("GET", "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}"): "TwilioVerifyFunction",
    ("POST", "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}"): "TwilioVerifyFunction",
    ("POST", "/twilio/v2/Services/{ServiceSid}/VerificationCheck"): "TwilioVerifyFunction",
    ("POST", "/authsignal/v1/users/{userId}/actions/{action}"): "AuthsignalServerFunction",
    ("GET", "/authsignal/v1/users/{userId}/actions/{action}/{idempotencyKey}"): "AuthsignalServerFunction",
    ("PATCH", "/authsignal/v1/users/{userId}/actions/{action}/{idempotencyKey}"): "AuthsignalServerFunction",
    ("GET", "/authsignal/v1/users/{userId}"): "AuthsignalServerFunction",
    ("PATCH", "/authsignal/v1/users/{userId}"): "AuthsignalServerFunction",
    ("DELETE", "/authsignal/v1/users/{userId}"): "AuthsignalServerFunction",
    ("GET", "/authsignal/v1/users/{userId}/authenticators"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/users/{userId}/authenticators"): "AuthsignalServerFunction",
    ("DELETE", "/authsignal/v1/users/{userId}/authenticators/{userAuthenticatorId}"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/validate"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/challenge"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/verify"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/claim"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/client/user-authenticators/sms"): "AuthsignalClientFunction",
    ("OPTIONS", "/authsignal/v1/client/user-authenticators/sms"): "AuthsignalClientFunction",
    ("POST", "/authsignal/v1/client/challenge/sms"): "AuthsignalClientFunction",
    ("OPTIONS", "/authsignal/v1/client/challenge/sms"): "AuthsignalClientFunction",
    ("POST", "/authsignal/v1/client/verify/sms"): "AuthsignalClientFunction",
    ("OPTIONS", "/authsignal/v1/client/verify/sms"): "AuthsignalClientFunction",
    ("GET", "/authsignal/v1/users"): "AuthsignalServerFunction",
    ("GET", "/authsignal/v1/users/{userId}/actions"): "AuthsignalServerFunction",
    ("GET", "/authsignal/v1/challenges"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/sessions"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/sessions/{operation}"): "AuthsignalServerFunction",
    ("POST", "/authsignal/v1/sessions/user/revoke"): "AuthsignalServerFunction",
    ("ANY", "/authsignal/v1/client/challenge"): "AuthsignalClientFunction",
    ("ANY", "/authsignal/v1/client/challenge/{factor}"): "AuthsignalClientFunction",
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}"): "AuthsignalClientFunction",
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}/{step}"): "AuthsignalClientFunction",
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}/{step}/{platform}"): "AuthsignalClientFunction",
    ("ANY", "/authsignal/v1/client/verify/{factor}"): "AuthsignalClientFunction",
    ("ANY", "/authsignal/v1/client/verify/{factor}/{step}"): "AuthsignalClientFunction",
}
# Operator routes: the admin key's own authorizer, and left out of the stack with AdminApi=disabled.
ADMIN_ROUTES = {key for key in ROUTES if key[1].startswith("/v1/admin/")}
ADMIN_FUNCTIONS = {ROUTES[key] for key in ADMIN_ROUTES}
# The table actions of each operator route (otp_core.adapters.fraud_store and app_store), and no other. Every
# fraud route reads the record of the app it names (GetItem); every app route but create and delete may store
# the app default with its stack-generated key on first use (GetItem, PutItem, UpdateItem).
_DEFAULT_APP_ON_FIRST_USE = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
ADMIN_TABLE_ACTIONS = {
    "AdminListBlocksFunction": {"dynamodb:Query", "dynamodb:GetItem"},
    "AdminCreateBlockFunction": {"dynamodb:UpdateItem", "dynamodb:GetItem"},
    "AdminDeleteBlockFunction": {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem"},
    "AdminGetSafeListFunction": {"dynamodb:GetItem"},
    "AdminPutSafeListFunction": {"dynamodb:PutItem", "dynamodb:GetItem"},
    "AdminCreateAppFunction": {"dynamodb:PutItem", "dynamodb:Query"},
    "AdminListAppsFunction": _DEFAULT_APP_ON_FIRST_USE | {"dynamodb:Query"},
    "AdminGetAppFunction": _DEFAULT_APP_ON_FIRST_USE,
    "AdminUpdateAppFunction": _DEFAULT_APP_ON_FIRST_USE | {"dynamodb:DeleteItem", "dynamodb:Query"},
    "AdminDeleteAppFunction": {"dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"},
    "AdminCreateKeyFunction": _DEFAULT_APP_ON_FIRST_USE,
    "AdminListKeysFunction": _DEFAULT_APP_ON_FIRST_USE | {"dynamodb:Query"},
    "AdminDeleteKeyFunction": _DEFAULT_APP_ON_FIRST_USE | {"dynamodb:Query", "dynamodb:DeleteItem"},
}
# The operator routes that read the stack-generated key of default (its digest lists it among default's keys).
STACK_KEY_READERS = {
    "AdminListAppsFunction",
    "AdminGetAppFunction",
    "AdminUpdateAppFunction",
    "AdminCreateKeyFunction",
    "AdminListKeysFunction",
    "AdminDeleteKeyFunction",
}
# The authorizer looks app keys up by digest, stores default's stack-generated key on first use and records a
# key's last use.
AUTHORIZER_TABLE_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
# API Gateway caches an authorizer's answer this long at most: with the authorizer's own key cache
# (KEY_CACHE_SECONDS) a revoked key or a deleted app's keys must be refused within this many seconds.
AUTHORIZER_TTL_SECONDS = 30
REVOCATION_SECONDS = 60
# Routes without the API key authorizer: public ones, and those that check a client or IdP token themselves (or,
# for the Twilio Verify facade, HTTP Basic with an app's API key).
PUBLIC_ROUTES = {
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/v1/health"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/hosted/challenge"),
    ("GET", "/v1/hosted/challenge.js"),
    ("GET", "/v1/hosted/challenge.css"),
    ("GET", "/v1/hosted/sms-otp.js"),
    ("POST", "/v1/client/sms/enroll"),
    ("POST", "/v1/client/sms/challenge"),
    ("POST", "/v1/client/sms/verify"),
    ("OPTIONS", "/v1/client/sms/enroll"),
    ("OPTIONS", "/v1/client/sms/challenge"),
    ("OPTIONS", "/v1/client/sms/verify"),
    ("POST", "/v1/verification/sms/send"),
    ("POST", "/v1/verification/sms/validate"),
    ("POST", "/v1/delivery-status/{provider}"),
    ("POST", "/twilio/v2/Services/{ServiceSid}/Verifications"),
    ("GET", "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}"),
    ("POST", "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}"),
    ("POST", "/twilio/v2/Services/{ServiceSid}/VerificationCheck"),
    ("POST", "/authsignal/v1/users/{userId}/actions/{action}"),
    ("GET", "/authsignal/v1/users/{userId}/actions/{action}/{idempotencyKey}"),
    ("PATCH", "/authsignal/v1/users/{userId}/actions/{action}/{idempotencyKey}"),
    ("GET", "/authsignal/v1/users/{userId}"),
    ("PATCH", "/authsignal/v1/users/{userId}"),
    ("DELETE", "/authsignal/v1/users/{userId}"),
    ("GET", "/authsignal/v1/users/{userId}/authenticators"),
    ("POST", "/authsignal/v1/users/{userId}/authenticators"),
    ("DELETE", "/authsignal/v1/users/{userId}/authenticators/{userAuthenticatorId}"),
    ("POST", "/authsignal/v1/validate"),
    ("POST", "/authsignal/v1/challenge"),
    ("POST", "/authsignal/v1/verify"),
    ("POST", "/authsignal/v1/claim"),
    ("POST", "/authsignal/v1/client/user-authenticators/sms"),
    ("OPTIONS", "/authsignal/v1/client/user-authenticators/sms"),
    ("POST", "/authsignal/v1/client/challenge/sms"),
    ("OPTIONS", "/authsignal/v1/client/challenge/sms"),
    ("POST", "/authsignal/v1/client/verify/sms"),
    ("OPTIONS", "/authsignal/v1/client/verify/sms"),
    ("GET", "/authsignal/v1/users"),
    ("GET", "/authsignal/v1/users/{userId}/actions"),
    ("GET", "/authsignal/v1/challenges"),
    ("POST", "/authsignal/v1/sessions"),
    ("POST", "/authsignal/v1/sessions/{operation}"),
    ("POST", "/authsignal/v1/sessions/user/revoke"),
    ("ANY", "/authsignal/v1/client/challenge"),
    ("ANY", "/authsignal/v1/client/challenge/{factor}"),
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}"),
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}/{step}"),
    ("ANY", "/authsignal/v1/client/user-authenticators/{factor}/{step}/{platform}"),
    ("ANY", "/authsignal/v1/client/verify/{factor}"),
    ("ANY", "/authsignal/v1/client/verify/{factor}/{step}"),
}
SENDERS = {
    "CreateChallengeFunction",
    "ResendChallengeFunction",
    "ClientEnrollFunction",
    "ClientChallengeFunction",
    "VerificationSendFunction",
    "TwilioVerifyFunction",
    "AuthsignalServerFunction",
    "AuthsignalClientFunction",
}
# The functions that verify a code: each reports the verified code's message as received to the provider that
# sent it (End User Messaging's message feedback, Twilio's), when the stack routes to that provider.
VERIFIERS = {
    "VerifyChallengeFunction",
    "ClientVerifyFunction",
    "VerificationValidateFunction",
    "TwilioVerifyFunction",
    "AuthsignalServerFunction",
    "AuthsignalClientFunction",
}
# The functions that check an app's API key themselves (the key authorizer, and the facades' HTTP Basic): the
# stack's key and the admin key are compared on every lookup.
KEY_CHECKERS = {"ApiKeyAuthorizerFunction", "TwilioVerifyFunction", "AuthsignalServerFunction"}
# Functions that are not a route but a second entry point of a route function's code: the function -> the one
# whose CodeUri it shares. End User Messaging's delivery events arrive from an SNS topic, not the route.
SECOND_ENTRY_POINTS = {"DeliveryEventsFunction": "DeliveryStatusFunction"}
# Settings of the fraud and spend guards, and the stack parameter each one comes from.
FRAUD_AND_SPEND_SETTINGS = {
    "fraud_guard_mode": "FraudGuardMode",
    "fraud_block_velocity_per_hour": "FraudBlockVelocityPerHour",
    "fraud_country_velocity_per_hour": "FraudCountryVelocityPerHour",
    "fraud_country_min_verified_percent": "FraudCountryMinVerifiedPercent",
    "fraud_verification_lag_seconds": "FraudVerificationLagSeconds",
    "fraud_conversion_min_challenges": "FraudConversionMinChallenges",
    "fraud_conversion_min_percent": "FraudConversionMinPercent",
    "fraud_block_hours": "FraudBlockHours",
    "sms_budget_per_hour": "SmsBudgetPerHour",
    "sms_budget_per_day": "SmsBudgetPerDay",
    "stack_sms_budget_per_day": "StackSmsBudgetPerDay",
}
NON_SETTINGS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
EXPECTED_OUTPUTS = {
    "ApiUrl",
    "TableName",
    "SigningKeyId",
    "SigningKeyAlias",
    "ApiKeySecretArn",
    "CodeSecretArn",
    "JwksUrl",
    "TokenIssuer",
    "TokenAudience",
    "SmsProviderSecretArn",
    "DeliveryStatusUrl",
    "AdminKeySecretArn",
    "AlarmTopicArn",
    "DashboardName",
}
SNS_TOPIC_WILDCARD = "arn:aws:sns:*:*:*"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode_str(TEMPLATE_PATH.read_text(encoding="utf-8"))
    assert not errors, [str(error) for error in errors]
    return dict(parsed)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


@pytest.fixture(scope="module")
def functions(resources: dict[str, Any]) -> dict[str, Any]:
    return {name: res for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function"}


@pytest.fixture(scope="module")
def api_events(functions: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(METHOD, path) -> (function name, Api event properties) for every Api event."""
    routes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for name, function in functions.items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                props = event["Properties"]
                key = (props["Method"].upper(), props["Path"])
                assert key not in routes, f"route {key} declared twice"
                routes[key] = (name, props)
    return routes


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


@functools.cache
def _managed_policies() -> dict[str, list[dict[str, Any]]]:
    """The statements of each AWS::IAM::ManagedPolicy the template defines, by logical ID."""
    parsed, errors = decode_str(TEMPLATE_PATH.read_text(encoding="utf-8"))
    assert not errors, [str(error) for error in errors]
    return {
        name: _as_list(resource["Properties"]["PolicyDocument"]["Statement"])
        for name, resource in parsed["Resources"].items()
        if resource["Type"] == "AWS::IAM::ManagedPolicy"
    }


def _policy_entries(function: dict[str, Any]) -> list[tuple[Any, str | None]]:
    """Each entry of a function's Policies with the condition it is attached under (None: always).

    An entry ``Fn::If [Cond, X, AWS::NoValue]`` is X under Cond: the policy is attached only in a stack where
    Cond holds (End User Messaging's, Twilio's). No other use of Fn::If is expected there.
    """
    entries: list[tuple[Any, str | None]] = []
    for policy in function["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Fn::If" in policy:
            assert set(policy) == {"Fn::If"}, policy
            condition, when_true, when_false = policy["Fn::If"]
            assert isinstance(condition, str), policy
            assert when_false == {"Ref": "AWS::NoValue"}, f"{policy!r}: a conditional policy or none, not two"
            assert not (isinstance(when_true, dict) and "Fn::If" in when_true), f"{policy!r}: nested Fn::If"
            entries.append((when_true, condition))
        else:
            entries.append((policy, None))
    return entries


def _attached_policies(function: dict[str, Any]) -> dict[str, str | None]:
    """The template's managed policies a function attaches, each with the condition it is attached under."""
    return {
        policy["Ref"]: condition
        for policy, condition in _policy_entries(function)
        if isinstance(policy, dict) and set(policy) == {"Ref"}
    }


def _conditional_statements(function: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """A function's inline statements and those of the template's managed policies it attaches, each with the
    condition of the Fn::If its policy entry sits in (None: unconditional)."""
    statements: list[tuple[dict[str, Any], str | None]] = []
    for policy, condition in _policy_entries(function):
        if isinstance(policy, dict) and "Statement" in policy:
            found = _as_list(policy["Statement"])
        elif isinstance(policy, dict) and set(policy) == {"Ref"}:
            found = _managed_policies()[policy["Ref"]]
        else:
            raise AssertionError(f"unexpected policy entry {policy!r}: inline statements or a Ref to ours only")
        statements.extend((statement, condition) for statement in found)
    return statements


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    """A function's inline statements and those of the template's managed policies it attaches, conditional
    ones included: every statement the function holds in some stack."""
    return [statement for statement, _ in _conditional_statements(function)]


def _grant_conditions(
    functions: dict[str, Any], action: str, logical_id: str | None = None
) -> dict[str, set[str | None]]:
    """The functions holding ``action`` (on a Resource referring to ``logical_id``, if given), each with the
    conditions of the policy entries that grant it (None: an unconditional entry)."""
    found: dict[str, set[str | None]] = {}
    for name, function in functions.items():
        for statement, condition in _conditional_statements(function):
            if action not in _actions(statement):
                continue
            if logical_id is not None and not _refers_to(statement.get("Resource"), logical_id):
                continue
            found.setdefault(name, set()).add(condition)
    return found


def _all_statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, res in resources.items():
        if res["Type"] == "AWS::Serverless::Function":
            found.extend((name, statement) for statement in _statements(res))
        elif res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                found.extend((name, s) for s in _as_list(policy["PolicyDocument"]["Statement"]))
        elif res["Type"] == "AWS::IAM::Policy":
            found.extend((name, s) for s in _as_list(res["Properties"]["PolicyDocument"]["Statement"]))
        elif res["Type"] == "AWS::IAM::ManagedPolicy":
            # Counted once per function that attaches it (above), and never attached to anything else.
            attached = [
                other
                for other in resources.values()
                if other["Type"] == "AWS::Serverless::Function" and name in _attached_policies(other)
            ]
            assert attached, f"managed policy {name} is attached to no function"
            assert "Roles" not in res["Properties"] and "Users" not in res["Properties"], name
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    return [action for action in _as_list(statement.get("Action", [])) if isinstance(action, str)]


def _refers_to(value: Any, logical_id: str) -> bool:
    """True when value is a Ref or GetAtt to logical_id (possibly inside a list or Fn::If)."""
    if isinstance(value, list):
        return any(_refers_to(item, logical_id) for item in value)
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] == logical_id:
            return True
        if isinstance(get_att, str) and get_att.split(".")[0] == logical_id:
            return True
        return any(_refers_to(item, logical_id) for item in value.values())
    return False


@functools.cache
def _local_template() -> Template:
    """template.yaml as the local stack reads it."""
    return Template.load(TEMPLATE_PATH)


def _resolver(environ: dict[str, str]) -> Resolver:
    """The local stack's resolver of the template for a stack with these parameter values (by name)."""
    return Resolver(_local_template(), environ=environ)


# ---------------------------------------------------------------- functions and layer


def _top_level_functions(path: Path) -> set[str]:
    """The names of the functions a module defines at its top level (read, not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_function_has_its_own_code_uri_and_no_layers(functions: dict[str, Any]) -> None:
    # Given the template's functions, less those that are a second entry point of another one's code
    own = {name: function for name, function in functions.items() if name not in SECOND_ENTRY_POINTS}
    code_uris = [function["Properties"].get("CodeUri") for function in own.values()]

    # Then each ships only its own folder, and none lists a layer of its own
    # The routes' functions (the hosted page's one serves the page and its assets) and the authorizer
    assert len(own) == len(set(ROUTES.values())) + 1
    assert set(SECOND_ENTRY_POINTS) <= set(functions)
    assert all(isinstance(uri, str) and uri.startswith("functions/") for uri in code_uris), code_uris
    assert len(set(code_uris)) == len(code_uris)
    for name, function in functions.items():
        assert "Layers" not in function["Properties"], f"{name} lists a layer; declare it only in Globals"
        assert (REPO_ROOT / function["Properties"]["CodeUri"]).is_dir(), f"{name}: missing CodeUri folder"

    # And a second entry point ships exactly its sibling's folder through another handler the module defines
    for name, sibling in SECOND_ENTRY_POINTS.items():
        props, sibling_props = functions[name]["Properties"], functions[sibling]["Properties"]
        assert props["CodeUri"] == sibling_props["CodeUri"], name
        module, handler = props["Handler"].split(".")
        sibling_module, sibling_handler = sibling_props["Handler"].split(".")
        assert (module, sibling_module) == ("app", "app"), name
        assert handler != sibling_handler, name
        defined = _top_level_functions(REPO_ROOT / props["CodeUri"] / f"{module}.py")
        assert {handler, sibling_handler} <= defined, (name, defined)


def test_globals_declare_the_layer_once(template: dict[str, Any], resources: dict[str, Any]) -> None:
    # Given the global function settings
    function_globals = template["Globals"]["Function"]

    # Then the one layer is declared there and is built from the layer folder for arm64
    assert function_globals["Layers"] == [{"Ref": "OtpCoreLayer"}]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    layer = resources["OtpCoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/otp_core/"
    # The layer's Makefile builds for python3.13 without a second botocore, and precompiles it.
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (REPO_ROOT / "layers" / "otp_core" / "Makefile").read_text(encoding="utf-8")
    assert "build-OtpCoreLayer:" in makefile
    assert "--python-version 3.13" in makefile
    assert "compileall" in makefile


# ---------------------------------------------------------------- routes and auth


def test_every_contract_route_exists(api_events: dict[tuple[str, str], tuple[str, dict[str, Any]]]) -> None:
    # Given the Api events of all functions
    routes = {key: name for key, (name, _) in api_events.items()}

    # Then they are exactly the contract's routes, each served by its function, on the one Api
    assert routes == ROUTES
    assert all(props["RestApiId"] == {"Ref": "Api"} for _, props in api_events.values())
    assert not any("{proxy+}" in path for _, path in routes)


def test_public_routes_skip_the_authorizer_and_all_others_use_it(
    resources: dict[str, Any], api_events: dict[tuple[str, str], tuple[str, dict[str, Any]]]
) -> None:
    # Given the Api's default authorizer
    auth = resources["Api"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "ApiKeyAuthorizer"
    authorizer = auth["Authorizers"]["ApiKeyAuthorizer"]
    assert authorizer["FunctionPayloadType"] == "TOKEN"
    assert _refers_to(authorizer["FunctionArn"], "ApiKeyAuthorizerFunction")
    assert authorizer["Identity"]["Header"] == "Authorization"

    # Then only the public routes opt out of it, and only the admin routes name another one
    for key, (_, props) in api_events.items():
        route_authorizer = props.get("Auth", {}).get("Authorizer")
        if key in PUBLIC_ROUTES:
            assert route_authorizer == "NONE", key
        elif key in ADMIN_ROUTES:
            assert route_authorizer == "AdminKeyAuthorizer", key
        else:
            assert route_authorizer in (None, "ApiKeyAuthorizer"), key


def test_admin_routes_use_the_admin_authorizer_on_the_same_function(resources: dict[str, Any]) -> None:
    # Given the Api's two authorizers
    authorizers = resources["Api"]["Properties"]["Auth"]["Authorizers"]
    assert set(authorizers) == {"ApiKeyAuthorizer", "AdminKeyAuthorizer"}

    # Then the admin one is the same TOKEN authorizer function with the same header, validation and cache
    # (API Gateway caches each authorizer's policies apart, so an app key's policy never serves an admin route)
    assert authorizers["AdminKeyAuthorizer"] == authorizers["ApiKeyAuthorizer"]
    ttl = int(authorizers["AdminKeyAuthorizer"]["Identity"]["ReauthorizeEvery"])
    assert ttl == AUTHORIZER_TTL_SECONDS

    # And a revoked key, or a deleted app's, is refused within 60 seconds: API Gateway may reuse a cached Allow
    # for the TTL, and the authorizer its cached key lookup for KEY_CACHE_SECONDS before that
    assert ttl <= 30
    assert ttl + KEY_CACHE_SECONDS <= REVOCATION_SECONDS


def test_admin_routes_are_left_out_unless_the_admin_api_is_enabled(
    template: dict[str, Any], resources: dict[str, Any], functions: dict[str, Any]
) -> None:
    # Given the AdminApi parameter and its condition
    parameter = template["Parameters"]["AdminApi"]
    assert parameter["Default"] == "enabled"
    assert parameter["AllowedValues"] == ["enabled", "disabled"]
    assert template["Conditions"]["AdminApiEnabled"] == {"Fn::Equals": [{"Ref": "AdminApi"}, "enabled"]}

    # Then exactly the admin functions and their log groups carry it
    conditional = {name for name, function in functions.items() if function.get("Condition") == "AdminApiEnabled"}
    assert conditional == ADMIN_FUNCTIONS
    for name in ADMIN_FUNCTIONS:
        log_group = functions[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[log_group].get("Condition") == "AdminApiEnabled", name
        assert functions[name]["Properties"]["Handler"] == "app.lambda_handler"
        assert functions[name]["Properties"]["CodeUri"].startswith("functions/admin_")


def test_admin_functions_reach_only_the_table_with_the_actions_of_their_route(functions: dict[str, Any]) -> None:
    for name, expected in ADMIN_TABLE_ACTIONS.items():
        # Given an admin function's statements, those on the table and the others
        statements = _statements(functions[name])
        table = [s for s in statements if s.get("Resource") == {"Fn::GetAtt": ["Table", "Arn"]}]
        others = [s for s in statements if s not in table]

        # Then they allow exactly its route's table actions, on the table
        actions = {action for statement in table for action in _actions(statement)}
        assert actions == expected, name
        assert all(statement["Effect"] == "Allow" for statement in statements), name
        assert all(set(statement) <= {"Sid", "Effect", "Action", "Resource"} for statement in statements), name

        # And nothing else but, for the routes that list default's keys, reading the stack-generated key
        if name in STACK_KEY_READERS:
            assert [(_actions(s), s["Resource"]) for s in others] == [
                (["secretsmanager:GetSecretValue"], {"Ref": "ApiKeySecret"})
            ], name
        else:
            assert others == [], name
    assert set(ADMIN_TABLE_ACTIONS) == ADMIN_FUNCTIONS
    assert STACK_KEY_READERS < ADMIN_FUNCTIONS


def test_the_authorizer_reaches_the_table_only_to_look_keys_up_store_defaults_and_record_use(
    functions: dict[str, Any],
) -> None:
    # Given the authorizer's statements on the table
    statements = _statements(functions["ApiKeyAuthorizerFunction"])
    table = [s for s in statements if any(action.startswith("dynamodb:") for action in _actions(s))]

    # Then they are exactly its key lookups and writes, on the table
    assert {action for statement in table for action in _actions(statement)} == AUTHORIZER_TABLE_ACTIONS
    assert all(statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]} for statement in table)
    # And besides them it holds only the two keys' secrets
    others = [s for s in statements if s not in table]
    assert {action for statement in others for action in _actions(statement)} == {"secretsmanager:GetSecretValue"}


def test_only_senders_signed_in_verification_and_listing_admin_routes_may_query(functions: dict[str, Any]) -> None:
    # Given the functions that may query the table
    querying = {
        name
        for name, function in functions.items()
        for statement in _statements(function)
        if "dynamodb:Query" in _actions(statement)
    }

    # Then they are: the senders (the fraud guard reads every block and safe list in one query, cached a few
    # seconds, before a send), signed-in verification (the apps partition, cached 30 seconds: whose identity
    # provider issued the user's token), the hosted page and the client routes' preflights and answers (the apps
    # partition, cached 30 seconds: every app's allowedOrigins frame the page and may call the client routes) and
    # the operator routes that list blocks, apps or keys
    listing_admin = {name for name, actions in ADMIN_TABLE_ACTIONS.items() if "dynamodb:Query" in actions}
    browser_facing = {"HostedPageFunction", "ClientPreflightFunction", "ClientVerifyFunction"}
    assert querying == SENDERS | {"VerificationValidateFunction"} | browser_facing | listing_admin
    assert listing_admin == {
        "AdminListBlocksFunction",
        "AdminCreateAppFunction",
        "AdminListAppsFunction",
        "AdminUpdateAppFunction",
        "AdminDeleteAppFunction",
        "AdminListKeysFunction",
        "AdminDeleteKeyFunction",
    }


def test_gateway_responses_are_problem_json(resources: dict[str, Any]) -> None:
    # Given the Api's gateway responses
    responses = resources["Api"]["Properties"]["GatewayResponses"]
    expected = {
        "UNAUTHORIZED": (401, "UNAUTHORIZED"),
        "ACCESS_DENIED": (403, "FORBIDDEN"),
        "MISSING_AUTHENTICATION_TOKEN": (404, "NOT_FOUND"),
        "THROTTLED": (429, "RATE_LIMITED"),
        "BAD_REQUEST_BODY": (400, "INVALID_REQUEST"),
        "DEFAULT_4XX": (400, "INVALID_REQUEST"),
        "DEFAULT_5XX": (503, "SERVICE_UNAVAILABLE"),
    }

    # Then each has the contract's status, code and problem shape
    for response_type, (status, code) in expected.items():
        response = responses[response_type]
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert int(response["StatusCode"]) == status, response_type
        assert body == {
            "type": "about:blank",
            "title": body["title"],
            "status": status,
            "detail": body["detail"],
            "code": code,
        }, response_type
        assert response["ResponseParameters"]["Headers"]["Content-Type"] == "'application/problem+json'"
    assert responses["THROTTLED"]["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"


# ---------------------------------------------------------------- logging


def test_every_function_logs_to_its_own_log_group_with_retention(
    functions: dict[str, Any], resources: dict[str, Any]
) -> None:
    log_groups_used = []
    for name, function in functions.items():
        # Given the function's logging configuration
        log_group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert isinstance(log_group_ref, dict), name
        assert "Ref" in log_group_ref, name
        log_group = resources[log_group_ref["Ref"]]

        # Then it is an explicit log group with the retention parameter
        assert log_group["Type"] == "AWS::Logs::LogGroup", name
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        # And it exists exactly when the function does
        assert log_group.get("Condition") == function.get("Condition"), name
        log_groups_used.append(log_group_ref["Ref"])
    assert len(set(log_groups_used)) == len(functions)


def test_api_access_logs_go_to_an_explicit_log_group(resources: dict[str, Any]) -> None:
    api = resources["Api"]["Properties"]
    assert _refers_to(api["AccessLogSetting"]["DestinationArn"], "ApiAccessLogGroup")
    assert resources["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert api["TracingEnabled"] is True
    # Bodies carry phone numbers and codes: execution logs must never include them.
    assert all(setting.get("DataTraceEnabled") is False for setting in api["MethodSettings"])


# ---------------------------------------------------------------- IAM


def test_sns_publish_is_limited_to_phone_numbers(resources: dict[str, Any]) -> None:
    # Given every IAM statement in the template
    publishing = [
        (name, s)
        for name, s in _all_statements(resources)
        if any(action in ("sns:Publish", "sns:*") for action in _actions(s))
    ]

    # Then only the sending functions may publish, and never to a topic
    assert {name for name, _ in publishing} == SENDERS
    for name, statement in publishing:
        assert "Resource" not in statement, f"{name}: sns:Publish must not have a Resource"
        assert statement["NotResource"] == SNS_TOPIC_WILDCARD, name


def test_no_statement_grants_wildcard_actions(resources: dict[str, Any]) -> None:
    for name, statement in _all_statements(resources):
        actions = _actions(statement)
        assert "*" not in actions, name
        assert "dynamodb:*" not in actions, name
        assert not any(action.endswith(":*") for action in actions), (name, actions)
        assert "NotAction" not in statement, name


def test_a_conditional_managed_policy_is_attached_only_where_it_exists(
    resources: dict[str, Any], functions: dict[str, Any]
) -> None:
    # Given the template's managed policies that exist only under a condition
    conditional = {
        name: res["Condition"]
        for name, res in resources.items()
        if res["Type"] == "AWS::IAM::ManagedPolicy" and "Condition" in res
    }
    assert {"EumSendPolicy", "EumFeedbackPolicy"} <= set(conditional)

    # Then a function attaches one only under its condition: in an Fn::If on it, or being under it itself
    for name, function in functions.items():
        for policy, condition in _attached_policies(function).items():
            if policy in conditional:
                assert conditional[policy] in (condition, function.get("Condition")), (name, policy)
            # And an Fn::If entry is on a condition of the template
            assert condition is None or condition in _local_template().conditions, (name, condition)


def test_table_access_is_scoped_to_the_table(functions: dict[str, Any]) -> None:
    for name, function in functions.items():
        assert not any(
            isinstance(policy, dict) and "DynamoDBCrudPolicy" in policy
            for policy in function["Properties"].get("Policies", [])
        ), name
        for statement in _statements(function):
            if any(action.startswith("dynamodb:") for action in _actions(statement)):
                assert statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]}, name


def test_secrets_and_keys_go_only_to_the_functions_that_need_them(functions: dict[str, Any]) -> None:
    # Given which function reads which secret and uses which key
    def holders(action: str, logical_id: str) -> set[str]:
        return {
            name
            for name, function in functions.items()
            for statement in _statements(function)
            if action in _actions(statement) and _refers_to(statement.get("Resource"), logical_id)
        }

    # Then only the expected functions hold each permission
    code_readers = SENDERS | {
        "VerifyChallengeFunction",
        "ClientVerifyFunction",
        "VerificationValidateFunction",
        "TrackFunction",
    }
    assert holders("secretsmanager:GetSecretValue", "CodeSecret") == code_readers
    assert holders("secretsmanager:GetSecretValue", "ApiKeySecret") == KEY_CHECKERS | STACK_KEY_READERS
    assert holders("secretsmanager:GetSecretValue", "AdminKeySecret") == KEY_CHECKERS
    # Tokens are signed by the functions that issue them: verify, track, client verify, and the Authsignal facade's
    # track, claim and client verify
    assert holders("kms:Sign", "SigningKey") == {
        "VerifyChallengeFunction",
        "TrackFunction",
        "ClientVerifyFunction",
        "AuthsignalServerFunction",
        "AuthsignalClientFunction",
    }
    assert holders("kms:GetPublicKey", "SigningKey") == {
        "JwksFunction",
        "ValidateFunction",
        "ClientEnrollFunction",
        "ClientChallengeFunction",
        "ClientVerifyFunction",
        "AuthsignalServerFunction",
        "AuthsignalClientFunction",
    }
    # And the providers' secret goes to the senders and the delivery-status route (the callbacks' signing
    # secrets) and, only in a stack that routes to Twilio, to the verifiers (Twilio's conversion feedback; a
    # verifier that also sends holds it always)
    assert _grant_conditions(functions, "secretsmanager:GetSecretValue", "SmsProviderSecret") == {
        **{name: {"HasTwilio"} for name in VERIFIERS},
        **{name: {None} for name in SENDERS | {"DeliveryStatusFunction"}},
    }
    # And no function may use the delivery events' key (End User Messaging encrypts, SNS decrypts)
    assert not any(_refers_to(_statements(function), "EumEventsKey") for function in functions.values())
    # And the functions that call no AWS service hold no statement at all
    for name in ("HealthFunction", "OpenApiFunction"):
        assert "Policies" not in functions[name]["Properties"], name


def test_jwks_reads_other_keys_only_when_retired_keys_are_configured(functions: dict[str, Any]) -> None:
    # Given the JWKS function's key statement
    (statement,) = [s for s in _statements(functions["JwksFunction"]) if "kms:GetPublicKey" in _actions(s)]

    # Then the account-wide key ARN appears only in the branch of the retired-keys condition
    condition, with_retired, without_retired = statement["Resource"]["Fn::If"]
    assert condition == "HasRetiredSigningKeys"
    assert any("key/*" in json.dumps(item) for item in with_retired)
    assert "key/*" not in json.dumps(without_retired)


# ---------------------------------------------------------------- data and keys


def test_table_has_ttl_pitr_and_encryption(resources: dict[str, Any]) -> None:
    table = resources["Table"]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_signing_key_is_an_es256_kms_key(resources: dict[str, Any]) -> None:
    key = resources["SigningKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    assert key["DeletionPolicy"] == "Retain"
    assert resources["SigningKeyAlias"]["Properties"]["TargetKeyId"] == {"Ref": "SigningKey"}


def test_admin_key_secret_is_generated_like_the_api_key(resources: dict[str, Any]) -> None:
    secret = resources["AdminKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "Condition" not in secret  # the authorizer compares against it on every call
    assert secret["Properties"]["GenerateSecretString"] == {"PasswordLength": 64, "ExcludePunctuation": True}
    assert resources["ApiKeySecret"]["Properties"]["GenerateSecretString"]["ExcludePunctuation"] is True


def test_no_hard_coded_account_or_region(template: dict[str, Any]) -> None:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert not re.search(r"\b\d{12}\b", text), "hard-coded account ID"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text), "hard-coded region"


# ---------------------------------------------------------------- parameters, settings, outputs


def test_every_parameter_has_a_description_and_default(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        assert parameter.get("Description"), name
        assert "Default" in parameter, name


def test_parameters_are_grouped_in_the_console(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])


def test_environment_variables_match_the_settings_model(template: dict[str, Any]) -> None:
    # Given the global environment variables and the settings model
    variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    own = {
        name
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for name in resource["Properties"].get("Environment", {}).get("Variables", {})
    }
    settings_names = {field.upper() for field in Settings.model_fields}
    # The per-app settings with no stack parameter: an app sets them through the admin API only
    app_only = {field.upper() for field in APP_ONLY_SETTINGS}
    assert app_only <= settings_names

    # Then every variable is a setting (or Powertools') and every other setting is passed, globally or to its
    # functions, while the app-only ones are never passed
    assert (variables | own) - NON_SETTINGS_VARIABLES <= settings_names
    assert settings_names - app_only <= variables | own, settings_names - app_only - variables - own
    assert not app_only & (variables | own)
    assert variables >= NON_SETTINGS_VARIABLES


def test_parameter_defaults_are_valid_settings(template: dict[str, Any]) -> None:
    # Given the global environment with each parameter's default substituted
    parameters = template["Parameters"]
    environment = {}
    for name, value in template["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict) and value.get("Ref") in parameters:
            environment[name] = str(parameters[value["Ref"]]["Default"])

    # When the settings are built from it
    settings = Settings.from_env(environment)

    # Then they equal the model's own defaults (the contract's policy table)
    defaults = Settings()
    for field in ("code_length", "code_ttl_seconds", "max_attempts", "resend_cooldown_seconds"):
        assert getattr(settings, field) == getattr(defaults, field), field
    for field in ("max_sends_per_10_minutes", "max_sends_per_day", "max_sends_per_ip_per_hour"):
        assert getattr(settings, field) == getattr(defaults, field), field
    for field in ("lockout_threshold", "lockout_window_seconds", "lockout_seconds", "token_ttl_seconds"):
        assert getattr(settings, field) == getattr(defaults, field), field
    for field in ("allowed_countries", "blocked_countries", "allowed_number_types", "sms_providers"):
        assert getattr(settings, field) == getattr(defaults, field), field
    for field in FRAUD_AND_SPEND_SETTINGS:
        assert getattr(settings, field) == getattr(defaults, field), field


def test_fraud_and_spend_parameters_reach_every_function(template: dict[str, Any]) -> None:
    # Given the global environment
    variables = template["Globals"]["Function"]["Environment"]["Variables"]

    # Then each fraud and spend setting is passed, from its parameter, to every function
    for field, parameter in FRAUD_AND_SPEND_SETTINGS.items():
        assert variables[field.upper()] == {"Ref": parameter}, field
        assert parameter in template["Parameters"], parameter
    assert variables["ADMIN_KEY_SECRET_ID"] == {"Ref": "AdminKeySecret"}


def test_the_fraud_guard_modes_are_the_settings_modes(template: dict[str, Any]) -> None:
    # Given the mode the settings accept (a Literal) and the parameter's allowed values
    modes = Settings.model_fields["fraud_guard_mode"].annotation
    parameter = template["Parameters"]["FraudGuardMode"]

    # Then they are the same, with the settings' default
    assert tuple(parameter["AllowedValues"]) == typing.get_args(modes)
    assert parameter["Default"] == Settings().fraud_guard_mode == "block"


def test_test_numbers_are_refused_unless_the_stack_allows_them(template: dict[str, Any]) -> None:
    # Given the AllowTestNumbers parameter and the variable it sets for every function
    parameter = template["Parameters"]["AllowTestNumbers"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ALLOW_TEST_NUMBERS"] == {"Ref": "AllowTestNumbers"}

    # Then it is off by default, like the settings, and each of its values is a valid setting
    assert parameter["Type"] == "String"
    assert parameter["AllowedValues"] == ["true", "false"]
    assert parameter["Default"] == "false"
    assert Settings().allow_test_numbers is False
    assert Settings.from_env({"ALLOW_TEST_NUMBERS": parameter["Default"]}).allow_test_numbers is False
    assert Settings.from_env({"ALLOW_TEST_NUMBERS": "true"}).allow_test_numbers is True


def test_template_only_parameters_have_their_defaults_and_bounds(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["AlarmEmail"]["Default"] == ""
    pattern = re.compile(parameters["AlarmEmail"]["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("ops@example.com")
    assert not pattern.fullmatch("not an address")
    for name, default, low, high in (
        ("ConversionAlarmPercent", 50, 0, 100),
        ("DeliveryFailureAlarmPercent", 20, 1, 100),
    ):
        parameter = parameters[name]
        assert parameter["Type"] == "Number", name
        assert (int(parameter["Default"]), int(parameter["MinValue"]), int(parameter["MaxValue"])) == (
            default,
            low,
            high,
        ), name


def test_numeric_parameter_bounds_match_the_settings_model(template: dict[str, Any]) -> None:
    # Given each numeric setting's pydantic bounds
    parameters = template["Parameters"]
    for name, value in template["Globals"]["Function"]["Environment"]["Variables"].items():
        if not (isinstance(value, dict) and value.get("Ref") in parameters):
            continue
        parameter = parameters[value["Ref"]]
        if parameter["Type"] != "Number":
            continue
        field = Settings.model_fields[name.lower()]
        bounds = {type(m).__name__: m for m in field.metadata}

        # Then the parameter allows exactly the same range
        assert int(parameter["MinValue"]) == bounds["Ge"].ge, name
        assert int(parameter["MaxValue"]) == bounds["Le"].le, name


def test_outputs_exist_with_descriptions(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= EXPECTED_OUTPUTS
    for name in EXPECTED_OUTPUTS:
        assert outputs[name].get("Description"), name
    assert "aws secretsmanager get-secret-value" in outputs["ApiKeySecretArn"]["Description"]
    assert "aws secretsmanager get-secret-value" in outputs["AdminKeySecretArn"]["Description"]
    assert outputs["AdminKeySecretArn"]["Value"] == {"Ref": "AdminKeySecret"}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert outputs["DashboardName"]["Value"] == {"Ref": "Dashboard"}


# ---------------------------------------------------------------- events


def _event_files() -> list[Path]:
    return sorted(EVENTS_DIR.glob("*.json"))


def _folder_of(event_file: Path) -> str:
    """The function folder an event belongs to: its stem, less a variant suffix (delivery_status_twilio)."""
    folders = {path.name for path in (REPO_ROOT / "functions").iterdir() if path.is_dir()}
    stem = event_file.stem
    return stem if stem in folders else stem.rsplit("_", 1)[0]


def test_there_is_an_event_per_function(functions: dict[str, Any]) -> None:
    folders = {Path(function["Properties"]["CodeUri"]).name for function in functions.values()}
    assert {_folder_of(path) for path in _event_files()} == folders


@pytest.mark.parametrize("path", _event_files(), ids=lambda path: path.name)
def test_event_matches_a_template_route(
    path: Path,
    functions: dict[str, Any],
    api_events: dict[tuple[str, str], tuple[str, dict[str, Any]]],
) -> None:
    # Given an event file
    event = json.loads(path.read_text(encoding="utf-8"))

    if _folder_of(path) == "authorizer":
        # Then the authorizer events are TOKEN events the authorizer's validation expression accepts: the API key
        # on a server route, and the admin key on an admin route (authorizer_admin)
        assert event["type"] == "TOKEN"
        assert re.match(r"^Bearer [-0-9A-Za-z._~+/]+=*$", event["authorizationToken"])
        assert event["methodArn"].startswith("arn:aws:execute-api:")
        admin = path.stem == "authorizer_admin"
        assert event["authorizationToken"] == ("Bearer local-admin-key" if admin else "Bearer local-dev-key")
        assert ("/v1/admin/" in event["methodArn"]) is admin
        return

    if "Records" in event:
        # Then an SNS event is one for the function subscribed to the delivery events topic
        _assert_is_a_delivery_events_notification(event, path, functions)
        return

    # Then it is a REST (v1) proxy event for a route of the template
    key = (event["httpMethod"], event["resource"])
    assert key in api_events, key
    assert event["requestContext"]["resourcePath"] == event["resource"]
    assert event["requestContext"]["httpMethod"] == event["httpMethod"]
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["identity"]["sourceIp"]
    assert event["requestContext"]["requestId"]
    function_name = api_events[key][0]
    assert Path(functions[function_name]["Properties"]["CodeUri"]).name == _folder_of(path)

    # And its concrete path fits the route's template with its path parameters
    expected_path = event["resource"]
    for name, value in (event.get("pathParameters") or {}).items():
        expected_path = expected_path.replace("{" + name + "}", value)
    assert event["path"] == expected_path
    assert "{" not in expected_path
    for name, values in event["multiValueHeaders"].items():
        assert event["headers"][name] == values[-1]
    if key in PUBLIC_ROUTES:
        assert "authorizer" not in event["requestContext"]
    else:
        assert event["headers"]["Authorization"].startswith("Bearer ")
        assert event["requestContext"]["authorizer"]["principalId"]
    # An admin route's event carries the local admin key and the context the authorizer gives it
    if key in ADMIN_ROUTES:
        assert event["headers"]["Authorization"] == "Bearer local-admin-key"
        assert event["requestContext"]["authorizer"]["keyId"] == "admin"
    elif key not in PUBLIC_ROUTES:
        assert event["headers"]["Authorization"] == "Bearer local-dev-key"
    if event["body"] is not None and event["headers"].get("Content-Type", "application/json") == "application/json":
        json.loads(event["body"])
        assert event["headers"]["Content-Type"] == "application/json"


def _assert_is_a_delivery_events_notification(event: dict[str, Any], path: Path, functions: dict[str, Any]) -> None:
    """An SNS event (Lambda's shape) of End User Messaging's delivery events topic, for its subscriber's folder."""
    subscribers = [
        name
        for name, function in functions.items()
        for other in function["Properties"].get("Events", {}).values()
        if other["Type"] == "SNS" and other["Properties"]["Topic"] == {"Ref": "EumEventsTopic"}
    ]
    assert [Path(functions[name]["Properties"]["CodeUri"]).name for name in subscribers] == [_folder_of(path)]
    topic = _local_template().resources["EumEventsTopic"]["Properties"]
    matched = _local_template().resources["EumConfigurationSet"]["Properties"]["EventDestinations"][0]
    assert event["Records"]
    for record in event["Records"]:
        assert record["EventSource"] == "aws:sns"
        assert record["EventSubscriptionArn"].startswith(record["Sns"]["TopicArn"] + ":")
        notification = record["Sns"]
        assert notification["Type"] == "Notification"
        assert notification["TopicArn"].startswith("arn:aws:sns:")
        # signed as the topic signs (SignatureVersion 2: SHA256withRSA), by a certificate of SNS's own host
        assert notification["SignatureVersion"] == str(topic["SignatureVersion"])
        assert re.match(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com/", notification["SigningCertUrl"])
        # and its message is an event of a type the configuration set sends, naming a message
        message = json.loads(notification["Message"])
        assert message["eventType"] in matched["MatchingEventTypes"]
        assert message["messageId"]


# ---------------------------------------------------------------- alarms and dashboard

ALARM_TYPE = "AWS::CloudWatch::Alarm"


def _alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res["Type"] == ALARM_TYPE}


def _metric_queries(alarm: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    """The alarm's Metrics entries, each with the condition of the Fn::If it sits in (None: unconditional)."""
    found: list[tuple[dict[str, Any], str | None]] = []
    for entry in alarm["Properties"].get("Metrics", []):
        if "Fn::If" in entry:
            condition, when_true, when_false = entry["Fn::If"]
            assert when_false == {"Ref": "AWS::NoValue"}, entry
            found.append((when_true, condition))
        else:
            found.append((entry, None))
    return found


def _dimension(stat: dict[str, Any], name: str) -> Any:
    (value,) = [d["Value"] for d in stat["Metric"]["Dimensions"] if d["Name"] == name]
    return value


def _custom_metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    props = alarm["Properties"]
    dimensions = {d["Name"]: d["Value"] for d in props["Dimensions"]}
    return props["Namespace"], props["MetricName"], dimensions


def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_clears(resources: dict[str, Any]) -> None:
    alarms = _alarms(resources)
    assert len(alarms) >= 10
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name
        assert props.get("AlarmDescription"), name
        assert props["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources: dict[str, Any]) -> None:
    # Given the topic and its key
    topic = resources["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]["Properties"]

    # Then CloudWatch may encrypt notifications with it (the AWS managed aws/sns key cannot allow that)
    assert key["EnableKeyRotation"] is True
    (statement,) = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal", {}).get("Service")]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]

    # And the e-mail subscription exists only when AlarmEmail is set
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_custom_metric_alarms_read_the_powertools_namespace_and_service(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the namespace and service dimension Powertools emits under
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]

    # Then a tripped bucket alarms on one SmsPumpingSuspected in 5 minutes
    pumping = resources["PumpingSuspectedAlarm"]["Properties"]
    assert _custom_metric(resources["PumpingSuspectedAlarm"]) == (
        namespace,
        "SmsPumpingSuspected",
        {"service": service},
    )
    assert (pumping["Statistic"], int(pumping["Period"]), int(pumping["Threshold"])) == ("Sum", 300, 1)
    assert pumping["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"

    # And a budget above 80 % alarms on the highest SmsBudgetUsedPercent
    budget = resources["SmsBudgetAlarm"]["Properties"]
    assert _custom_metric(resources["SmsBudgetAlarm"]) == (namespace, "SmsBudgetUsedPercent", {"service": service})
    assert (budget["Statistic"], int(budget["Threshold"])) == ("Maximum", 80)
    assert budget["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"

    # And the metric math alarms read the same namespace and service
    for name in ("ConversionAlarm", "DeliveryFailureAlarm"):
        for query, _ in _metric_queries(resources[name]):
            if "MetricStat" in query:
                assert query["MetricStat"]["Metric"]["Namespace"] == namespace, name
                assert _dimension(query["MetricStat"], "service") == service, name


def test_conversion_alarm_judges_an_hour_with_at_least_20_sends(resources: dict[str, Any]) -> None:
    # Given the conversion alarm's queries
    alarm = resources["ConversionAlarm"]["Properties"]
    queries = {query["Id"]: query for query, _ in _metric_queries(resources["ConversionAlarm"])}

    # Then it watches verified per sent over an hour, only once 20 were sent, below ConversionAlarmPercent
    assert queries["sent"]["MetricStat"]["Metric"]["MetricName"] == "SmsSent"
    assert queries["verified"]["MetricStat"]["Metric"]["MetricName"] == "SmsVerified"
    assert {int(queries[i]["MetricStat"]["Period"]) for i in ("sent", "verified")} == {3600}
    expression = queries["conversion"]["Expression"]
    assert queries["conversion"]["ReturnData"] is True
    assert expression.replace(" ", "").startswith("IF(sent>=20,")
    assert "FILL(verified, 0)" in expression
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == {"Ref": "ConversionAlarmPercent"}


def test_delivery_failure_alarm_is_a_share_of_the_delivery_reports(resources: dict[str, Any]) -> None:
    alarm = resources["DeliveryFailureAlarm"]["Properties"]
    queries = {query["Id"]: query for query, _ in _metric_queries(resources["DeliveryFailureAlarm"])}
    # The delivery outcomes the layer counts (otp_core.sms.reports)
    assert queries["delivered"]["MetricStat"]["Metric"]["MetricName"] == "SmsDelivered"
    assert queries["undelivered"]["MetricStat"]["Metric"]["MetricName"] == "SmsUndelivered"
    assert "100 * FILL(undelivered, 0)" in queries["failurerate"]["Expression"]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == {"Ref": "DeliveryFailureAlarmPercent"}


def test_api_5xx_alarm_watches_the_stage(resources: dict[str, Any]) -> None:
    alarm = resources["Api5xxAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Sum")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    # The REST API's name (the Api's Name) and the stage
    assert dimensions["ApiName"] == resources["Api"]["Properties"]["Name"]
    assert dimensions["Stage"] == {"Ref": "StageName"}
    assert int(alarm["Threshold"]) == 1


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_is_summed_into_one_errors_and_one_throttles_alarm(
    resources: dict[str, Any], functions: dict[str, Any], metric: str
) -> None:
    # Given the Lambda metric alarms of one metric
    summed: dict[str, list[str]] = {}
    for name, alarm in _alarms(resources).items():
        queries = _metric_queries(alarm)
        stats = [(q, cond) for q, cond in queries if "MetricStat" in q]
        if not stats or stats[0][0]["MetricStat"]["Metric"]["Namespace"] != "AWS/Lambda":
            continue
        if stats[0][0]["MetricStat"]["Metric"]["MetricName"] != metric:
            continue
        # Then each is one SUM over at most 10 metrics (CloudWatch's limit for a metric math alarm)
        (total,) = [q for q, _ in queries if q.get("ReturnData") is True]
        assert total["Expression"] == "SUM(METRICS())", name
        assert len(stats) <= 10, name
        for query, condition in stats:
            assert query["MetricStat"]["Metric"]["MetricName"] == metric, name
            assert query["MetricStat"]["Stat"] == "Sum", name
            function = _dimension(query["MetricStat"], "FunctionName")["Ref"]
            # A function that only exists under a condition is read only under that condition
            expected = functions[function].get("Condition")
            assert expected in (condition, alarm.get("Condition")), (name, function)
            summed.setdefault(function, []).append(name)
        assert int(alarm["Properties"]["Threshold"]) == 1, name

    # And every function is in exactly one of them; the authorizer is left out of the errors (a refused key
    # is a function error), its failures are the API's 5xx
    expected = set(functions) - ({"ApiKeyAuthorizerFunction"} if metric == "Errors" else set())
    assert set(summed) == expected
    assert all(len(alarms) == 1 for alarms in summed.values()), summed


def test_alarms_on_admin_functions_exist_only_with_the_admin_api(resources: dict[str, Any]) -> None:
    for name, alarm in _alarms(resources).items():
        names = {
            _dimension(query["MetricStat"], "FunctionName")["Ref"]
            for query, _ in _metric_queries(alarm)
            if "MetricStat" in query and query["MetricStat"]["Metric"]["Namespace"] == "AWS/Lambda"
        }
        if names & ADMIN_FUNCTIONS:
            assert names <= ADMIN_FUNCTIONS, name
            assert alarm["Condition"] == "AdminApiEnabled", name


def test_table_throttles_alarm_reads_the_tables_throttle_events(resources: dict[str, Any]) -> None:
    queries = [q for q, _ in _metric_queries(resources["TableThrottlesAlarm"]) if "MetricStat" in q]
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in queries} == {"ReadThrottleEvents", "WriteThrottleEvents"}
    assert all(q["MetricStat"]["Metric"]["Namespace"] == "AWS/DynamoDB" for q in queries)
    assert all(_dimension(q["MetricStat"], "TableName") == {"Ref": "Table"} for q in queries)


def _dashboard(environ: dict[str, str]) -> dict[str, Any]:
    """The dashboard body as CloudFormation renders it for a stack with these parameter values."""
    resolver = _resolver(environ)
    body = resolver.resolve(resolver.template.resources["Dashboard"]["Properties"]["DashboardBody"])
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _listed_alarms(dashboard: dict[str, Any]) -> list[str]:
    (alarm_widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    listed: list[str] = alarm_widget["properties"]["alarms"]
    return listed


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"AdminApi": "disabled"},
        {"IdpIssuer": "https://idp.example.com"},
        {"AdminApi": "disabled", "IdpIssuer": "x"},
        {"SmsProviders": "eum"},
        {"SmsCountryRoutes": "NZ:eum", "AdminApi": "disabled", "IdpIssuer": "x"},
    ],
    ids=["defaults", "no-admin-api", "with-idp", "no-admin-api-with-idp", "with-eum", "eum-by-country-no-admin-idp"],
)
def test_the_dashboard_is_valid_json_for_every_combination_of_conditions(
    resources: dict[str, Any], environ: dict[str, str]
) -> None:
    # When the dashboard is rendered for a stack
    dashboard = _dashboard(environ)

    # Then each widget refers to functions and alarms the stack has
    text = json.dumps(dashboard)
    admin = environ.get("AdminApi", "enabled") == "enabled"
    eum = "eum" in environ.get("SmsProviders", "") + environ.get("SmsCountryRoutes", "")
    assert ("AdminListBlocksFunction" in text) is admin
    assert ("AdminFunctionErrorsAlarm" in text) is admin
    assert ("AdminListAppsFunction" in text) is admin
    assert ("AdminAppFunctionErrorsAlarm" in text) is admin
    assert ("VerificationSendFunction" in text) is ("IdpIssuer" in environ)
    assert ("DeliveryEventsFunction" in text) is eum
    assert ("DeliveryEventsFunctionErrorsAlarm" in text) is eum
    assert ("DeliveryEventsFunctionThrottlesAlarm" in text) is eum
    # And the alarm widget lists each alarm the stack has, once, and no other
    resolver = _resolver(environ)
    listed = _listed_alarms(dashboard)
    assert len(listed) == len(set(listed))
    assert set(listed) == {resolver.get_att(name, "Arn") for name in _alarms(resources) if resolver.is_active(name)}
    # And metric ids of one graph are unique
    for widget in dashboard["widgets"]:
        ids = [
            row[-1]["id"]
            for row in widget["properties"].get("metrics", [])
            if isinstance(row[-1], dict) and "id" in row[-1]
        ]
        assert len(ids) == len(set(ids)), widget["properties"]["title"]


def test_the_dashboard_shows_conversion_by_country_sends_blocks_budget_latency_and_errors(
    resources: dict[str, Any],
) -> None:
    # Given the rendered dashboard's metrics, by widget
    widgets = _dashboard({})["widgets"]
    text = json.dumps(widgets)

    # Then conversion by country searches SmsSent and SmsVerified by the country dimension
    by_country = [w for w in widgets if "by country" in w["properties"].get("title", "")]
    assert by_country
    expressions = [row[0]["expression"] for row in by_country[0]["properties"]["metrics"]]
    for name in ("SmsSent", "SmsVerified"):
        assert f"SEARCH('{{SmsOtp,country,service}} MetricName=\"{name}\"', 'Sum', 3600)" in expressions, name
    # And the other widgets show sends, blocks, the budget, API latency and errors
    for metric in ("SmsBlocked", "SmsPumpingSuspected", "SmsBudgetUsedPercent", "SmsBudgetExceeded", "5XXError"):
        assert f'"{metric}"' in text, metric
    assert '"Latency"' in text
    assert '"stat": "p50"' in text
    assert '"stat": "p99"' in text
    assert '"Errors"' in text
    # And an alarm widget lists every alarm of the stack (a default one: the conditions' defaults)
    resolver = _resolver({})
    listed = _listed_alarms({"widgets": widgets})
    active = [name for name in _alarms(resources) if resolver.is_active(name)]
    assert len(listed) == len(set(listed)) == len(active)
    assert set(listed) == {resolver.get_att(name, "Arn") for name in active}


def test_the_client_preflights_only_read_the_apps(functions: dict[str, Any]) -> None:
    # Given the preflight function of the client routes (a preflight is allowed for the live apps' allowedOrigins)
    preflight = functions["ClientPreflightFunction"]
    statements = _statements(preflight)

    # Then it may only read the table
    assert {action for statement in statements for action in _actions(statement)} == {
        "dynamodb:GetItem",
        "dynamodb:Query",
    }
    assert all(statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]} for statement in statements)
    # And it answers OPTIONS on exactly the three client routes, behind no authorizer (browsers send none)
    events = preflight["Properties"]["Events"].values()
    assert {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in events} == {
        ("options", "/v1/client/sms/enroll"),
        ("options", "/v1/client/sms/challenge"),
        ("options", "/v1/client/sms/verify"),
    }
    assert all(event["Properties"]["Auth"] == {"Authorizer": "NONE"} for event in events)


def test_the_hosted_page_only_reads_the_apps(functions: dict[str, Any]) -> None:
    # Given the hosted page's function (its frame-ancestors are the live apps' allowedOrigins)
    page = functions["HostedPageFunction"]
    statements = _statements(page)

    # Then it may only read the table: no write, no secret, no key, no SMS
    assert {action for statement in statements for action in _actions(statement)} == {
        "dynamodb:GetItem",
        "dynamodb:Query",
    }
    assert all(statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]} for statement in statements)
    # And it ships its own folder, assets included, behind no authorizer on each of its four routes
    assert page["Properties"]["CodeUri"] == "functions/hosted_page/"
    for name in ("challenge.js", "challenge.css", "sms-otp.js"):
        assert (REPO_ROOT / "functions" / "hosted_page" / "static" / name).is_file(), name
    events = page["Properties"]["Events"].values()
    assert {event["Properties"]["Path"] for event in events} == {
        "/v1/hosted/challenge",
        "/v1/hosted/challenge.js",
        "/v1/hosted/challenge.css",
        "/v1/hosted/sms-otp.js",
    }
    assert all(event["Properties"]["Auth"] == {"Authorizer": "NONE"} for event in events)


# ---------------------------------------------------------------- End User Messaging (provider eum)


def test_delivery_events_that_keep_failing_are_kept_and_alarmed(resources: dict[str, Any]) -> None:
    # Given the function SNS invokes asynchronously with End User Messaging's events
    function = resources["DeliveryEventsFunction"]["Properties"]

    # Then Lambda retries an event twice within the hour, then keeps it in an encrypted queue for 14 days
    assert function["EventInvokeConfig"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert function["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["DeliveryEventsDeadLetterQueue", "Arn"]},
    }
    queue = resources["DeliveryEventsDeadLetterQueue"]
    assert queue["Condition"] == "HasEum"
    assert queue["Properties"]["KmsMasterKeyId"] == "alias/aws/sqs"
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600
    # And an alarm fires as soon as one waits there
    alarm = resources["DeliveryEventsDeadLetterAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeliveryEventsDeadLetterQueue", "QueueName"]}}
    ]
    assert int(alarm["Threshold"]) == 1


# What exists only when the stack routes to End User Messaging (HasEum), and nothing else does.
EUM_RESOURCES = {
    "EumSendPolicy",
    "EumFeedbackPolicy",
    "EumEventsKey",
    "EumEventsTopic",
    "EumEventsTopicPolicy",
    "EumConfigurationSet",
    "DeliveryEventsFunction",
    "DeliveryEventsFunctionLogGroup",
    "DeliveryEventsFunctionErrorsAlarm",
    "DeliveryEventsFunctionThrottlesAlarm",
    "DeliveryEventsDeadLetterQueue",
    "DeliveryEventsDeadLetterAlarm",
}
EUM_OUTPUTS = {"EumConfigurationSetName", "EumEventsTopicArn"}
EUM_SERVICE = "sms-voice.amazonaws.com"
# Stacks that route to End User Messaging (by default or for some countries) and stacks that do not, with
# whether they route to Twilio.
EUM_ROUTED = [
    ({"SmsProviders": "eum"}, False),
    ({"SmsProviders": "sns,eum"}, False),
    ({"SmsCountryRoutes": "NZ:eum"}, False),
    ({"SmsProviders": "twilio", "SmsCountryRoutes": "AU:messagemedia;NZ:sns,eum"}, True),
]
EUM_NOT_ROUTED = [
    ({}, False),
    ({"SmsProviders": "sns,twilio"}, True),
    ({"SmsProviders": "vonage,bird,webhook", "SmsCountryRoutes": "NZ:tnz,modica;AU:messagemedia"}, False),
    ({"SmsCountryRoutes": "US:twilio"}, True),
]
ROUTINGS = [(environ, True, twilio) for environ, twilio in EUM_ROUTED] + [
    (environ, False, twilio) for environ, twilio in EUM_NOT_ROUTED
]


def _routing_id(environ: dict[str, str]) -> str:
    return ";".join(f"{name}={value}" for name, value in environ.items()) or "defaults"


def _eum_resolver() -> Resolver:
    return _resolver({"SmsProviders": "eum"})


def _sms_voice_arn(resolver: Resolver, resource: str) -> str:
    return f"arn:aws:sms-voice:{resolver.region}:{resolver.account_id}:{resource}"


def _configuration_set_arn(resolver: Resolver, resources: dict[str, Any]) -> str:
    name = resolver.resolve(resources["EumConfigurationSet"]["Properties"]["ConfigurationSetName"])
    return _sms_voice_arn(resolver, f"configuration-set/{name}")


def _iam_resource_types(service: str, action: str, arn: str) -> set[str]:
    """The resource types of ``service``'s IAM reference (cfn-lint's copy of the Service Authorization
    Reference) that ``action`` may be scoped to and whose ARN format ``arn`` fits (a pattern such as pool/*)."""

    reference = load_resource(AdditionalSpecs, "Policies.json")[service]
    allowed = {name.lower() for name in reference["Actions"][action.lower()]["Resources"]}
    fitting = set()
    for name in allowed:
        for arn_format in reference["Resources"][name]["ARNFormats"]:
            pattern = re.sub(r"\\\$\\\{[A-Za-z]+\\\}", "[^:]+", re.escape(arn_format)).replace(r"\.\*", ".*")
            if re.fullmatch(pattern, arn):
                fitting.add(name)
    return fitting


@pytest.mark.parametrize(("environ", "eum", "twilio"), ROUTINGS, ids=[_routing_id(r[0]) for r in ROUTINGS])
def test_has_eum_and_has_twilio_hold_exactly_when_the_stack_routes_to_the_provider(
    template: dict[str, Any], environ: dict[str, str], eum: bool, twilio: bool
) -> None:
    # Given a stack's provider parameters, valid ones
    parameters = template["Parameters"]
    for name, value in environ.items():
        assert re.fullmatch(parameters[name]["AllowedPattern"], value), (name, value)

    # When the conditions are evaluated (the local resolver, as CloudFormation does)
    resolver = _resolver(environ)

    # Then they hold for the providers the code holds credentials and permissions for, and only for them
    settings = Settings.from_env({upper_snake(name): value for name, value in environ.items()})
    providers = stack_providers(settings)
    assert resolver.condition("HasEum") is eum
    assert ("eum" in providers) is eum
    assert resolver.condition("HasTwilio") is twilio
    assert ("twilio" in providers) is twilio


def test_the_provider_conditions_cannot_mistake_another_provider_for_eum_or_twilio() -> None:
    # Given the providers the code knows (HasEum and HasTwilio look for the names in the parameters' text)
    assert {"eum", "twilio", "sns"} <= KNOWN_PROVIDERS

    # Then no other provider's name contains either name (a country code is upper case, so none does either)
    for name in KNOWN_PROVIDERS:
        assert ("eum" in name) is (name == "eum"), name
        assert ("twilio" in name) is (name == "twilio"), name


@pytest.mark.parametrize(("environ", "eum", "twilio"), ROUTINGS, ids=[_routing_id(r[0]) for r in ROUTINGS])
def test_the_end_user_messaging_resources_exist_exactly_when_eum_is_routed(
    template: dict[str, Any],
    resources: dict[str, Any],
    functions: dict[str, Any],
    environ: dict[str, str],
    eum: bool,
    twilio: bool,
) -> None:
    # Given the resources and outputs that carry HasEum
    conditional = {name for name, res in resources.items() if res.get("Condition") == "HasEum"}
    outputs = {name for name, output in template["Outputs"].items() if output.get("Condition") == "HasEum"}
    assert conditional == EUM_RESOURCES
    assert outputs == EUM_OUTPUTS

    # When the stack's conditions are evaluated
    resolver = _resolver(environ)

    # Then they all exist with eum routed, and none does without it
    assert all(resolver.is_active(name) is eum for name in EUM_RESOURCES)
    # And the functions are told the configuration set and the topic only when they exist
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    configuration_set = resolver.resolve(variables["EUM_CONFIGURATION_SET"])
    topic = resolver.resolve(variables["EUM_EVENTS_TOPIC_ARN"])
    assert configuration_set == (f"{resolver.stack_name}-otp" if eum else "")
    assert topic == (resolver.ref("EumEventsTopic") if eum else "")
    if eum:
        assert configuration_set == resolver.resolve(template["Outputs"]["EumConfigurationSetName"]["Value"])
        assert _configuration_set_arn(resolver, resources).endswith(f":configuration-set/{configuration_set}")
    # And the senders may send through it, the verifiers feed back to it (and to Twilio) only when routed
    for name in SENDERS | VERIFIERS:
        attached = {p for p in resolver.resolve(functions[name]["Properties"]["Policies"]) if isinstance(p, str)}
        assert (resolver.ref("EumSendPolicy") in attached) is (eum and name in SENDERS), name
        assert (resolver.ref("EumFeedbackPolicy") in attached) is (eum and name in VERIFIERS), name
        reads_provider_secret = name in SENDERS or twilio
        assert (resolver.ref("SmsProviderSecretReadPolicy") in attached) is reads_provider_secret, name


def _pruned(value: Any, resolver: Resolver) -> Any:
    """``value`` with each Fn::If replaced by the branch the resolver's conditions pick, AWS::NoValue left out."""
    if isinstance(value, list):
        items = [_pruned(item, resolver) for item in value]
        return [item for item in items if item is not _LEFT_OUT]
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return _pruned(when_true if resolver.condition(condition) else when_false, resolver)
        if value == {"Ref": "AWS::NoValue"}:
            return _LEFT_OUT
        entries = {key: _pruned(item, resolver) for key, item in value.items()}
        return {key: item for key, item in entries.items() if item is not _LEFT_OUT}
    return value


_LEFT_OUT = object()
_SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")


def _named(value: Any) -> set[str]:
    """The logical IDs a value names: in Ref, Fn::GetAtt and Fn::Sub (its text and variables)."""
    if isinstance(value, list):
        return {name for item in value for name in _named(item)}
    if not isinstance(value, dict):
        return set()
    found = {name for item in value.values() for name in _named(item)}
    if isinstance(value.get("Ref"), str):
        found.add(value["Ref"])
    get_att = value.get("Fn::GetAtt")
    if isinstance(get_att, list) and get_att and isinstance(get_att[0], str):
        found.add(get_att[0])
    elif isinstance(get_att, str):
        found.add(get_att.split(".")[0])
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        found |= {m.group(1).split(".")[0] for m in _SUB_NAME.finditer(text)} - set(variables)
    return found


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"AdminApi": "disabled"},
        {"IdpIssuer": "x"},
        *(e for e, _ in EUM_ROUTED),
        {"SmsProviders": "eum", "AdminApi": "disabled"},
    ],
    ids=["defaults", "no-admin-api", "with-idp", *(_routing_id(e) for e, _ in EUM_ROUTED), "eum-no-admin-api"],
)
def test_no_resource_or_output_of_a_stack_names_a_resource_the_stack_does_not_have(
    template: dict[str, Any], resources: dict[str, Any], environ: dict[str, str]
) -> None:
    # Given a stack's resources, outputs and function globals, with its conditions applied
    resolver = _resolver(environ)
    active = {name for name in resources if resolver.is_active(name)}
    named: dict[str, set[str]] = {"Globals": _named(_pruned(template["Globals"], resolver))}
    for name in active:
        resource = resources[name]
        depends_on = set(_as_list(resource.get("DependsOn", [])))
        named[name] = _named(_pruned(resource.get("Properties", {}), resolver)) | depends_on
    for name, output in template["Outputs"].items():
        if "Condition" not in output or resolver.condition(output["Condition"]):
            named[f"Outputs.{name}"] = _named(_pruned(output, resolver))

    # Then every resource they name is one the stack has
    for where, names in named.items():
        assert not (names & set(resources)) - active, (where, (names & set(resources)) - active)


def test_the_send_policy_allows_only_sending_with_the_stacks_configuration_set_and_the_accounts_identities(
    resources: dict[str, Any], functions: dict[str, Any]
) -> None:
    # Given the send policy, resolved for a stack with eum routed
    resolver = _eum_resolver()
    (statement,) = _managed_policies()["EumSendPolicy"]

    # Then it allows one action, SendTextMessage, and no condition or negation softens it
    assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}
    assert statement["Effect"] == "Allow"
    assert _as_list(statement["Action"]) == ["sms-voice:SendTextMessage"]
    # And only on the stack's configuration set and this account's and region's origination identities and
    # protect configurations: never on "*", another account's or another region's
    arns = _as_list(resolver.resolve(statement["Resource"]))
    assert sorted(arns) == sorted(
        [
            _configuration_set_arn(resolver, resources),
            _sms_voice_arn(resolver, "pool/*"),
            _sms_voice_arn(resolver, "phone-number/*"),
            _sms_voice_arn(resolver, "sender-id/*"),
            _sms_voice_arn(resolver, "protect-configuration/*"),
        ]
    )
    assert "*" not in arns
    assert "*" not in _configuration_set_arn(resolver, resources)
    # And each is a resource type IAM scopes SendTextMessage to (one type per ARN)
    for arn in arns:
        assert len(_iam_resource_types("sms-voice", "SendTextMessage", arn)) == 1, arn

    # And the senders hold it, only with eum routed, and no other function does
    assert _grant_conditions(functions, "sms-voice:SendTextMessage") == {name: {"HasEum"} for name in SENDERS}


def test_message_feedback_goes_to_the_verifiers_and_the_delivery_events_function_only(
    functions: dict[str, Any],
) -> None:
    # Given the feedback policy, resolved for a stack with eum routed
    resolver = _eum_resolver()
    (statement,) = _managed_policies()["EumFeedbackPolicy"]

    # Then it allows only PutMessageFeedback, on this account's and region's messages
    assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}
    assert statement["Effect"] == "Allow"
    assert _as_list(statement["Action"]) == ["sms-voice:PutMessageFeedback"]
    (arn,) = _as_list(resolver.resolve(statement["Resource"]))
    assert arn == _sms_voice_arn(resolver, "message/*")
    assert _iam_resource_types("sms-voice", "PutMessageFeedback", arn) == {"message"}

    # And the verifiers hold it with eum routed (a verified code's message was received), and so does the
    # delivery events function, which exists only then (a receipt that arrives after the code was verified)
    assert _grant_conditions(functions, "sms-voice:PutMessageFeedback") == {
        **{name: {"HasEum"} for name in VERIFIERS},
        "DeliveryEventsFunction": {None},
    }
    assert functions["DeliveryEventsFunction"]["Condition"] == "HasEum"


def test_no_other_statement_reaches_end_user_messaging(resources: dict[str, Any]) -> None:
    # Given every IAM statement of the template's functions and roles
    for name, statement in _all_statements(resources):
        actions = [action for action in _actions(statement) if action.startswith("sms-voice:")]
        # Then the only End User Messaging actions are the send and the feedback, never a wildcard
        assert set(actions) <= {"sms-voice:SendTextMessage", "sms-voice:PutMessageFeedback"}, (name, actions)
        if actions:
            assert statement in _managed_policies()["EumSendPolicy"] + _managed_policies()["EumFeedbackPolicy"]


def test_only_end_user_messaging_may_publish_to_the_events_topic_and_only_for_the_stacks_configuration_set(
    resources: dict[str, Any],
) -> None:
    # Given the topic's policy, resolved for a stack with eum routed
    resolver = _eum_resolver()
    props = resources["EumEventsTopicPolicy"]["Properties"]
    assert props["Topics"] == [{"Ref": "EumEventsTopic"}]
    statements = _as_list(props["PolicyDocument"]["Statement"])
    assert all(set(s) <= {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"} for s in statements)
    (statement,) = [s for s in statements if s["Effect"] == "Allow"]

    # Then it allows one thing: the End User Messaging service principal, nobody else, to publish to the topic
    assert statement["Principal"] == {"Service": EUM_SERVICE}
    assert _as_list(statement["Action"]) == ["sns:Publish"]
    assert statement["Resource"] == {"Ref": "EumEventsTopic"}
    # And only on behalf of this account, for the stack's own configuration set (no wildcard in it)
    condition = resolver.resolve(statement["Condition"])
    assert condition["StringEquals"] == {"aws:SourceAccount": resolver.account_id}
    (source_arn_operator,) = [operator for operator, keys in condition.items() if "aws:SourceArn" in keys]
    assert source_arn_operator in ("ArnEquals", "ArnLike")
    assert condition[source_arn_operator] == {"aws:SourceArn": _configuration_set_arn(resolver, resources)}
    assert set(condition) == {"StringEquals", source_arn_operator}
    # And every other statement only narrows who may use the topic: a Deny, on the topic alone
    for other in statements:
        if other is not statement:
            assert other["Effect"] == "Deny", other
            assert other["Resource"] == {"Ref": "EumEventsTopic"}, other


def test_the_events_topic_is_encrypted_with_a_key_only_end_user_messaging_may_encrypt_with(
    resources: dict[str, Any],
) -> None:
    # Given the topic and its key
    topic = resources["EumEventsTopic"]["Properties"]
    key = resources["EumEventsKey"]["Properties"]

    # Then the topic is encrypted with the stack's own key (an AWS managed key cannot allow the service) and
    # signs its notifications with SHA256withRSA, which the delivery events function verifies
    assert topic["KmsMasterKeyId"] == {"Ref": "EumEventsKey"}
    assert str(topic["SignatureVersion"]) == "2"
    assert key["EnableKeyRotation"] is True

    # And besides the account's administration, only End User Messaging may use the key, to encrypt the
    # events it publishes for this account
    statements = _as_list(key["KeyPolicy"]["Statement"])
    (service,) = [s for s in statements if "Service" in s["Principal"]]
    others = [s for s in statements if s is not service]
    assert service["Principal"] == {"Service": EUM_SERVICE}
    assert sorted(_as_list(service["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert service["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert [s["Principal"] for s in others] == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    ]
    assert all(s["Effect"] == "Allow" for s in statements)


def test_the_configuration_set_sends_every_outcome_of_a_text_to_the_events_topic(resources: dict[str, Any]) -> None:
    # Given the configuration set
    configuration_set = resources["EumConfigurationSet"]
    props = configuration_set["Properties"]

    # Then it is the stack's one, created once the topic allows the service to publish, with message feedback
    assert props["ConfigurationSetName"] == {"Fn::Sub": "${AWS::StackName}-otp"}
    assert "EumEventsTopicPolicy" in _as_list(configuration_set["DependsOn"])
    assert props["MessageFeedbackEnabled"] is True
    # And its one event destination is the topic, enabled
    (destination,) = props["EventDestinations"]
    assert destination["Enabled"] is True
    assert destination["SnsDestination"] == {"TopicArn": {"Ref": "EumEventsTopic"}}
    assert not {"CloudWatchLogsDestination", "KinesisFirehoseDestination"} & set(destination)

    # And it matches every outcome of a text the service defines (botocore's EventType), no progress event
    # (sent, queued, pending), no voice, media or RCS event: exactly the outcomes the function records
    matched = destination["MatchingEventTypes"]
    assert len(matched) == len(set(matched))
    event_types = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2").shape_for("EventType")
    text_types = {name for name in event_types.enum if name.startswith("TEXT_")} - {"TEXT_ALL"}
    assert set(matched) == text_types - {"TEXT_SENT", "TEXT_QUEUED", "TEXT_PENDING"}
    assert set(matched) == set(OUTCOMES)
    assert not set(matched) & PROGRESS_EVENTS
    assert {"TEXT_SENT", "TEXT_QUEUED", "TEXT_PENDING"} == PROGRESS_EVENTS


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SmsProviders": "eum", "EumProtectConfigurationId": "protect-0123abcd"}, "protect-0123abcd"),
        ({"SmsProviders": "eum"}, None),
    ],
    ids=["with-protect-configuration", "without"],
)
def test_the_configuration_set_names_the_protect_configuration_only_when_one_is_set(
    resources: dict[str, Any], environ: dict[str, str], expected: str | None
) -> None:
    resolver = _resolver(environ)
    props = resolver.resolve(resources["EumConfigurationSet"]["Properties"])
    assert props.get("ProtectConfigurationId") == expected
    # And a protect configuration alone creates nothing: End User Messaging must be routed
    assert not _resolver({"EumProtectConfigurationId": "protect-0123abcd"}).condition("HasEumProtectConfiguration")


def test_the_delivery_events_function_is_subscribed_to_the_topic_and_only_records_receipts(
    resources: dict[str, Any], functions: dict[str, Any]
) -> None:
    # Given the delivery events function
    function = functions["DeliveryEventsFunction"]
    props = function["Properties"]

    # Then it exists with eum routed, as the delivery-status code's SNS entry point
    assert function["Condition"] == "HasEum"
    assert props["CodeUri"] == "functions/delivery_status/"
    assert props["Handler"] == "app.sns_handler"
    # And its one event is the topic's subscription; no other function is subscribed to it
    (event,) = props["Events"].values()
    assert event["Type"] == "SNS"
    assert event["Properties"]["Topic"] == {"Ref": "EumEventsTopic"}
    subscribed = {
        name
        for name, other in functions.items()
        for other_event in other["Properties"].get("Events", {}).values()
        if other_event["Type"] == "SNS"
    }
    assert subscribed == {"DeliveryEventsFunction"}
    assert not any(
        res["Type"] == "AWS::SNS::Subscription" and _refers_to(res["Properties"].get("TopicArn"), "EumEventsTopic")
        for res in resources.values()
    )

    # And it may only read a challenge and record its delivery on the table, and feed back to the service
    statements = _conditional_statements(function)
    assert all(condition is None for _, condition in statements)
    table = [s for s, _ in statements if any(action.startswith("dynamodb:") for action in _actions(s))]
    others = [s for s, _ in statements if s not in table]
    assert {action for statement in table for action in _actions(statement)} == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert all(statement["Resource"] == {"Fn::GetAtt": ["Table", "Arn"]} for statement in table)
    assert others == _managed_policies()["EumFeedbackPolicy"]
    assert all(set(statement) <= {"Sid", "Effect", "Action", "Resource"} for statement, _ in statements)


def test_the_end_user_messaging_outputs_name_the_configuration_set_and_the_topic(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in EUM_OUTPUTS:
        assert outputs[name]["Condition"] == "HasEum", name
        assert outputs[name].get("Description"), name
    assert outputs["EumConfigurationSetName"]["Value"] == {"Fn::Sub": "${AWS::StackName}-otp"}
    assert outputs["EumEventsTopicArn"]["Value"] == {"Ref": "EumEventsTopic"}


@pytest.mark.parametrize(
    ("parameter", "valid", "invalid"),
    [
        (
            "EumOriginationIdentities",
            ["", "US=pool-0123abcd;GB=MyBrand;*=pool-0456abcd", "*=+14255550120"],
            ["US", "us=x", "US=a b"],
        ),
        ("EumProtectConfigurationId", ["", "protect-0123abcd"], ["protect 1", "a;b"]),
        ("EumMaxPrice", ["", "0.05", ".5", "10.12345"], ["abc", "1", "100.0", "0.123456"]),
        ("EumDryRun", ["false", "true"], ["yes", ""]),
    ],
)
def test_the_end_user_messaging_parameters_accept_what_the_settings_accept(
    template: dict[str, Any], parameter: str, valid: list[str], invalid: list[str]
) -> None:
    # Given the parameter and the variable it sets for every function
    spec = template["Parameters"][parameter]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    (variable,) = [name for name, value in variables.items() if value == {"Ref": parameter}]

    def accepted(value: str) -> bool:
        if "AllowedValues" in spec:
            return value in spec["AllowedValues"]
        return re.fullmatch(spec["AllowedPattern"], value) is not None

    # Then its default is valid, and what it accepts the settings accept
    assert accepted(str(spec["Default"]))
    for value in valid:
        assert accepted(value), value
        Settings.model_validate({variable.lower(): value})
    for value in invalid:
        assert not accepted(value), value
